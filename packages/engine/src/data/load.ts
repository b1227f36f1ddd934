/** An image dataset from a pair of IDX files (Node: reads files). */
import { DataError } from '../errors.js';
import type { ImageDataset } from './dataset.js';
import { readIdxImages, readIdxImagesStreamed, readIdxLabels, readIdxLabelsStreamed, type IdxImages } from './idx.js';

export interface LoadImageDatasetOptions {
  /** Names of the classes; labels must be below its length. Defaults to '0', '1', … (at least ten). */
  classNames?: readonly string[];
}

/** Reads an IDX images file and its IDX labels file (raw or gzip) and checks that they agree. */
export function loadImageDataset(
  imagesFile: string,
  labelsFile: string,
  options: LoadImageDatasetOptions = {},
): ImageDataset {
  const images = readIdxImages(imagesFile);
  const labels = readIdxLabels(labelsFile, { numClasses: options.classNames?.length });
  return pairUp(images, labels, imagesFile, labelsFile, options);
}

/** loadImageDataset, with gzip files inflated as streams (see readIdxImagesStreamed). */
export async function loadImageDatasetStreamed(
  imagesFile: string,
  labelsFile: string,
  options: LoadImageDatasetOptions = {},
): Promise<ImageDataset> {
  const images = await readIdxImagesStreamed(imagesFile);
  const labels = await readIdxLabelsStreamed(labelsFile, { numClasses: options.classNames?.length });
  return pairUp(images, labels, imagesFile, labelsFile, options);
}

function pairUp(
  { count, rows, cols, pixels }: IdxImages,
  labels: Uint8Array,
  imagesFile: string,
  labelsFile: string,
  options: LoadImageDatasetOptions,
): ImageDataset {
  if (labels.length !== count) {
    throw new DataError(
      imagesFile,
      `holds ${count} images but ${labelsFile} holds ${labels.length} labels; the two files must have the same count`,
    );
  }
  if (count === 0) throw new DataError(imagesFile, 'holds no images');
  const classNames = options.classNames ? [...options.classNames] : numberedClasses(labels);
  return { images: pixels, labels, count, rows, cols, classNames };
}

function numberedClasses(labels: Uint8Array): string[] {
  let max = 9;
  for (const label of labels) if (label > max) max = label;
  return Array.from({ length: max + 1 }, (_, i) => String(i));
}
