/** Data from files (Node): IDX files, and finding (or downloading) Fashion-MNIST and MNIST. */
export {
  IDX_IMAGES_MAGIC,
  IDX_LABELS_MAGIC,
  DEFAULT_MAX_IDX_BYTES,
  isGzip,
  readIdxImages,
  readIdxLabels,
  readIdxImagesStreamed,
  readIdxLabelsStreamed,
  parseIdxImages,
  parseIdxLabels,
  encodeIdxImages,
  encodeIdxLabels,
  writeIdxImages,
  writeIdxLabels,
  type IdxImages,
  type ReadIdxOptions,
  type ReadLabelsOptions,
  type WriteIdxOptions,
} from './idx.js';
export { openRegularFile, readExactly, readRegularFile, closeFile, formatBytes, type FailWith, type OpenedFile } from './read.js';
export { loadImageDataset, loadImageDatasetStreamed, type LoadImageDatasetOptions } from './load.js';
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
