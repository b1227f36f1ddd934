/** Data from files (Node): IDX files, and finding (or downloading) Fashion-MNIST and MNIST. */
export {
  IDX_IMAGES_MAGIC,
  IDX_LABELS_MAGIC,
  isGzip,
  readIdxImages,
  readIdxLabels,
  parseIdxImages,
  parseIdxLabels,
  encodeIdxImages,
  encodeIdxLabels,
  writeIdxImages,
  writeIdxLabels,
  type IdxImages,
  type ReadLabelsOptions,
  type WriteIdxOptions,
} from './idx.js';
export { loadImageDataset, type LoadImageDatasetOptions } from './load.js';
export { checksumStatus, type ChecksumStatus, type DatasetFiles } from './checksums.js';
export type { FetchLike, ProgressCallback } from './download.js';
export {
  SYSTEM_FASHION_MNIST_DIR,
  defaultCacheDir,
  resolveDataset,
  loadDataset,
  type DatasetSource,
  type ResolveOptions,
  type ResolvedDataset,
  type LoadedDataset,
} from './resolve.js';
