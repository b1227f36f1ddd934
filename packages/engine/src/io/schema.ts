/**
 * The boundary between model files from anywhere and the code that builds models: JSON text is
 * size- and depth-checked before it is parsed, then checked against a schema (zod) before any
 * value reaches code that assumes a type. Every limit a loader enforces is in LIMITS.
 *
 * Why zod: the schemas are the TypeScript types (z.infer), so a field cannot be checked one way
 * and used another; it runs in browsers as well as Node (no code generation, unlike ajv, which a
 * strict Content-Security-Policy forbids); and z.toJSONSchema turns the same schemas into the JSON
 * Schema that an HTTP API can publish. Messages are our own (formatIssue): one line, the path of
 * the field, and a short escaped excerpt of the value.
 */
import { z } from 'zod';
import { escapeControl, excerpt } from '../errors.js';

const MiB = 2 ** 20;

export const LIMITS = {
  /** model.json (topology and manifest only: weights are in weights.bin). */
  modelJsonBytes: 32 * MiB,
  /** descent-training.json; files written before the optimizer state moved to descent-optimizer.bin hold it as base64. */
  trainingJsonBytes: 256 * MiB,
  /** Nesting of arrays and objects in any JSON file. */
  jsonDepth: 64,
  layers: 1000,
  /** Weights listed in a manifest, and weight files it names. */
  weights: 10_000,
  paths: 1000,
  /** Dimensions of a weight or of a layer's input. */
  rank: 8,
  /** Any one dimension (units, filters, image side, ...). */
  dimension: 2 ** 24,
  /** Elements of one weight, and of all weights together: 2^28 float32 values are 1 GiB. */
  weightElements: 2 ** 28,
  parameters: 2 ** 28,
  /**
   * Parameters of a model descent trains (--layers, --hidden, definitions): its weights, gradients
   * and Adam's two moments, 16 bytes a parameter, fill 1 GiB of the kernels' 2 GiB memory.
   */
  trainingParameters: 2 ** 26,
  /** Values one sample becomes at any layer (inputs and outputs alike). */
  sampleElements: 2 ** 24,
  /** Names of layers, weights and classes. */
  nameLength: 256,
  classes: 100_000,
} as const;

// ---- JSON text --------------------------------------------------------------------------------

/**
 * Parses JSON text after checking its nesting depth with a scan that allocates nothing, so deeply
 * nested input never reaches a recursive function (a parser, a printer, a validator).
 * Returns the value, or a one-line problem.
 */
export function parseJsonText(text: string, maxDepth: number = LIMITS.jsonDepth): { value: unknown } | { problem: string } {
  const depth = jsonDepth(text, maxDepth);
  if (depth > maxDepth) return { problem: `nests arrays or objects more than ${maxDepth} deep` };
  try {
    return { value: JSON.parse(text) };
  } catch (err) {
    // The parser's message quotes the text, control characters and all: keep it on one line.
    return { problem: `is not valid JSON (${escapeControl(String((err as Error).message).slice(0, 80))})` };
  }
}

/** Deepest nesting of [ and { outside strings, stopping once past `stopAbove`. */
function jsonDepth(text: string, stopAbove: number): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > deepest && (deepest = depth) > stopAbove) return deepest;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return deepest;
}

// ---- issues as one-line messages -------------------------------------------------------------

/** "modelTopology.config.layers[2].units" */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else {
      const name = String(key);
      out += /^[A-Za-z_$][\w$]*$/.test(name) ? `${out ? '.' : ''}${name}` : `[${excerpt(name, 24)}]`;
    }
  }
  return out;
}

/** The first problem zod found, as "path: what is wrong, got <excerpt>". */
export function formatIssue(error: z.ZodError, prefix: readonly PropertyKey[] = []): string {
  const issue = error.issues[0];
  // A message written with the schema names its field itself ("rate must be in [0, 1)").
  const path = isDefaultMessage(issue) ? issue.path : issue.path.slice(0, -1);
  const where = formatPath([...prefix, ...path]);
  return where ? `${where}: ${describeIssue(issue)}` : describeIssue(issue);
}

function isDefaultMessage(issue: z.core.$ZodIssue): boolean {
  return DEFAULT_MESSAGE.test(issue.message);
}

/** zod's own messages start like this; any other message was written with the schema and is used as it is. */
const DEFAULT_MESSAGE = /^(Invalid|Too (big|small)|Unrecognized)/;

function describeIssue(issue: z.core.$ZodIssue): string {
  const got = 'input' in issue ? `, got ${excerpt(issue.input)}` : '';
  if (!isDefaultMessage(issue)) return `${issue.message}${got}`;
  switch (issue.code) {
    case 'invalid_type':
      return issue.input === undefined ? `is missing (expected ${article(issue.expected)})` : `expected ${article(issue.expected)}${got}`;
    case 'too_big':
      return issue.origin === 'array' ? `has too many items (at most ${issue.maximum})` : issue.origin === 'string' ? `is too long (at most ${issue.maximum} characters)` : `must be at most ${issue.maximum}${got}`;
    case 'too_small':
      return issue.origin === 'array' ? `needs at least ${issue.minimum} item${issue.minimum === 1 ? '' : 's'}` : issue.origin === 'string' ? 'must not be empty' : `must be at least ${issue.minimum}${got}`;
    case 'invalid_value':
      return `must be ${issue.values.map((v) => excerpt(v, 24)).join(' or ')}${got}`;
    case 'invalid_format':
      return `is not a valid ${issue.format}${got}`;
    case 'unrecognized_keys':
      return `has unexpected field ${excerpt(issue.keys[0], 24)}`;
    default:
      return `${issue.message}${got}`;
  }
}

function article(type: string): string {
  if (type === 'int') return 'an integer';
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

/** Parses `value` with `schema`; on failure calls `fail` with the formatted first issue. */
export function check<T extends z.ZodType>(schema: T, value: unknown, fail: (problem: string) => Error, prefix: readonly PropertyKey[] = []): z.output<T> {
  const result = schema.safeParse(value, { reportInput: true });
  if (!result.success) throw fail(formatIssue(result.error, prefix));
  return result.data;
}

// ---- building blocks ---------------------------------------------------------------------------

export const dimension = z.number().int().min(0).max(LIMITS.dimension);
export const positiveDimension = z.number().int().min(1).max(LIMITS.dimension);
/** A name that can be printed and used in a weight path: no '/' and no control characters. */
export const name = z.string().min(1).max(LIMITS.nameLength).regex(/^[^/\u0000-\u001f\u007f]+$/, 'must not hold "/" or control characters');
/** Numbers in JSON: NaN and ±Infinity are written as null, and read back as NaN. */
export const jsonNumber = z.union([z.number(), z.null().transform(() => Number.NaN)]);
export const jsonRecord = z.record(z.string(), z.unknown());

// ---- model.json ------------------------------------------------------------------------------

export const weightSpecSchema = z.looseObject({
  name: z.string().min(1).max(LIMITS.nameLength),
  shape: z.array(dimension).max(LIMITS.rank),
  dtype: z.literal('float32', { error: 'dtype must be float32 (descent reads float32 weights only)' }).optional(),
  quantization: z.null({ error: 'quantization is not supported (the weights are quantized)' }).optional(),
});

export const manifestGroupSchema = z.looseObject({
  paths: z.array(z.string().max(LIMITS.nameLength)).max(LIMITS.paths),
  weights: z.array(weightSpecSchema).max(LIMITS.weights),
});

/** model.json as a whole; the topology is checked layer by layer (layer-formats.ts). */
export const modelJsonSchema = z.looseObject({
  format: z.literal('layers-model').optional(),
  generatedBy: z.string().max(1000).optional().catch(undefined),
  convertedBy: z.string().max(1000).nullable().optional().catch(null),
  modelTopology: jsonRecord,
  weightsManifest: z.array(manifestGroupSchema).min(1).max(LIMITS.paths),
  userDefinedMetadata: jsonRecord.optional(),
});

export type WeightSpecJson = z.output<typeof weightSpecSchema>;
export type ModelJsonChecked = z.output<typeof modelJsonSchema>;

/** descent's stamp in model.json's userDefinedMetadata: the save it belongs to and its weights' hash. */
export const saveStampSchema = z.object({
  saveId: z.string().min(1).max(100),
  weightsSha256: z.string().regex(/^[0-9a-f]{64}$/),
});

// ---- descent-training.json ---------------------------------------------------------------------

const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 in hex');
const numberList = z.array(jsonNumber).max(10_000_000);
const slotName = z.string().min(1).max(64);
/** The generator's state: four uint32 words. */
export const randomStateSchema = z.array(z.number().int().min(0).max(0xffffffff)).length(4);

export const historySchema = z
  .object({
    epoch: z.array(count).max(10_000_000),
    loss: numberList,
    accuracy: numberList,
    val_loss: numberList,
    val_accuracy: numberList,
    seconds: numberList,
  })
  // Other metrics under their Keras names (sparse_top_k_categorical_accuracy, val_...).
  .catchall(numberList)
  .refine(
    (h) => h.loss.length === h.epoch.length && Object.entries(h).every(([key, list]) => key === 'epoch' || list.length === 0 || list.length === h.epoch.length),
    'every list must have one value per epoch (or none)',
  );

export const positionSchema = z.object({
  epoch: count,
  batch: count,
  epochStartRandom: randomStateSchema,
  random: randomStateSchema,
  lossSum: jsonNumber,
  correct: count,
  seen: count,
});

/** Optimizer state kept inside the JSON as base64 (files from descent 0.1). */
export const base64StateSchema = z.object({
  iterations: count,
  encoding: z.literal('float32-base64'),
  slots: z.record(slotName, z.array(z.string().max(4 * LIMITS.weightElements).regex(/^[A-Za-z0-9+/]*={0,2}$/, 'is not base64')).max(LIMITS.weights)),
});

/** Optimizer state in a binary file beside the JSON: per slot, the number of values of each parameter's buffer. */
export const binaryStateSchema = z.object({
  iterations: count,
  encoding: z.literal('float32-le'),
  file: z.string().min(1).max(255),
  sha256: sha256Hex,
  slots: z.record(slotName, z.array(z.number().int().min(0).max(LIMITS.weightElements)).max(LIMITS.weights)),
});

/** A learning-rate schedule as Keras saves it in an optimizer's config: `{ class_name, config }`. */
const scheduleSchema = z.object({
  class_name: z.string().min(1).max(64),
  config: z.record(z.string().max(64), z.union([z.number(), z.boolean(), z.string().max(200), z.null()])),
});

export const savedOptimizerSchema = z.object({
  name: z.string().min(1).max(64),
  config: z.record(z.string().max(64), z.union([z.number(), z.boolean(), z.null().transform(() => Number.NaN), scheduleSchema])),
  state: z.discriminatedUnion('encoding', [base64StateSchema, binaryStateSchema]).optional(),
});

export const trainingFileSchema = z.looseObject({
  format: z.literal('descent-training'),
  formatVersion: z.number().int().min(1),
  generatedBy: z.string().max(1000).optional(),
  savedAt: z.string().max(100).optional(),
  saveId: z.string().min(1).max(100),
  weightsSha256: sha256Hex,
  status: z.string().max(64).optional(),
  dataset: z.string().max(LIMITS.nameLength).optional(),
  classNames: z.array(z.string().max(LIMITS.nameLength)).max(LIMITS.classes).optional(),
  seed: z.number().int().optional(),
  backend: z.string().max(64).optional(),
  epochsCompleted: count.optional(),
  epochs: count.optional(),
  hyperparameters: jsonRecord.optional(),
  optimizer: savedOptimizerSchema.optional(),
  random: randomStateSchema.optional(),
  position: positionSchema.optional(),
  history: historySchema.optional(),
  test: z.object({ loss: jsonNumber, accuracy: jsonNumber }).optional(),
  weightsFromEpoch: count.optional(),
  /** State of callbacks that survive a resume; the ones descent writes are checked, others pass. */
  callbacks: z
    .looseObject({
      earlyStopping: z
        .looseObject({
          wait: count,
          best: z.number().nullable(),
          bestEpoch: z.number().int(),
          stoppedEpoch: z.number().int(),
          bestWeights: z.array(z.string().max(4 * LIMITS.weightElements).regex(/^[A-Za-z0-9+/]*={0,2}$/, 'is not base64')).max(LIMITS.weights).nullable().optional(),
        })
        .optional(),
      checkpoint: z.looseObject({ best: z.number().nullable(), bestEpoch: z.number().int().nullable() }).optional(),
    })
    .optional(),
});

export type TrainingFileChecked = z.output<typeof trainingFileSchema>;
export type BinaryStateJson = z.output<typeof binaryStateSchema>;
