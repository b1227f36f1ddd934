/**
 * Pictures of a model:
 *   descent report MODEL_DIR [--out DIR]      report.html + one PNG per chart (default MODEL_DIR/report)
 *   descent report --bench RESULT.json        RESULT-epoch.png/.svg: the bench's seconds per epoch per engine
 *   descent train ... --report                the same report, written into the model folder at the end
 *   descent predict ... --plot FILE.png       the images beside their class probabilities
 * The charts themselves live in ../report/.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import {
  DataError, UsageError, type BackendName, type ThreadCount, type DatasetName, type LoadedDataset, type Sequential,
  type TrainingMetadata,
} from '@descent/engine';
import { backendOption, threadsOption, checkModelFits, checkWritableFile, createFolderFor, checkWritableFolder, dataOption, datasetFor, datasetOption, jsonOption, openModel, readDataset, statOrUndefined, useBackend, warnIfOtherDataset } from '../common.js';
import { IMAGE_SIZE } from '../image.js';
import type { CliModule, PredictRun, TrainRun } from '../module.js';
import { rankTrials } from '@descent/jobs';
import { searchChartSpec } from '../tune/chart.js';
import { isSearchFolder, readSearch, readTrials } from '../tune/folder.js';
import { commandLine, shellWord } from '../invocation.js';
import { Output, shortPath } from '../output.js';
import { dbOption } from '../store.js';
import { storedModelReport } from './store-report.js';
import { OutputError, REPORT_FILE, writeFileAtomic, writeFilesAtomic } from '../report/files.js';
import type { BenchmarkRow, ChartPlan } from '../report/index.js';

/** The charts (vega, vega-lite, sharp) load only when something is drawn: every other command starts faster without them. */
export const charts = () => import('../report/index.js');

export interface ReportFlags {
  out?: string;
  data?: string;
  dataset?: DatasetName;
  backend: BackendName;
  threads?: ThreadCount;
  title?: string;
  bench?: string;
  db?: string;
  model?: string;
  json?: boolean;
}

/** `<result>.json` gets `<result>-epoch.png` and `<result>-epoch.svg` (seconds per epoch per engine). */
export function benchmarkChartName(resultFile: string): string {
  return `${basename(resultFile, extname(resultFile))}-epoch`;
}

export const reportModule: CliModule = {
  register(program) {
    program
      .command('report')
      .description('draw a trained model: sample images, loss and accuracy curves, confusion matrix, predictions, precision and recall')
      .argument('[model_dir]', 'folder holding model.json and weights.bin')
      .option('--out <dir>', 'folder to write report.html and the PNGs into (default: MODEL_DIR/report)')
      .addOption(dataOption())
      .addOption(datasetOption('dataset to draw and test on (default: the one the model was trained on)'))
      .addOption(backendOption().default('wasm'))
      .addOption(threadsOption())
      .option('--title <text>', 'title of the page')
      .option('--bench <file>', 'draw seconds per epoch per engine from a bench result file instead (default --out: the file\'s folder)')
      .option('--model <name>', 'draw a model recorded in the store (--db) from its stored test-set predictions (default --out: ./<name>-report)')
      .addOption(dbOption('the store of --model'))
      .addOption(jsonOption())
      .action(async (modelDir: string | undefined, flags: ReportFlags) => {
        const output = new Output({ json: flags.json === true });
        if (flags.model !== undefined) {
          if (modelDir !== undefined || flags.bench !== undefined) throw new UsageError('give one of MODEL_DIR, --model NAME (with --db) or --bench FILE');
          await storedModelReport({ ...flags, model: flags.model }, output);
        } else if (flags.db !== undefined) {
          throw new UsageError('--db goes with --model NAME: the name of a model recorded in the store');
        } else if (flags.bench !== undefined) {
          if (modelDir !== undefined) throw new UsageError('give either MODEL_DIR or --bench FILE, not both');
          await benchmarkReport(flags.bench, flags.out, output);
        } else {
          if (modelDir === undefined) throw new UsageError('missing MODEL_DIR: the folder of a saved model (or --bench FILE for a benchmark chart)');
          if (isSearchFolder(modelDir)) await searchReport(modelDir, flags, output);
          else await modelReport(modelDir, flags, output);
        }
      });
  },

  train: {
    options(command) {
      command.option('--report', 'write report.html and PNG charts into MODEL_DIR/report after training');
    },
    async finish(run: TrainRun, result) {
      if (run.options.report !== true) return;
      const outDir = join(result.outDir, 'report');
      const settings = run.settings;
      const details = [describeLayers(run.model), `${settings.optimizer} lr ${settings.lr}, batch ${settings.batchSize}, seed ${settings.seed}`];
      const { files } = await (await charts()).writeReport(
        outDir,
        {
          model: run.model, history: result.history, train: run.data.train, test: run.data.test, classNames: run.data.classNames,
          title: titleFor(result.outDir, run.data), details, validationSplit: settings.validationSplit,
        },
        { what: `--report ${shortPath(outDir)}` },
      );
      announce(run.output, outDir, files);
    },
  },

  predict: {
    options(command) {
      command.option('--plot <file>', 'also draw the images beside their class probabilities, as a PNG file');
    },
    validate(options) {
      const file = options.plot;
      if (typeof file !== 'string') return;
      if (extname(file).toLowerCase() !== '.png') throw new UsageError(`--plot ${file}: the file name must end in .png`);
      const folder = statOrUndefined(dirname(resolve(file)));
      if (folder && !folder.isDirectory()) throw new OutputError(`--plot ${file}: cannot write it, ${dirname(file)} is a file`);
      checkWritableFile(file, `--plot ${file}`);
    },
    async finish(run: PredictRun) {
      const file = run.options.plot;
      if (typeof file !== 'string') return;
      const items = run.predictions.map((p) => ({
        pixels: p.pixels, rows: IMAGE_SIZE, cols: IMAGE_SIZE, probabilities: p.probabilities, label: p.trueLabel, caption: p.input,
      }));
      const chart = await (await charts()).predictionPlot(items, run.classNames);
      createFolderFor(file, `--plot ${file}`);
      try {
        await writeFileAtomic(resolve(file), chart.png);
      } catch (err) {
        throw new OutputError(`--plot ${file}: cannot write it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
      run.output.note(`Plot: ${shortPath(resolve(file))}`);
    },
  },
};

async function modelReport(modelDir: string, flags: ReportFlags, output: Output, search?: { dir: string; charts: ChartPlan[]; details: string[] }): Promise<void> {
  useBackend(flags.backend, output, flags.threads);
  const loaded = await openModel(modelDir, output);
  const outDir = resolve(flags.out ?? join(search?.dir ?? modelDir, 'report'));
  const label = flags.out !== undefined ? `--out ${flags.out}` : `${shortPath(outDir)} (the default --out)`;
  checkWritableFolder(outDir, label);
  const dataset = datasetFor(loaded, flags.dataset);
  warnIfOtherDataset(loaded, dataset, output);
  const data = await readDataset(dataset, flags.data, output);
  checkModelFits(loaded, data.classNames.length, data.test.rows * data.test.cols, data.name);
  const metadata = loaded.metadata;
  const { files } = await (await charts()).writeReport(
    outDir,
    {
      model: loaded.model,
      history: metadata?.history ?? null,
      train: data.train,
      test: data.test,
      classNames: data.classNames,
      title: flags.title ?? titleFor(search?.dir ?? loaded.dir, data),
      details: [...(search?.details ?? []), ...detailsOf(loaded.model, metadata)],
      charts: search?.charts,
      validationSplit: typeof metadata?.hyperparameters?.validationSplit === 'number' ? metadata.hyperparameters.validationSplit : 0,
    },
    { what: label },
  );
  announce(output, outDir, files);
}

/** `descent report SEARCH_DIR` (and `descent tune --report`): the search chart, then the best model's report. */
export async function searchReport(dir: string, flags: ReportFlags, output: Output): Promise<void> {
  const { settings } = readSearch(dir, dir);
  const trials = readTrials(dir);
  const bestDir = join(dir, 'best-model');
  if (!statOrUndefined(join(bestDir, 'model.json'))) throw new UsageError(`${dir}: the search has not finished (no best-model yet); finish it with ${commandLine(`tune --resume ${shellWord(dir)}`)}`);
  const best = rankTrials(settings.objective, trials)[0];
  const chart: ChartPlan = {
    name: 'search',
    title: 'Search: score per trial against its epoch budget',
    explanation: 'Each point is a trial; further right, more epochs. Hyperband starts many models on a few epochs and continues only the best of each round (the lines), so the points thin out and rise towards the full budget.',
    spec: searchChartSpec(trials, settings, best?.id ?? null),
  };
  const details = [`Search: ${settings.algorithm}, ${trials.length} trials, best ${settings.objective.name} ${best?.score?.toFixed(4)} (trial ${best?.id})`];
  await modelReport(bestDir, { ...flags, data: flags.data ?? settings.data.dir ?? undefined }, output, { dir, charts: [chart], details });
}

export function announce(output: Output, outDir: string, files: string[]): void {
  const page = join(outDir, REPORT_FILE);
  output.note(`Report: ${shortPath(page)} (charts: ${files.filter((f) => f.endsWith('.png')).map((f) => basename(f)).join(', ')})`);
  output.record({ report: page, files });
}

/**
 * `descent report --bench FILE`: the chart of a bench result, next to it (or in --out). The bench
 * package only writes its result JSON (it must not depend on the CLI); drawing it happens here.
 */
async function benchmarkReport(file: string, out: string | undefined, output: Output): Promise<void> {
  const rows = readBenchmarkRows(file);
  const outDir = resolve(out ?? dirname(file));
  const label = out !== undefined ? `--out ${out}` : `${shortPath(outDir)} (the folder of --bench)`;
  checkWritableFolder(outDir, label);
  const chart = await (await charts()).benchmarkChart(rows);
  const name = benchmarkChartName(file);
  const files = await writeFilesAtomic(outDir, [{ name: `${name}.png`, bytes: chart.png }, { name: `${name}.svg`, bytes: chart.svg }], label);
  output.note(`Benchmark chart: ${files.map((f) => shortPath(f)).join(', ')}`);
  output.record({ chart: files[0], files });
}

/**
 * Seconds per epoch per engine from the bench's result file (`epoch.engines[]`: label, available,
 * secondsPerEpoch.median), or from a plain list of {engine, secondsPerEpoch}.
 */
export function readBenchmarkRows(file: string): BenchmarkRow[] {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DataError(file, code === 'ENOENT' ? 'does not exist' : code ? `cannot be read (${code})` : `is not valid JSON: ${(err as Error).message}`);
  }
  const rows: BenchmarkRow[] = [];
  if (Array.isArray(json)) {
    for (const row of json) {
      if (typeof row?.engine === 'string' && isPositive(row.secondsPerEpoch)) rows.push({ engine: row.engine, secondsPerEpoch: row.secondsPerEpoch });
    }
  } else {
    const engines = (json as { epoch?: { engines?: unknown } })?.epoch?.engines;
    for (const engine of Array.isArray(engines) ? engines : []) {
      const median = engine?.secondsPerEpoch?.median;
      if (engine?.available !== false && isPositive(median)) rows.push({ engine: String(engine.label ?? engine.engine), secondsPerEpoch: median });
    }
  }
  if (rows.length === 0) {
    throw new DataError(file, 'holds no seconds-per-epoch results (expected a bench result with an epoch suite, or a list of {engine, secondsPerEpoch})');
  }
  return rows;
}

function isPositive(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0;
}

export function titleFor(modelDir: string, data: { name: string }): string {
  const name = data.name === 'mnist' ? 'MNIST' : data.name === 'fashion-mnist' ? 'Fashion-MNIST' : data.name;
  return `${name} classifier: ${basename(resolve(modelDir))}`;
}

export function detailsOf(model: Sequential, metadata: TrainingMetadata | undefined): string[] {
  const details = [describeLayers(model)];
  const settings = metadata?.hyperparameters as { optimizer?: string; lr?: number; batchSize?: number; seed?: number } | undefined;
  if (settings?.optimizer) details.push(`${settings.optimizer} lr ${settings.lr}, batch ${settings.batchSize}, seed ${settings.seed}`);
  return details;
}

/** "dense 128 relu → dense 10 softmax" (a Flatten or Reshape in front goes without saying). */
function describeLayers(model: Sequential): string {
  const [first, ...rest] = model.layers;
  const shown = first.className === 'Flatten' || first.className === 'Reshape' ? rest : model.layers;
  return shown.map((layer) => layer.describe()).join(' → ');
}
