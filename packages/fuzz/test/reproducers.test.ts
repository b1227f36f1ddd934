/**
 * Every file that once crashed a loader, blew up its memory or hung it, as a regular test:
 * the failure it causes now is typed, short, on one line, and cheap.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DataError, DescentError, ModelFormatError, base64ToFloat32, kernels, loadModel, loadModelArtifacts, modelFromArtifacts, parseIdxImages, restoreRun,
  setBackend, type Sequential,
} from '@descent/engine';
import { prepareImage } from '@descent/images';
import { FIXTURE_DIR, savedFolder, withClaimedSize, type SavedFolder } from '../src/index.js';
import { expectTypedFailure } from './expect-failure.js';
import { runCli } from '../../../test/cli-helpers.js';

const MiB = 2 ** 20;
let tmp: string;
let saved: SavedFolder;

beforeAll(async () => {
  setBackend('wasm');
  tmp = mkdtempSync(join(tmpdir(), 'descent-repro-'));
  saved = await savedFolder(tmp);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A model folder from the saved one, with model.json (and optionally descent-training.json) replaced. */
function folder(name: string, modelJson: unknown = saved.model, training: unknown = saved.training): string {
  const dir = join(tmp, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  writeFileSync(join(dir, 'model.json'), typeof modelJson === 'string' ? modelJson : JSON.stringify(modelJson));
  writeFileSync(join(dir, 'weights.bin'), saved.weights);
  writeFileSync(join(dir, 'descent-training.json'), JSON.stringify(training));
  writeFileSync(join(dir, 'descent-optimizer.bin'), saved.optimizer);
  return dir;
}

/** saved.model with `change` applied to a deep copy. */
function modelWith(change: (json: any) => void): unknown {
  const json = structuredClone(saved.model);
  change(json);
  return json;
}

describe('IDX reproducers', () => {
  it('a 1 MB gzip bomb that inflates to 1 GiB stops one byte past what its header promises', async () => {
    const head = new Uint8Array(16);
    const view = new DataView(head.buffer);
    [0x803, 1, 28, 28].forEach((v, i) => view.setUint32(4 * i, v));
    const zeros = gzipSync(new Uint8Array(MiB), { level: 9 });
    const bomb = Buffer.concat([gzipSync(head), ...Array.from({ length: 1024 }, () => zeros)]);
    expect(bomb.length).toBeLessThan(1.1 * MiB);
    await expectTypedFailure(() => parseIdxImages(bomb, 'bomb.gz'), /^bomb\.gz: extra bytes after the data: header says 1 image of 28x28 \(784 bytes\)/, DataError);
  });

  it('a real images file whose gzip trailer claims 4 GiB is not given 1 GiB up front', async () => {
    const gz = Buffer.from(readFileSync(join(FIXTURE_DIR, 'train-images-idx3-ubyte.gz')));
    gz.writeUInt32LE(0xffff_ffff, gz.length - 4);
    await expectTypedFailure(() => parseIdxImages(gz, 'isize.gz'), /^isize\.gz: gzip data is corrupt or truncated \(incorrect length check\)$/, DataError);
  });
});

describe('model.json reproducers', () => {
  const cases: Array<[string, (json: any) => void, RegExp]> = [
    ['class_name an object', (j) => (j.modelTopology.config.layers[1].class_name = { a: 1 }), /layers\[1\]\.class_name: expected a string, got \{"a": 1\}/],
    ['model class an array', (j) => (j.modelTopology.class_name = ['Sequential']), /model class \["Sequential"\] is not supported/],
    ['activation an array', (j) => (j.modelTopology.config.layers[1].config.activation = ['relu']), /activation is not supported .*, got \["relu"\]/],
    ['activation with an object name', (j) => (j.modelTopology.config.layers[1].config.activation = { class_name: { x: 1 } }), /activation is not supported .*, got \{"x": 1\}/],
    ['dtype policy with an object name', (j) => (j.modelTopology.config.layers[1].config.dtype = { config: { name: {} } }), /dtype must be float32/],
    ['format an object', (j) => (j.format = {}), /format \{\} is not supported/],
    ['format nested 100,000 deep', (j) => (j.format = 'DEEP'), /model\.json: nests arrays or objects more than 64 deep$/],
    ['batch_input_shape nested 100,000 deep', (j) => (j.modelTopology.config.layers[0].config.batch_input_shape = 'DEEP'), /more than 64 deep$/],
    ['a manifest path null', (j) => (j.weightsManifest[0].paths = [null]), /weightsManifest\[0\]\.paths\[0\]: expected a string, got null/],
    ['a manifest path true', (j) => (j.weightsManifest[0].paths = [true]), /paths\[0\]: expected a string, got true/],
    ['a manifest path a number', (j) => (j.weightsManifest[0].paths = 7), /paths: expected an array, got 7/],
    ['a weight entry null', (j) => (j.weightsManifest[0].weights[1] = null), /weights\[1\]: expected an object, got null/],
    ['a Dense with 10⁹ units', (j) => (j.modelTopology.config.layers[1].config.units = 1e9), /units: must be at most 16777216, got 1000000000/],
    ['a Dense with 10⁶ units', (j) => (j.modelTopology.config.layers[1].config.units = 1e6), /the layers need 795000010 weights, more than descent loads \(268435456\)$/],
    ['a Dense with 10⁵ units', (j) => (j.modelTopology.config.layers[1].config.units = 1e5), /weight "dense\/kernel" has shape \[784, 8\] but the layer needs \[784, 100000\]/],
    ['weights.bin listed 2,500 times', (j) => (j.weightsManifest[0].paths = Array(2500).fill('weights.bin')), /weightsManifest\[0\]\.paths: has too many items \(at most 1000\)$/],
    ['weights.bin listed twice', (j) => (j.weightsManifest[0].paths = ['weights.bin', 'weights.bin']), /weightsManifest names "weights\.bin" more than once/],
    ['a 200,000-character layer name', (j) => (j.modelTopology.config.layers[1].config.name = `a\n${'x'.repeat(200_000)}`), /layer 'a\\nx+…' \(Dense\): name: is too long/],
  ];
  for (const [what, change, pattern] of cases) {
    it(`${what}: a typed one-line error, nothing allocated`, async () => {
      const before = kernels().memoryBytes();
      const json = JSON.stringify(modelWith(change)).replace('"DEEP"', `${'['.repeat(100_000)}${']'.repeat(100_000)}`);
      await expectTypedFailure(() => loadModel(folder('case', json)), pattern, ModelFormatError);
      expect(kernels().memoryBytes()).toBe(before);
    });
  }

  it('a 147-byte model.json with units: 1000000 fails before building, on either backend (descent summary uses the reference one)', async () => {
    const tiny = JSON.stringify({ modelTopology: { class_name: 'Sequential', config: [{ class_name: 'Dense', config: { units: 1_000_000, batch_input_shape: [null, 784] } }] }, weightsManifest: [{ paths: ['weights.bin'], weights: [] }] });
    expect(tiny.length).toBeLessThan(200);
    for (const backend of ['ts', 'wasm'] as const) {
      setBackend(backend);
      for (const [json, pattern] of [[tiny, /the layers need 785000000 weights/], [tiny.replace('1000000', '5000000'), /more than descent loads/]] as const) {
        const dir = folder('tiny', json);
        writeFileSync(join(dir, 'weights.bin'), new Uint8Array(0));
        await expectTypedFailure(() => loadModel(dir), pattern, ModelFormatError);
      }
    }
    setBackend('wasm');
  });

  it('a weights.bin that is a FIFO is refused at once instead of blocking for ever', async () => {
    const dir = folder('fifo');
    rmSync(join(dir, 'weights.bin'));
    expect(spawnSync('mkfifo', [join(dir, 'weights.bin')]).status).toBe(0);
    await expectTypedFailure(() => loadModel(dir), /weights\.bin: is not a regular file \(a FIFO, socket or device\)/, ModelFormatError);
  });

  it('manifest paths that leave the folder are refused, and the file outside is never read', async () => {
    const outside = join(tmp, 'outside.bin');
    writeFileSync(outside, saved.weights);
    const paths = ['../outside.bin', outside, '/etc/passwd', 'sub/weights.bin', 'weights.bin\u0000.txt', '..', '.', 'a\\..\\weights.bin', ''];
    for (const path of paths) {
      await expectTypedFailure(() => loadModel(folder('escape', modelWith((j) => (j.weightsManifest[0].paths = [path])))), /is not a plain file name inside the model folder|must not be empty|weightsManifest/, ModelFormatError);
    }
    const linked = folder('linked');
    rmSync(join(linked, 'weights.bin'));
    symlinkSync(outside, join(linked, 'weights.bin'));
    await expectTypedFailure(() => loadModel(linked), /weightsManifest path "weights\.bin" leads outside the model folder \(a symbolic link\)/, ModelFormatError);
  });
});

describe('descent-training.json reproducers', () => {
  const stateCases: Array<[string, (training: any) => void]> = [
    ['slots null', (t) => (t.optimizer.state.slots = null)],
    ['slots a number', (t) => (t.optimizer.state.slots = 3)],
    ['a slot not a list', (t) => (t.optimizer.state.slots.m = 'abc')],
    ['version-1 base64 slots holding objects', (t) => (t.optimizer.state = { iterations: 1, encoding: 'float32-base64', slots: { m: [{}, []], v: [null] } })],
    ['history an empty object', (t) => (t.history = {})],
    ['optimizer.config null', (t) => (t.optimizer.config = null)],
    ['history lists of different lengths', (t) => (t.history.loss = [1, 2, 3])],
  ];
  for (const [what, change] of stateCases) {
    it(`${what}: the model loads, the training state is ignored with a one-line warning`, async () => {
      const training = structuredClone(saved.training);
      change(training);
      const loaded = await loadModel(folder('state', saved.model, training));
      loaded.model.dispose();
      expect(loaded.metadata).toBeUndefined();
      expect(loaded.warnings).toHaveLength(1);
      expect(loaded.warnings[0]).toMatch(/descent-training\.json: .*; training state ignored$/);
      expect(loaded.warnings[0]).not.toMatch(/[\r\n]/);
    });
  }

  it('descent summary prints the model and a warning for training metadata of the wrong shape', async () => {
    const training = structuredClone(saved.training);
    training.history = {};
    const result = await runCli(['summary', folder('summary', saved.model, training)]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/Total params: 6,370/);
    expect(result.stderr).toMatch(/history\.epoch: is missing .*training state ignored/);
  });

  it('base64ToFloat32 refuses what is not base64 text with a typed error', () => {
    for (const value of [{}, [], null, 12, 'abc', 'a\nb']) expect(() => base64ToFloat32(value)).toThrow(ModelFormatError);
    expect(Array.from(base64ToFloat32('AACAPw=='))).toEqual([1]);
  });
});

describe('a failed load frees everything it allocated', () => {
  it('10,000 failed loads, then a valid one: WASM memory back where it started', async () => {
    setBackend('wasm');
    const K = kernels() as ReturnType<typeof kernels> & { memory: WebAssembly.Memory };
    const dir = folder('frees');
    const goodRun = restoreRun(await loadModelArtifacts(dir));
    goodRun.optimizer.dispose?.();
    goodRun.model.dispose();
    const live = K.memoryBytes();
    const size = K.memory.buffer.byteLength;

    // Failures before anything is built (the model file), and after (the model is built, then its
    // optimizer state does not fit it): both kinds must leave nothing behind.
    const loaded = await loadModelArtifacts(dir);
    const badModel = { ...loaded.artifacts, modelTopology: modelWith((j) => (j.modelTopology.config.layers[1].config.units = 100_000)) as any };
    badModel.modelTopology = (badModel.modelTopology as any).modelTopology;
    const badState = structuredClone(loaded);
    badState.metadata!.optimizer!.state!.slots.m[0] = Array(784 * 8 - 1).fill(0);
    let failures = 0;
    for (let i = 0; i < 10_000; i++) {
      try {
        if (i % 10 !== 0) modelFromArtifacts(badModel);
        else restoreRun(badState);
      } catch (err) {
        if (!(err instanceof ModelFormatError)) throw err;
        failures++;
      }
    }
    expect(failures).toBe(10_000);
    const run = restoreRun(await loadModelArtifacts(dir));
    const model: Sequential = run.model;
    expect(model.countParameters()).toBe(6370);
    run.optimizer.dispose?.();
    model.dispose();
    expect(K.memoryBytes()).toBe(live);
    expect(K.memory.buffer.byteLength).toBe(size);
  });
});

describe('image reproducers', () => {
  it('a PNG whose header says 16,000 × 16,000 is refused before decoding', async () => {
    const png = new Uint8Array(await sharp({ create: { width: 20, height: 20, channels: 3, background: '#888' } }).png().toBuffer());
    await expectTypedFailure(() => prepareImage(withClaimedSize(png, [16_000, 16_000])!, { name: 'huge.png' }), /^huge\.png: the image has more than 40,000,000 pixels/, DataError);
  });

  it('a truncated JPEG gives one line however many warnings the decoder writes', async () => {
    const jpeg = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#357' } }).jpeg().toBuffer();
    const cut = jpeg.subarray(0, jpeg.length >> 1);
    await expectTypedFailure(() => prepareImage(cut, { name: 'cut.jpg' }), /^cut\.jpg: cannot decode the image \(.+\); use a PNG, JPEG/, DataError);
  });

  it('an image file that is a FIFO is refused', async () => {
    const fifo = join(tmp, 'image.png');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    await expectTypedFailure(() => prepareImage(fifo), /image\.png: is not a regular file/, DataError);
  });
});
