/**
 * The engine in the page: the same @descent/engine core and WASM SIMD kernels that train in
 * Node, here predicting with models loaded from the server (model.json + weights.bin, the
 * TensorFlow.js Layers files any client can download).
 */
import {
  artifactsFromModelJson, backendFallbackReason, backendName, kernels, modelFromArtifacts, onBackendWarning,
  type Sequential,
} from '@descent/engine/core';
import { request } from './api.js';

const warnings: string[] = [];
onBackendWarning((message) => warnings.push(message));

/** Which kernels run here, and why not WASM SIMD if not. */
export function engineInfo(): { backend: string; fallback: string | undefined; warnings: readonly string[] } {
  kernels();
  return { backend: backendName(), fallback: backendFallbackReason(), warnings };
}

export interface LoadedModel {
  id: number;
  model: Sequential;
  rows: number;
  cols: number;
}

let cached: LoadedModel | undefined;

/** The model's files from the server, built by the engine (the last one is kept for the next call). */
export async function loadModel(id: number): Promise<LoadedModel> {
  if (cached?.id === id) return cached;
  const base = `/api/v1/models/${id}`;
  const [json, weights] = await Promise.all([
    request(`${base}/model.json`).then((r) => r.json() as Promise<unknown>),
    request(`${base}/weights.bin`).then((r) => r.arrayBuffer()),
  ]);
  const model = modelFromArtifacts(artifactsFromModelJson(json, weights, `model ${id}`));
  const shape = model.perSampleInputShape;
  cached?.model.dispose();
  // [28, 28], [28, 28, 1] (a CNN) or [784]: the images are the same bytes.
  const [rows, cols] = shape.length >= 2 ? shape : [Math.round(Math.sqrt(shape[0])), Math.round(Math.sqrt(shape[0]))];
  cached = { id, model, rows, cols };
  return cached;
}

/** Class probabilities for one image of rows × cols bytes (light on dark, as the model was trained). */
export function predictPixels(loaded: LoadedModel, pixels: Uint8Array): Float32Array {
  const output = loaded.model.predict({ images: pixels, count: 1, rows: loaded.rows, cols: loaded.cols });
  try {
    return Float32Array.from(output.data);
  } finally {
    output.dispose();
  }
}
