/**
 * Model definitions (--model FILE.json, --layers, tune's layer templates) and search spaces (tune
 * --space): what used to allocate before checking, hang a probe, or quote kilobytes of input is
 * now a short typed error raised before any weight exists.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, DescentError, ModelFormatError, UsageError, checkDefinition, defineModel, kernels, modelFromDefinitionText, parseLayers, setBackend } from '@descent/engine';
import { readSpaceFile, spaceFromText } from '@descent/jobs';
import { buildTrainingModel } from '../../cli/src/model-definition.js';
import { DEFINITIONS_DIR } from '../src/index.js';
import { expectTypedFailure } from './expect-failure.js';

const MiB = 2 ** 20;
let tmp: string;
beforeAll(() => {
  setBackend('wasm');
  tmp = mkdtempSync(join(tmpdir(), 'descent-definitions-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** As expectTypedFailure, and nothing allocated in WASM memory. */
async function expectRefused(attempt: () => unknown, pattern: RegExp, type: typeof DescentError): Promise<void> {
  const before = kernels().memoryBytes();
  await expectTypedFailure(attempt, pattern, type);
  expect(kernels().memoryBytes()).toBe(before);
}

const options = { inputShape: [28, 28], classes: 10, seed: 1 };

describe('--layers definitions', () => {
  const cases: Array<[string, RegExp]> = [
    ['flatten,dense:99999999', /^layer 2 'dense:99999999': UNITS 99999999 is more than descent allows \(16777216\)$/],
    ['flatten,dense:4000000', /the model would have 3,\d{3},\d{3},\d{3} parameters, more than descent builds here \(67,108,864\)/],
    ['conv2d:100000:3,flatten', /makes 67,600,000 values per sample, more than descent allows \(16,777,216\)/],
    [`flatten,${'x'.repeat(5000)}`, /^layer 2 "x{40}…": unknown layer "x{40}…"; known:/],
    ['flatten,dense:12\n8', /^layer 2 "dense:12\\n8": UNITS "12\\n8" is not a positive whole number$/],
    [Array(1500).fill('flatten').join(','), /the definition has 1500 layers, more than descent builds \(1000\)/],
    ['reshape:1x1x1x1x1x1x1x1x784', /shape '1x1x1x1x1x1x1x1x784' has more than 8 dimensions/],
  ];
  for (const [spec, pattern] of cases) {
    it(`${JSON.stringify(spec).slice(0, 50)}: refused before any weight is made`, async () => {
      await expectRefused(() => defineModel(parseLayers(spec), options), pattern, ConfigError);
    });
  }

  it('a model within the cap is built, and the cap can be lowered for definitions from others', async () => {
    const model = defineModel(parseLayers('flatten,dense:1000:relu'), options);
    expect(model.countParameters()).toBe(795_010);
    model.dispose();
    await expectRefused(() => defineModel(parseLayers('flatten,dense:1000:relu'), { ...options, maxParameters: 100_000 }), /795,010 parameters, more than descent builds here \(100,000\)/, ConfigError);
    expect(checkDefinition(parseLayers('conv2d:8:3:relu,flatten'), options).map((layer) => layer.className)).toEqual(['Reshape', 'Conv2D', 'Flatten', 'Dense']);
  });
});

describe('--model FILE.json definitions', () => {
  const keras = JSON.parse(readFileSync(join(DEFINITIONS_DIR, 'keras-cnn.json'), 'utf8'));
  const denseOf = (json: any) => json.config.layers.find((layer: any) => layer.class_name === 'Dense');

  it('a Keras CNN builds; the same with a 4,000,000-unit Dense is refused before building', async () => {
    const model = modelFromDefinitionText(JSON.stringify(keras), { ...options, source: '--model cnn.json' });
    expect(model.countParameters()).toBeGreaterThan(100_000);
    model.dispose();
    const huge = structuredClone(keras);
    denseOf(huge).config.units = 4_000_000;
    await expectRefused(() => modelFromDefinitionText(JSON.stringify(huge), { ...options, source: '--model cnn.json' }), /^--model cnn\.json: the model would have [\d,]+ parameters, more than descent builds here/, ConfigError);
  });

  it('JSON nested 100,000 deep, or cut short, is a one-line error', async () => {
    await expectRefused(() => modelFromDefinitionText(`{"config": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`, { ...options, source: '--model deep.json' }), /^--model deep\.json: nests arrays or objects more than 64 deep$/, ModelFormatError);
    await expectRefused(() => modelFromDefinitionText('{"class_name": "Sequential",\n\n  "con', { ...options, source: '--model cut.json' }), /^--model cut\.json: is not valid JSON/, ModelFormatError);
  });

  it('descent train --model refuses a FIFO and a file over 4 MiB without reading them', async () => {
    const big = join(tmp, 'big.json');
    writeFileSync(big, ' '.repeat(4 * MiB + 1));
    const fromFile = (file: string) => () => buildTrainingModel({ model: 'json', definition: file }, { hidden: [], dropout: 0, seed: 1 }, [28, 28], 10);
    await expectRefused(fromFile(big), /^--model .*big\.json: is 4 MiB, more than a model definition may be \(4 MiB\)$/, UsageError);
    const fifo = join(tmp, 'fifo.json');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    await expectRefused(fromFile(fifo), /^--model .*fifo\.json: is not a regular file/, UsageError);
    await expectRefused(fromFile(tmp), /^--model .*: is not a file \(expected mlp, cnn, or a Keras\/TensorFlow\.js model JSON file\)$/, UsageError);
  });
});

describe('tune search spaces', () => {
  it('a layer template is checked without building it: a 313-GB dense layer is refused at once', async () => {
    await expectRefused(() => spaceFromText('{"layers": ["flatten,dense:100000000"]}', 'space.json'), /^space\.json: layers: .*more than descent allows \(16777216\)$/, UsageError);
    const space = spaceFromText('{"layers": ["flatten,dense:{units}:relu"], "units": [8, 16]}', 'space.json');
    expect(space.layers).toEqual({ kind: 'choice', values: ['flatten,dense:{units}:relu'] });
  });

  const cases: Array<[string, RegExp]> = [
    [`{"${'k'.repeat(100_000)}": 1}`, /^space\.json: unknown hyperparameter "k{40}…" \(known:/],
    ['{"optimizer": ["adam", "x\\ny"]}', /^space\.json: optimizer: unknown optimizer "x\\ny" \(adam or sgd\)$/],
    ['{"units": {"min": 1, "max": 1e12}}', /^space\.json: units: units must be at most 16777216, got 1000000000000$/],
    ['{"hidden_layers": [100000]}', /hidden layers must be at most 1000, got 100000$/],
    ['{"lr": [{"a": [1, 2, 3]}]}', /^space\.json: lr: \{"a": \[1, 2, 3\]\} is not a number$/],
    [`{"units": ${'['.repeat(200_000)}${']'.repeat(200_000)}}`, /^space\.json: nests arrays or objects more than 64 deep$/],
    // Found by npm run fuzz -- --target space (seed 392): the parser's message quoted a line break.
    ['\u0001"lr":\n" ","dropout":0.2}', /^space\.json: is not valid JSON \(Unexpected token '\\u0001', .*\\n.*\)$/],
  ];
  for (const [text, pattern] of cases) {
    it(`${JSON.stringify(text).slice(0, 50)}: a short typed error`, async () => {
      await expectRefused(() => spaceFromText(text, 'space.json'), pattern, UsageError);
    });
  }

  it('descent tune --space refuses a file over 1 MiB and a folder without reading them', async () => {
    const big = join(tmp, 'space.json');
    writeFileSync(big, ' '.repeat(MiB + 1));
    await expectRefused(() => readSpaceFile(big), /^--space .*space\.json: is 1 MiB, more than a search space may be \(1 MiB\)$/, UsageError);
    await expectRefused(() => readSpaceFile(tmp), /^--space .*: is a folder, not a file$/, UsageError);
    await expectRefused(() => readSpaceFile(join(tmp, 'none.json')), /^--space .*none\.json: no such file$/, UsageError);
  });
});
