/** Saving and loading model folders, and callbacks that write files (Node). */
export {
  MODEL_FILE,
  WEIGHTS_FILE,
  TRAINING_FILE,
  OPTIMIZER_FILE,
  saveModel,
  loadModel,
  loadModelArtifacts,
  float32ToBase64,
  base64ToFloat32,
  type SaveStamp,
  type SaveResult,
  type LoadedArtifacts,
  type LoadedModel,
} from './files.js';
export {
  ModelCheckpoint,
  CsvLogger,
  CSV_COLUMNS,
  type ModelCheckpointOptions,
  type ModelCheckpointState,
  type CsvLoggerOptions,
} from './callbacks.js';
