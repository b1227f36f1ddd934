/**
 * Where TensorFlow can come from without a download: a TensorFlow CPU wheel (a zip holding
 * libtensorflow_cc.so.2, libtensorflow_framework.so.2 and the C headers), or libtensorflow as
 * Google publishes it (lib/ and include/). Shared by `npm run setup:tfjs-node` and `setup:keras`.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join, resolve } from 'node:path';

/** Folders searched for a wheel when none is named: pip's find-links folders, then this one. */
export const WHEEL_FOLDERS = ['/opt/pypi/files'];

/** Linux x86_64 builds of TensorFlow (any CPython tag: only the C libraries are used from it). */
const WHEEL_NAME = /^(tensorflow(?:_cpu)?)-(\d+)\.(\d+)\.(\d+)-cp\d+-cp\d+m?-(?:manylinux|linux)[^-]*x86_64\.whl$/;

export interface Wheel {
  kind: 'wheel';
  path: string;
  /** 'tensorflow_cpu' or 'tensorflow'. */
  project: string;
  version: string;
}

export interface LibtensorflowDir {
  kind: 'libtensorflow';
  dir: string;
  /** lib/ entries: the library and its framework library as they are named there. */
  library: string;
  framework: string;
}

export type TensorFlowSource = Wheel | LibtensorflowDir;

export class SetupError extends Error {
  override name = 'SetupError';
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

/** $XDG_CACHE_HOME/descent/<name>, or ~/.cache/descent/<name>: the data sets' cache folder too. */
export function descentCacheDir(name: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache'), 'descent', name);
}

/** Folders to search for wheels: $PIP_FIND_LINKS (space-separated), then WHEEL_FOLDERS; only those that exist. */
export function wheelFolders(env: NodeJS.ProcessEnv = process.env): string[] {
  const fromPip = (env.PIP_FIND_LINKS ?? '').split(/\s+/).filter((entry) => entry && !/^[a-z]+:\/\//i.test(entry));
  return [...new Set([...fromPip, ...WHEEL_FOLDERS].map((dir) => resolve(dir)))].filter(isDirectory);
}

export function parseWheelName(path: string): Wheel | undefined {
  const match = WHEEL_NAME.exec(basename(path));
  if (!match) return undefined;
  return { kind: 'wheel', path: resolve(path), project: match[1], version: `${match[2]}.${match[3]}.${match[4]}` };
}

/** The newest TensorFlow wheel in `folders` (tensorflow_cpu before tensorflow at equal versions). */
export function findWheel(folders: readonly string[]): Wheel | undefined {
  const wheels: Wheel[] = [];
  for (const folder of folders) {
    let names: string[];
    try {
      names = readdirSync(folder);
    } catch {
      continue;
    }
    for (const name of names) {
      const wheel = parseWheelName(join(folder, name));
      if (wheel && isFile(wheel.path)) wheels.push(wheel);
    }
  }
  const key = (wheel: Wheel) => [...wheel.version.split('.').map(Number), wheel.project === 'tensorflow_cpu' ? 1 : 0];
  wheels.sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return y[i] - x[i];
    return 0;
  });
  return wheels[0];
}

/** A libtensorflow folder: include/tensorflow/c/c_api.h and lib/libtensorflow.so.2 (+ framework). */
export function libtensorflowDir(dir: string): LibtensorflowDir | undefined {
  if (!isFile(join(dir, 'include/tensorflow/c/c_api.h'))) return undefined;
  const lib = join(dir, 'lib');
  const pick = (names: string[]) => names.find((name) => isFile(join(lib, name)));
  const library = pick(['libtensorflow.so.2', 'libtensorflow.so', 'libtensorflow_cc.so.2']);
  const framework = pick(['libtensorflow_framework.so.2', 'libtensorflow_framework.so']);
  return library && framework ? { kind: 'libtensorflow', dir: resolve(dir), library, framework } : undefined;
}

/**
 * What `--from` names: a wheel, a libtensorflow folder, or a folder holding wheels. Without
 * `--from`: a wheel in the usual folders, else libtensorflow installed under /usr/local.
 */
export function findTensorFlow(from: string | undefined, env: NodeJS.ProcessEnv = process.env): TensorFlowSource | undefined {
  if (from !== undefined) {
    if (!existsSync(from)) throw new SetupError(`--from ${from}: no such file or folder`, 2);
    if (isFile(from)) {
      const wheel = parseWheelName(from);
      if (!wheel) throw new SetupError(`--from ${from}: not a Linux x86_64 TensorFlow wheel (expected tensorflow[_cpu]-X.Y.Z-cpNN-cpNN-manylinux…_x86_64.whl)`, 2);
      return wheel;
    }
    const found = libtensorflowDir(from) ?? findWheel([from]);
    if (!found) throw new SetupError(`--from ${from}: holds neither libtensorflow (include/tensorflow/c/c_api.h, lib/libtensorflow.so.2) nor a TensorFlow wheel`, 2);
    return found;
  }
  return findWheel(wheelFolders(env)) ?? libtensorflowDir('/usr/local');
}

export function describeSource(source: TensorFlowSource): string {
  return source.kind === 'wheel' ? `${basename(source.path)} (TensorFlow ${source.version})` : `libtensorflow in ${source.dir}`;
}

export function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
