/**
 * One fuzz case, measured: how it ended (success, a typed descent error, or anything else), how
 * long it took, and how much memory it took at its peak.
 *
 * Time is the process's CPU time (user + system) during the case: on a machine shared with other
 * work, wall time measures the other work too. Wall time is recorded beside it.
 *
 * Memory is the larger of two readings, so neither a freed nor an untouched allocation hides:
 *   - the peak resident set during the case: Linux keeps the high-water mark (VmHWM) and resets it
 *     to the current size when "5" is written to /proc/self/clear_refs;
 *   - what the case still holds when it returns, uncollected: ArrayBuffers (Buffers, typed arrays),
 *     the JavaScript heap, and WebAssembly memory the backend grew.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { DescentError, kernels } from '@descent/engine';

export interface CaseLimits {
  /** A case that takes longer fails the property. */
  timeMs: number;
  /** A case that takes more memory than this fails the property. */
  memoryBytes: number;
  /** Longest error message accepted. */
  messageChars: number;
}

export const DEFAULT_LIMITS: CaseLimits = { timeMs: 2000, memoryBytes: 256 * 2 ** 20, messageChars: 300 };

export interface CaseResult {
  outcome: 'ok' | 'typed' | 'untyped';
  /** "Name: message" of the error, when there was one. */
  error?: string;
  message?: string;
  /** CPU time of the case (user + system), the one the time limit applies to. */
  ms: number;
  /** Wall time of the case. */
  wallMs: number;
  memoryBytes: number;
}

/** What is wrong with a case, one entry per broken rule (empty when it is fine). */
export function violations(result: CaseResult, limits: CaseLimits = DEFAULT_LIMITS): string[] {
  const out: string[] = [];
  if (result.outcome === 'untyped') out.push(`untyped exception: ${clip(result.error ?? '')}`);
  if (result.message !== undefined && /[\r\n\u2028\u2029]/.test(result.message)) out.push(`message on several lines: ${clip(JSON.stringify(result.message))}`);
  if (result.message !== undefined && result.message.length > limits.messageChars) out.push(`message of ${result.message.length} characters: ${clip(result.message)}`);
  if (result.ms > limits.timeMs) out.push(`took ${Math.round(result.ms)} ms of CPU (${Math.round(result.wallMs)} ms wall)`);
  if (result.memoryBytes > limits.memoryBytes) out.push(`took ${Math.round(result.memoryBytes / 2 ** 20)} MiB`);
  return out;
}

const canResetPeak = (() => {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return /VmHWM/.test(readFileSync('/proc/self/status', 'utf8'));
  } catch {
    return false;
  }
})();

function residentKiB(field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) : 0;
}

function wasmBytes(): number {
  const active = kernels() as { memory?: WebAssembly.Memory };
  return active.memory ? active.memory.buffer.byteLength : 0;
}

function heldBytes(): number {
  const usage = process.memoryUsage();
  return usage.arrayBuffers + usage.heapUsed + wasmBytes();
}

/** Runs `fn` once and says how it went. */
export async function runCase(fn: () => unknown): Promise<CaseResult> {
  if (canResetPeak) writeFileSync('/proc/self/clear_refs', '5');
  const rssBefore = canResetPeak ? residentKiB('VmRSS') : 0;
  const heldBefore = heldBytes();
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  let outcome: CaseResult['outcome'] = 'ok';
  let error: string | undefined;
  let message: string | undefined;
  try {
    await fn();
  } catch (err) {
    outcome = err instanceof DescentError ? 'typed' : 'untyped';
    message = err instanceof Error ? err.message : String(err);
    error = `${err instanceof Error ? err.name : typeof err}: ${message}`;
  }
  const wallMs = performance.now() - start;
  const cpu = process.cpuUsage(cpuBefore);
  const ms = (cpu.user + cpu.system) / 1000;
  const peak = canResetPeak ? (residentKiB('VmHWM') - rssBefore) * 1024 : 0;
  const memoryBytes = Math.max(peak, heldBytes() - heldBefore);
  return { outcome, error, message, ms, wallMs, memoryBytes };
}

function clip(text: string, max = 200): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
