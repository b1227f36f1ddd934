/**
 * What `descent train --model mlp|cnn|FILE.json` and `--layers SPEC` build, and the usage errors
 * (exit code 2) for definitions descent cannot train. test/cli-model-definition.test.ts runs the
 * command itself.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError, setBackend, type Conv2D, type Dense, type Sequential } from '@descent/engine';
import { buildTrainingModel, modelChoice, type ModelChoice } from '../src/model-definition.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

const MODELS = fileURLToPath(new URL('../../../test/fixtures/model-definitions/', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'descent-definitions-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(() => {
  setBackend('ts');
});

const SETTINGS = { hidden: [128], dropout: 0, seed: 1 };
const build = (choice: ModelChoice, settings = SETTINGS): Sequential => buildTrainingModel(choice, settings, [28, 28], 10);
const describeModel = (model: Sequential): string => model.layers.map((layer) => layer.describe()).join(' → ');
const none = () => false;

function writeJson(name: string, value: unknown): string {
  const file = join(tmp, name);
  writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value));
  return file;
}

/** The Keras tutorial CNN's JSON (as Keras 3 writes it) with its layer list changed. */
function kerasCnnWith(change: (layers: Array<{ class_name: string; config: Record<string, unknown> }>) => void): unknown {
  const json = JSON.parse(readFileSync(join(MODELS, 'keras-cnn.json'), 'utf8'));
  change(json.config.layers);
  return json;
}

const TUTORIAL_CNN = 'reshape 28×28×1 → conv2d 32 3×3 relu → maxpool 2×2 → conv2d 64 3×3 relu → maxpool 2×2 → flatten → dense 128 relu → dense 10 softmax';

describe('the models --model and --layers build', () => {
  it('mlp is today\'s default, from --hidden and --dropout', () => {
    expect(modelChoice({}, none)).toEqual({ model: 'mlp', definition: null });
    const model = build(modelChoice({ model: 'mlp' }, none), { hidden: [64, 32], dropout: 0.2, seed: 1 });
    expect(describeModel(model)).toBe('flatten → dense 64 relu → dropout 0.2 → dense 32 relu → dropout 0.2 → dense 10 softmax');
  });

  it('cnn is the tutorial CNN, 225,034 parameters like Keras\'s', () => {
    const model = build(modelChoice({ model: 'cnn' }, none));
    expect(describeModel(model)).toBe(TUTORIAL_CNN);
    expect(model.countParameters()).toBe(225_034);
    expect(model.summary()).toMatch(/max_pooling2d_1 \(MaxPooling2D\)\s+\(None, 5, 5, 64\)\s+0/);
  });

  it('a Keras model.to_json() definition builds the layers it lists, on the input shape it declares', () => {
    const model = build(modelChoice({ model: join(MODELS, 'keras-cnn.json') }, none));
    expect(describeModel(model)).toBe(TUTORIAL_CNN.replace('reshape 28×28×1 → ', ''));
    expect(model.perSampleInputShape).toEqual([28, 28, 1]);
    expect(model.countParameters()).toBe(225_034);
    const reshaped = build(modelChoice({ model: join(MODELS, 'keras-cnn-reshape.json') }, none));
    expect(describeModel(reshaped)).toBe('reshape 28×28×1 → conv2d 16 5×5 stride 2 same relu → maxpool 3×3 stride 2 same → flatten → dropout 0.25 → dense 10 softmax');
  });

  it('a TensorFlow.js model.toJSON() definition, and a tfjs model.json, build the same as --model cnn', async () => {
    const model = tf.sequential({ layers: [
      tf.layers.reshape({ targetShape: [28, 28, 1], inputShape: [28, 28] }),
      tf.layers.conv2d({ filters: 32, kernelSize: 3, activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 64, kernelSize: 3, activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 128, activation: 'relu' }),
      tf.layers.dense({ units: 10, activation: 'softmax' }),
    ] });
    const topology = model.toJSON(null, false);
    const built = build(modelChoice({ model: writeJson('tfjs.json', topology) }, none));
    expect(describeModel(built)).toBe(TUTORIAL_CNN);
    // tfjs's default kernel initializer is Glorot normal, and descent uses it.
    expect((built.layers[1] as Conv2D).kernelInitializer).toEqual({ scale: 1, mode: 'fan_avg', distribution: 'truncated_normal' });
    expect((built.layers[6] as Dense).kernelInitializer).toEqual({ scale: 1, mode: 'fan_avg', distribution: 'truncated_normal' });
    const modelJson = { format: 'layers-model', modelTopology: topology, weightsManifest: [] };
    expect(describeModel(build(modelChoice({ model: writeJson('model.json', modelJson) }, none)))).toBe(TUTORIAL_CNN);
  });

  it('--layers: a reshape in front for images without a channel axis, the softmax output at the end unless given', () => {
    const model = build(modelChoice({ layers: 'conv2d:4:5:relu:same:stride=2, maxpool:3:stride=2, flatten, dense:16:relu, dropout:0.3' }, none));
    expect(describeModel(model)).toBe('reshape 28×28×1 → conv2d 4 5×5 stride 2 same relu → maxpool 3×3 stride 2 → flatten → dense 16 relu → dropout 0.3 → dense 10 softmax');
    expect(model.countParameters()).toBe(4 * 25 + 4 + 144 * 16 + 16 + 16 * 10 + 10);
    const withOutput = build(modelChoice({ layers: 'flatten,dense:32:relu,dense:10:softmax' }, none));
    expect(describeModel(withOutput)).toBe('flatten → dense 32 relu → dense 10 softmax');
    const explicit = build(modelChoice({ layers: 'reshape:28x28x1,conv2d:8:3x5:linear:valid,maxpool:2x2:stride=1:same,flatten' }, none));
    expect(describeModel(explicit)).toBe('reshape 28×28×1 → conv2d 8 3×5 linear → maxpool 2×2 stride 1 same → flatten → dense 10 softmax');
    expect(explicit.layers[1].outputShape?.([28, 28, 1])).toEqual([26, 24, 8]);
  });
});

describe('definitions descent cannot train are usage errors naming the flag and the layer', () => {
  const cases: Array<[string, { model?: string; layers?: string }, RegExp]> = [
    ['a Dense after a 4-D output without Flatten', { layers: 'conv2d:32:3:relu,maxpool:2,dense:128:relu' },
      /^--layers "conv2d:32:3:relu,maxpool:2,dense:128:relu": layer 3 \(dense 128 relu\): needs flat inputs but gets 13×13×32 per sample; put flatten before it$/],
    ['a kernel larger than its input with valid padding', { layers: 'conv2d:8:5,maxpool:2,conv2d:8:13,flatten' },
      /^--layers "[^"]+": layer 3 \(conv2d 8 13×13 linear\): a 13×13 window does not fit in a 12×12 input with 'valid' padding$/],
    ['a pooling window larger than its input', { layers: 'maxpool:2,maxpool:2,maxpool:2,maxpool:4,flatten' }, /layer 4 \(maxpool 4×4\): a 4×4 window does not fit in a 3×3 input/],
    ['an unknown activation', { layers: 'conv2d:32:3:tanh,flatten' }, /^--layers "conv2d:32:3:tanh,flatten": layer 1 'conv2d:32:3:tanh': unknown option 'tanh'; options are relu, linear, valid, same, stride=N$/],
    ['softmax on a convolution', { layers: 'conv2d:32:3:softmax,flatten' }, /layer 1 'conv2d:32:3:softmax': activation softmax on conv2d \(use relu or linear\) is not supported$/],
    ['softmax before the last layer', { layers: 'flatten,dense:32:softmax,dense:10:softmax' }, /dense 32 softmax is only supported as the last layer$/],
    ['an output of the wrong size', { layers: 'flatten,dense:5:softmax' }, /the output layer \(dense 5 softmax\) must have 10 units, one per class$/],
    ['an unknown layer', { layers: 'flatten,lstm:32' }, /layer 2 'lstm:32': unknown layer 'lstm'; known: conv2d, maxpool, dense, dropout, flatten, reshape$/],
    ['a layer string that does not parse', { layers: 'conv2d:32:3:relu,,flatten' }, /has an empty layer/],
    ['a missing size', { layers: 'conv2d:32' }, /layer 1 'conv2d:32': expected conv2d:FILTERS:SIZE/],
    ['a bad number', { layers: 'conv2d:0:3' }, /layer 1 'conv2d:0:3': FILTERS '0' is not a positive whole number$/],
    ['a bad rate', { layers: 'flatten,dropout:1' }, /layer 2 'dropout:1': rate '1' is not a number from 0 up to \(not including\) 1$/],
    ['an option given twice', { layers: 'maxpool:2:same:valid,flatten' }, /padding is given twice/],
    ['a reshape that does not fit', { layers: 'reshape:28x29x1,flatten' }, /cannot reshape \[28, 28\] \(784 values\) to \[28, 29, 1\]/],
    ['a missing definition file', { model: 'nothing-here.json' }, /^--model: '.*nothing-here\.json' is neither mlp nor cnn, and there is no such file$/],
    ['a definition that is not JSON', { model: writeJson('broken.json', '{"class_name": "Sequential", ') }, /^--model .*broken\.json: is not valid JSON/],
    ['a definition that is no Sequential model', { model: writeJson('functional.json', { class_name: 'Functional', config: {} }) }, /model class "Functional" is not supported/],
    ['an unsupported option (dilation)', { model: writeJson('dilated.json', kerasCnnWith((l) => (l[1].config.dilation_rate = [2, 2]))) },
      /^--model .*dilated\.json: layer 'conv2d' \(Conv2D\): dilation_rate is not supported \(descent supports 1\), got \[2, 2\]$/],
    ['grouped convolutions', { model: writeJson('groups.json', kerasCnnWith((l) => (l[3].config.groups = 2))) }, /layer 'conv2d_1' \(Conv2D\): groups is not supported \(descent supports 1\), got 2$/],
    ['an option that changes training (a regularizer)', { model: writeJson('l2.json', kerasCnnWith((l) => (l[6].config.kernel_regularizer = { class_name: 'L2', config: { l2: 0.01 } }))) },
      /layer 'dense' \(Dense\): kernel_regularizer is not supported, got \{"class_name": "L2"/],
    ['another initializer', { model: writeJson('orthogonal.json', kerasCnnWith((l) => (l[1].config.kernel_initializer = { class_name: 'Orthogonal', config: { gain: 1 } }))) },
      /layer 'conv2d' \(Conv2D\): kernel_initializer is not supported \(descent supports the VarianceScaling family.*got \{"class_name": "Orthogonal"/],
    ['a bias initializer', { model: writeJson('ones.json', kerasCnnWith((l) => (l[6].config.bias_initializer = { class_name: 'Ones', config: {} }))) },
      /layer 'dense' \(Dense\): bias_initializer is not supported \(descent starts biases at zero\), got \{"class_name": "Ones"/],
    ['an unsupported layer', { model: writeJson('bn.json', kerasCnnWith((l) => l.splice(2, 0, { class_name: 'BatchNormalization', config: { name: 'batch_normalization' } }))) },
      /layer 'batch_normalization' \(BatchNormalization\): layer class "BatchNormalization" is not supported/],
    ['channels first', { model: writeJson('nchw.json', kerasCnnWith((l) => (l[1].config.data_format = 'channels_first'))) }, /data_format must be channels_last, got "channels_first"/],
    ['causal padding', { model: writeJson('causal.json', kerasCnnWith((l) => (l[2].config.padding = 'causal'))) }, /layer 'max_pooling2d' \(MaxPooling2D\): padding must be valid or same, got "causal"/],
    ['no softmax output', { model: writeJson('logits.json', kerasCnnWith((l) => (l[7].config.activation = 'linear'))) },
      /the model must end with a dense layer of 10 units and softmax activation \(one probability per class\); its last layer is dense 10 linear$/],
    ['inputs of another size', { model: writeJson('rgb.json', kerasCnnWith((l) => (l[0].config.batch_shape = [null, 32, 32, 3]))) },
      /the model takes inputs of shape \[32, 32, 3\] \(3072 values\), but the images have 28×28 = 784 pixels$/],
    ['a Dense on images in a JSON definition', { model: writeJson('noflat.json', kerasCnnWith((l) => l.splice(5, 1))) }, /layer 'dense' \(dense 128 relu\): needs flat inputs but gets 5×5×64 per sample/],
  ];
  it.each(cases)('%s', (_what, flags, message) => {
    let error: unknown;
    try {
      build(modelChoice(flags, none));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).exitCode).toBe(2);
    expect((error as Error).message).not.toContain('\n');
    expect((error as Error).message).toMatch(message);
  });

  it('flags that belong to the mlp, and two definitions at once', () => {
    expect(() => modelChoice({ model: 'cnn' }, (key) => key === 'hidden')).toThrow(/^--hidden applies to --model mlp only; with --model cnn, put the layers in the definition$/);
    expect(() => modelChoice({ layers: 'flatten' }, (key) => key === 'dropout')).toThrow(/^--dropout applies to --model mlp only; with --layers, put the layers in the definition$/);
    expect(() => modelChoice({ layers: 'flatten', model: 'cnn' }, none)).toThrow(/^give either --model or --layers, not both$/);
  });
});
