/**
 * An image classification dataset held as bytes. Pixels stay Uint8Array (the Fashion-MNIST training
 * set is 47 MB this way, four times that as float32); batches are scaled to float32 /255 when drawn.
 */
export const FASHION_MNIST_CLASS_NAMES: readonly string[] = Object.freeze([
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
]);

export const MNIST_CLASS_NAMES: readonly string[] = Object.freeze(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);

export interface ImageDataset {
  /** count × rows × cols bytes, image after image, row-major. */
  images: Uint8Array;
  /** One class index per image, each below classNames.length. */
  labels: Uint8Array;
  count: number;
  rows: number;
  cols: number;
  classNames: string[];
}

/** Images start..end-1 as a dataset sharing the same memory (no copy). */
export function subset(ds: ImageDataset, start: number, end: number): ImageDataset {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || start > end || end > ds.count) {
    throw new RangeError(`subset(${start}, ${end}) is outside the dataset's ${ds.count} images`);
  }
  const size = ds.rows * ds.cols;
  return {
    images: ds.images.subarray(start * size, end * size),
    labels: ds.labels.subarray(start, end),
    count: end - start,
    rows: ds.rows,
    cols: ds.cols,
    classNames: [...ds.classNames],
  };
}
