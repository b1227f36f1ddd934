/**
 * Predictions on the request thread: models are loaded from the store once and kept (a model is
 * ~0.5 MB); an image is prepared (a small 28×28 PNG in-process, anything else through sharp),
 * classified with the engine, and recorded.
 *
 * Requests are batched (PredictionBatcher): the images of every request that arrives in one turn
 * of the event loop are classified as one batch per model and recorded with one commit (group
 * commit); each request answers once its rows are committed. A reply that says a prediction was
 * recorded never loses it.
 */
import { argMax, artifactsFromModelJson, modelFromArtifacts, type Sequential } from '@descent/engine';
import type { PredictionInput, Store } from '@descent/store';
import { HttpError } from './errors.js';

export interface LoadedModel {
  id: number;
  name: string;
  model: Sequential;
  classNames: string[];
  rows: number;
  cols: number;
  /** Set when the model is forgotten (deleted): batches still holding it answer 404. */
  evicted?: boolean;
}

export interface ClassScore {
  label: number;
  class: string;
  probability: number;
}

export interface PredictionResult {
  label: number;
  class: string;
  probabilities: number[];
  top: ClassScore[];
}

const MAX_CACHED_MODELS = 32;

export class Predictor {
  private readonly models = new Map<number, Promise<LoadedModel | undefined>>();

  constructor(private readonly store: Store) {}

  /** The model, loaded once; undefined when there is no such model. */
  load(id: number): Promise<LoadedModel | undefined> {
    let loading = this.models.get(id);
    if (!loading) {
      if (this.models.size >= MAX_CACHED_MODELS) this.evict(this.models.keys().next().value!);
      loading = this.read(id);
      loading.catch(() => this.models.delete(id));
      this.models.set(id, loading);
    }
    return loading;
  }

  /** Forgets a model (deleted). */
  evict(id: number): void {
    const loading = this.models.get(id);
    this.models.delete(id);
    void loading?.then((loaded) => {
      if (!loaded) return;
      loaded.evicted = true;
      loaded.model.dispose();
    }, () => {});
  }

  close(): void {
    for (const id of [...this.models.keys()]) this.evict(id);
  }

  private async read(id: number): Promise<LoadedModel | undefined> {
    const rows = await this.store.driver.all<{ name: string; model_json: string; weights: Uint8Array; training_json: string | null; dataset_id: number | null }>(
      'SELECT name, model_json, weights, training_json, dataset_id FROM models WHERE id = ?',
      [id],
    );
    const row = rows[0];
    if (!row) return undefined;
    const weights = new Uint8Array(row.weights);
    const artifacts = artifactsFromModelJson(JSON.parse(row.model_json), weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength), `model ${id}`);
    const model = modelFromArtifacts(artifacts, { modelFile: `model ${id}` });
    const classNames = await classNamesOf(this.store, row, model.perSampleOutputShape[0]);
    const shape = model.perSampleInputShape;
    const size = shape.reduce((a, b) => a * b, 1);
    const side = Math.round(Math.sqrt(size));
    return { id, name: row.name, model, classNames, rows: side, cols: side };
  }

  /** Throws a 422 unless every image has the model's size. */
  check(loaded: LoadedModel, images: readonly Uint8Array[]): void {
    for (const pixels of images) {
      if (pixels.length !== loaded.rows * loaded.cols) throw new HttpError(422, `the model takes ${loaded.rows}×${loaded.cols} images`, 'image');
    }
  }

  /** Classifies prepared images (rows × cols bytes each). */
  classify(loaded: LoadedModel, images: readonly Uint8Array[], top: number): PredictionResult[] {
    this.check(loaded, images);
    const size = loaded.rows * loaded.cols;
    const batch = new Uint8Array(images.length * size);
    images.forEach((pixels, i) => batch.set(pixels, i * size));
    const out = loaded.model.predict({ images: batch, count: images.length, rows: loaded.rows, cols: loaded.cols }, { batchSize: Math.max(1, images.length) });
    const classes = loaded.classNames.length;
    try {
      return images.map((_, i) => {
        const probabilities = Array.from(out.data.subarray(i * classes, (i + 1) * classes));
        const label = argMax(probabilities);
        const order = probabilities.map((p, c) => [p, c] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, top);
        return {
          label,
          class: loaded.classNames[label],
          probabilities,
          top: order.map(([probability, c]) => ({ label: c, class: loaded.classNames[c], probability })),
        };
      });
    } finally {
      out.dispose();
    }
  }
}

/**
 * A model's class names: those its training recorded, else its dataset's, else "0", "1", ...
 * (`classes` when known; otherwise the recorded names are taken as they are).
 */
export async function classNamesOf(store: Store, row: { training_json: string | null; dataset_id: number | null }, classes?: number): Promise<string[]> {
  let names = (row.training_json ? (JSON.parse(row.training_json) as { classNames?: unknown }).classNames : undefined) as string[] | undefined;
  if (!Array.isArray(names) && row.dataset_id !== null) {
    names = (await store.driver.all<{ name: string }>('SELECT name FROM classes WHERE dataset_id = ? ORDER BY label', [row.dataset_id])).map((n) => n.name);
  }
  if (Array.isArray(names) && (classes === undefined || names.length === classes)) return names;
  return Array.from({ length: classes ?? 0 }, (_, i) => String(i));
}

/** What one request asked for: its images classified by one model, and maybe recorded. */
interface PendingRequest {
  loaded: LoadedModel;
  pixels: readonly Uint8Array[];
  top: number;
  /** How to record the predictions; undefined: not recorded. */
  record?: { createdBy: string | null; inputs: readonly string[]; trueLabels: ReadonlyArray<number | null> };
  results?: PredictionResult[];
  /** Nanoseconds of the batch's forward pass and of its commit, as this request's phases. */
  predictNs: bigint;
  storeNs: bigint;
  resolve(done: BatchedPrediction): void;
  reject(error: unknown): void;
}

export interface BatchedPrediction {
  results: PredictionResult[];
  predictNs: bigint;
  storeNs: bigint;
}

/**
 * Classifies and records predictions in batches: the images of every request that arrives in one
 * turn of the event loop go through each model as one batch (a row's probabilities do not depend
 * on the other rows: same floats as alone), and their predictions are written in one transaction
 * per model and user (group commit). A request answers once its rows are committed, so a reply
 * that says a prediction was recorded never loses it.
 */
export class PredictionBatcher {
  private pending: PendingRequest[] = [];
  private scheduled = false;
  private idle: Promise<void> = Promise.resolve();
  /** Forward passes run and images they classified, since the start (GET /api/v1/metrics). */
  readonly stats = { batches: 0, images: 0 };

  constructor(private readonly predictor: Predictor, private readonly store: Store) {}

  /** Classifies `pixels` (checked now: the model's size) in the next batch; records them when `record` is given. */
  submit(loaded: LoadedModel, pixels: readonly Uint8Array[], top: number, record?: PendingRequest['record']): Promise<BatchedPrediction> {
    this.predictor.check(loaded, pixels);
    return new Promise((resolve, reject) => {
      this.pending.push({ loaded, pixels, top, record, predictNs: 0n, storeNs: 0n, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.idle = this.flush();
        });
      }
    });
  }

  /** Resolves when everything submitted so far is answered. */
  async drain(): Promise<void> {
    while (this.scheduled || this.pending.length) await new Promise((resolve) => setImmediate(resolve));
    await this.idle;
  }

  private async flush(): Promise<void> {
    const requests = this.pending;
    this.pending = [];
    this.scheduled = false;
    for (const group of groupBy(requests, (r) => r.loaded)) this.classify(group);
    const recorded = requests.filter((r) => r.results && r.record);
    for (const r of requests) if (r.results && !r.record) r.resolve({ results: r.results, predictNs: r.predictNs, storeNs: 0n });
    await Promise.all(groupBy(recorded, (r) => `${r.loaded.id}\0${r.record!.createdBy ?? ''}`).map(async (group) => {
      const started = process.hrtime.bigint();
      try {
        await this.store.savePredictions({
          modelId: group[0].loaded.id,
          origin: 'api',
          createdBy: group[0].record!.createdBy,
          predictions: group.flatMap((r) => r.results!.map((result, i) => ({
            pixels: r.pixels[i], input: r.record!.inputs[i], probabilities: result.probabilities, trueLabel: r.record!.trueLabels[i],
          }))),
        });
        const storeNs = process.hrtime.bigint() - started;
        for (const r of group) r.resolve({ results: r.results!, predictNs: r.predictNs, storeNs });
      } catch (error) {
        for (const r of group) r.reject(error);
      }
    }));
  }

  /** One forward pass for the requests that use the same model; each request gets its rows. */
  private classify(group: PendingRequest[]): void {
    const started = process.hrtime.bigint();
    try {
      const loaded = group[0].loaded;
      if (loaded.evicted) throw new HttpError(404, `no model ${loaded.id}`, 'id');
      const top = Math.max(...group.map((r) => r.top));
      const all = this.predictor.classify(loaded, group.flatMap((r) => r.pixels), top);
      this.stats.batches += 1;
      this.stats.images += all.length;
      const predictNs = process.hrtime.bigint() - started;
      let first = 0;
      for (const r of group) {
        r.results = all.slice(first, first + r.pixels.length).map((result) => (r.top === top ? result : { ...result, top: result.top.slice(0, r.top) }));
        r.predictNs = predictNs;
        first += r.pixels.length;
      }
    } catch (error) {
      for (const r of group) r.reject(error);
    }
  }
}

/** Items grouped by key, groups in order of first appearance. */
function groupBy<T, K>(items: readonly T[], key: (item: T) => K): T[][] {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return [...groups.values()];
}
