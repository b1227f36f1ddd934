/** What the numbers were measured on: CPU, cores, Node version, date. */
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
