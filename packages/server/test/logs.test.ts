// `descent serve`'s log: JSON lines on stdout, one per request with the id the reply carries in
// x-request-id, never a token; written within about half a second, and what is left at exit.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { CLI } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'server-logs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('writes one JSON line per request with its id, never the token, soon and at exit', async () => {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--db', join(dir, 'descent.db'), '--no-fashion-mnist', '--no-app'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
      if (match) resolve(match[1]);
    });
    void exited.then((code) => reject(new Error(`descent serve exited (${code}): ${stderr}`)));
  });
  let stopped = false;
  void exited.then(() => (stopped = true));
  try {
    const secret = 'a'.repeat(43);
    const lines = () => stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);

    const health = await fetch(`${url}/health`);
    const healthId = health.headers.get('x-request-id');
    for (let waited = 0; !lines().some((l) => l.reqId === healthId) && waited < 5000; waited += 50) await new Promise((r) => setTimeout(r, 50));
    expect(lines().find((l) => l.reqId === healthId), 'the line comes without more requests or an exit').toMatchObject({ msg: 'request', method: 'GET', url: '/health', status: 200 });

    const refused = await fetch(`${url}/api/v1/models`, { headers: { authorization: `Bearer ${secret}` } });
    expect(refused.status).toBe(401);
    const refusedId = refused.headers.get('x-request-id');
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(lines().find((l) => l.reqId === refusedId), 'written out at exit').toMatchObject({ msg: 'request', url: '/api/v1/models', status: 401 });
    expect(stdout).not.toContain(secret);
  } finally {
    // A failed expectation must not leave the server running.
    if (!stopped) child.kill('SIGKILL');
  }
});
