/** `descent train --trace [--trace-every N]`: the flags, their checks, and what a traced run prints. */
import { Writable } from 'node:stream';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { TraceCallback, UsageError, dense, flatten, sequential, setBackend, type StepTrace } from '@descent/engine';
import { DEFAULT_TRACE_EVERY, traceExtension, traceModule } from '../src/commands/trace-options.js';
import type { TrainRun } from '../src/module.js';
import { Output } from '../src/output.js';

function parse(args: string[]): Record<string, unknown> {
  const command = new Command('train').exitOverride().configureOutput({ writeErr: () => {} });
  traceExtension.options!(command);
  command.parse(args, { from: 'user' });
  return command.opts();
}

function capture(json: boolean): { output: Output; text: () => string } {
  let text = '';
  const sink = new Writable({ write(chunk, _encoding, done) { text += String(chunk); done(); } });
  return { output: new Output({ json, stdout: sink, stderr: sink }), text: () => text };
}

function runWith(options: Record<string, unknown>, output: Output): TrainRun {
  return { options, output } as unknown as TrainRun;
}

async function trainTiny(callback: TraceCallback): Promise<void> {
  setBackend('ts');
  const model = sequential([flatten({ inputShape: [2, 2] }), dense({ units: 3, activation: 'relu' }), dense({ units: 2, activation: 'softmax' })], { seed: 1 });
  model.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' });
  const images = Uint8Array.from({ length: 8 * 4 }, (_, i) => (i * 37) % 256);
  await model.fit({ images, count: 8, rows: 2, cols: 2 }, [0, 1, 0, 1, 1, 0, 1, 0], { batchSize: 2, epochs: 2, shuffle: false, callbacks: [callback] });
}

describe('--trace flags', () => {
  it('are off by default and parse a positive step interval', () => {
    expect(parse([])).toEqual({});
    expect(parse(['--trace'])).toEqual({ trace: true });
    expect(parse(['--trace', '--trace-every', '5'])).toEqual({ trace: true, traceEvery: 5 });
  });

  it('refuse a step interval that is not a positive integer, naming the flag', () => {
    for (const bad of ['0', '-3', '2.5', 'ten']) {
      expect(() => parse(['--trace', '--trace-every', bad])).toThrow(/--trace-every <n>' argument '.*' is invalid/);
    }
  });

  it('refuse --trace-every without --trace', () => {
    expect(() => traceExtension.validate!({ traceEvery: 5 })).toThrow(UsageError);
    expect(() => traceExtension.validate!({ traceEvery: 5 })).toThrow('--trace-every applies to --trace only; add --trace');
    expect(() => traceExtension.validate!({ trace: true, traceEvery: 5 })).not.toThrow();
  });

  it('add a trace callback only with --trace, every 100 steps unless told otherwise', async () => {
    const { output } = capture(false);
    expect(traceModule.train).toBe(traceExtension);
    expect(await traceExtension.callbacks!(runWith({}, output))).toEqual([]);
    const [byDefault] = (await traceExtension.callbacks!(runWith({ trace: true }, output))) as TraceCallback[];
    expect(byDefault).toBeInstanceOf(TraceCallback);
    expect(byDefault.every).toBe(DEFAULT_TRACE_EVERY);
    const [everyThree] = (await traceExtension.callbacks!(runWith({ trace: true, traceEvery: 3 }, output))) as TraceCallback[];
    expect(everyThree.every).toBe(3);
  });
});

describe('a traced run', () => {
  it('with --json, writes one {"trace": …} line per traced step with every field', async () => {
    const { output, text } = capture(true);
    const [callback] = (await traceExtension.callbacks!(runWith({ trace: true, traceEvery: 3, json: true }, output))) as TraceCallback[];
    await trainTiny(callback);
    const lines = text().trimEnd().split('\n').map((line) => JSON.parse(line) as { trace: StepTrace });
    // 8 samples in batches of 2 for 2 epochs: steps 1..8, traced at 1, 3 and 6.
    expect(lines.map((l) => [l.trace.step, l.trace.epoch, l.trace.batch])).toEqual([[1, 1, 1], [3, 1, 3], [6, 2, 2]]);
    for (const { trace } of lines) {
      expect(Object.keys(trace)).toEqual(['step', 'epoch', 'batch', 'loss', 'layers']);
      expect(trace.layers.map((l) => l.name)).toEqual(['flatten', 'dense', 'dense_1']);
      const [, hidden, out] = trace.layers;
      for (const value of [hidden.weightNorm, hidden.gradNorm, hidden.updateRatio, out.weightNorm, out.gradNorm, out.updateRatio, trace.loss]) {
        expect(Number.isFinite(value)).toBe(true);
      }
      expect(hidden.deadFraction).not.toBeNull();
      expect(out.deadFraction).toBeNull();
    }
  });

  it('without --json, prints a table per traced step on stdout', async () => {
    const { output, text } = capture(false);
    const [callback] = (await traceExtension.callbacks!(runWith({ trace: true, traceEvery: 4 }, output))) as TraceCallback[];
    await trainTiny(callback);
    const lines = text().trimEnd().split('\n');
    expect(lines.filter((l) => l.startsWith('trace: step')).map((l) => l.replace(/, loss .*/, ''))).toEqual([
      'trace: step 1 (epoch 1, batch 1)', 'trace: step 4 (epoch 1, batch 4)', 'trace: step 8 (epoch 2, batch 4)',
    ]);
    expect(lines[1].split(/\s{2,}/)).toEqual(['layer', '‖w‖', '‖grad‖', '‖Δw‖/‖w‖', 'dead ReLU', 'act mean', 'act max']);
    expect(lines[2]).toMatch(/^flatten \(Flatten\)\s+–\s+–\s+–\s+–\s+\S+\s+\S+$/);
    expect(lines[3]).toMatch(/^dense \(Dense\)(\s+[-\d.e+]+){3}\s+\d+\.\d%(\s+[-\d.e+]+){2}$/);
    expect(lines[4]).toMatch(/^dense_1 \(Dense\)(\s+[-\d.e+]+){3}\s+–(\s+[-\d.e+]+){2}$/);
  });
});
