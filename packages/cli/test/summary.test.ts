/** `descent summary`'s account of a training run. */
import { describe, expect, it } from 'vitest';
import type { TrainingMetadata } from '@descent/engine';
import { trainingLines } from '../src/commands/summary.js';

const history = { epoch: [0, 1, 2, 3, 4], loss: [0.5, 0.38, 0.34, 0.32, 0.3], accuracy: [0.82, 0.86, 0.88, 0.88, 0.89], val_loss: [0.41, 0.42, 0.36, 0.335, 0.336], val_accuracy: [0.85, 0.85, 0.87, 0.88, 0.87], seconds: [1, 1, 1, 1, 1] };

describe('summary step counts', () => {
  it('the Training line counts every step trained; the Weights line the steps behind the weights kept', () => {
    // 5 epochs of 1,688 steps; the best checkpoint (epoch 4) was kept, with its own optimizer state.
    const meta: TrainingMetadata = {
      status: 'complete', dataset: 'fashion-mnist', epochs: 5, epochsCompleted: 5, seed: 42, backend: 'wasm',
      hyperparameters: { batchSize: 32 }, history, weightsFromEpoch: 3, stepsCompleted: 8440, stepsPerEpoch: 1688,
      optimizer: { name: 'adam', config: { learning_rate: 0.001 }, state: { iterations: 6752, slots: {} } },
    };
    const lines = trainingLines(meta);
    expect(lines).toContain('Training: optimizer adam (learning_rate 0.001), batch size 32, seed 42, backend wasm, 8,440 steps');
    expect(lines).toContain('Weights: from epoch 4 (after 6,752 steps), the best on val_loss');
  });

  it('an interrupted run says how to continue it, naming its folder as a shell word', () => {
    const meta: TrainingMetadata = { status: 'interrupted', dataset: 'fashion-mnist', epochs: 5, epochsCompleted: 2, position: { epoch: 2, batch: 100 }, history };
    expect(trainingLines(meta, 'my models/x')[0]).toMatch(/^Trained on fashion-mnist: 2 of 5 epochs \(interrupted in epoch 3 after batch 100; continue with .*train --resume 'my models\/x'\)$/);
  });

  it('a file saved before the total was recorded shows no total it cannot know', () => {
    const meta: TrainingMetadata = {
      status: 'complete', dataset: 'fashion-mnist', epochs: 5, epochsCompleted: 5, history, weightsFromEpoch: 3,
      optimizer: { name: 'adam', config: { learning_rate: 0.001 }, state: { iterations: 6752, slots: {} } },
    };
    expect(trainingLines(meta).join('\n')).not.toContain('6,752');
  });
});

describe('the report\'s count of training images', () => {
  it('counts the images trained on, not the ones held out for validation', async () => {
    const { trainingImagesFact } = await import('../src/report/index.js');
    expect(trainingImagesFact(60000, 0.1)).toBe('54,000 training images (6,000 held out for validation)');
    expect(trainingImagesFact(60000, 0)).toBe('60,000 training images');
    expect(trainingImagesFact(2000, 0.25)).toBe('1,500 training images (500 held out for validation)');
  });
});
