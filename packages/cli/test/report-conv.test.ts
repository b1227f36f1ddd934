/**
 * The report's pictures of a convolutional network: the first layer's filters and the feature
 * maps of a test image. The tiles are decoded and compared with the weights and the layer's output.
 */
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { defineModel, loadDataset, parseLayers, setBackend, type Conv2D, type Sequential } from '@descent/engine';
import { buildReport } from '../src/report/index.js';
import { featureMapsSpec, filtersSpec, firstConvLayer } from '../src/report/conv-charts.js';

const FIXTURE = fileURLToPath(new URL('../../../test/fixtures/fashion-mnist/', import.meta.url));
const data = await loadDataset('fashion-mnist', { dir: FIXTURE });

beforeAll(() => {
  setBackend('ts');
});

type Tile = { url: string; caption: string };

/** The grayscale values of a tile (a data: URI PNG), scaled back to the tile's own rows × cols. */
async function tilePixels(tile: Tile, rows: number, cols: number): Promise<number[]> {
  const png = Buffer.from(tile.url.replace(/^data:image\/png;base64,/, ''), 'base64');
  const { data: raw } = await sharp(png).greyscale().resize(cols, rows, { kernel: 'nearest' }).raw().toBuffer({ resolveWithObject: true });
  return Array.from(raw);
}

function tiles(spec: unknown): Tile[] {
  return (spec as { data: { values: Tile[] } }).data.values;
}

describe('filters and feature maps of the first convolution', () => {
  it('draw each filter on one scale: white the largest weight, black the most negative, gray zero', async () => {
    const model = defineModel(parseLayers('conv2d:2:3:relu,flatten'), { inputShape: [28, 28], classes: 10, seed: 1 });
    const conv = model.layers[1] as Conv2D;
    const weights = new Float32Array(18);
    weights[0 * 2 + 0] = 1; // filter 1, top left: the largest weight
    weights[8 * 2 + 0] = -1; // filter 1, bottom right: the most negative
    weights[4 * 2 + 1] = 0.5; // filter 2, centre
    conv.kernel!.data.set(weights);
    const first = firstConvLayer(model)!;
    expect(first.index).toBe(1);
    const [one, two] = tiles(await filtersSpec(first));
    expect([one.caption, two.caption]).toEqual(['filter 1', 'filter 2']);
    expect(await tilePixels(one, 3, 3)).toEqual([255, 128, 128, 128, 128, 128, 128, 128, 0]);
    expect(await tilePixels(two, 3, 3)).toEqual([128, 128, 128, 128, 191, 128, 128, 128, 128]);
  });

  it('draw what each filter makes of a test image: the layer\'s output, black 0, white its maximum', async () => {
    // A 1×1 filter of weight 1 reproduces the image; one of weight -1 (after the ReLU) is all zero.
    const model = defineModel(parseLayers('conv2d:2:1:relu,flatten'), { inputShape: [28, 28], classes: 10, seed: 1 });
    (model.layers[1] as Conv2D).kernel!.data.set([1, -1]);
    const [image, copy, dark] = tiles(await featureMapsSpec(model, firstConvLayer(model)!, data.test, 3));
    expect([image.caption, copy.caption, dark.caption]).toEqual(['test[3]', 'filter 1', 'filter 2']);
    const pixels = Array.from(data.test.images.subarray(3 * 784, 4 * 784));
    const max = Math.max(...pixels);
    const drawn = await tilePixels(copy, 28, 28);
    drawn.forEach((v, i) => expect(Math.abs(v - (255 * pixels[i]) / max)).toBeLessThanOrEqual(1));
    expect(await tilePixels(image, 28, 28)).toEqual(pixels);
    expect(new Set(await tilePixels(dark, 28, 28))).toEqual(new Set([0]));
  });

  it('are in the report of a convolutional model, and not in a dense model\'s', async () => {
    const small = { ...data.test, count: 20, images: data.test.images.subarray(0, 20 * 784), labels: data.test.labels.subarray(0, 20) };
    const names = async (model: Sequential) => (await buildReport({ model, train: small, test: small, samples: 4, predictions: 2 })).charts.map((c) => c.name);
    const cnn = defineModel(parseLayers('conv2d:4:3:relu,maxpool:2,flatten'), { inputShape: [28, 28], classes: 10, seed: 1 });
    expect(await names(cnn)).toEqual(['samples', 'filters', 'feature-maps', 'confusion', 'predictions', 'precision-recall']);
    const mlp = defineModel(parseLayers('flatten,dense:8:relu'), { inputShape: [28, 28], classes: 10, seed: 1 });
    expect(await names(mlp)).toEqual(['samples', 'confusion', 'predictions', 'precision-recall']);
  });
});
