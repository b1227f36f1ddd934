/**
 * `descent train --trace [--trace-every N]`: on the first step and every N-th, per layer, the
 * weight norm, gradient norm, update/weight ratio, share of dead ReLUs, and mean and max
 * activation (definitions: @descent/engine's learn/trace.ts). As a table on stdout, or with
 * --json as one `{"trace": {...}}` line per traced step among the epoch lines.
 */
import { TraceCallback, UsageError, formatTrace, type StepTrace } from '@descent/engine';
import { positiveInteger } from '../flags.js';
import type { CliModule, TrainExtension } from '../module.js';
import type { Output } from '../output.js';

export const DEFAULT_TRACE_EVERY = 100;

export const traceExtension: TrainExtension = {
  options(command) {
    command
      .option('--trace', 'print per-layer training health on the first step and every N-th: weight and gradient norms, update/weight ratio, dead ReLUs, activations')
      .option('--trace-every <n>', `steps between traces, with --trace (default: ${DEFAULT_TRACE_EVERY})`, positiveInteger);
  },
  validate(options) {
    if (options.traceEvery !== undefined && options.trace !== true) throw new UsageError('--trace-every applies to --trace only; add --trace');
  },
  callbacks(run) {
    if (run.options.trace !== true) return [];
    const every = (run.options.traceEvery as number | undefined) ?? DEFAULT_TRACE_EVERY;
    return [traceCallback(run.output, every)];
  },
};

/** Plugs --trace into `descent train` (main.ts lists it with the other modules). */
export const traceModule: CliModule = { train: traceExtension };

export function traceCallback(output: Output, every: number): TraceCallback {
  return new TraceCallback({ every, onTrace: (trace) => writeTrace(output, trace) });
}

export function writeTrace(output: Output, trace: StepTrace): void {
  if (output.json) output.record({ trace });
  else for (const line of formatTrace(trace).split('\n')) output.line(line);
}
