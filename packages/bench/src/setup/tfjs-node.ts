#!/usr/bin/env node
/**
 * `npm run setup:tfjs-node -- [--from WHEEL_OR_DIR] [--force]`: makes @tensorflow/tfjs-node usable
 * where its own installer cannot download libtensorflow (behind a firewall, or offline).
 *
 * npm never runs tfjs-node's install script here (package.json denies it in `allowScripts`), so
 * `npm ci` puts the package in node_modules without its native addon. This command then:
 *   1. finds TensorFlow on the machine: `--from` (a TensorFlow CPU wheel, a folder holding one, or
 *      libtensorflow as Google publishes it), else a wheel in $PIP_FIND_LINKS or /opt/pypi/files,
 *      else libtensorflow under /usr/local; with none, it runs tfjs-node's own installer instead;
 *   2. takes the two shared libraries and the C headers out of a wheel, once, into
 *      ~/.cache/descent/libtensorflow/<wheel> (a wheel is a zip; the libraries are ~800 MB);
 *   3. points tfjs-node's deps/ at them and compiles its addon with the node-gyp that npm bundles
 *      (binding.gyp links deps/lib with rpath $ORIGIN/../../deps/lib);
 *   4. loads the result in a fresh process and checks that the backend is 'tensorflow'.
 * Run again, it checks that the addon loads and does nothing more (--force rebuilds).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  SetupError, describeSource, descentCacheDir, findTensorFlow, isFile, wheelFolders, type TensorFlowSource, type Wheel,
} from './local-tensorflow.js';
import { invokedDirectly, log, runSetupCommand } from './command.js';

const USAGE = `Usage: npm run setup:tfjs-node -- [options]

Builds @tensorflow/tfjs-node's native addon against a TensorFlow already on this machine.

Options:
  --from PATH   a TensorFlow CPU wheel (tensorflow_cpu-*.whl), a folder holding one, or a
                libtensorflow folder (include/ and lib/ as Google publishes it); default: a wheel
                in $PIP_FIND_LINKS or /opt/pypi/files, else /usr/local, else tfjs-node's own download
  --force       rebuild even if the addon already loads
  --verbose     print the compiler's output
  -h, --help    show this help`;

/** Headers tfjs-node's binding includes, directly or through tensorflow/c/c_api.h. */
const HEADER_FOLDERS = ['tensorflow/c/', 'tensorflow/core/platform/', 'tsl/', 'xla/tsl/'];
const WHEEL_LIBRARY = 'tensorflow/libtensorflow_cc.so.2';
const WHEEL_FRAMEWORK = 'tensorflow/libtensorflow_framework.so.2';
/** tfjs-node's install.js skips its download when deps/lib has these names (its libtensorflow 2.9.1). */
const INSTALLER_NAMES = ['libtensorflow.so.2.9.1', 'libtensorflow_framework.so.2.9.1'];
const STAMP = 'descent-setup.json';

interface Libraries {
  include: string;
  library: string;
  framework: string;
}

interface Probe {
  backend: string;
  tensorflow: string;
}

/** The installed @tensorflow/tfjs-node package folder, as the bench resolves it. */
export function tfjsNodeDir(): string {
  const require = createRequire(fileURLToPath(new URL('../../package.json', import.meta.url)));
  try {
    return dirname(require.resolve('@tensorflow/tfjs-node/package.json'));
  } catch {
    throw new SetupError('@tensorflow/tfjs-node is not in node_modules: run npm ci first (it is an optional dependency of packages/bench)');
  }
}

/** The addon's path: lib/napi-v<N>/tfjs_binding.node for the highest N both the package and Node support. */
export function bindingPath(packageDir: string): { napi: number; path: string } {
  const pkg = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as { binary: { module_path: string; napi_versions: number[] } };
  const supported = Number(process.versions.napi);
  const napi = Math.max(...pkg.binary.napi_versions.filter((version) => version <= supported));
  if (!Number.isFinite(napi)) throw new SetupError(`tfjs-node supports N-API ${pkg.binary.napi_versions.join(', ')}; this Node has ${supported}`);
  return { napi, path: join(packageDir, pkg.binary.module_path.replace('{napi_build_version}', String(napi)), 'tfjs_binding.node') };
}

/** Loads tfjs-node in a fresh process: its backend and the TensorFlow version it runs, or why not. */
export function probeTfjsNode(packageDir: string): Probe | { error: string } {
  const script =
    'const tf = require(process.argv[1]);' +
    'const product = tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5, 6], [7, 8]])).dataSync().join(",");' +
    'if (product !== "19,22,43,50") throw new Error("matMul gave " + product);' +
    'console.log(JSON.stringify({ backend: tf.getBackend(), tensorflow: tf.backend().binding.TF_Version }));';
  const run = spawnSync(process.execPath, ['-e', script, packageDir], { encoding: 'utf8', env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' } });
  if (run.status === 0) {
    try {
      return JSON.parse(run.stdout.trim().split('\n').pop()!) as Probe;
    } catch {
      return { error: `unexpected output: ${run.stdout.trim().slice(0, 200)}` };
    }
  }
  const line = run.stderr.split('\n').find((text) => /Error|error:/.test(text)) ?? `exit code ${run.status}`;
  return { error: line.trim().slice(0, 300) };
}

/** Takes the libraries and headers out of a wheel into the cache, once; complete or absent. */
async function extractWheel(wheel: Wheel, packageDir: string): Promise<Libraries> {
  const target = join(descentCacheDir('libtensorflow'), basename(wheel.path, '.whl'));
  const libraries = { include: join(target, 'include'), library: join(target, 'lib', basename(WHEEL_LIBRARY)), framework: join(target, 'lib', basename(WHEEL_FRAMEWORK)) };
  if (isFile(join(target, 'complete'))) {
    log(`Reusing the libraries taken from the wheel earlier: ${target}`);
    return libraries;
  }
  log(`Taking libtensorflow out of ${wheel.path} into ${target} ...`);
  // adm-zip arrives with tfjs-node (one of its dependencies), so it is here whenever tfjs-node is.
  const AdmZip = createRequire(join(packageDir, 'package.json'))('adm-zip') as new (path: string) => {
    getEntries(): Array<{ entryName: string; isDirectory: boolean; getData(): Buffer }>;
  };
  const temporary = `${target}.tmp-${process.pid}`;
  rmSync(temporary, { recursive: true, force: true });
  try {
    let found = 0;
    for (const entry of new AdmZip(wheel.path).getEntries()) {
      if (entry.isDirectory) continue;
      const name = entry.entryName;
      let destination: string | undefined;
      if (name === WHEEL_LIBRARY || name === WHEEL_FRAMEWORK) {
        destination = join(temporary, 'lib', basename(name));
        found++;
      } else if (name.startsWith('tensorflow/include/') && HEADER_FOLDERS.some((folder) => name.startsWith(`tensorflow/include/${folder}`))) {
        destination = join(temporary, 'include', name.slice('tensorflow/include/'.length));
      }
      if (!destination) continue;
      mkdirSync(dirname(destination), { recursive: true });
      writeFileSync(destination, entry.getData());
    }
    if (found !== 2 || !isFile(join(temporary, 'include/tensorflow/c/c_api.h'))) {
      throw new SetupError(`${wheel.path}: expected ${WHEEL_LIBRARY}, ${WHEEL_FRAMEWORK} and tensorflow/include/tensorflow/c/c_api.h inside`);
    }
    writeFileSync(join(temporary, 'complete'), `${wheel.path}\n`);
    rmSync(target, { recursive: true, force: true });
    renameSync(temporary, target);
  } catch (error) {
    rmSync(temporary, { recursive: true, force: true });
    throw error;
  }
  return libraries;
}

function librariesOf(source: Exclude<TensorFlowSource, Wheel>): Libraries {
  return { include: join(source.dir, 'include'), library: join(source.dir, 'lib', source.library), framework: join(source.dir, 'lib', source.framework) };
}

/**
 * deps/include and deps/lib as binding.gyp expects them, as links to the libraries: the names the
 * linker looks for (-ltensorflow, -ltensorflow_framework), the names the addon will ask for at run
 * time (each library's own file name, which is its soname), and the names tfjs-node's installer checks.
 */
function linkDeps(packageDir: string, libraries: Libraries): void {
  const deps = join(packageDir, 'deps');
  rmSync(deps, { recursive: true, force: true });
  mkdirSync(join(deps, 'lib'), { recursive: true });
  symlinkSync(libraries.include, join(deps, 'include'));
  const names = new Map<string, string>([
    [basename(libraries.library), libraries.library],
    ['libtensorflow.so', libraries.library],
    [INSTALLER_NAMES[0], libraries.library],
    [basename(libraries.framework), libraries.framework],
    ['libtensorflow_framework.so', libraries.framework],
    [INSTALLER_NAMES[1], libraries.framework],
  ]);
  for (const [name, target] of names) symlinkSync(target, join(deps, 'lib', name));
}

/** npm's own node-gyp: npm names it in npm_config_node_gyp under `npm run`; else beside this Node. */
function nodeGyp(): string {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
  ];
  const found = candidates.find((candidate): candidate is string => !!candidate && isFile(candidate));
  if (!found) throw new SetupError('cannot find node-gyp (npm bundles it): run this through npm run setup:tfjs-node');
  return found;
}

function buildAddon(packageDir: string, napi: number, verbose: boolean): void {
  const args = [nodeGyp(), 'rebuild', '--module_name=tfjs_binding', `--module_path=${join(packageDir, `lib/napi-v${napi}`)}`, `--napi_build_version=${napi}`];
  // Node's own headers, when they sit beside it (Debian's nodejs, most installs): no download.
  const prefix = resolve(dirname(process.execPath), '..');
  if (!process.env.npm_config_nodedir && isFile(join(prefix, 'include/node/node_api.h'))) args.push(`--nodedir=${prefix}`);
  log(`Compiling the addon: node-gyp ${args.slice(1).join(' ')}`);
  const run = spawnSync(process.execPath, args, { cwd: packageDir, encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
  const output = `${run.stdout ?? ''}${run.stderr ?? ''}`;
  const logFile = join(packageDir, 'build', 'descent-setup.log');
  mkdirSync(dirname(logFile), { recursive: true });
  writeFileSync(logFile, output);
  if (verbose) process.stderr.write(output);
  if (run.status !== 0) {
    const reason = output.split('\n').find((line) => /error/i.test(line) && !/^gyp (ERR|info)/.test(line)) ?? `exit code ${run.status}`;
    throw new SetupError(`node-gyp could not build tfjs-node's addon: ${reason.trim()} (full output: ${logFile})`);
  }
}

/** tfjs-node's own installer: downloads libtensorflow and a prebuilt addon (needs internet access). */
function runOwnInstaller(packageDir: string): void {
  const folders = wheelFolders();
  log(`No TensorFlow found on this machine (no wheel in ${folders.length ? folders.join(', ') : '$PIP_FIND_LINKS or /opt/pypi/files'}, no libtensorflow in /usr/local).`);
  log("Running tfjs-node's own installer, which downloads libtensorflow from Google ...");
  const run = spawnSync(process.execPath, ['scripts/install.js'], { cwd: packageDir, stdio: 'inherit' });
  if (run.status !== 0) {
    throw new SetupError(`tfjs-node's installer failed (exit ${run.status}); without internet access, pass --from a TensorFlow CPU wheel or a libtensorflow folder`);
  }
}

interface Stamp {
  source: string;
  tensorflow: string;
  built: string;
}

function readStamp(packageDir: string): Stamp | undefined {
  try {
    return JSON.parse(readFileSync(join(packageDir, 'deps', STAMP), 'utf8')) as Stamp;
  } catch {
    return undefined;
  }
}

export function main(argv: string[]): Promise<number> {
  const options = { from: { type: 'string' }, force: { type: 'boolean', default: false } } as const;
  return runSetupCommand('setup:tfjs-node', USAGE, argv, options, async (values) => {
    const from = values.from as string | undefined;
    const started = performance.now();
    const packageDir = tfjsNodeDir();
    const { version } = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as { version: string };
    const binding = bindingPath(packageDir);
    const source = findTensorFlow(from);
    const stamp = readStamp(packageDir);
    const wanted = source?.kind === 'wheel' ? source.path : source?.dir;

    if (!values.force && existsSync(binding.path) && (from === undefined || stamp?.source === wanted)) {
      const probe = probeTfjsNode(packageDir);
      if ('backend' in probe && probe.backend === 'tensorflow') {
        log(`tfjs-node ${version} is ready: ${binding.path} runs TensorFlow ${probe.tensorflow}${stamp ? ` (built from ${stamp.source})` : ''}. Nothing to do.`);
        return;
      }
      log(`tfjs-node's addon is there but does not load (${'error' in probe ? probe.error : `backend ${probe.backend}`}): building it again.`);
    }

    if (!source) runOwnInstaller(packageDir);
    else {
      log(`Building tfjs-node ${version} against ${describeSource(source)}`);
      const libraries = source.kind === 'wheel' ? await extractWheel(source, packageDir) : librariesOf(source);
      linkDeps(packageDir, libraries);
      buildAddon(packageDir, binding.napi, values.verbose === true);
    }
    const probe = probeTfjsNode(packageDir);
    if (!('backend' in probe) || probe.backend !== 'tensorflow') {
      throw new SetupError(`tfjs-node was set up but does not load: ${'error' in probe ? probe.error : `backend ${probe.backend}`}`);
    }
    if (source) {
      const record: Stamp = { source: wanted!, tensorflow: probe.tensorflow, built: new Date().toISOString() };
      writeFileSync(join(packageDir, 'deps', STAMP), `${JSON.stringify(record, null, 2)}\n`);
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    log(`tfjs-node ${version} is ready: ${binding.path} runs TensorFlow ${probe.tensorflow} (backend '${probe.backend}'), set up in ${seconds} s.`);
  });
}

if (invokedDirectly(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
