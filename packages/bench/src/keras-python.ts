/**
 * Which Python runs the Keras engine: $DESCENT_PYTHON when set, else the virtualenv that
 * `npm run setup:keras` makes, else python3 on the PATH if it has TensorFlow and Keras.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { descentCacheDir } from './setup/local-tensorflow.js';

/** Written into the virtualenv last by setup:keras, so a half-made one is never taken for ready. */
export const KERAS_VENV_MARKER = 'descent-keras.json';

export interface KerasVenvRecord {
  python: string;
  tensorflow: string;
  keras: string;
  /** The wheel folder pip installed from, or 'the package index'. */
  from: string;
  created: string;
}

export function defaultKerasVenv(env: NodeJS.ProcessEnv = process.env): string {
  return descentCacheDir('keras-venv', env);
}

export function venvPython(venv: string): string {
  return join(venv, 'bin', 'python');
}

export function readVenvRecord(venv: string): KerasVenvRecord | undefined {
  try {
    return JSON.parse(readFileSync(join(venv, KERAS_VENV_MARKER), 'utf8')) as KerasVenvRecord;
  } catch {
    return undefined;
  }
}

/** Whether `python` can import tensorflow and keras (looked up, not imported: a few ms, not seconds). */
export function hasTensorFlow(python: string): boolean {
  const check = 'import importlib.util as u, sys; sys.exit(0 if u.find_spec("tensorflow") and u.find_spec("keras") else 1)';
  return spawnSync(python, ['-c', check], { stdio: 'ignore' }).status === 0;
}

export type KerasPython = { python: string; source: string } | { python?: undefined; reason: string };

export function findKerasPython(env: NodeJS.ProcessEnv = process.env): KerasPython {
  if (env.DESCENT_PYTHON) {
    return hasTensorFlow(env.DESCENT_PYTHON)
      ? { python: env.DESCENT_PYTHON, source: '$DESCENT_PYTHON' }
      : { reason: `DESCENT_PYTHON=${env.DESCENT_PYTHON} cannot import tensorflow and keras` };
  }
  const venv = defaultKerasVenv(env);
  if (readVenvRecord(venv) && existsSync(venvPython(venv))) return { python: venvPython(venv), source: venv };
  if (hasTensorFlow('python3')) return { python: 'python3', source: 'python3 on the PATH' };
  return { reason: `no Python with TensorFlow and Keras (run npm run setup:keras, or set DESCENT_PYTHON)` };
}
