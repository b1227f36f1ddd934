/** Fashion-MNIST for the bench: the fixture subset in --quick, the full set otherwise. */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FASHION_MNIST_CLASS_NAMES, loadImageDataset, type DatasetFiles, type ImageDataset } from '@descent/engine';

/** test/fixtures/fashion-mnist in the repository (2,000 training and 500 test images). */
export const FIXTURE_DIR = fileURLToPath(new URL('../../../test/fixtures/fashion-mnist/', import.meta.url));

export function fixtureExists(): boolean {
  return existsSync(FIXTURE_DIR);
}

export interface Splits {
  train: ImageDataset;
  test: ImageDataset;
}

export function loadSplits(files: DatasetFiles): Splits {
  const classNames = FASHION_MNIST_CLASS_NAMES;
  return {
    train: loadImageDataset(files.trainImages, files.trainLabels, { classNames }),
    test: loadImageDataset(files.testImages, files.testLabels, { classNames }),
  };
}

/** Pixels scaled to [0, 1] as float32, the way a TensorFlow.js user prepares them. */
export function normalizedPixels(images: Uint8Array): Float32Array {
  const out = new Float32Array(images.length);
  for (let i = 0; i < images.length; i++) out[i] = images[i] / 255;
  return out;
}

/** Fraction of rows whose largest probability is at the label. */
export function accuracyOf(probabilities: ArrayLike<number>, labels: ArrayLike<number>, classes: number): number {
  let correct = 0;
  for (let row = 0; row < labels.length; row++) {
    let best = 0;
    for (let j = 1; j < classes; j++) if (probabilities[row * classes + j] > probabilities[row * classes + best]) best = j;
    if (best === labels[row]) correct++;
  }
  return correct / labels.length;
}

const CLIP_LOW = Math.fround(1e-7);
const CLIP_HIGH = Math.fround(1 - 1e-7);

/**
 * Rows whose label probability tfjs's sparse cross-entropy clips to [1e-7, 1 - 1e-7] (float32):
 * there tfjs's loss stops moving and its gradient is zero, while a fused softmax + CE keeps both.
 */
export function countClipped(probabilities: ArrayLike<number>, labels: ArrayLike<number>, classes: number): number {
  let clipped = 0;
  for (let row = 0; row < labels.length; row++) {
    const p = probabilities[row * classes + labels[row]];
    if (p < CLIP_LOW || p > CLIP_HIGH) clipped++;
  }
  return clipped;
}

export function peakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}
