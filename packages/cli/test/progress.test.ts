/** The Keras-style progress output, with a fake terminal and a fake clock. */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Output } from '../src/output.js';
import { KerasProgress, formatEta, formatPerStep, progressLine } from '../src/progress.js';

function fakeStream(isTTY: boolean): Writable & { isTTY: boolean; columns: number; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk, _encoding, done) {
      text += chunk.toString();
      done();
    },
  }) as Writable & { isTTY: boolean; columns: number; text: () => string };
  stream.isTTY = isTTY;
  stream.columns = 200;
  stream.text = () => text;
  return stream;
}

describe('progressLine', () => {
  it('draws Keras\'s bar: right-aligned count, 30 characters, ">" at the head while running', () => {
    expect(progressLine(512, 1875, { eta: 2.4, logs: { loss: 0.60123, accuracy: 0.79114 } })).toBe(
      ' 512/1875 [=======>......................] - ETA: 2s - loss: 0.6012 - accuracy: 0.7911',
    );
    expect(progressLine(1875, 1875, { seconds: 3.2, perStep: 0.0017, logs: { loss: 0.4964, accuracy: 0.8236, val_loss: 0.441, val_accuracy: 0.8431 } })).toBe(
      '1875/1875 [==============================] - 3s 2ms/step - loss: 0.4964 - accuracy: 0.8236 - val_loss: 0.4410 - val_accuracy: 0.8431',
    );
    expect(progressLine(1, 1875, { eta: 90, logs: {} })).toBe(`   1/1875 [${'.'.repeat(30)}] - ETA: 1:30`);
  });

  it('formats times like Keras', () => {
    expect(formatEta(59.9)).toBe('59s');
    expect(formatEta(61)).toBe('1:01');
    expect(formatEta(3725)).toBe('1:02:05');
    expect(formatPerStep(2)).toBe('2s/step');
    expect(formatPerStep(0.0123)).toBe('12ms/step');
    expect(formatPerStep(0.00064)).toBe('640us/step');
  });

  it('shows tiny metric values in exponent notation', () => {
    expect(progressLine(2, 2, { seconds: 1, perStep: 0.5, logs: { loss: 0.00012345 } })).toMatch(/loss: 1\.2345e-4$/);
  });
});

describe('KerasProgress', () => {
  it('on a terminal: a header per epoch, redraws at most every 50 ms, and a final line with validation metrics', () => {
    const stdout = fakeStream(true);
    let clock = 0;
    const progress = new KerasProgress({ output: new Output({ stdout, stderr: fakeStream(false) }), epochs: 2, steps: 4, now: () => clock });
    progress.onEpochBegin(0);
    for (let batch = 0; batch < 4; batch++) {
      clock += 10; // 10 ms per step: only the first and the last batch are drawn
      progress.onBatchEnd(batch, { loss: 1 / (batch + 1), accuracy: 0.5, size: 32 });
    }
    progress.onEpochEnd(0, { loss: 0.25, accuracy: 0.5, val_loss: 0.3, val_accuracy: 0.6, seconds: 0.05 });
    const text = stdout.text();
    expect(text.startsWith('Epoch 1/2\n')).toBe(true);
    const draws = text.split('\r').slice(1);
    expect(draws.map((d) => d.slice(0, 9))).toEqual(['1/4 [====', '4/4 [====', '4/4 [====']);
    expect(draws[0]).toContain('ETA: 0s - loss: 1.0000');
    expect(draws[2]).toBe('4/4 [==============================] - 0s 13ms/step - loss: 0.2500 - accuracy: 0.5000 - val_loss: 0.3000 - val_accuracy: 0.6000\n');
  });

  it('off a terminal: one line per epoch and no redraws', () => {
    const stdout = fakeStream(false);
    const progress = new KerasProgress({ output: new Output({ stdout, stderr: fakeStream(false) }), epochs: 5, steps: 1875, now: () => 0 });
    progress.onEpochBegin(2);
    for (let batch = 0; batch < 1875; batch++) progress.onBatchEnd(batch, { loss: 0.5, size: 32 });
    progress.onEpochEnd(2, { loss: 0.4964, accuracy: 0.8236, seconds: 1.2 });
    expect(stdout.text()).toBe('Epoch 3/5 - 1s 640us/step - loss: 0.4964 - accuracy: 0.8236\n');
  });

  it('a resumed epoch measures its speed from the batches it ran', () => {
    const stdout = fakeStream(false);
    const progress = new KerasProgress({ output: new Output({ stdout, stderr: fakeStream(false) }), epochs: 1, steps: 100, now: () => 0 });
    progress.onEpochBegin(0);
    for (let batch = 90; batch < 100; batch++) progress.onBatchEnd(batch, { loss: 0.5, size: 32 });
    progress.onEpochEnd(0, { loss: 0.5, seconds: 0.1 });
    expect(stdout.text()).toBe('Epoch 1/1 - 0s 10ms/step - loss: 0.5000\n');
  });

  it('uses no colour codes with NO_COLOR or off a terminal', () => {
    const saved = process.env.NO_COLOR;
    process.env.NO_COLOR = '1';
    try {
      const stdout = Object.assign(fakeStream(true), { hasColors: () => true });
      const output = new Output({ stdout });
      expect(output.color).toBe(false);
      expect(output.bold('x')).toBe('x');
    } finally {
      if (saved === undefined) delete process.env.NO_COLOR;
      else process.env.NO_COLOR = saved;
    }
    const piped = new Output({ stdout: Object.assign(fakeStream(false), { hasColors: () => true }) });
    expect(piped.color).toBe(false);
    const terminal = new Output({ stdout: Object.assign(fakeStream(true), { hasColors: () => true }) });
    expect(terminal.color).toBe(!process.env.NO_COLOR);
  });
});

describe('progress at a narrow terminal (the finished line keeps every metric)', () => {
  const logs = { loss: 1.1206, accuracy: 0.6133, val_loss: 0.7432, val_accuracy: 0.75 };

  function finishedEpoch(columns: number): string[] {
    const stdout = Object.assign(fakeStream(true), { columns });
    let clock = 0;
    const progress = new KerasProgress({ output: new Output({ stdout, stderr: fakeStream(false) }), epochs: 1, steps: 57, now: () => clock });
    progress.onEpochBegin(0);
    for (let batch = 0; batch < 57; batch++) {
      clock += 60;
      progress.onBatchEnd(batch, { loss: 1.2, accuracy: 0.6, size: 32 });
    }
    progress.onEpochEnd(0, { ...logs, seconds: 0.03 });
    // What the terminal shows: each \r starts the line again; keep the last drawing of every line.
    const lines = stdout.text().split('\n').map((line) => line.split('\r').pop()!.trimEnd()).filter((line) => line !== '');
    expect(lines[0]).toBe('Epoch 1/1');
    return lines.slice(1);
  }

  it('at 80 columns the finished epoch shows val_loss and val_accuracy, on lines no wider than the terminal', () => {
    const lines = finishedEpoch(80);
    const text = lines.join(' ');
    for (const [key, value] of Object.entries(logs)) expect(text).toContain(`${key}: ${value.toFixed(4)}`);
    for (const line of lines) expect(line.length).toBeLessThan(80);
  });

  it('shortens the bar before it wraps, and wraps between metrics, never inside one', () => {
    const full = progressLine(57, 57, { seconds: 0, perStep: 0.000527, logs });
    const columns = full.length - 5; // 6 characters too long for one line (one column is kept free)
    const lines = finishedEpoch(columns);
    expect(lines.slice(1)).toEqual([]); // shortening the bar was enough
    expect(lines[0]).toMatch(/^57\/57 \[=+\] - 0s \d+us\/step - loss: 1\.1206 - accuracy: 0\.6133 - val_loss: 0\.7432 - val_accuracy: 0\.7500$/);
    expect(lines[0].length).toBe(columns - 1);

    const wrapped = finishedEpoch(40);
    for (const line of wrapped) expect(line.length).toBeLessThan(40);
    const pieces = wrapped.join('').split(' - ').map((piece) => piece.trim());
    expect(pieces).toContain('val_accuracy: 0.7500');
    expect(pieces).toContain('loss: 1.1206');
  });

  it('the live line stays within the width and drops whole metrics rather than cutting one', () => {
    const stdout = Object.assign(fakeStream(true), { columns: 60 });
    const progress = new KerasProgress({ output: new Output({ stdout, stderr: fakeStream(false) }), epochs: 1, steps: 1875, now: () => 0 });
    progress.onEpochBegin(0);
    progress.onBatchEnd(511, { loss: 0.60123, accuracy: 0.79114, size: 32 });
    const drawn = stdout.text().split('\r').pop()!.trimEnd();
    expect(drawn.length).toBeLessThan(60);
    expect(drawn).toMatch(/^ 512\/1875 \[=*>?\.*\] - ETA: \d+s( - loss: 0\.6012)?( - accuracy: 0\.7911)?$/);
  });
});
