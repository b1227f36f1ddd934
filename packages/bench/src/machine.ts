/** What the numbers were measured on: CPU, cores, Node version, date. */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { availableParallelism, cpus, hostname } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { MachineInfo } from './types.js';

export function machineInfo(date = new Date()): MachineInfo {
  const details = cpuDetails();
  return {
    cpu: cpuModel(),
    ...(details ? { cpuDetails: details } : {}),
    cores: availableParallelism(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    hostname: hostname(),
    date: date.toISOString(),
  };
}

function cpuModel(): string {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (match) return match[1].trim();
  } catch {
    // not Linux: fall through to what Node reports
  }
  return cpus()[0]?.model.trim() || 'unknown CPU';
}

/** 'AMD EPYC (family 26, model 2, AVX-512)': the model name, and its family where known. */
export function describeCpu(machine: Pick<MachineInfo, 'cpu' | 'cpuDetails'>): string {
  return machine.cpuDetails ? `${machine.cpu} (${machine.cpuDetails})` : machine.cpu;
}

function cpuDetails(): string | undefined {
  try {
    return parseCpuDetails(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return undefined; // not Linux
  }
}

/** Most characters of /proc/cpuinfo read: its first processor's block is about 2,000. */
const MAX_CPUINFO_CHARS = 64 * 1024;

/**
 * The first processor's x86 family and model and its widest vector instructions, from the text of
 * /proc/cpuinfo: 'family 26, model 2, AVX-512'. A cloud machine's model name is often only the
 * brand ('AMD EPYC'), which does not tell one generation from another (AMD's family 25 is Zen 3
 * and Zen 4, 26 is Zen 5), and the generation decides what a WASM kernel is up against (Keras uses
 * AVX-512 where it exists). Undefined when the text names no family.
 */
export function parseCpuDetails(cpuinfo: string): string | undefined {
  const first = cpuinfo.slice(0, MAX_CPUINFO_CHARS).split(/\n[ \t]*\n/)[0];
  const family = /^cpu family[ \t]*:[ \t]*(\d{1,6})[ \t]*$/m.exec(first)?.[1];
  if (family === undefined) return undefined;
  const model = /^model[ \t]*:[ \t]*(\d{1,6})[ \t]*$/m.exec(first)?.[1];
  const flags = new Set((/^flags[ \t]*:(.*)$/m.exec(first)?.[1] ?? '').trim().split(/\s+/));
  const vectors = flags.has('avx512f') ? 'AVX-512' : flags.has('avx2') ? 'AVX2' : flags.has('avx') ? 'AVX' : undefined;
  return [`family ${Number(family)}`, ...(model === undefined ? [] : [`model ${Number(model)}`]), ...(vectors ? [vectors] : [])].join(', ');
}

/** A thread that sleeps in Atomics.wait on word 0 and, each time it changes, copies it to word 1 and notifies. */
const SLEEPER = `const { workerData } = require('node:worker_threads');
const words = new Int32Array(workerData);
let seen = 0;
for (;;) {
  Atomics.wait(words, 0, seen);
  seen = Atomics.load(words, 0);
  if (seen < 0) break;
  Atomics.store(words, 1, seen);
  Atomics.notify(words, 1);
}`;

/**
 * How long a thread asleep in Atomics.wait takes to answer a notify: the median round trip in µs,
 * from Atomics.notify to its reply, over `samples` wakes, each after `idleMicros` of quiet so
 * that the sleeper's core has gone idle. A pool worker that has slept through a gap between two
 * split kernel calls is that late to the next one (it spins first for a while for that reason);
 * on a virtual machine whose idle cores halt, waking one takes the hypervisor. Undefined when the
 * thread cannot start or does not answer within a second.
 */
export async function wakeRoundTripMicros(samples = 400, idleMicros = 300): Promise<number | undefined> {
  const words = new Int32Array(new SharedArrayBuffer(8));
  const sleeper = new Worker(SLEEPER, { eval: true, workerData: words.buffer });
  try {
    const online = await new Promise<boolean>((resolve) => {
      sleeper.once('online', () => resolve(true));
      sleeper.once('error', () => resolve(false));
    });
    if (!online) return undefined;
    const answered = (value: number): boolean => {
      const deadline = performance.now() + 1000;
      while (Atomics.load(words, 1) !== value) if (performance.now() > deadline) return false;
      return true;
    };
    const times: number[] = [];
    for (let wake = 1; wake <= samples + 1; wake++) {
      const quietUntil = performance.now() + idleMicros / 1000;
      while (performance.now() < quietUntil) {
        // the sleeper goes back to sleep, and its core idle
      }
      const started = performance.now();
      Atomics.store(words, 0, wake);
      Atomics.notify(words, 0);
      if (!answered(wake)) return undefined;
      // The first wake also waits for the thread to reach its first Atomics.wait.
      if (wake > 1) times.push((performance.now() - started) * 1000);
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)];
  } finally {
    Atomics.store(words, 0, -1);
    Atomics.notify(words, 0);
    await sleeper.terminate();
  }
}

/** A short file-name-safe machine tag from the CPU model and core count, e.g. 'amd-epyc-2c'. */
export function machineTag(machine: MachineInfo): string {
  const cpu = machine.cpu
    .toLowerCase()
    .replace(/\((r|tm)\)/g, '')
    .replace(/\b(cpu|processor|with radeon graphics)\b/g, '')
    .replace(/@.*$/, '')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return `${cpu || 'machine'}-${machine.cores}c`;
}

/**
 * A loop over 1 MiB of floats (it stays in the core's own caches) that prints how many ms it took.
 * It runs as its own process, so that one core can be given to it alone.
 */
const CORE_LOOP = `const a = new Float32Array(1 << 18); for (let i = 0; i < a.length; i++) a[i] = 1;
const started = performance.now();
for (let r = 0; r < 800; r++) for (let i = 0; i < a.length; i += 4) a[i] = a[i] * 0.999 + 1;
console.log(performance.now() - started);`;

/**
 * How fast each core runs the same loop, relative to the fastest: the loop runs pinned to one
 * core at a time (Linux's taskset), `rounds` times per core, and each core's median counts.
 * On a shared virtual machine two cores are not always equal: a busy neighbour on the same
 * physical core can halve one core's speed, and then a second thread cannot gain more than half
 * of one, however well the work is split. Undefined where cores cannot be pinned.
 */
export function coreSpeeds(cores = availableParallelism(), rounds = 3): number[] | undefined {
  if (process.platform !== 'linux' || cores < 2) return undefined;
  const times: number[][] = Array.from({ length: cores }, () => []);
  for (let round = 0; round < rounds; round++) {
    for (let core = 0; core < cores; core++) {
      const run = spawnSync('taskset', ['-c', String(core), process.execPath, '-e', CORE_LOOP], { encoding: 'utf8', timeout: 60_000 });
      const ms = Number(run.stdout?.trim());
      if (run.status !== 0 || !(ms > 0)) return undefined;
      times[core].push(ms);
    }
  }
  const medians = times.map((list) => list.sort((a, b) => a - b)[Math.floor(list.length / 2)]);
  const fastest = Math.min(...medians);
  return medians.map((ms) => fastest / ms);
}

/** '1.00 / 0.52' */
export function formatCoreSpeeds(speeds: readonly number[]): string {
  return speeds.map((speed) => speed.toFixed(2)).join(' / ');
}

/** Linux counts a thread's CPU time in /proc in ticks of 1/100 s (USER_HZ). */
const MS_PER_TICK = 10;

/**
 * A thread's user plus system CPU time in ms, from the text of /proc/<pid>/task/<tid>/stat.
 * The command name (in parentheses) may itself hold spaces and parentheses, so the fields are
 * counted from the last ')'. Undefined when the text is not such a line.
 */
export function parseTaskCpuMs(stat: string): number | undefined {
  const close = stat.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = stat.slice(close + 2).trim().split(/\s+/);
  // After the name: state (field 3 of the line), …, utime (14) and stime (15).
  const user = Number(fields[11]), system = Number(fields[12]);
  if (fields.length < 13 || !Number.isSafeInteger(user) || !Number.isSafeInteger(system) || user < 0 || system < 0) return undefined;
  return (user + system) * MS_PER_TICK;
}

/** CPU time in ms of each thread of this process, by thread id; undefined where /proc has no tasks (not Linux). */
export function threadCpuMs(): Map<number, number> | undefined {
  if (process.platform !== 'linux') return undefined;
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return undefined;
  }
  const times = new Map<number, number>();
  for (const tid of tids) {
    try {
      const ms = parseTaskCpuMs(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8'));
      if (ms !== undefined) times.set(Number(tid), ms);
    } catch {
      // the thread ended between the listing and the read: it has nothing more to count
    }
  }
  return times;
}

/** CPU time (ms) between two snapshots, by who spent it. */
export interface CpuByRole {
  /** The process's main thread: the one that calls the kernels. */
  caller: number;
  /** Threads started after `startup` was taken: the kernel pool's workers. */
  workers: number;
  /** The other threads that were there at startup: V8's compiler and garbage-collector helpers, libuv's. */
  helpers: number;
}

/**
 * Splits the CPU time spent between two snapshots of threadCpuMs by thread role: `callerTid`'s,
 * threads absent from `startup` (started since), and the rest. A thread that appears only in
 * `after` counts from zero.
 */
export function cpuByRole(before: ReadonlyMap<number, number>, after: ReadonlyMap<number, number>, startup: ReadonlySet<number>, callerTid: number): CpuByRole {
  const spent: CpuByRole = { caller: 0, workers: 0, helpers: 0 };
  for (const [tid, ms] of after) {
    const delta = Math.max(0, ms - (before.get(tid) ?? 0));
    if (tid === callerTid) spent.caller += delta;
    else if (startup.has(tid)) spent.helpers += delta;
    else spent.workers += delta;
  }
  return spent;
}
