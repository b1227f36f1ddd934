/**
 * Predictions on the request thread: models are loaded from the store once and kept (a model is
 * ~0.5 MB); an image is prepared (a small 28×28 PNG in-process, anything else through sharp),
 * classified with the engine, and recorded.
 *
 * Recording uses group commit: the predictions of every request that arrives in one turn of the
 * event loop are written in one transaction, and each request answers once its rows are
 * committed. A reply that says a prediction was recorded never loses it.
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
    void loading?.then((loaded) => loaded?.model.dispose(), () => {});
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

  /** Classifies prepared images (rows × cols bytes each). */
  classify(loaded: LoadedModel, images: readonly Uint8Array[], top: number): PredictionResult[] {
    const size = loaded.rows * loaded.cols;
    const batch = new Uint8Array(images.length * size);
    images.forEach((pixels, i) => {
      if (pixels.length !== size) throw new HttpError(422, `the model takes ${loaded.rows}×${loaded.cols} images`, 'image');
      batch.set(pixels, i * size);
    });
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

interface PendingBatch {
  modelId: number;
  createdBy: string | null;
  predictions: PredictionInput[];
  resolve(): void;
  reject(error: unknown): void;
}

/** Writes predictions in groups: one transaction per model and user for each turn of the event loop. */
export class PredictionRecorder {
  private pending: PendingBatch[] = [];
  private scheduled = false;
  private idle: Promise<void> = Promise.resolve();

  constructor(private readonly store: Store) {}

  record(modelId: number, createdBy: string | null, predictions: PredictionInput[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ modelId, createdBy, predictions, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.idle = this.flush();
        });
      }
    });
  }

  /** Resolves when everything recorded so far is written. */
  async drain(): Promise<void> {
    while (this.scheduled || this.pending.length) await new Promise((resolve) => setImmediate(resolve));
    await this.idle;
  }

  private async flush(): Promise<void> {
    const batches = this.pending;
    this.pending = [];
    this.scheduled = false;
    const groups = new Map<string, PendingBatch[]>();
    for (const batch of batches) {
      const key = `${batch.modelId}\0${batch.createdBy ?? ''}`;
      const group = groups.get(key);
      if (group) group.push(batch);
      else groups.set(key, [batch]);
    }
    await Promise.all([...groups.values()].map(async (group) => {
      try {
        await this.store.savePredictions({ modelId: group[0].modelId, origin: 'api', createdBy: group[0].createdBy, predictions: group.flatMap((b) => b.predictions) });
        for (const batch of group) batch.resolve();
      } catch (error) {
        for (const batch of group) batch.reject(error);
      }
    }));
  }
}
