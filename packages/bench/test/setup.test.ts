/**
 * The setup commands for the TensorFlow references: where they look for TensorFlow, how they
 * reject bad flags (one line, exit 2, nothing changed), and that a second run does nothing.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { SetupError, findTensorFlow, findWheel, libtensorflowDir, parseWheelName, wheelFolders } from '../src/setup/local-tensorflow.js';
import { bindingPath, tfjsNodeDir } from '../src/setup/tfjs-node.js';

const SETUP_TFJS_NODE = fileURLToPath(new URL('../dist/setup/tfjs-node.js', import.meta.url));
const SETUP_KERAS = fileURLToPath(new URL('../dist/setup/keras.js', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'descent-setup-'));

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function touch(path: string): string {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, '');
  return path;
}

function run(script: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [script, ...args], { env, timeout: 120_000 }, (error, _stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stderr });
    });
  });
}

describe('finding TensorFlow on the machine', () => {
  it('reads Linux x86_64 TensorFlow wheels and nothing else', () => {
    expect(parseWheelName('/w/tensorflow_cpu-2.21.0-cp311-cp311-manylinux_2_27_x86_64.whl')).toEqual({
      kind: 'wheel', path: '/w/tensorflow_cpu-2.21.0-cp311-cp311-manylinux_2_27_x86_64.whl', project: 'tensorflow_cpu', version: '2.21.0',
    });
    expect(parseWheelName('tensorflow-2.16.1-cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64.whl')?.version).toBe('2.16.1');
    for (const name of [
      'tensorflow-2.16.1-cp311-cp311-macosx_12_0_arm64.whl',
      'tensorflow_cpu-2.21.0-cp311-cp311-manylinux_2_27_aarch64.whl',
      'tensorflow_text-2.21.0-cp311-cp311-manylinux_2_27_x86_64.whl',
      'keras-3.15.1-py3-none-any.whl',
    ]) expect(parseWheelName(name), name).toBeUndefined();
  });

  it('takes the newest version, and the CPU build at equal versions', () => {
    const folder = join(scratch, 'wheels');
    for (const name of [
      'tensorflow-2.21.0-cp311-cp311-manylinux_2_27_x86_64.whl',
      'tensorflow_cpu-2.21.0-cp311-cp311-manylinux_2_27_x86_64.whl',
      'tensorflow_cpu-2.9.1-cp310-cp310-manylinux_2_17_x86_64.whl',
      'tensorflow_cpu-2.10.0-cp310-cp310-manylinux_2_17_x86_64.whl',
    ]) touch(join(folder, name));
    expect(findWheel([folder])?.path).toBe(join(folder, 'tensorflow_cpu-2.21.0-cp311-cp311-manylinux_2_27_x86_64.whl'));
    expect(findWheel([join(scratch, 'missing'), folder])?.version).toBe('2.21.0');
    expect(findWheel([join(scratch, 'missing')])).toBeUndefined();
    expect(wheelFolders({ PIP_FIND_LINKS: `${folder} https://example.org/simple ${join(scratch, 'missing')}` })[0]).toBe(folder);
  });

  it('recognises libtensorflow as Google publishes it, and says what --from lacks', () => {
    const dir = join(scratch, 'libtensorflow');
    touch(join(dir, 'include/tensorflow/c/c_api.h'));
    touch(join(dir, 'lib/libtensorflow.so.2'));
    expect(libtensorflowDir(dir)).toBeUndefined(); // no framework library yet
    touch(join(dir, 'lib/libtensorflow_framework.so.2'));
    expect(findTensorFlow(dir)).toEqual({ kind: 'libtensorflow', dir, library: 'libtensorflow.so.2', framework: 'libtensorflow_framework.so.2' });
    expect(() => findTensorFlow(join(scratch, 'nothing-here'))).toThrow(/--from .*: no such file or folder/);
    const notAWheel = touch(join(scratch, 'tensorflow.zip'));
    expect(() => findTensorFlow(notAWheel)).toThrow(SetupError);
    expect(() => findTensorFlow(scratch)).toThrow(/holds neither libtensorflow .* nor a TensorFlow wheel/);
  });
});

describe('setup commands', () => {
  it.each([
    ['setup:tfjs-node', ['--from', '/no/such/wheel.whl'], /^setup:tfjs-node: --from \/no\/such\/wheel\.whl: no such file or folder$/],
    ['setup:tfjs-node', ['--frobnicate'], /^setup:tfjs-node: Unknown option '--frobnicate'/],
    ['setup:keras', ['--python', 'no-such-python-here', '--venv', join(scratch, 'new-venv')], /^setup:keras: no-such-python-here --version: cannot run no-such-python-here: /],
  ])('%s %j fails with one line', async (name, args, message) => {
    const { code, stderr } = await run(name === 'setup:keras' ? SETUP_KERAS : SETUP_TFJS_NODE, args);
    expect(code).toBeGreaterThan(0);
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr.trimEnd()).toMatch(message);
  });

  it('setup:keras will not take over a folder that is not a virtualenv', async () => {
    const folder = join(scratch, 'not-a-venv');
    const precious = touch(join(folder, 'notes.txt'));
    const { code, stderr } = await run(SETUP_KERAS, ['--venv', folder]);
    expect(code).toBe(2);
    expect(stderr.trimEnd()).toMatch(/^setup:keras: --venv .*not-a-venv: the folder exists and is not a virtualenv; choose another$/);
    expect(statSync(precious).isFile()).toBe(true);
  });

  it('setup:tfjs-node run again on a built addon checks it and changes nothing', async (context) => {
    let addon: string;
    try {
      addon = bindingPath(tfjsNodeDir()).path;
      statSync(addon);
    } catch {
      context.skip('tfjs-node is not set up here (npm run setup:tfjs-node)');
    }
    const before = statSync(addon!).mtimeMs;
    const { code, stderr } = await run(SETUP_TFJS_NODE, []);
    expect(code, stderr).toBe(0);
    expect(stderr).toMatch(/runs TensorFlow \d+\.\d+\.\d+.*Nothing to do\.$/m);
    expect(statSync(addon!).mtimeMs).toBe(before);
  });
});
