// Running the built `descent` CLI in tests (build first: npx tsc -p packages/engine && npx tsc -p packages/cli).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const CLI = join(ROOT, 'packages/cli/dist/main.js');
export const FIXTURE = join(ROOT, 'test/fixtures/fashion-mnist');
export const ENGINE = join(ROOT, 'packages/engine/dist/index.js');

/**
 * npm's variables, removed from the CLI's environment unless a test sets them: whether the tests run
 * under `npm test` or `npx vitest`, the CLI then runs as `node packages/cli/dist/main.js` does.
 */
export const NOT_UNDER_NPM = { npm_command: undefined, npm_lifecycle_event: undefined, npm_lifecycle_script: undefined, INIT_CWD: undefined };

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
}

/** Starts `node packages/cli/dist/main.js ...args`; `done` resolves when it exits. */
export function startCli(args: readonly string[], { cwd = ROOT, env = {} }: RunOptions = {}): { child: ChildProcess; done: Promise<CliResult>; stdout: () => string } {
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, NO_COLOR: '1', ...NOT_UNDER_NPM, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done, stdout: () => stdout };
}

export function runCli(args: readonly string[], options?: RunOptions): Promise<CliResult> {
  return startCli(args, options).done;
}

/**
 * Runs the built CLI's `main(argv)` inside this process, as `runCli` would run it in a child: stdout
 * and stderr collected, the exit code returned, NO_COLOR set and npm's variables cleared (then
 * `env` applied), in `cwd` when given, on a terminal of `terminal.columns` when given. Ten times cheaper than a child process: for tests where the
 * process itself (pipes, signals, locks held by two processes, npm) is not the point. One at a time.
 */
export async function runInProcess(args: readonly string[], { cwd, env = {}, terminal }: RunOptions & { terminal?: { columns: number } } = {}): Promise<CliResult> {
  const { main } = (await import(CLI)) as { main: (argv: readonly string[]) => Promise<number> };
  const vars: Record<string, string | undefined> = { NO_COLOR: '1', ...NOT_UNDER_NPM, ...env };
  const savedEnv = Object.fromEntries(Object.keys(vars).map((key) => [key, process.env[key]]));
  const setEnv = (values: Record<string, string | undefined>) => {
    for (const [key, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
  const savedCwd = process.cwd();
  const savedExitCode = process.exitCode;
  const writes = { stdout: process.stdout.write, stderr: process.stderr.write };
  const text = { stdout: '', stderr: '' };
  for (const name of ['stdout', 'stderr'] as const) {
    process[name].write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      text[name] += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
      (rest.find((arg) => typeof arg === 'function') as (() => void) | undefined)?.();
      return true;
    }) as typeof process.stdout.write;
  }
  // `terminal`: stdout is a terminal of that width (progress bars are drawn).
  const savedTerminal = { isTTY: process.stdout.isTTY, columns: process.stdout.columns };
  if (terminal) Object.assign(process.stdout, { isTTY: true, columns: terminal.columns });
  setEnv(vars);
  process.exitCode = undefined;
  try {
    if (cwd) process.chdir(cwd);
    const code = await main(args);
    return { code, signal: null, ...text };
  } finally {
    process.stdout.write = writes.stdout;
    process.stderr.write = writes.stderr;
    Object.assign(process.stdout, savedTerminal);
    process.chdir(savedCwd);
    process.exitCode = savedExitCode;
    setEnv(savedEnv);
  }
}

/** Runs any program (npx, npm, bash) to the end, collecting its output. */
export function runCommand(command: string, args: readonly string[], { cwd = ROOT, env = {} }: RunOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Resolves once the child's stdout satisfies `test` (checked on every chunk). */
export function waitForOutput(child: ChildProcess, read: () => string, test: (stdout: string) => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (test(read())) {
        child.stdout!.off('data', check);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    child.on('close', () => reject(new Error(`exited before the expected output; stdout so far:\n${read()}`)));
    check();
  });
}

/** JSON objects printed one per line. */
export function jsonLines(stdout: string): Array<Record<string, unknown>> {
  return stdout.split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line) as Record<string, unknown>);
}

export function temporaryFolder(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
