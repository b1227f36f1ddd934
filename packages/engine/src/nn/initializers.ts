/**
 * Kernel initializers: Keras's VarianceScaling family, of which Glorot uniform (descent's default,
 * as Keras's) is one. A kernel's values are drawn with variance scale / n, where n is its fan-in,
 * its fan-out or their mean:
 *
 *   uniform              U(−limit, limit), limit = √(3·scale/n)      glorot_uniform: scale 1, fan_avg
 *   truncated_normal     N(0, σ) redrawn outside ±2σ, σ = √(scale/n) / 0.8796 (the truncation
 *                        shrinks the spread by that factor)           glorot_normal: scale 1, fan_avg
 *   untruncated_normal   N(0, σ), σ = √(scale/n)                     he_normal: scale 2, fan_in
 *
 * For a dense kernel [in, out], fan-in = in and fan-out = out; for a convolution kernel
 * [kh, kw, in, out], fan-in = kh·kw·in and fan-out = kh·kw·out. Draws come from the model's seeded
 * generator, so the same seed gives the same weights.
 */
import { ConfigError } from '../errors.js';
import type { Random } from '../random.js';
import { Tensor } from '../tensor.js';

export interface VarianceScaling {
  scale: number;
  mode: 'fan_in' | 'fan_out' | 'fan_avg';
  distribution: 'uniform' | 'truncated_normal' | 'untruncated_normal';
}

export const GLOROT_UNIFORM: VarianceScaling = Object.freeze({ scale: 1, mode: 'fan_avg', distribution: 'uniform' });

/** Keras's named initializers, as VarianceScaling. */
const NAMED: Readonly<Record<string, VarianceScaling>> = {
  glorotuniform: GLOROT_UNIFORM,
  glorotnormal: { scale: 1, mode: 'fan_avg', distribution: 'truncated_normal' },
  heuniform: { scale: 2, mode: 'fan_in', distribution: 'uniform' },
  henormal: { scale: 2, mode: 'fan_in', distribution: 'truncated_normal' },
  lecununiform: { scale: 1, mode: 'fan_in', distribution: 'uniform' },
  lecunnormal: { scale: 1, mode: 'fan_in', distribution: 'truncated_normal' },
};

/** A kernel [fanIn, fanOut] (or `shape`, for convolutions) drawn from `init`. */
export function initialKernel(init: VarianceScaling, fanIn: number, fanOut: number, random: Random, shape: readonly number[] = [fanIn, fanOut]): Tensor {
  const n = init.mode === 'fan_in' ? fanIn : init.mode === 'fan_out' ? fanOut : (fanIn + fanOut) / 2;
  const variance = init.scale / Math.max(1, n);
  const tensor = Tensor.zeros(shape, true);
  const values = tensor.data;
  if (init.distribution === 'uniform') {
    // fan_avg written as 6·scale/(in + out), so Glorot uniform's limit is √(6/(in + out)) to the last bit.
    const limit = init.mode === 'fan_avg' ? Math.sqrt((6 * init.scale) / (fanIn + fanOut)) : Math.sqrt(3 * variance);
    for (let i = 0; i < values.length; i++) values[i] = random.uniform(-limit, limit);
  } else {
    const truncated = init.distribution === 'truncated_normal';
    const sd = truncated ? Math.sqrt(variance) / 0.87962566103423978 : Math.sqrt(variance);
    for (let i = 0; i < values.length; i++) {
      let z: number;
      do z = standardNormal(random); while (truncated && Math.abs(z) > 2);
      values[i] = z * sd;
    }
  }
  return tensor;
}

/** A standard normal draw (Box–Muller, one of the pair). */
function standardNormal(random: Random): number {
  const u = 1 - random.next(); // in (0, 1], so the log is finite
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random.next());
}

/**
 * The initializer a Keras or TensorFlow.js config names: {class_name: 'GlorotUniform'},
 * 'glorot_uniform', {class_name: 'VarianceScaling', config: {scale, mode, distribution}} (tfjs
 * writes its glorotNormal default that way), ... Undefined when it is none of these.
 */
export function initializerFromConfig(value: unknown): VarianceScaling | undefined {
  const className = typeof value === 'string' ? value : isObject(value) && typeof value.class_name === 'string' ? value.class_name : undefined;
  if (className === undefined) return undefined;
  const key = className.replace(/_/g, '').toLowerCase();
  if (NAMED[key]) return NAMED[key];
  if (key !== 'variancescaling' || !isObject(value) || !isObject(value.config)) return undefined;
  const { scale = 1, mode = 'fan_in', distribution = 'truncated_normal' } = value.config;
  if (typeof scale !== 'number' || !(scale > 0) || !['fan_in', 'fan_out', 'fan_avg'].includes(mode as string)) return undefined;
  // tfjs and older Keras write 'normal' for the truncated normal.
  const kind = distribution === 'normal' ? 'truncated_normal' : distribution;
  if (!['uniform', 'truncated_normal', 'untruncated_normal'].includes(kind as string)) return undefined;
  return { scale, mode: mode as VarianceScaling['mode'], distribution: kind as VarianceScaling['distribution'] };
}

/** The config saved in model.json: Keras's class name when there is one, else VarianceScaling. */
export function initializerConfig(init: VarianceScaling): { class_name: string; config: Record<string, unknown> } {
  for (const [key, named] of Object.entries(NAMED)) {
    if (named.scale === init.scale && named.mode === init.mode && named.distribution === init.distribution) {
      const className = { glorotuniform: 'GlorotUniform', glorotnormal: 'GlorotNormal', heuniform: 'HeUniform', henormal: 'HeNormal', lecununiform: 'LecunUniform', lecunnormal: 'LecunNormal' }[key]!;
      return { class_name: className, config: { seed: null } };
    }
  }
  return { class_name: 'VarianceScaling', config: { ...init, seed: null } };
}

/** Checks an initializer given in code. */
export function checkInitializer(what: string, init: VarianceScaling): VarianceScaling {
  if (initializerFromConfig({ class_name: 'VarianceScaling', config: init }) === undefined) {
    throw new ConfigError(`${what}: kernel initializer ${JSON.stringify(init)} is not a valid VarianceScaling (scale > 0, mode fan_in|fan_out|fan_avg, distribution uniform|truncated_normal|untruncated_normal)`);
  }
  return init;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
