/** descent's SQL store: see store.ts for the API and migrations.ts for the schema. */
export * from './store.js';
export { DEFAULT_DB, parseLocation, redact, type StoreLocation, type SqliteLocation, type MariadbLocation } from './location.js';
export { StoreError, timestamp, type Driver, type Executor, type QueryResult, type RunResult, type SqlValue } from './driver.js';
export { MIGRATIONS, LATEST_VERSION, SQLITE, MARIADB, type Dialect, type Migration } from './migrations.js';
export {
  readLabelledImages, readLabelledZip, summarise, DEFAULT_IMAGE_LIMITS, IMAGE_EXTENSIONS,
  type ImageLimits, type LabelledImages, type LabelledSplit, type ReadOptions,
} from './labelled-images.js';
