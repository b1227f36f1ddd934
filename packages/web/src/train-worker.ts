/**
 * Training in the browser, on a worker so the page stays responsive: the engine's own fit(), with
 * Keras's progress bar and per-epoch logs posted back to the page.
 */
import { ProgbarLogger, adam, dense, dropout, flatten, sequential, type Callback, type Layer, type ProgressSink } from '@descent/engine/core';
import { installBrowserThreads } from './threads.js';

export interface TrainSettings {
  hidden: number[];
  dropout: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  validationSplit: number;
  seed: number;
  threads: number;
}

export type ToWorker =
  | { type: 'start'; images: Uint8Array; labels: Uint8Array; rows: number; cols: number; classes: number; settings: TrainSettings }
  | { type: 'stop' };

export type FromWorker =
  | { type: 'progress'; text: string; final: boolean }
  | { type: 'batch'; epoch: number; batch: number; batches: number; loss: number; accuracy: number }
  | { type: 'epoch'; epoch: number; seconds: number; logs: Record<string, number> }
  | { type: 'done'; stopped: boolean; threads: number }
  | { type: 'error'; message: string };

const post = (message: FromWorker) => postMessage(message);
let stop: (() => void) | undefined;

onmessage = async (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  if (message.type === 'stop') return stop?.();
  const { images, labels, rows, cols, classes, settings } = message;
  try {
    const threads = await installBrowserThreads(settings.threads);
    const layers: Layer[] = [flatten({ inputShape: [rows, cols] })];
    for (const units of settings.hidden) {
      layers.push(dense({ units, activation: 'relu' }));
      if (settings.dropout > 0) layers.push(dropout({ rate: settings.dropout }));
    }
    layers.push(dense({ units: classes, activation: 'softmax' }));
    const model = sequential(layers, { seed: settings.seed });
    model.compile({ optimizer: adam({ learningRate: settings.learningRate }), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    stop = () => (model.stopTraining = true);

    const count = labels.length;
    const trainCount = count - Math.floor(count * settings.validationSplit);
    const steps = Math.ceil(trainCount / settings.batchSize);
    // The engine's own Keras progress bar, drawn into the page: a redrawn line is the live one.
    let open = '';
    const sink: ProgressSink = {
      interactive: true,
      redraw: (text) => {
        open = text;
        post({ type: 'progress', text, final: false });
      },
      finishLine: () => {
        if (open) post({ type: 'progress', text: open, final: true });
        open = '';
      },
      line: (text) => post({ type: 'progress', text, final: true }),
    };
    // The curves: a point at most every 100 ms (an epoch of Fashion-MNIST has 1,875 batches), and each epoch's logs.
    let currentEpoch = 0;
    let lastPost = -Infinity;
    const reporter: Callback = {
      onEpochBegin: (epoch) => {
        currentEpoch = epoch + 1;
      },
      onBatchEnd: (batch, logs) => {
        const now = performance.now();
        if (now - lastPost < 100 && batch + 1 < steps) return;
        lastPost = now;
        post({ type: 'batch', epoch: currentEpoch, batch: batch + 1, batches: steps, loss: logs.loss, accuracy: logs.accuracy ?? NaN });
      },
      onEpochEnd: (epoch, logs) => {
        post({ type: 'epoch', epoch: epoch + 1, seconds: logs.seconds, logs: { ...logs } as Record<string, number> });
      },
    };
    await model.fit({ images, count, rows, cols }, labels, {
      epochs: settings.epochs, batchSize: settings.batchSize, validationSplit: settings.validationSplit, shuffle: true,
      callbacks: [new ProgbarLogger({ epochs: settings.epochs, steps, sink }), reporter],
    });
    const stopped = model.stopTraining;
    model.dispose();
    post({ type: 'done', stopped, threads });
  } catch (error) {
    post({ type: 'error', message: error instanceof Error ? error.message : String(error) });
  }
};
