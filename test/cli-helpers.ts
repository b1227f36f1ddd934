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
