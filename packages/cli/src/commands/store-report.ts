/**
 * `descent report --db URL --model NAME`: the report of a model recorded in the store, drawn from
 * its files and its stored test-set predictions (`evaluate --store`), without predicting again.
 */
import { resolve } from 'node:path';
import {
  artifactsFromModelJson, modelFromArtifacts, type BackendName, type DatasetName, type ImageDataset, type TrainingMetadata,
} from '@descent/engine';
import { StoreError } from '@descent/store';
import { checkWritableFolder, readDataset, useBackend } from '../common.js';
import type { Output } from '../output.js';
import { shortPath } from '../output.js';
import { withStore } from '../store.js';
import { announce, charts, detailsOf, titleFor } from './report.js';
import { commandLine, shellWord } from '../invocation.js';

export interface StoredReportFlags {
  db?: string;
  model: string;
  out?: string;
  data?: string;
  backend: BackendName;
  title?: string;
}

export async function storedModelReport(flags: StoredReportFlags, output: Output): Promise<void> {
  useBackend(flags.backend, output);
  const outDir = resolve(flags.out ?? `${flags.model.replace(/[^A-Za-z0-9._-]/g, '_')}-report`);
  const label = flags.out !== undefined ? `--out ${flags.out}` : `${shortPath(outDir)} (the default --out)`;
  checkWritableFolder(outDir, label);
  await withStore(flags.db, {}, async (store) => {
    const record = await store.requireModel(flags.model);
    const modelFile = `model ${record.name} in ${store.display}`;
    const weights = record.weights.buffer.slice(record.weights.byteOffset, record.weights.byteOffset + record.weights.byteLength) as ArrayBuffer;
    const model = modelFromArtifacts(artifactsFromModelJson(JSON.parse(record.modelJson), weights, modelFile), { modelFile, weightsFile: modelFile });
    const metadata = record.trainingJson ? (JSON.parse(record.trainingJson) as TrainingMetadata) : undefined;
    const stored = await store.storedEvaluation(record.id);
    if (!stored) {
      throw new StoreError(`--model ${record.name}: has no stored test-set predictions in ${store.display}; record them with \`${commandLine(`evaluate ${record.dir ? shellWord(record.dir) : 'MODEL_DIR'} --db ${shellWord(store.display)} --store`)}\``);
    }
    const dataset = record.dataset ? await store.getDataset(record.dataset) : undefined;
    const classNames = dataset?.classNames ?? metadata?.classNames ?? [];
    const side = Math.round(Math.sqrt(stored.images.length / stored.count));
    const test: ImageDataset = { images: stored.images, labels: stored.labels, count: stored.count, rows: side, cols: side, classNames };
    // Training images for the sample grid: the store's, or the IDX files of the dataset it was trained on.
    const train = dataset && dataset.counts.train.some((n) => n > 0)
      ? await store.loadSplit(dataset.name, 'train')
      : (await readDataset((metadata?.dataset ?? 'fashion-mnist') as DatasetName, flags.data, output)).train;
    const { files } = await (await charts()).writeReport(
      outDir,
      {
        model, history: metadata?.history ?? null, train, test, classNames, probabilities: stored.probabilities,
        title: flags.title ?? titleFor(record.name, { name: record.dataset ?? metadata?.dataset ?? '' }),
        details: [...detailsOf(model, metadata), `test-set predictions stored in ${store.display}`],
      },
      { what: label },
    );
    announce(output, outDir, files);
  });
}

