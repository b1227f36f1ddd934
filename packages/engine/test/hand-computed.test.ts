/** Small cases worked out by hand, on both the float32 reference kernels and the default backend. */
import { describe, expect, it } from 'vitest';
import {
  Adam, Sgd, Tensor, biasAdd, matmul, mean, relu, setBackend, softmax, sparseCategoricalCrossentropy, type BackendName,
} from '../src/index.js';

const close = (actual: ArrayLike<number>, expected: number[], digits = 5) => {
  expect(actual.length).toBe(expected.length);
  expected.forEach((value, i) => expect(actual[i]).toBeCloseTo(value, digits));
};

describe.each(['ts', 'wasm'] as BackendName[])('hand-computed cases (%s backend)', (backend) => {
  it('matmul forward and backward', () => {
    setBackend(backend);
    const a = Tensor.from([[1, 2], [3, 4]], undefined, true);
    const b = Tensor.from([[5, 6], [7, 8]], undefined, true);
    const c = matmul(a, b);
    close(c.data, [19, 22, 43, 50]);
    mean(c).backward(); // dC = 1/4 everywhere
    close(a.grad!.data, [(5 + 6) / 4, (7 + 8) / 4, (5 + 6) / 4, (7 + 8) / 4]); // dC·Bᵀ
    close(b.grad!.data, [(1 + 3) / 4, (1 + 3) / 4, (2 + 4) / 4, (2 + 4) / 4]); // Aᵀ·dC
  });

  it('bias add broadcasts over rows and sums the gradient over rows', () => {
    setBackend(backend);
    const x = Tensor.from([[1, 2], [3, 4]], undefined, true);
    const b = Tensor.from([10, 20], undefined, true);
    const y = biasAdd(x, b);
    close(y.data, [11, 22, 13, 24]);
    mean(y).backward();
    close(b.grad!.data, [0.5, 0.5]);
    close(x.grad!.data, [0.25, 0.25, 0.25, 0.25]);
  });

  it('relu passes gradient only where the input was positive', () => {
    setBackend(backend);
    const x = Tensor.from([[-1, 2, 0, 3]], undefined, true);
    const y = relu(x);
    close(y.data, [0, 2, 0, 3]);
    mean(y).backward();
    close(x.grad!.data, [0, 0.25, 0, 0.25]);
  });

  it('softmax cross-entropy: loss log 2 and gradient p - onehot for equal logits', () => {
    setBackend(backend);
    const logits = Tensor.from([[0, 0]], undefined, true);
    const loss = sparseCategoricalCrossentropy(logits, Tensor.from([0]), { fromLogits: true });
    expect(loss.item()).toBeCloseTo(Math.log(2), 6);
    loss.backward();
    close(logits.grad!.data, [-0.5, 0.5]);
  });

  it('softmax cross-entropy on [1, 2, 3] with label 2, averaged over the batch', () => {
    setBackend(backend);
    const logits = Tensor.from([[1, 2, 3], [1, 2, 3]], undefined, true);
    const probs = softmax(logits);
    close(probs.data, [0.0900306, 0.2447285, 0.6652410, 0.0900306, 0.2447285, 0.6652410]);
    const loss = sparseCategoricalCrossentropy(probs, Tensor.from([2, 2]));
    expect(loss.item()).toBeCloseTo(0.4076059, 6);
    loss.backward();
    close(logits.grad!.data, [0.0900306 / 2, 0.2447285 / 2, -0.334759 / 2, 0.0900306 / 2, 0.2447285 / 2, -0.334759 / 2]);
  });

  it('probabilities are clipped to [1e-7, 1 - 1e-7] like Keras', () => {
    setBackend(backend);
    const probs = Tensor.from([[0, 1]], undefined, true);
    const loss = sparseCategoricalCrossentropy(probs, Tensor.from([0]));
    expect(loss.item()).toBeCloseTo(-Math.log(1e-7), 4);
    loss.backward();
    close(probs.grad!.data, [0, 0]); // the clip is active: no gradient flows
  });

  it('one SGD step, with momentum and with nesterov', () => {
    setBackend(backend);
    const run = (options: ConstructorParameters<typeof Sgd>[0], gradients: number[]) => {
      const w = Tensor.from([1], undefined, true);
      const optimizer = new Sgd(options);
      for (const g of gradients) {
        w.grad = Tensor.from([g]);
        optimizer.step([{ name: 'w', tensor: w }]);
      }
      return w.data[0];
    };
    expect(run({ learningRate: 0.1 }, [0.5])).toBeCloseTo(0.95, 6);
    expect(run({ learningRate: 0.1, momentum: 0.9 }, [0.5, 0.5])).toBeCloseTo(0.855, 6); // v: -0.05, then -0.095
    expect(run({ learningRate: 0.1, momentum: 0.9, nesterov: true }, [0.5])).toBeCloseTo(0.905, 6);
  });

  it('two Adam steps with Keras defaults (epsilon-hat form)', () => {
    setBackend(backend);
    const w = Tensor.from([1], undefined, true);
    const optimizer = new Adam();
    w.grad = Tensor.from([0.5]);
    optimizer.step([{ name: 'w', tensor: w }]);
    // m = 0.05, v = 0.00025, lr_t = 1e-3·√0.001/0.1, w = 1 - lr_t·m/(√v + 1e-7)
    expect(w.data[0]).toBeCloseTo(0.9990000063, 7);
    w.grad = Tensor.from([-0.25]);
    optimizer.step([{ name: 'w', tensor: w }]);
    expect(w.data[0]).toBeCloseTo(0.99873367, 6);
    expect(optimizer.iterations).toBe(2);
  });
});
