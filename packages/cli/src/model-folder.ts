/**
 * A training run claims its model folder before it reads any data, so that two runs can never
 * write the same folder: the folder is created if it is new (one `mkdir` of the last component,
 * which the file system grants to exactly one caller), then a lock file is created in it with
 * O_EXCL (again granted to exactly one caller) holding the owner's pid. Default folders are
 * made unique the same way: `models/<dataset>-<date>-<time>`, then `-2`, `-3`, … whichever mkdir
 * succeeds first. The lock goes when the run ends, however it ends (a crash leaves it behind,
 * and a later run sees that its pid is gone and takes it over).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { DescentError, UsageError } from '@descent/engine';
import { statOrUndefined } from './common.js';

export const LOCK_FILE = '.descent-train.lock';

export interface ModelFolderClaim {
  readonly dir: string;
  /** Whether this run created the folder (it is removed again if the run ends without saving anything). */
  readonly created: boolean;
  /** Removes the lock, and the folder if this run created it and nothing was saved in it. */
  release(): void;
}

export interface ClaimOptions {
  /** Starts messages, e.g. "--out models/x". */
  label: string;
  /** A folder that already holds a model is refused unless this is a resume of it. */
  resuming?: boolean;
  /** Advice for a folder that holds a model, e.g. "continue that run with: … --resume DIR". */
  holdsModelAdvice?: string;
}

/** Claims `dir` for this run (see the header); fails at once, with one line, if another run has it. */
export function claimModelFolder(dir: string, { label, resuming = false, holdsModelAdvice }: ClaimOptions): ModelFolderClaim {
  const parents = makeParents(dir, label);
  let created = false;
  try {
    mkdirSync(dir);
    created = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new DescentError(`${label}: cannot create the folder (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    if (!statOrUndefined(dir)?.isDirectory()) throw new DescentError(`${label}: exists and is not a folder`);
  }
  const claim = lockFolder(dir, created ? [dir, ...parents] : [], label);
  // Checked under the lock: a run that saved a model there has released its lock only after saving.
  if (!resuming && statOrUndefined(join(dir, 'model.json'))) {
    claim.release();
    throw new UsageError(`${label}: already holds a model; choose another folder${holdsModelAdvice ? `, or ${holdsModelAdvice}` : ''}`);
  }
  return claim;
}

/** Creates and claims the first free folder of `base`, `base-2`, `base-3`, … */
export function claimNewFolder(base: string, label: string): ModelFolderClaim {
  const parents = makeParents(base, label);
  for (let n = 1; ; n++) {
    const dir = n === 1 ? base : `${base}-${n}`;
    try {
      mkdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw new DescentError(`${label}: cannot create ${dir} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    return lockFolder(dir, [dir, ...parents], label);
  }
}

/** Creates the folders above `dir` that do not exist yet; returns them, deepest first. */
function makeParents(dir: string, label: string): string[] {
  const missing: string[] = [];
  for (let path = dirname(dir); dirname(path) !== path && !statOrUndefined(path); path = dirname(path)) missing.push(path);
  try {
    mkdirSync(dirname(dir), { recursive: true });
  } catch (err) {
    throw new DescentError(`${label}: cannot create ${dirname(dir)} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return missing;
}

/** Locks `dir`; `created` lists the folders this claim made, deepest first, removed again if left empty. */
function lockFolder(dir: string, created: string[], label: string): ModelFolderClaim {
  const lock = join(dir, LOCK_FILE);
  const owner = `${process.pid} ${hostname()}\n`;
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(lock, owner, { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new DescentError(`${label}: cannot write there (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    const holder = readHolder(lock);
    if (attempt === 0 && holder && holderIsGone(holder) && takeOverStaleLock(lock, holder.text)) continue;
    removeEmpty(created);
    const who = holder ? `pid ${holder.pid}${holder.host !== hostname() ? ` on ${holder.host}` : ''}` : 'another process';
    throw new DescentError(`${label}: is in use by another descent run (${who}); if no run is using it, delete ${lock}`);
  }
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    process.off('exit', release);
    rmSync(lock, { force: true });
    removeEmpty(created);
  };
  process.on('exit', release); // also after process.exit (a second Ctrl-C)
  return { dir, created: created.length > 0, release };
}

/** Removes these folders, deepest first, as long as they are empty. */
function removeEmpty(folders: readonly string[]): void {
  for (const folder of folders) {
    try {
      if (readdirSync(folder).length > 0) return;
      rmdirSync(folder);
    } catch {
      return; // leave it as it is
    }
  }
}

interface Holder {
  pid: number;
  host: string;
  text: string;
}

function readHolder(lock: string): Holder | undefined {
  try {
    const text = readFileSync(lock, 'utf8');
    const [pid, host = ''] = text.trim().split(' ');
    return Number.isSafeInteger(Number(pid)) ? { pid: Number(pid), host, text } : undefined;
  } catch {
    return undefined;
  }
}

/** A lock left by a run on this machine that is no longer running (it crashed or was killed). */
function holderIsGone(holder: Holder): boolean {
  if (holder.host !== hostname()) return false;
  try {
    process.kill(holder.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Moves the stale lock out of the way, checking that what was moved is the stale one (another
 * run may have taken it over in between; then it is put back and this run gives way).
 */
function takeOverStaleLock(lock: string, staleText: string): boolean {
  const aside = `${lock}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    renameSync(lock, aside);
  } catch {
    return true; // gone already: try to create it again
  }
  let moved = '';
  try {
    moved = readFileSync(aside, 'utf8');
  } catch {
    // Unreadable: treat as not ours to remove.
  }
  if (moved === staleText) {
    rmSync(aside, { force: true });
    return true;
  }
  try {
    renameSync(aside, lock);
  } catch {
    // Leave it aside; the message below tells the user where the lock is.
  }
  return false;
}
