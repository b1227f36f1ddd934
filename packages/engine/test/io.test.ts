/** Model files: the TensorFlow.js Layers format, descent's training metadata, atomic saves, file-writing callbacks. */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CsvLogger, DESCENT_VERSION, EarlyStopping, ModelCheckpoint, ModelFormatError, Random,
  adam, captureTrainingState, dense, dropout, flatten, loadModel, modelFromArtifacts, modelToArtifacts,
  restoreOptimizer, saveModel, sequential, setBackend, sgd,
  type ModelArtifacts, type Sequential,
} from '../src/index.js';

setBackend('ts');

let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'descent-io-'));
});
afterEach(() => {
  rmSync(tmp, { recursive: true, force: true });
});

function smallModel(seed = 1): Sequential {
  const model = sequential(
    [flatten({ inputShape: [28, 28] }), dense({ units: 6, activation: 'relu' }), dropout({ rate: 0.25 }), dense({ units: 10, activation: 'softmax' })],
    { seed },
  );
  model.compile({ optimizer: adam(), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  return model;
}

/** A few random 28×28 byte images with labels, from the engine's seeded generator. */
function batch(count: number, seed = 5) {
  const random = new Random(seed);
  const images = Uint8Array.from({ length: count * 784 }, () => random.nextInt(256));
  const labels = Uint8Array.from({ length: count }, () => random.nextInt(10));
  return { images: { images, count, rows: 28, cols: 28 }, labels };
}

function outputs(model: Sequential, count = 4): Float32Array {
  const out = model.predict(batch(count).images);
  const values = Float32Array.from(out.data);
  out.dispose();
  return values;
}

function weightBytes(model: Sequential): Buffer {
  return Buffer.concat(model.getWeights().map((w) => Buffer.from(w.values.buffer, w.values.byteOffset, w.values.byteLength)));
}

/** A model.json/weights.bin pair written by hand, as other programs write them. */
function writeFolder(dir: string, modelJson: unknown, weights: Uint8Array): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.json'), JSON.stringify(modelJson));
  writeFileSync(join(dir, 'weights.bin'), weights);
  return dir;
}

describe('TensorFlow.js Layers artifacts', () => {
  it('describe the model as tfjs expects: Sequential topology, batch_input_shape, kernel [in, units], float32 weights in order', () => {
    const model = smallModel();
    const artifacts = modelToArtifacts(model);
    expect(artifacts.format).toBe('layers-model');
    expect(artifacts.generatedBy).toBe(`descent ${DESCENT_VERSION}`);
    expect(artifacts.convertedBy).toBeNull();
    const topology = artifacts.modelTopology;
    expect(topology.class_name).toBe('Sequential');
    expect(topology.config.layers.map((l) => l.class_name)).toEqual(['Flatten', 'Dense', 'Dropout', 'Dense']);
    expect(topology.config.layers[0].config.batch_input_shape).toEqual([null, 28, 28]);
    expect(topology.config.layers[1].config).toMatchObject({ units: 6, activation: 'relu', use_bias: true });
    expect(topology.config.layers[2].config).toMatchObject({ rate: 0.25 });
    expect(artifacts.weightSpecs).toEqual([
      { name: 'dense/kernel', shape: [784, 6], dtype: 'float32' },
      { name: 'dense/bias', shape: [6], dtype: 'float32' },
      { name: 'dense_1/kernel', shape: [6, 10], dtype: 'float32' },
      { name: 'dense_1/bias', shape: [10], dtype: 'float32' },
    ]);
    const bytes = new DataView(artifacts.weightData);
    expect(artifacts.weightData.byteLength).toBe((784 * 6 + 6 + 60 + 10) * 4);
    const kernel = model.getWeights()[0].values;
    for (const i of [0, 1, 783, 4703]) expect(bytes.getFloat32(i * 4, true)).toBe(kernel[i]);
    const secondKernel = model.getWeights()[2].values;
    expect(bytes.getFloat32((784 * 6 + 6) * 4, true)).toBe(secondKernel[0]);
  });

  it('round-trip to an identical model: same layers, same weights bit for bit, same predictions', () => {
    const model = smallModel(3);
    const copy = modelFromArtifacts(modelToArtifacts(model));
    expect(copy.layers.map((l) => `${l.className}:${l.name}`)).toEqual(model.layers.map((l) => `${l.className}:${l.name}`));
    expect(weightBytes(copy).equals(weightBytes(model))).toBe(true);
    expect(outputs(copy)).toEqual(outputs(model));
  });

  it('read what tfjs writes: tfjs layer names, a layer list as config, camelCase or Keras input shapes, InputLayer, dtype policies, scoped weight names', () => {
    const source = smallModel(4);
    const { weightSpecs, weightData } = modelToArtifacts(source);
    const [k1, b1, k2, b2] = weightSpecs;
    const variants: Array<[string, unknown, string[]]> = [
      ['tfjs names, {layers}', { class_name: 'Sequential', config: { name: 'sequential_1', layers: [
        { class_name: 'Flatten', config: { name: 'flatten_Flatten1', batch_input_shape: [null, 28, 28], dtype: 'float32' } },
        { class_name: 'Dense', config: { name: 'dense_Dense1', units: 6, activation: 'relu', use_bias: true } },
        { class_name: 'Dropout', config: { name: 'dropout_Dropout1', rate: 0.25 } },
        { class_name: 'Dense', config: { name: 'dense_Dense2', units: 10, activation: 'softmax' } },
      ] } }, ['dense_Dense1', 'dense_Dense2']],
      ['old Keras: layer list, camelCase inputShape', { className: 'Sequential', config: [
        { className: 'Flatten', config: { name: 'f', inputShape: [28, 28] } },
        { className: 'Dense', config: { name: 'a', units: 6, activation: 'relu' } },
        { className: 'Dropout', config: { name: 'd', rate: 0.25 } },
        { className: 'Dense', config: { name: 'b', units: 10, activation: 'softmax' } },
      ] }, ['model/a', 'model/b']],
      ['Keras 3: InputLayer with batch_shape, dtype policy', { class_name: 'Sequential', config: { name: 's', layers: [
        { class_name: 'InputLayer', config: { name: 'input', batch_shape: [null, 28, 28], dtype: 'float32' } },
        { class_name: 'Flatten', config: { name: 'f', dtype: { class_name: 'DTypePolicy', config: { name: 'float32' } } } },
        { class_name: 'Dense', config: { name: 'a', units: 6, activation: 'relu' } },
        { class_name: 'Dropout', config: { name: 'd', rate: 0.25 } },
        { class_name: 'Dense', config: { name: 'b', units: 10, activation: 'softmax' } },
      ] } }, ['a', 'b']],
    ];
    for (const [what, modelTopology, names] of variants) {
      const renamed = [
        { ...k1, name: `${names[0]}/kernel` }, { ...b1, name: `${names[0]}/bias` },
        { ...k2, name: `${names[1]}/kernel` }, { ...b2, name: `${names[1]}/bias` },
      ];
      const imported = modelFromArtifacts({ modelTopology, weightSpecs: renamed, weightData });
      expect(weightBytes(imported).equals(weightBytes(source)), what).toBe(true);
      expect(outputs(imported), what).toEqual(outputs(source));
    }
  });

  it('accept weights split over several buffers', () => {
    const model = smallModel(6);
    const artifacts = modelToArtifacts(model);
    const bytes = new Uint8Array(artifacts.weightData);
    const split = [bytes.slice(0, 1000).buffer, bytes.slice(1000).buffer];
    expect(outputs(modelFromArtifacts({ ...artifacts, weightData: split }))).toEqual(outputs(model));
  });

  it('refuse what descent cannot run, naming the layer, activation or dtype and the file', () => {
    const { modelTopology, weightSpecs, weightData } = modelToArtifacts(smallModel());
    const withLayer = (i: number, change: (config: Record<string, unknown>) => void, className?: string): ModelArtifacts => {
      const topology = structuredClone(modelTopology);
      change(topology.config.layers[i].config);
      if (className) topology.config.layers[i].class_name = className;
      return { modelTopology: topology, weightSpecs, weightData };
    };
    const cases: Array<[ModelArtifacts, RegExp]> = [
      [withLayer(1, () => {}, 'LSTM'), /^m\.json: layer 'dense' \(LSTM\): layer class "LSTM" is not supported/],
      [withLayer(1, (c) => (c.activation = 'tanh')), /^m\.json: layer 'dense' \(Dense\): activation is not supported \(descent has relu, softmax and linear\), got "tanh"$/],
      [withLayer(1, (c) => (c.dtype = 'float16')), /^m\.json: layer 'dense' \(Dense\): dtype must be float32 .*, got "float16"$/],
      [withLayer(1, (c) => (c.use_bias = false)), /use_bias: false/],
      [withLayer(2, (c) => (c.rate = 1.5)), /layer 'dropout' \(Dropout\): rate must be in \[0, 1\), got 1\.5/],
      [withLayer(0, (c) => delete c.batch_input_shape), /declares no input shape/],
      [{ modelTopology, weightSpecs: weightSpecs.map((s, i) => (i === 0 ? { ...s, dtype: 'int32' } : s)), weightData }, /^m\.json: weight "dense\/kernel" in the weightsManifest: dtype must be float32 .*, got "int32"$/],
      [{ modelTopology, weightSpecs: weightSpecs.map((s, i) => (i === 3 ? { ...s, name: 'other/bias' } : s)), weightData }, /has no weight "dense_1\/bias"/],
      [{ modelTopology, weightSpecs, weightData: weightData.slice(0, 100) }, /^w\.bin: has 100 bytes but the weightsManifest in m\.json describes/],
      [{ modelTopology: { ...modelTopology, class_name: 'Functional' }, weightSpecs, weightData }, /model class "Functional" is not supported/],
      [{ modelTopology, weightSpecs, weightData, format: 'graph-model' }, /format "graph-model" is not supported/],
    ];
    for (const [artifacts, message] of cases) {
      const attempt = () => modelFromArtifacts(artifacts, { modelFile: 'm.json', weightsFile: 'w.bin' });
      expect(attempt).toThrow(ModelFormatError);
      expect(attempt).toThrow(message);
    }
  });
});

describe('model folders', () => {
  it('save model.json, weights.bin and descent-training.json, and load them back with the optimizer state and generator', async () => {
    const model = smallModel(7);
    const { images, labels } = batch(64);
    await model.fit(images, labels, { epochs: 1, batchSize: 16 });
    const dir = join(tmp, 'model');
    await saveModel(dir, model, { dataset: 'fashion-mnist', seed: 7, epochsCompleted: 1, status: 'complete', ...captureTrainingState(model) });
    expect(readdirSync(dir).sort()).toEqual(['descent-optimizer.bin', 'descent-training.json', 'model.json', 'weights.bin']);
    const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
    expect(json.weightsManifest[0].paths).toEqual(['weights.bin']);
    expect(readFileSync(join(dir, 'weights.bin')).equals(weightBytes(model))).toBe(true);

    const loaded = await loadModel(dir);
    expect(loaded.warnings).toEqual([]);
    expect(loaded.metadata).toMatchObject({ dataset: 'fashion-mnist', seed: 7, epochsCompleted: 1, status: 'complete' });
    expect(loaded.metadata?.optimizer?.state?.iterations).toBe(4);
    const copy = loaded.model;
    copy.random.setState(loaded.metadata!.random!);
    copy.compile({ optimizer: restoreOptimizer(copy, loaded.metadata!.optimizer!), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    // One more epoch on both: identical only if weights, Adam moments, step count and generator all came back exactly.
    await model.fit(images, labels, { epochs: 1, batchSize: 16 });
    await copy.fit(images, labels, { epochs: 1, batchSize: 16 });
    expect(weightBytes(copy).equals(weightBytes(model))).toBe(true);
  });

  it('restore SGD momentum too', async () => {
    const model = smallModel(8);
    model.compile({ optimizer: sgd({ learningRate: 0.05, momentum: 0.9 }), loss: 'sparseCategoricalCrossentropy' });
    const { images, labels } = batch(32);
    await model.fit(images, labels, { epochs: 1, batchSize: 8 });
    await saveModel(tmp, model, captureTrainingState(model));
    const loaded = await loadModel(tmp);
    const copy = loaded.model;
    copy.random.setState(loaded.metadata!.random!);
    copy.compile({ optimizer: restoreOptimizer(copy, loaded.metadata!.optimizer!), loss: 'sparseCategoricalCrossentropy' });
    await model.fit(images, labels, { epochs: 1, batchSize: 8 });
    await copy.fit(images, labels, { epochs: 1, batchSize: 8 });
    expect(weightBytes(copy).equals(weightBytes(model))).toBe(true);
  });

  it('report a missing folder, a missing or malformed model.json, a wrong format and a weights.bin of the wrong size, naming the file', async () => {
    const good = join(tmp, 'good');
    await saveModel(good, smallModel());
    const variant = (name: string, change: (dir: string) => void): string => {
      const dir = join(tmp, name);
      mkdirSync(dir);
      for (const file of readdirSync(good)) copyFileSync(join(good, file), join(dir, file));
      change(dir);
      return dir;
    };
    const cases: Array<[string, RegExp]> = [
      [join(tmp, 'absent'), /absent: model folder does not exist$/],
      [join(good, 'weights.bin'), /weights\.bin: is not a folder/],
      [variant('no-json', (d) => rmSync(join(d, 'model.json'))), /no-json\/model\.json: is missing/],
      [variant('bad-json', (d) => writeFileSync(join(d, 'model.json'), '{"format": "layers-model", ')), /bad-json\/model\.json: is not valid JSON/],
      [variant('graph', (d) => writeFileSync(join(d, 'model.json'), JSON.stringify({ format: 'graph-model', modelTopology: {} }))), /graph\/model\.json: format "graph-model" is not supported/],
      [variant('short', (d) => writeFileSync(join(d, 'weights.bin'), readFileSync(join(d, 'weights.bin')).subarray(0, 1000))), /short\/weights\.bin: has 1000 bytes but the weightsManifest/],
      [variant('no-weights', (d) => rmSync(join(d, 'weights.bin'))), /no-weights\/weights\.bin: is missing/],
      [variant('escape', (d) => {
        const json = JSON.parse(readFileSync(join(d, 'model.json'), 'utf8'));
        json.weightsManifest[0].paths = ['../good/weights.bin'];
        writeFileSync(join(d, 'model.json'), JSON.stringify(json));
      }), /weightsManifest path "\.\.\/good\/weights\.bin" is not a plain file name inside the model folder/],
    ];
    for (const [dir, message] of cases) {
      const attempt = loadModel(dir);
      await expect(attempt).rejects.toThrow(ModelFormatError);
      await expect(loadModel(dir)).rejects.toThrow(message);
    }
  });

  it('a weights.bin of the wrong size is reported by size when model.json carries no checksum (files from tfjs)', async () => {
    const artifacts = modelToArtifacts(smallModel());
    const json = { format: 'layers-model', modelTopology: artifacts.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }] };
    const dir = writeFolder(join(tmp, 'tfjs'), json, new Uint8Array(artifacts.weightData).subarray(4));
    await expect(loadModel(dir)).rejects.toThrow(/tfjs\/weights\.bin: has \d+ bytes but the weightsManifest/);
  });

  it('after a save died between renaming weights.bin and model.json, load the new model from its pending model.json', async () => {
    const dir = join(tmp, 'model');
    const before = smallModel(1);
    const after = smallModel(2);
    await saveModel(dir, before, { epochsCompleted: 1 });
    // Make the files of a second save, then put the pair back into the state a crash between the renames leaves.
    const second = join(tmp, 'second');
    const result = await saveModel(second, after, { epochsCompleted: 2 });
    copyFileSync(join(second, 'weights.bin'), join(dir, 'weights.bin'));
    copyFileSync(join(second, 'model.json'), join(dir, `.model.json.${result.saveId}.tmp`));
    copyFileSync(join(second, 'descent-training.json'), join(dir, `.descent-training.json.${result.saveId}.tmp`));

    const loaded = await loadModel(dir);
    expect(loaded.recovered).toBe(true);
    expect(weightBytes(loaded.model).equals(weightBytes(after))).toBe(true);
    expect(loaded.metadata?.epochsCompleted).toBe(2);

    // The next save completes normally and clears the leftovers.
    await saveModel(dir, after, { epochsCompleted: 3 });
    expect(readdirSync(dir).sort()).toEqual(['descent-training.json', 'model.json', 'weights.bin']);
    const next = await loadModel(dir);
    expect(next.recovered).toBe(false);
    expect(next.metadata?.epochsCompleted).toBe(3);
  });

  it('never pair weights.bin with a model.json from another save: a torn pair is an error, stale training state a warning', async () => {
    const one = join(tmp, 'one');
    const two = join(tmp, 'two');
    await saveModel(one, smallModel(1), { epochsCompleted: 1 });
    await saveModel(two, smallModel(2), { epochsCompleted: 2 });
    copyFileSync(join(two, 'weights.bin'), join(one, 'weights.bin'));
    await expect(loadModel(one)).rejects.toThrow(/one\/weights\.bin: does not belong to .*one\/model\.json/);

    const three = join(tmp, 'three');
    await saveModel(three, smallModel(3), { epochsCompleted: 3 });
    copyFileSync(join(two, 'descent-training.json'), join(three, 'descent-training.json'));
    const loaded = await loadModel(three);
    expect(loaded.metadata).toBeUndefined();
    expect(loaded.warnings).toHaveLength(1);
    expect(loaded.warnings[0]).toMatch(/three\/descent-training\.json: belongs to another save/);
  });

  it('saving into a path under a file fails with a message naming the folder, and writes nothing', async () => {
    writeFileSync(join(tmp, 'file'), 'x');
    await expect(saveModel(join(tmp, 'file', 'model'), smallModel())).rejects.toThrow(/file\/model: cannot create the model folder/);
    expect(readdirSync(tmp)).toEqual(['file']);
  });
});

describe('callbacks that write files', () => {
  it('ModelCheckpoint with saveBestOnly saves only improving epochs, with the state to resume from', async () => {
    const model = smallModel(9);
    const dir = join(tmp, 'ckpt');
    const messages: string[] = [];
    const checkpoint = new ModelCheckpoint({ dir, monitor: 'val_loss', saveBestOnly: true, log: (m) => messages.push(m), metadata: () => ({ dataset: 'x' }) });
    checkpoint.setModel(model);
    for (const [epoch, val_loss] of [[0, 0.9], [1, 0.7], [2, 0.8]] as const) await checkpoint.onEpochEnd(epoch, { loss: 1, val_loss, seconds: 1 });
    expect(checkpoint.saved).toEqual([0, 1]);
    expect(checkpoint.getState()).toEqual({ best: 0.7, bestEpoch: 1 });
    expect(messages).toEqual([
      `Epoch 1: val_loss improved from inf to 0.90000, saving model to ${dir}`,
      `Epoch 2: val_loss improved from 0.90000 to 0.70000, saving model to ${dir}`,
      'Epoch 3: val_loss did not improve from 0.70000',
    ]);
    const loaded = await loadModel(dir);
    expect(loaded.metadata).toMatchObject({ status: 'checkpoint', epochsCompleted: 2, dataset: 'x' });
    expect(loaded.metadata?.optimizer?.name).toBe('adam');
  });

  it('CsvLogger writes one row per epoch and, when resuming, keeps the rows of the epochs already done', () => {
    const file = join(tmp, 'log.csv');
    const first = new CsvLogger(file);
    first.onTrainBegin();
    first.onEpochEnd(0, { loss: 0.5, accuracy: 0.8, seconds: 2 });
    first.onEpochEnd(1, { loss: 0.25, accuracy: 0.9, seconds: 2 });
    first.onEpochEnd(2, { loss: 0.125, accuracy: 0.95, seconds: 2 });
    expect(readFileSync(file, 'utf8')).toBe('epoch,loss,accuracy,val_loss,val_accuracy,seconds\n1,0.5,0.8,,,2\n2,0.25,0.9,,,2\n3,0.125,0.95,,,2\n');
    const resumed = new CsvLogger(file, { keepEpochs: 1 });
    resumed.onTrainBegin();
    resumed.onEpochEnd(1, { loss: 0.3, accuracy: 0.85, val_loss: 0.4, val_accuracy: 0.8, seconds: 3 });
    expect(readFileSync(file, 'utf8')).toBe('epoch,loss,accuracy,val_loss,val_accuracy,seconds\n1,0.5,0.8,,,2\n2,0.3,0.85,0.4,0.8,3\n');
    expect(readdirSync(tmp)).toEqual(['log.csv']);
  });

  it('EarlyStopping continues from a saved state exactly where it was', () => {
    const model = smallModel();
    const run = (stopper: EarlyStopping, losses: Array<[number, number]>) => {
      stopper.setModel(model);
      for (const [epoch, loss] of losses) stopper.onEpochEnd(epoch, { loss, seconds: 0 });
    };
    const quiet = { monitor: 'loss', patience: 2, log: () => {} };
    const whole = new EarlyStopping(quiet);
    whole.onTrainBegin();
    run(whole, [[0, 1], [1, 0.5], [2, 0.6], [3, 0.7]]);
    expect(whole.stoppedEpoch).toBe(3);
    model.stopTraining = false;

    const first = new EarlyStopping(quiet);
    first.onTrainBegin();
    run(first, [[0, 1], [1, 0.5], [2, 0.6]]);
    const second = new EarlyStopping(quiet);
    second.setState(first.getState());
    second.onTrainBegin();
    run(second, [[3, 0.7]]);
    expect(second.stoppedEpoch).toBe(3);
    expect(second.getState()).toEqual(whole.getState());
  });
});

it('DESCENT_VERSION matches the engine package version', () => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  expect(DESCENT_VERSION).toBe(pkg.version);
});
