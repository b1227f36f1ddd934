/**
 * What a convolutional network's first layer learned, for the report:
 *   filters.png        each filter of the first Conv2D as a small picture (gray = 0, white = the
 *                      most positive weight, black = the most negative: the pattern it responds to)
 *   feature-maps.png   a test image and what each of those filters makes of it (after the ReLU:
 *                      black = 0, white = the strongest response in the map)
 */
import { Conv2D, noGrad, scope, Tensor, type ImageDataset, type Sequential } from '@descent/engine';
import { grayImagePng, imageAt, pngDataUri } from './images.js';
import type { TopLevelSpec } from './render.js';

const TILE = 64;

export interface FirstLayer {
  layer: Conv2D;
  /** Index of the layer in the model. */
  index: number;
}

/** The model's first Conv2D, if it has one. */
export function firstConvLayer(model: Sequential): FirstLayer | undefined {
  const index = model.layers.findIndex((layer) => layer instanceof Conv2D);
  return index < 0 ? undefined : { layer: model.layers[index] as Conv2D, index };
}

/** Smallest and largest value (a loop: spreading a large array into Math.min would overflow the stack). */
function extent(values: ArrayLike<number>): { min: number; max: number } {
  let min = Infinity, max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    if (values[i] < min) min = values[i];
    if (values[i] > max) max = values[i];
  }
  return { min, max };
}

/** Floats to bytes for a picture: `low` → 0, `high` → 255, clamped. */
function toBytes(values: ArrayLike<number>, low: number, high: number): Uint8Array {
  const range = high - low || 1;
  return Uint8Array.from(values, (v) => Math.round(255 * Math.min(1, Math.max(0, (v - low) / range))));
}

/** Pictures in a grid, each with a caption under it. */
function tileGrid(tiles: Array<{ url: string; caption: string }>, columns: number, title: string, subtitle: string): TopLevelSpec {
  const values = tiles.map((tile, i) => ({ ...tile, column: i % columns, row: Math.floor(i / columns) }));
  const cell = { x: { field: 'column', type: 'ordinal', axis: null }, y: { field: 'row', type: 'ordinal', axis: null } };
  return {
    title: { text: title, subtitle },
    data: { values },
    width: { step: TILE + 16 },
    height: { step: TILE + 26 },
    layer: [
      { mark: { type: 'image', width: TILE, height: TILE, yOffset: -8, aria: false }, encoding: { ...cell, url: { field: 'url', type: 'nominal' } } },
      { mark: { type: 'text', baseline: 'top', yOffset: TILE / 2 - 4, fontSize: 11 }, encoding: { ...cell, text: { field: 'caption', type: 'nominal' } } },
    ],
  } as TopLevelSpec;
}

/**
 * Each filter of the layer as a kh×kw picture on one shared scale, so their strengths compare:
 * mid-gray is 0. A filter over several input channels is shown as the sum over them.
 */
export async function filtersSpec({ layer }: FirstLayer): Promise<TopLevelSpec> {
  const [kh, kw, channels, filters] = layer.kernel!.shape;
  const weights = layer.kernel!.data;
  const { min, max } = extent(weights);
  const limit = Math.max(1e-12, -min, max);
  const tiles = [];
  for (let f = 0; f < filters; f++) {
    const filter = new Float64Array(kh * kw);
    for (let p = 0; p < kh * kw; p++) for (let c = 0; c < channels; c++) filter[p] += weights[(p * channels + c) * filters + f];
    const png = await grayImagePng({ pixels: toBytes(filter, -limit * channels, limit * channels), rows: kh, cols: kw }, { size: TILE * 2, invert: false });
    tiles.push({ url: pngDataUri(png), caption: `filter ${f + 1}` });
  }
  const channelsNote = channels > 1 ? `, summed over its ${channels} input channels` : '';
  return tileGrid(tiles, Math.min(8, filters), `First-layer filters (${layer.name})`,
    `${filters} filters of ${kh}×${kw} weights${channelsNote}: gray is 0, white the most positive weight, black the most negative`);
}

/** A test image and the first layer's output maps for it (after its activation). */
export async function featureMapsSpec(model: Sequential, first: FirstLayer, test: ImageDataset, index = 0): Promise<TopLevelSpec> {
  const image = imageAt(test, index);
  const maps = scope(() => noGrad(() => {
    const x = Tensor.from(Float32Array.from(image.pixels, (p) => p / 255), [1, image.rows, image.cols]);
    const outputs: Tensor[] = [];
    model.call(x, false, outputs);
    const out = outputs[first.index];
    return { shape: [...out.shape], values: Float32Array.from(out.data) };
  }));
  const [, height, width, filters] = maps.shape;
  const tiles = [{ url: pngDataUri(await grayImagePng(image, { size: TILE * 2, invert: false })), caption: `test[${index}]` }];
  for (let f = 0; f < filters; f++) {
    const map = new Float32Array(height * width);
    for (let p = 0; p < map.length; p++) map[p] = maps.values[p * filters + f];
    const { min, max } = extent(map);
    const low = Math.min(0, min), high = max;
    tiles.push({ url: pngDataUri(await grayImagePng({ pixels: toBytes(map, low, high), rows: height, cols: width }, { size: TILE * 2, invert: false })), caption: `filter ${f + 1}` });
  }
  return tileGrid(tiles, Math.min(9, tiles.length), `Feature maps of test image ${index} (${first.layer.name})`,
    `the image, then what each filter makes of it (${height}×${width}, ${first.layer.activation}): black is ${extent(maps.values).min < 0 ? 'the lowest value' : '0'}, white the strongest response in that map`);
}
