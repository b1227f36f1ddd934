/**
 * Every command starts the CLI, so what it loads before knowing the command costs every run: the
 * heavy libraries (image decoding and charts, the SQL drivers, the job queue) load only in the
 * commands that use them.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const RECORDER = fileURLToPath(new URL('./fixtures/record-imports.mjs', import.meta.url));
const HEAVY = ['sharp', 'vega', 'vega-lite', 'bullmq', 'ioredis', 'better-sqlite3', 'mariadb', 'yauzl'];
const tmp = mkdtempSync(join(tmpdir(), 'descent-startup-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The packages (under node_modules) that `descent ...args` loads. */
function packagesLoaded(args: string[]): Set<string> {
  const record = join(tmp, `${args.join('-')}.txt`);
  const run = spawnSync(process.execPath, ['--import', RECORDER, CLI, ...args], { encoding: 'utf8', env: { ...process.env, RECORD_IMPORTS: record } });
  expect(run.status, run.stderr).toBe(0);
  const urls = readFileSync(record, 'utf8').split('\n');
  return new Set(urls.flatMap((url) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1] ?? []));
}

describe('descent start-up', () => {
  it.each(['--version', 'train --help', 'db list --help'])('descent %s loads none of the heavy libraries', (command) => {
    const loaded = packagesLoaded(command.split(' '));
    expect(loaded.has('commander')).toBe(true); // the recorder sees the packages that do load
    expect(HEAVY.filter((name) => loaded.has(name))).toEqual([]);
  });
});
