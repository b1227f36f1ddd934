/**
 * `descent train`'s optimizer, learning-rate and metric flags, with Keras's defaults:
 *
 *   --optimizer adam|sgd|rmsprop   --lr X (0.001; 0.01 for sgd)   --momentum X (sgd, rmsprop; 0)
 *   --nesterov (sgd)   --rho X (rmsprop; 0.9)   --centered (rmsprop)
 *   --decay-rate R --decay-steps N [--staircase]    ExponentialDecay from --lr
 *   --reduce-lr-on-plateau [PATIENCE] [--reduce-lr-factor F] [--min-lr X]   ReduceLROnPlateau (10, 0.1, 0)
 *   --top-k-accuracy [K]           sparse_top_k_categorical_accuracy (k 5)
 */
import { Option, type Command } from 'commander';
import {
  ExponentialDecay, UsageError, adam, rmsprop, sgd, sparseTopKCategoricalAccuracy, type Metric, type MetricSpec, type Optimizer,
} from '@descent/engine';
import { fraction, nonNegativeInteger, positiveInteger, positiveNumber } from '../flags.js';

export type OptimizerChoice = 'adam' | 'sgd' | 'rmsprop';

/** The part of a run's settings these flags decide (saved with the run, so --resume keeps them). */
export interface OptimizerSettings {
  optimizer: OptimizerChoice;
  lr: number;
  momentum: number;
  nesterov: boolean;
  rho: number;
  centered: boolean;
  /** ExponentialDecay of --lr, or null for a constant rate. */
  decayRate: number | null;
  decaySteps: number | null;
  staircase: boolean;
  /** ReduceLROnPlateau's patience, or null without it. */
  reduceLrOnPlateau: number | null;
  reduceLrFactor: number;
  minLr: number;
  /** k of the top-k accuracy metric, or null without it. */
  topK: number | null;
}

/** What a run saved before these settings existed had: Keras's defaults, nothing extra. */
export const OPTIMIZER_DEFAULTS: Omit<OptimizerSettings, 'optimizer' | 'lr' | 'momentum'> = {
  nesterov: false, rho: 0.9, centered: false, decayRate: null, decaySteps: null, staircase: false,
  reduceLrOnPlateau: null, reduceLrFactor: 0.1, minLr: 0, topK: null,
};

export const DEFAULT_LEARNING_RATES: Record<OptimizerChoice, number> = { adam: 0.001, sgd: 0.01, rmsprop: 0.001 };

/** These make a different run: --resume refuses to change them. */
export const OPTIMIZER_FIXED_ON_RESUME: ReadonlyArray<[keyof OptimizerSettings, string]> = [
  ['optimizer', '--optimizer'], ['lr', '--lr'], ['momentum', '--momentum'], ['nesterov', '--nesterov'], ['rho', '--rho'], ['centered', '--centered'],
  ['decayRate', '--decay-rate'], ['decaySteps', '--decay-steps'], ['staircase', '--staircase'],
  ['reduceLrOnPlateau', '--reduce-lr-on-plateau'], ['reduceLrFactor', '--reduce-lr-factor'], ['minLr', '--min-lr'], ['topK', '--top-k-accuracy'],
];

export function addOptimizerOptions(command: Command): void {
  command
    .addOption(new Option('--optimizer <name>', 'optimizer').choices(['adam', 'sgd', 'rmsprop']).default('adam'))
    .option('--lr <x>', 'learning rate (default: 0.001 for adam and rmsprop, 0.01 for sgd)', positiveNumber)
    .option('--momentum <x>', 'momentum, for sgd and rmsprop (default: 0)', fraction)
    .option('--nesterov', 'Nesterov momentum, for sgd')
    .option('--rho <x>', 'discount of the running mean of squared gradients, for rmsprop (default: 0.9)', fraction)
    .option('--centered', 'centered rmsprop: divide by the gradients\' estimated variance')
    .option('--decay-rate <r>', 'exponential decay of the learning rate: lr · r^(step / decay-steps); with --decay-steps', positiveNumber)
    .option('--decay-steps <n>', 'steps over which the learning rate decays by --decay-rate', positiveInteger)
    .option('--staircase', 'with --decay-rate: decay in steps every --decay-steps steps instead of smoothly')
    .addOption(new Option('--reduce-lr-on-plateau [patience]', 'multiply the learning rate by --reduce-lr-factor after this many epochs without improvement of val_loss (or loss)').argParser(nonNegativeInteger).preset(10))
    .option('--reduce-lr-factor <f>', 'with --reduce-lr-on-plateau: factor in (0, 1) (default: 0.1)', fraction)
    .option('--min-lr <x>', 'with --reduce-lr-on-plateau: lowest learning rate (default: 0)', positiveNumber)
    .addOption(new Option('--top-k-accuracy [k]', 'also report sparse_top_k_categorical_accuracy: the true class among the k most likely (default k: 5)').argParser(positiveInteger).preset(5));
}

interface OptimizerFlags {
  optimizer: OptimizerChoice;
  lr?: number;
  momentum?: number;
  nesterov?: boolean;
  rho?: number;
  centered?: boolean;
  decayRate?: number;
  decaySteps?: number;
  staircase?: boolean;
  reduceLrOnPlateau?: number;
  reduceLrFactor?: number;
  minLr?: number;
  topKAccuracy?: number;
}

/** The settings from the flags, refusing combinations that mean nothing (exit 2). */
export function optimizerSettings(flags: OptimizerFlags): OptimizerSettings {
  const only = (given: unknown, flag: string, optimizers: OptimizerChoice[]): void => {
    if (given !== undefined && !optimizers.includes(flags.optimizer)) throw new UsageError(`${flag} applies to --optimizer ${optimizers.join(' or ')} only`);
  };
  only(flags.momentum, '--momentum', ['sgd', 'rmsprop']);
  only(flags.nesterov, '--nesterov', ['sgd']);
  only(flags.rho, '--rho', ['rmsprop']);
  only(flags.centered, '--centered', ['rmsprop']);
  if ((flags.decayRate === undefined) !== (flags.decaySteps === undefined)) throw new UsageError('--decay-rate and --decay-steps go together: give both');
  if (flags.staircase && flags.decayRate === undefined) throw new UsageError('--staircase applies to --decay-rate only');
  if (flags.reduceLrOnPlateau !== undefined && flags.decayRate !== undefined) {
    throw new UsageError('--reduce-lr-on-plateau cannot lower a learning rate that follows --decay-rate (as in Keras): choose one');
  }
  if ((flags.reduceLrFactor !== undefined || flags.minLr !== undefined) && flags.reduceLrOnPlateau === undefined) {
    throw new UsageError(`${flags.reduceLrFactor !== undefined ? '--reduce-lr-factor' : '--min-lr'} applies to --reduce-lr-on-plateau only`);
  }
  if (flags.reduceLrFactor === 0) throw new UsageError('--reduce-lr-factor must be above 0');
  return {
    optimizer: flags.optimizer,
    lr: flags.lr ?? DEFAULT_LEARNING_RATES[flags.optimizer],
    momentum: flags.momentum ?? 0,
    nesterov: flags.nesterov === true,
    rho: flags.rho ?? OPTIMIZER_DEFAULTS.rho,
    centered: flags.centered === true,
    decayRate: flags.decayRate ?? null,
    decaySteps: flags.decaySteps ?? null,
    staircase: flags.staircase === true,
    reduceLrOnPlateau: flags.reduceLrOnPlateau ?? null,
    reduceLrFactor: flags.reduceLrFactor ?? OPTIMIZER_DEFAULTS.reduceLrFactor,
    minLr: flags.minLr ?? OPTIMIZER_DEFAULTS.minLr,
    topK: flags.topKAccuracy ?? null,
  };
}

export function buildOptimizer(settings: OptimizerSettings): Optimizer {
  const learningRate = settings.decayRate !== null && settings.decaySteps !== null
    ? new ExponentialDecay({ initialLearningRate: settings.lr, decaySteps: settings.decaySteps, decayRate: settings.decayRate, staircase: settings.staircase })
    : settings.lr;
  if (settings.optimizer === 'sgd') return sgd({ learningRate, momentum: settings.momentum, nesterov: settings.nesterov });
  if (settings.optimizer === 'rmsprop') return rmsprop({ learningRate, rho: settings.rho, momentum: settings.momentum, centered: settings.centered });
  return adam({ learningRate });
}

/** The metrics to compile with: accuracy, and top-k accuracy when asked for. */
export function trainingMetrics(settings: OptimizerSettings): MetricSpec[] {
  return ['accuracy', ...(settings.topK !== null ? [topKMetric(settings.topK)] : [])];
}

export function topKMetric(k: number): Metric {
  return sparseTopKCategoricalAccuracy({ k });
}

/** "rmsprop lr 0.001 rho 0.9 momentum 0.5 centered", "sgd lr 0.1 × 0.96^(step/1000) momentum 0.9 nesterov" */
export function describeOptimizer(settings: OptimizerSettings): string {
  const parts: string[] = [settings.optimizer];
  const decay = settings.decayRate !== null ? ` × ${settings.decayRate}^(${settings.staircase ? 'floor(step/' : 'step/'}${settings.decaySteps}${settings.staircase ? ')' : ''})` : '';
  parts.push(`lr ${settings.lr}${decay}`);
  if (settings.optimizer === 'rmsprop') parts.push(`rho ${settings.rho}`);
  if (settings.momentum) parts.push(`momentum ${settings.momentum}`);
  if (settings.nesterov) parts.push('nesterov');
  if (settings.centered) parts.push('centered');
  return parts.join(' ');
}
