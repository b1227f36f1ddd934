// Training jobs on worker threads: progress events, cancel, and resuming from a checkpoint (taken
// at an epoch's end or where a cancel stopped it, mid-epoch) to the same weights, bit for bit, as
// an uninterrupted run. The runner is imported from the build, as the CLI uses it (its threads
// load dist/thread.js).
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDataset } from '@descent/engine';
import { LocalRunner, defaultJobThreads, runTrainingJob, trainingJob, type JobCheckpoint, type JobEvent, type TrainingJobSpec } from '../dist/index.js';

const FIXTURE = fileURLToPath(new URL('../../../test/fixtures/fashion-mnist', import.meta.url));
const runner = new LocalRunner({ workers: 2 });
afterAll(() => runner.close());

function job(id: string, extra: Partial<TrainingJobSpec> = {}): TrainingJobSpec {
  return trainingJob({
    id,
    data: { dataset: 'fashion-mnist', dir: FIXTURE },
    model: { hidden: [24], dropout: 0.1 },
    optimizer: { name: 'adam', learningRate: 1e-3 },
    epochs: 3,
    validationSplit: 0.2,
    seed: 3,
    progressEvery: 10,
    checkpoints: true,
    keepBest: { name: 'val_accuracy', direction: 'max' },
    ...extra,
  });
}

describe('LocalRunner', () => {
  it('reports progress, and resumes from an epoch checkpoint or a cancelled one to identical weights', async () => {
    const events: JobEvent[] = [];
    const full = await runner.run(job('full'), { onEvent: (e) => events.push(e) });
    expect(full.status).toBe('complete');
    expect(full.history.epoch).toEqual([0, 1, 2]);
    const epochs = events.filter((e) => e.type === 'epoch');
    expect(epochs.map((e) => e.epoch)).toEqual([0, 1, 2]);
    // 1,600 training images, batch 32: 50 batches, an event every 10.
    expect(events.filter((e) => e.type === 'batch' && e.epoch === 0).map((e) => e.type === 'batch' && e.batch)).toEqual([10, 20, 30, 40, 50]);
    const best = full.history.val_accuracy.indexOf(Math.max(...full.history.val_accuracy));
    expect(full.best?.epoch).toBe(best);
    const checkpoints = events.filter((e): e is Extract<JobEvent, { type: 'checkpoint' }> => e.type === 'checkpoint').map((e) => e.checkpoint);
    expect(checkpoints.map((c) => c.epochsCompleted)).toEqual([1, 2, 3]);

    // From the end of epoch 1: the same weights, history and best epoch as the uninterrupted run.
    const fromEpoch = await runner.run(job('full', { resume: checkpoints[0] }));
    expect(fromEpoch.weights).toEqual(full.weights);
    expect(fromEpoch.history).toEqual({ ...full.history, seconds: fromEpoch.history.seconds });

    // Cancelled in the middle of epoch 2, then resumed from where it stopped.
    const controller = new AbortController();
    let sawBatch = false;
    const cancelled = await runner.run(job('full'), {
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'batch' && e.epoch === 1 && !sawBatch) {
          sawBatch = true;
          controller.abort();
        }
      },
    });
    expect(cancelled.status).toBe('cancelled');
    const checkpoint = cancelled.checkpoint as JobCheckpoint;
    // Stopped inside an epoch (within a batch or two of the cancel).
    expect(checkpoint.position!.epoch).toBeGreaterThanOrEqual(1);
    expect(checkpoint.position!.batch).toBeGreaterThan(0);
    expect(checkpoint.position!.batch).toBeLessThan(50);
    const resumed = await runner.run(job('full', { resume: checkpoint }));
    expect(resumed.weights).toEqual(full.weights);
    expect(resumed.best).toEqual(full.best);
  });

  it('a cancel seen on an epoch\'s last batch ends the job as cancelled, with a checkpoint at that epoch\'s end that resumes to the same weights', async () => {
    const data = await loadDataset('fashion-mnist', { dir: FIXTURE, download: false });
    const spec = job('edge', { epochs: 2, checkpoints: false });
    const full = await runTrainingJob(spec, data.train);
    expect(full.status).toBe('complete');
    let cancel = false;
    const cancelled = await runTrainingJob(spec, data.train, {
      onEvent: (e) => {
        if (e.type === 'batch' && e.epoch === 0 && e.batch === e.batches) cancel = true;
      },
      cancelled: () => cancel,
    });
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.history.epoch).toEqual([0]);
    const checkpoint = cancelled.checkpoint as JobCheckpoint;
    expect(checkpoint.position).toBeNull();
    expect(checkpoint.epochsCompleted).toBe(1);
    const resumed = await runTrainingJob(job('edge', { epochs: 2, checkpoints: false, resume: checkpoint }), data.train);
    expect(resumed.status).toBe('complete');
    expect(resumed.weights).toEqual(full.weights);
  });

  it('continues from given weights (a continued Hyperband trial) and runs jobs side by side', async () => {
    const first = await runner.run(job('first', { epochs: 1, checkpoints: false }));
    const [a, b] = await Promise.all([
      runner.run(job('a', { initialWeights: first.weights, initialEpoch: 1, epochs: 2, checkpoints: false })),
      runner.run(job('b', { initialWeights: first.weights, initialEpoch: 1, epochs: 2, checkpoints: false })),
    ]);
    expect(a.history.epoch).toEqual([1]);
    expect(a.weights).toEqual(b.weights);
    expect(a.weights).not.toEqual(first.weights);
    const fresh = await runner.run(job('fresh', { epochs: 1, checkpoints: false, seed: 4 }));
    expect(fresh.weights).not.toEqual(first.weights);
  });

  it('gives each job its share of the cores, or the kernel threads asked for, with the same weights', async () => {
    const shared = await runner.run(job('threads', { epochs: 1, checkpoints: false }));
    expect(shared.threads).toBe(defaultJobThreads(2));
    const own = new LocalRunner({ workers: 1, threads: 3 });
    try {
      const three = await own.run(job('threads', { epochs: 1, checkpoints: false }));
      expect(three.threads).toBe(3);
      expect(three.weights).toEqual(shared.weights);
    } finally {
      await own.close();
    }
  });

  it('trains a convolutional model from a layer definition', async () => {
    const conv = await runner.run(job('conv', { epochs: 1, checkpoints: false, model: { hidden: [], dropout: 0, layers: 'conv2d:4:3:relu,maxpool:2,flatten,dense:16:relu' } }));
    expect(conv.status).toBe('complete');
    expect(conv.weights.shapes).toEqual([[3, 3, 1, 4], [4], [13 * 13 * 4, 16], [16], [16, 10], [10]]);
    expect(conv.history.val_accuracy[0]).toBeGreaterThan(0.3);
  });

  it('fails a job whose data cannot be read, with one line naming the folder', async () => {
    await expect(runner.run(job('bad', { data: { dataset: 'fashion-mnist', dir: '/nonexistent/descent-data' } }))).rejects.toThrow(/\/nonexistent\/descent-data/);
  });
});
