/** What the numbers were measured on: CPU, cores, Node version, date. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, hostname } from 'node:os';
import type { MachineInfo } from './types.js';

export function machineInfo(date = new Date()): MachineInfo {
  return {
    cpu: cpuModel(),
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
