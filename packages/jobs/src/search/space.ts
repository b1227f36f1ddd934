/**
 * A search space: for each hyperparameter, a range or a list of values, sampled as keras-tuner
 * samples them (hp.Int, hp.Float, hp.Choice): draw p uniform in [0, 1), then
 *   Choice            values[floor(p·n)]
 *   Int / Float, step min + floor(p·n)·step over the n values min, min+step, … ≤ max
 *                     (with sampling 'log': min·step^k, the step a multiplier)
 *   Float, no step    min + p·(max−min), or min·(max/min)^p with sampling 'log'.
 *
 * From flags:  "32:512:32" (min:max:step), "1e-4:1e-2:log" (log-uniform), "0.01,0.001" (a list),
 *              "0.2" (fixed).
 * From JSON:   {"units": {"min": 32, "max": 512, "step": 32}, "lr": [0.01, 0.001], "dropout": 0.2,
 *               "optimizer": ["adam", "sgd"], "hidden_layers": {"min": 1, "max": 3}}
 * Convolutions: "layers" is a list of layer definitions (flag: separated by |) in which {units},
 * {filters}, {kernel_size} and {dropout} stand for the trial's values, e.g.
 *   --layers "conv2d:{filters}:{kernel_size}:relu,maxpool:2,flatten,dense:{units}:relu" --filters 16:64:16 --kernel-size 3,5
 */
import { CNN_LAYERS, LIMITS, Random, UsageError, checkDefinition, excerpt, parseJsonText, parseLayers, quote, readRegularFile } from '@descent/engine';

export const HYPERPARAMETERS = ['units', 'lr', 'dropout', 'hidden_layers', 'optimizer', 'layers', 'filters', 'kernel_size'] as const;
export type HyperparameterName = (typeof HYPERPARAMETERS)[number];

/** One trial's values. */
export interface HyperparameterValues {
  units: number;
  lr: number;
  dropout: number;
  hidden_layers: number;
  optimizer: 'adam' | 'sgd';
  /** A layer-definition template ('' for the dense model of units × hidden_layers). */
  layers: string;
  filters: number;
  kernel_size: number;
}

export type Domain =
  | { kind: 'choice'; values: Array<number | string> }
  | { kind: 'int' | 'float'; min: number; max: number; step: number | null; sampling: 'linear' | 'log' };

export type SearchSpace = Record<HyperparameterName, Domain>;

/** The flag each hyperparameter is set with (for messages and help). */
export const FLAG_OF: Record<HyperparameterName, string> = {
  units: '--units', lr: '--lr', dropout: '--dropout', hidden_layers: '--hidden-layers', optimizer: '--optimizer',
  layers: '--layers', filters: '--filters', kernel_size: '--kernel-size',
};

/** The tutorial's space: units 32…512 step 32, learning rate 1e-2, 1e-3 or 1e-4; one hidden layer, no dropout, Adam. */
export function defaultSpace(): SearchSpace {
  return {
    units: { kind: 'int', min: 32, max: 512, step: 32, sampling: 'linear' },
    lr: { kind: 'choice', values: [1e-2, 1e-3, 1e-4] },
    dropout: { kind: 'choice', values: [0] },
    hidden_layers: { kind: 'choice', values: [1] },
    optimizer: { kind: 'choice', values: ['adam'] },
    layers: { kind: 'choice', values: [''] },
    filters: { kind: 'choice', values: [32] },
    kernel_size: { kind: 'choice', values: [3] },
  };
}

/**
 * The layers of a trial: its `layers` template with {units}, {filters}, {kernel_size} and
 * {dropout} replaced by the trial's values ('cnn' is the tutorial CNN); null for the dense model.
 */
export function layersOf(values: HyperparameterValues): string | null {
  if (values.layers === '') return null;
  const template = values.layers === 'cnn' ? CNN_LAYERS : values.layers;
  return template.replace(/\{(units|filters|kernel_size|dropout)\}/g, (_, name: 'units' | 'filters' | 'kernel_size' | 'dropout') => String(values[name]));
}

/** Where a domain came from, to start error messages: "--units 32:8" or "space.json: units". */
type Origin = string;

/** Parses a flag value for `name` ("32:512:32", "1e-4:1e-2:log", "0.1,0.01", "0.2"). */
export function parseDomain(name: HyperparameterName, text: string, origin: Origin = `${FLAG_OF[name]} ${text}`): Domain {
  const trimmed = text.trim();
  if (trimmed === '') throw new UsageError(`${origin}: empty; give a value, a list (a,b,c) or a range (min:max[:step|:log])`);
  let domain: Domain;
  if (name === 'optimizer') {
    domain = { kind: 'choice', values: trimmed.split(',').map((v) => v.trim()) };
  } else if (name === 'layers') {
    // Definitions hold commas, so several are separated by '|'.
    domain = { kind: 'choice', values: trimmed.split('|').map((v) => v.trim()) };
  } else if (trimmed.includes(':')) {
    const parts = trimmed.split(':').map((part) => part.trim());
    if (parts.length < 2 || parts.length > 3) throw new UsageError(`${origin}: a range is min:max, min:max:step or min:max:log`);
    const [min, max] = [numberIn(parts[0], origin), numberIn(parts[1], origin)];
    const log = parts[2] === 'log';
    const step = parts.length === 3 && !log ? numberIn(parts[2], origin) : null;
    domain = { kind: isInteger(name) ? 'int' : 'float', min, max, step, sampling: log ? 'log' : 'linear' };
  } else {
    domain = { kind: 'choice', values: trimmed.split(',').map((part) => numberIn(part.trim(), origin)) };
  }
  return checkDomain(name, domain, origin);
}

/** Largest search-space file read (a space is a few hundred bytes). */
const MAX_SPACE_BYTES = 1024 * 1024;

/** Reads `descent tune --space FILE`: a regular file of at most 1 MiB, then its JSON (see spaceFromText). */
export function readSpaceFile(file: string, base: SearchSpace = defaultSpace()): SearchSpace {
  const fail = (problem: string) => new UsageError(`--space ${file}: ${problem === 'file not found' ? 'no such file' : problem}`);
  return spaceFromText(readRegularFile(file, MAX_SPACE_BYTES, fail, 'search space').toString('utf8'), file, base);
}

/** Reads a JSON space from its text (nesting depth checked before parsing); `file` names it in errors. */
export function spaceFromText(text: string, file: string, base: SearchSpace = defaultSpace()): SearchSpace {
  const parsed = parseJsonText(text);
  if ('problem' in parsed) throw new UsageError(`${file}: ${parsed.problem}`);
  return spaceFromJson(parsed.value, file, base);
}

/** Reads a JSON space (see the header); `file` names it in errors. Keys not given stay as in `base`. */
export function spaceFromJson(json: unknown, file: string, base: SearchSpace = defaultSpace()): SearchSpace {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new UsageError(`${file}: a search space is a JSON object, e.g. {"units": {"min": 32, "max": 512, "step": 32}}`);
  const space = { ...base };
  for (const [key, value] of Object.entries(json)) {
    if (!(HYPERPARAMETERS as readonly string[]).includes(key)) {
      throw new UsageError(`${file}: unknown hyperparameter ${quote(key)} (known: ${HYPERPARAMETERS.join(', ')})`);
    }
    const name = key as HyperparameterName;
    const origin = `${file}: ${name}`;
    if (typeof value === 'number' || typeof value === 'string') {
      space[name] = checkDomain(name, { kind: 'choice', values: [value] }, origin);
    } else if (Array.isArray(value)) {
      space[name] = checkDomain(name, { kind: 'choice', values: value as Array<number | string> }, origin);
    } else if (typeof value === 'object' && value !== null) {
      const range = value as Record<string, unknown>;
      const unknown = Object.keys(range).find((k) => !['min', 'max', 'step', 'sampling'].includes(k));
      if (unknown) throw new UsageError(`${origin}: unknown key ${quote(unknown)} (a range has min, max, step, sampling)`);
      if (range.sampling !== undefined && range.sampling !== 'linear' && range.sampling !== 'log') throw new UsageError(`${origin}: sampling is 'linear' or 'log'`);
      space[name] = checkDomain(name, {
        kind: isInteger(name) ? 'int' : 'float',
        min: range.min as number,
        max: range.max as number,
        step: range.step === undefined || range.step === null ? null : (range.step as number),
        sampling: (range.sampling as 'linear' | 'log' | undefined) ?? 'linear',
      }, origin);
    } else {
      throw new UsageError(`${origin}: expected a value, a list or a range object`);
    }
  }
  return space;
}

/** Draws one set of values (in HYPERPARAMETERS order, one number from `random` each). */
export function sampleValues(space: SearchSpace, random: Random): HyperparameterValues {
  const values = {} as Record<HyperparameterName, number | string>;
  // A single possible value takes no draw, so fixing a hyperparameter leaves the others' draws as they were.
  for (const name of HYPERPARAMETERS) values[name] = valueCount(space[name]) === 1 ? sampleDomain(space[name], 0) : sampleDomain(space[name], random.next());
  return values as unknown as HyperparameterValues;
}

export function sampleDomain(domain: Domain, p: number): number | string {
  if (domain.kind === 'choice') return domain.values[indexOf(p, domain.values.length)];
  const { min, max, step, sampling } = domain;
  if (step === null && domain.kind === 'float') return sampling === 'log' ? min * (max / min) ** p : min + p * (max - min);
  const stride = step ?? 1;
  const n = valueCount(domain);
  const k = indexOf(p, n);
  const value = sampling === 'log' ? min * stride ** k : min + k * stride;
  return domain.kind === 'int' ? Math.round(value) : value;
}

/** Distinct values a domain can take (Infinity for a continuous range). */
export function valueCount(domain: Domain): number {
  if (domain.kind === 'choice') return new Set(domain.values).size;
  const { min, max, step, sampling } = domain;
  if (step === null && domain.kind === 'float') return min === max ? 1 : Infinity;
  const stride = step ?? 1;
  if (sampling === 'log') return Math.floor(Math.log(max / min) / Math.log(stride) + 1e-8) + 1;
  return Math.floor((max - min) / stride + 1e-9) + 1;
}

/** Distinct combinations in the space (Infinity if any range is continuous). */
export function spaceSize(space: SearchSpace): number {
  return HYPERPARAMETERS.reduce((n, name) => n * valueCount(space[name]), 1);
}

/** "units 32…512 step 32, lr 0.01|0.001|0.0001" (only what varies). */
export function describeSpace(space: SearchSpace): string {
  const parts: string[] = [];
  for (const name of HYPERPARAMETERS) {
    const d = space[name];
    if (name === 'layers' && d.kind === 'choice' && d.values.length === 1 && d.values[0] === '') continue;
    if ((name === 'filters' || name === 'kernel_size') && d.kind === 'choice' && d.values.length === 1) continue;
    if (d.kind === 'choice') parts.push(`${name} ${d.values.map((v) => (v === '' ? 'dense' : v)).join(' | ')}`);
    else parts.push(`${name} ${d.min}…${d.max}${d.sampling === 'log' ? ' log' : ''}${d.step !== null ? ` step ${d.step}` : ''}`);
  }
  return parts.join(', ');
}

/**
 * Every model the space can make must fit descent's size caps: the largest units, filters and
 * hidden layers with each layer template and each end of the kernel sizes (a larger kernel has
 * more weights, a smaller one leaves larger maps), checked before the search starts. Nothing is built.
 */
export function checkSpaceModels(space: SearchSpace, inputShape: number[], classes: number): void {
  const extremes = (name: HyperparameterName): Array<number | string> => {
    const domain = space[name];
    if (domain.kind === 'choice') return name === 'layers' ? domain.values : [Math.max(...(domain.values as number[])), Math.min(...(domain.values as number[]))];
    return [domain.max, domain.min];
  };
  const largest = (name: 'units' | 'filters' | 'hidden_layers'): number => extremes(name)[0] as number;
  for (const layers of extremes('layers') as string[]) {
    for (const kernelSize of layers === '' ? [0] : (extremes('kernel_size') as number[])) {
      const values: HyperparameterValues = {
        units: largest('units'), filters: largest('filters'), hidden_layers: largest('hidden_layers'), kernel_size: kernelSize,
        dropout: 0, lr: 1e-3, optimizer: 'adam', layers,
      };
      const definition = layersOf(values) ?? ['flatten', ...Array.from({ length: values.hidden_layers }, () => `dense:${values.units}:relu`)].join(',');
      try {
        checkDefinition(parseLayers(definition), { inputShape, classes, source: `the search space's largest model (${describeSpace(space)})` });
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
    }
  }
}

function indexOf(p: number, n: number): number {
  return Math.min(n - 1, Math.floor(p * n));
}

function isInteger(name: HyperparameterName): boolean {
  return name === 'units' || name === 'hidden_layers' || name === 'filters' || name === 'kernel_size';
}

function numberIn(text: string, origin: Origin): number {
  const n = text === '' ? NaN : Number(text);
  if (!Number.isFinite(n)) throw new UsageError(`${origin}: ${quote(text)} is not a number`);
  return n;
}

/** Checks a domain against what its hyperparameter accepts. */
function checkDomain(name: HyperparameterName, domain: Domain, origin: Origin): Domain {
  const fail = (why: string): never => {
    throw new UsageError(`${origin}: ${why}`);
  };
  if (domain.kind === 'choice') {
    if (domain.values.length === 0 || domain.values.some((v) => v === '')) fail('empty; give at least one value');
    for (const value of domain.values) checkValue(name, value, fail);
    return domain;
  }
  const { min, max, step, sampling } = domain;
  for (const [what, value] of [['min', min], ['max', max]] as const) {
    if (typeof value !== 'number' || !Number.isFinite(value)) fail(`${what} must be a number`);
  }
  if (step !== null && (typeof step !== 'number' || !Number.isFinite(step))) fail('step must be a number');
  if (min > max) fail(`min ${min} is greater than max ${max}`);
  if (step !== null && step <= 0) fail(`step must be positive, got ${step}`);
  if (sampling === 'log' && min <= 0) fail(`log sampling needs min > 0, got ${min}`);
  if (sampling === 'log' && step !== null && step <= 1) fail(`with log sampling the step is a multiplier and must be > 1, got ${step}`);
  if (domain.kind === 'int' && (!Number.isInteger(min) || !Number.isInteger(max) || (step !== null && !Number.isInteger(step)))) fail('min, max and step must be whole numbers');
  checkValue(name, min, fail);
  checkValue(name, max, fail);
  return domain;
}

function checkValue(name: HyperparameterName, value: number | string, fail: (why: string) => never): void {
  if (name === 'optimizer') {
    if (value !== 'adam' && value !== 'sgd') fail(`unknown optimizer ${typeof value === 'string' ? quote(value) : excerpt(value)} (adam or sgd)`);
    return;
  }
  if (name === 'layers') {
    if (typeof value !== 'string') fail('a layer definition is a string, e.g. "conv2d:{filters}:{kernel_size}:relu,maxpool:2,flatten,dense:{units}:relu"');
    if (value === '') return;
    // Checked with placeholders at small values: the grammar and the shapes (on 28×28 images); nothing is built.
    const probe = layersOf({ units: 8, filters: 2, kernel_size: 3, dropout: 0.5, lr: 1e-3, hidden_layers: 1, optimizer: 'adam', layers: value as string });
    try {
      checkDefinition(parseLayers(probe!), { inputShape: [28, 28], classes: 10 });
    } catch (error) {
      fail((error as Error).message);
    }
    return;
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) fail(`${excerpt(value)} is not a number`);
  const n = value as number;
  if ((name === 'units' || name === 'filters') && n > LIMITS.dimension) fail(`${name} must be at most ${LIMITS.dimension}, got ${n}`);
  if (name === 'hidden_layers' && n > LIMITS.layers) fail(`hidden layers must be at most ${LIMITS.layers}, got ${n}`);
  if (name === 'units' && !(Number.isInteger(n) && n >= 1)) fail(`units must be whole numbers ≥ 1, got ${n}`);
  if (name === 'hidden_layers' && !(Number.isInteger(n) && n >= 0)) fail(`hidden layers must be whole numbers ≥ 0, got ${n}`);
  if (name === 'lr' && !(n > 0)) fail(`a learning rate must be > 0, got ${n}`);
  if (name === 'dropout' && !(n >= 0 && n < 1)) fail(`dropout must be in [0, 1), got ${n}`);
  if (name === 'filters' && !(Number.isInteger(n) && n >= 1)) fail(`filters must be whole numbers ≥ 1, got ${n}`);
  if (name === 'kernel_size' && !(Number.isInteger(n) && n >= 1 && n <= 28)) fail(`kernel sizes must be whole numbers from 1 to 28, got ${n}`);
}
