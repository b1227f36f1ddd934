/** Data that needs no file system: class names, in-memory image datasets, the catalog of known data sets. */
export {
  FASHION_MNIST_CLASS_NAMES,
  MNIST_CLASS_NAMES,
  subset,
  type ImageDataset,
} from './dataset.js';
export {
  DATASET_NAMES,
  DATASET_FILE_NAMES,
  FASHION_MNIST_URL,
  type DatasetName,
  type DatasetFileRole,
} from './catalog.js';
