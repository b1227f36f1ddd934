/** Claiming model folders: exactly one claim wins, default names never collide, locks go away. */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LOCK_FILE, claimModelFolder, claimNewFolder } from '../src/model-folder.js';

const tmp = mkdtempSync(join(tmpdir(), 'descent-claim-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('claimNewFolder', () => {
  it('gives every caller of the same base name its own new folder', () => {
    const base = join(tmp, 'models', 'fashion-mnist-20261130-120000');
    const claims = [0, 1, 2].map(() => claimNewFolder(base, '--out'));
    expect(claims.map((c) => c.dir)).toEqual([base, `${base}-2`, `${base}-3`]);
    for (const claim of claims) claim.release();
    expect(readdirSync(join(tmp, 'models'))).toEqual([]); // nothing saved: the folders go too
  });
});

describe('claimModelFolder', () => {
  it('refuses a folder another live run holds, and takes over the lock of a run that is gone', () => {
    const dir = join(tmp, 'taken');
    mkdirSync(dir); // an existing folder stays when its claim goes
    const first = claimModelFolder(dir, { label: '--out taken' });
    expect(() => claimModelFolder(dir, { label: '--out taken' })).toThrow(/^--out taken: is in use by another descent run \(pid \d+\)/);
    first.release();
    // A lock left behind by a process that no longer exists (pid 2^22 + 1 is above Linux's pid limit).
    writeFileSync(join(dir, LOCK_FILE), `4194305 ${hostname()}\n`);
    const second = claimModelFolder(dir, { label: '--out taken' });
    second.release();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });

  it('refuses a folder that holds a model unless resuming it, saying how to continue', () => {
    const dir = join(tmp, 'holds');
    mkdirSync(dir);
    writeFileSync(join(tmp, 'holds', 'model.json'), '{}');
    expect(() => claimModelFolder(dir, { label: '--out holds', holdsModelAdvice: 'continue that run with: npx descent train --resume holds' }))
      .toThrow('--out holds: already holds a model; choose another folder, or continue that run with: npx descent train --resume holds');
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    claimModelFolder(dir, { label: '--resume holds', resuming: true }).release();
    expect(readdirSync(dir)).toEqual(['model.json']);
  });
});

describe('a run that ends without saving', () => {
  it('leaves no folder it created, parents included, but keeps folders that were there', () => {
    const base = join(tmp, 'fresh', 'models', 'run');
    claimNewFolder(base, '--out').release();
    expect(existsSync(join(tmp, 'fresh'))).toBe(false);
    mkdirSync(join(tmp, 'kept'));
    claimModelFolder(join(tmp, 'kept', 'a', 'b'), { label: '--out' }).release();
    expect(readdirSync(join(tmp, 'kept'))).toEqual([]);
  });
});
