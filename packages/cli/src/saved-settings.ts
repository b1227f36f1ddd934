/**
 * The settings a saved run resumes with (the `hyperparameters` of descent-training.json), checked
 * with the same ranges as the flags that made them before any is used: the file may have been
 * edited or damaged. Fields that runs saved by older versions lack are optional (their defaults
 * are filled in by the caller).
 */
import { z } from 'zod';
import { DATASET_NAMES, LIMITS, checkSchema } from '@descent/engine';

const positiveInteger = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const positiveNumber = z.number().positive().max(Number.MAX_VALUE);
/** From 0 up to (not including) 1, as the flags' `fraction`. */
const fraction = z.number().min(0).lt(1);
const path = z.string().min(1).max(4096);

export const savedSettingsSchema = z.looseObject({
  dataset: z.enum(DATASET_NAMES),
  data: path.nullable(),
  epochs: positiveInteger,
  batchSize: positiveInteger,
  hidden: z.array(z.number().int().min(1).max(LIMITS.dimension)).max(LIMITS.layers),
  dropout: fraction,
  model: z.enum(['mlp', 'cnn', 'layers', 'json']).optional(),
  definition: z.string().max(64 * 1024).nullable().optional(),
  validationSplit: fraction,
  seed: z.number().int().min(0).max(0xffffffff),
  backend: z.enum(['wasm', 'ts']),
  earlyStopping: z.number().int().min(0).nullable(),
  checkpoint: z.boolean(),
  csv: path.nullable(),
  db: z.string().max(4096).nullable().optional(),
  trainingRun: z.number().int().min(0).nullable().optional(),
  optimizer: z.enum(['adam', 'sgd', 'rmsprop']),
  lr: positiveNumber,
  momentum: fraction,
  nesterov: z.boolean().optional(),
  rho: fraction.optional(),
  centered: z.boolean().optional(),
  decayRate: positiveNumber.nullable().optional(),
  decaySteps: positiveInteger.nullable().optional(),
  staircase: z.boolean().optional(),
  reduceLrOnPlateau: z.number().int().min(0).nullable().optional(),
  reduceLrFactor: fraction.optional(),
  minLr: z.number().min(0).max(Number.MAX_VALUE).optional(),
  topK: positiveInteger.nullable().optional(),
});

/** The saved settings, or an error naming the file and the first field that is wrong. */
export function checkSavedSettings(settings: unknown, file: string, fail: (problem: string) => Error): void {
  checkSchema(savedSettingsSchema, settings, (problem) => fail(`${file}: ${problem}`), ['hyperparameters']);
}
