/**
 * Adam (Kingma & Ba, 2015) in the form Keras implements, with Keras's defaults
 * (lr 1e-3, β1 0.9, β2 0.999, ε 1e-7). At step t, for each weight w with gradient g:
 *   m ← β1·m + (1-β1)·g          running mean of gradients        (first moment)
 *   v ← β2·v + (1-β2)·g²         running mean of squared gradients (second moment)
 *   lr_t = lr·√(1-β2ᵗ) / (1-β1ᵗ)  both bias corrections folded into the step size
 *   w ← w - lr_t · m / (√v + ε)   "epsilon hat": ε is added to √v, not to √v̂
 * m and v start at zero, so early averages are too small; the corrections undo exactly that.
 * Like Keras, lr_t is worked out in the weights' precision: on float32 weights, β is cast to
 * float32, βᵗ is one power and every operation is rounded to float32. Worked out in float64, it
 * would differ from Keras's by ~6e-6 relative at every step (1-β2ᵗ is small, and float32(0.999)
 * is not 0.999), enough to move the losses of 200 steps by ~3e-6.
 *
 * `form: 'tfjs'` computes what TensorFlow.js computes instead: ε is added to the bias-corrected
 * √v̂ (w ← w - lr·m̂ / (√v̂ + ε), the paper's Algorithm 1), which is the update above with ε
 * replaced by ε·√(1-β2ᵗ); and β1ᵗ, β2ᵗ are float32 numbers multiplied by β once per step, so
 * 1-β2ᵗ carries a relative error of about 1e-5. Small as that is, it is systematic, and within
 * 200 steps it moves the loss by percents; matching TensorFlow.js step for step needs it.
 */
import { kernels } from '../backend/index.js';
import type { Storage } from '../backend/kernels.js';
import { ConfigError } from '../errors.js';
import type { Parameter } from '../nn/layers.js';
import { forEachLargestLast, LearningRateOptimizer, type Optimizer, type OptimizerConfig, type OptimizerState } from './optimizer.js';
import type { LearningRateSchedule } from './schedules.js';
import { freeSlots, readSlots, slotFor, writeSlots } from './slots.js';

export interface AdamOptions {
  /** A number, or a schedule of the step count (e.g. ExponentialDecay). */
  learningRate?: number | LearningRateSchedule;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** 'keras' (default): ε added to √v. 'tfjs': TensorFlow.js's arithmetic, see above. */
  form?: 'keras' | 'tfjs';
}

export class Adam extends LearningRateOptimizer implements Optimizer {
  readonly name = 'adam';
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly form: 'keras' | 'tfjs';
  /** β1ᵗ and β2ᵗ in float32 for the 'tfjs' form, kept so each step costs one multiplication. */
  private float32Powers = { t: 0, beta1: 1, beta2: 1 };
  private readonly firstMoment = new Map<Parameter['tensor'], Storage>();
  private readonly secondMoment = new Map<Parameter['tensor'], Storage>();

  constructor({ learningRate = 1e-3, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7, form = 'keras' }: AdamOptions = {}) {
    super('adam', learningRate);
    if (!(beta1 >= 0 && beta1 < 1)) throw new ConfigError(`adam: beta1 must be in [0, 1), got ${beta1}`);
    if (!(beta2 >= 0 && beta2 < 1)) throw new ConfigError(`adam: beta2 must be in [0, 1), got ${beta2}`);
    if (!(epsilon > 0)) throw new ConfigError(`adam: epsilon must be positive, got ${epsilon}`);
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.epsilon = epsilon;
    if (form !== 'keras' && form !== 'tfjs') throw new ConfigError(`adam: form must be 'keras' or 'tfjs', got ${String(form)}`);
    this.form = form;
  }

  step(parameters: readonly Parameter[]): void {
    const K = kernels();
    const t = this.iterations + 1;
    const round = K.precision === 'float32' ? Math.fround : (x: number) => x;
    const [correction1, correction2] = this.biasCorrections(t, round);
    const lrT = this.form === 'keras'
      ? round(round(round(this.learningRate) * round(Math.sqrt(correction2))) / correction1)
      : (this.learningRate * Math.sqrt(correction2)) / correction1;
    const epsilonT = this.form === 'keras' ? this.epsilon : this.epsilon * Math.sqrt(correction2);
    forEachLargestLast(parameters, ({ tensor }) => {
      const m = slotFor(this.firstMoment, tensor);
      const v = slotFor(this.secondMoment, tensor);
      K.adamUpdate(tensor.storage, tensor.grad!.storage, m, v, lrT, this.beta1, this.beta2, epsilonT);
    });
    this.iterations = t;
  }

  config(): OptimizerConfig {
    return { learning_rate: this.learningRateConfig(), beta_1: this.beta1, beta_2: this.beta2, epsilon: this.epsilon };
  }

  getState(parameters: readonly Parameter[]): OptimizerState {
    return { iterations: this.iterations, slots: readSlots(parameters, { m: this.firstMoment, v: this.secondMoment }) };
  }

  setState(parameters: readonly Parameter[], state: OptimizerState): void {
    writeSlots(parameters, { m: this.firstMoment, v: this.secondMoment }, state.slots); // checks the state first: a bad one changes nothing
    this.iterations = state.iterations;
  }

  dispose(): void {
    freeSlots(this.firstMoment, this.secondMoment);
  }

  /** 1-β1ᵗ and 1-β2ᵗ: as Keras computes them in the weights' precision, or as TensorFlow.js does. */
  private biasCorrections(t: number, round: (x: number) => number): [number, number] {
    if (this.form === 'keras') return [round(1 - round(round(this.beta1) ** t)), round(1 - round(round(this.beta2) ** t))];
    const f = Math.fround;
    if (this.float32Powers.t > t) this.float32Powers = { t: 0, beta1: 1, beta2: 1 };
    while (this.float32Powers.t < t) {
      const { t: done, beta1, beta2 } = this.float32Powers;
      this.float32Powers = { t: done + 1, beta1: f(beta1 * f(this.beta1)), beta2: f(beta2 * f(this.beta2)) };
    }
    return [f(1 - this.float32Powers.beta1), f(1 - this.float32Powers.beta2)];
  }
}

export const adam = (options?: AdamOptions): Adam => new Adam(options);
