#!/usr/bin/env node
/**
 * `npm run setup:keras -- [--python python3] [--find-links DIR] [--venv DIR] [--force]`: a Python
 * virtualenv with TensorFlow (CPU) and Keras for the bench's Keras engine and the parity test.
 *
 * It lives outside the repository, in ~/.cache/descent/keras-venv by default (about 1.6 GB), so
 * clones and worktrees share one and `git clean` leaves it alone. pip installs from a local wheel
 * folder when one holds a TensorFlow wheel (--find-links, else $PIP_FIND_LINKS or
 * /opt/pypi/files, with --no-index: nothing is downloaded), else from pip's package index.
 * Run again, it checks the virtualenv and does nothing more (--force makes it anew).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { KERAS_VENV_MARKER, defaultKerasVenv, readVenvRecord, venvPython, type KerasVenvRecord } from '../keras-python.js';
import { invokedDirectly, log, runSetupCommand } from './command.js';
import { SetupError, findWheel, isDirectory, wheelFolders } from './local-tensorflow.js';

const USAGE = `Usage: npm run setup:keras -- [options]

Makes a Python virtualenv with TensorFlow (CPU) and Keras for the bench and the parity test.

Options:
  --python PYTHON     the Python to make it with (default python3; 3.9 or newer)
  --find-links DIR    install from the wheels in DIR, offline (default: a folder of $PIP_FIND_LINKS
                      or /opt/pypi/files that holds a TensorFlow wheel, else pip's package index)
  --venv DIR          where to make it (default ~/.cache/descent/keras-venv)
  --force             make it anew even if it is ready
  --verbose           print stack traces on failure
  -h, --help          show this help`;

const VERSIONS = 'import json, tensorflow as tf, keras; print(json.dumps({"tensorflow": tf.__version__, "keras": keras.__version__}))';

function run(command: string, args: string[], what: string): string {
  const result = spawnSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' } });
  if (result.error) throw new SetupError(`${what}: cannot run ${command}: ${result.error.message}`);
  if (result.status !== 0) throw new SetupError(`${what} failed (${command} exited with ${result.status}; its messages are above)`);
  return result.stdout;
}

/** Where pip installs from: the folder holding a TensorFlow wheel, and the requirement to ask for. */
function installSource(findLinks: string | undefined): { folder?: string; requirement: string } {
  if (findLinks !== undefined) {
    if (!isDirectory(findLinks)) throw new SetupError(`--find-links ${findLinks}: not a folder`, 2);
    const wheel = findWheel([findLinks]);
    return { folder: resolve(findLinks), requirement: wheel ? `${wheel.project}==${wheel.version}` : 'tensorflow-cpu' };
  }
  const wheel = findWheel(wheelFolders());
  if (wheel) return { folder: resolve(wheel.path, '..'), requirement: `${wheel.project}==${wheel.version}` };
  return { requirement: 'tensorflow' };
}

export function main(argv: string[]): Promise<number> {
  const options = {
    python: { type: 'string', default: 'python3' },
    'find-links': { type: 'string' },
    venv: { type: 'string' },
    force: { type: 'boolean', default: false },
  } as const;
  return runSetupCommand('setup:keras', USAGE, argv, options, async (values) => {
    const started = performance.now();
    const venv = resolve((values.venv as string | undefined) ?? defaultKerasVenv());
    const python = venvPython(venv);
    const existing = readVenvRecord(venv);
    if (existing && !values.force) {
      const check = spawnSync(python, ['-c', VERSIONS], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' } });
      if (check.status === 0) {
        log(`Keras ${existing.keras} with TensorFlow ${existing.tensorflow} is ready in ${venv}. Nothing to do.`);
        return;
      }
      log(`${venv} is there but cannot import TensorFlow and Keras: making it anew.`);
    }

    // Anything in that place other than a virtualenv is not ours to remove.
    if (existsSync(venv) && readdirSync(venv).length > 0 && !existsSync(join(venv, 'pyvenv.cfg'))) {
      throw new SetupError(`--venv ${venv}: the folder exists and is not a virtualenv; choose another`, 2);
    }

    const basePython = values.python as string;
    const version = run(basePython, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], `${basePython} --version`).trim();
    const [major, minor] = version.split('.').map(Number);
    if (major !== 3 || minor < 9) throw new SetupError(`--python ${basePython}: Python ${version}; TensorFlow needs 3.9 or newer`, 2);
    const { folder, requirement } = installSource(values['find-links'] as string | undefined);

    // A virtualenv without the marker is a half-made one: start again from nothing.
    rmSync(venv, { recursive: true, force: true });
    log(`Making a Python ${version} virtualenv in ${venv}`);
    run(basePython, ['-m', 'venv', venv], 'python -m venv');
    const where = folder ? ['--no-index', '--find-links', folder] : [];
    log(`Installing ${requirement} and keras ${folder ? `from the wheels in ${folder} (offline)` : "from pip's package index"} ...`);
    try {
      run(python, ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-cache-dir', '--no-input', '--progress-bar', 'off', '-q', ...where, requirement, 'keras'], 'pip install');
      const versions = JSON.parse(run(python, ['-c', VERSIONS], 'importing tensorflow and keras').trim().split('\n').pop()!) as { tensorflow: string; keras: string };
      const record: KerasVenvRecord = { python: version, ...versions, from: folder ?? 'the package index', created: new Date().toISOString() };
      writeFileSync(join(venv, KERAS_VENV_MARKER), `${JSON.stringify(record, null, 2)}\n`);
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      log(`Keras ${record.keras} with TensorFlow ${record.tensorflow} is ready in ${venv} (set up in ${seconds} s). The bench finds it there; DESCENT_PYTHON=/path/to/python chooses another.`);
    } catch (error) {
      rmSync(venv, { recursive: true, force: true });
      throw error;
    }
  });
}

if (invokedDirectly(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
