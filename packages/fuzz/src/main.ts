#!/usr/bin/env node
/**
 * `npm run fuzz -- --cases N [--target idx,model,...] [--seed S] [--workers W]`: long fuzz runs.
 * Each case is generated from its own seed (the run's seed plus its number), so any case can be
 * run again alone with `--seed <its seed> --cases 1`. Prints, per target, how every case ended
 * and every broken rule: an untyped exception, a message over one line or 300 characters, more
 * than 256 MiB of memory, more than 2 s of CPU time. Exits 1 when any rule was broken. With --workers, the
 * cases are split into W contiguous ranges run by W processes, and their counts added up. With
 * --max-seconds, each process stops after that long and reports the cases it ran (fewer than asked).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { DEFAULT_LIMITS, TARGET_NAMES, makeTargets, runCase, runPrepared, violations, type TargetName } from './index.js';

interface Tally {
  /** Cases asked for, and cases run (fewer when --max-seconds stopped the run). */
  requested: number;
  cases: number;
  ok: number;
  typed: number;
  untyped: number;
  overMemory: number;
  overTime: number;
  multiLine: number;
  longMessage: number;
  longestMessage: number;
  slowestMs: number;
  slowestWallMs: number;
  mostMemory: number;
  seconds: number;
  examples: string[];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      cases: { type: 'string', default: '1000' },
      target: { type: 'string', default: TARGET_NAMES.join(',') },
      seed: { type: 'string', default: '1' },
      workers: { type: 'string', default: '1' },
      'max-seconds': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`usage: npm run fuzz -- [--cases N] [--target ${TARGET_NAMES.join(',')}] [--seed S] [--workers W]\n`);
    return;
  }
  const cases = Number(values.cases);
  const seed = Number(values.seed);
  const workers = Number(values.workers);
  const maxSeconds = values['max-seconds'] === undefined ? Infinity : Number(values['max-seconds']);
  const names = values.target!.split(',').map((n) => n.trim()) as TargetName[];
  const unknown = names.filter((n) => !TARGET_NAMES.includes(n));
  if (!Number.isInteger(cases) || cases < 1 || !Number.isInteger(seed) || !Number.isInteger(workers) || workers < 1 || !(maxSeconds > 0) || unknown.length > 0) {
    process.stderr.write(`fuzz: --cases, --seed and --workers take integers, --max-seconds a positive number, --target one or more of ${TARGET_NAMES.join(', ')}\n`);
    process.exitCode = 2;
    return;
  }
  if (workers > 1) {
    let broken = 0;
    for (const name of names) {
      const tally = await inWorkers(name, cases, seed, workers, values['max-seconds']);
      broken += brokenCount(tally);
      report(name, tally);
    }
    process.exitCode = broken > 0 ? 1 : 0;
    return;
  }
  const { targets, close } = await makeTargets(names);
  let broken = 0;
  try {
    for (const [name, target] of targets) {
      process.stderr.write(`${name}: ${target.description}; ${cases} cases from seed ${seed}\n`);
      const tally: Tally = { requested: cases, cases: 0, ok: 0, typed: 0, untyped: 0, overMemory: 0, overTime: 0, multiLine: 0, longMessage: 0, longestMessage: 0, slowestMs: 0, slowestWallMs: 0, mostMemory: 0, seconds: 0, examples: [] };
      const started = performance.now();
      let shown = started;
      for (let i = 0; i < cases && performance.now() - started < maxSeconds * 1000; i++) {
        const caseSeed = seed + i;
        const [input] = fc.sample(target.arbitrary, { seed: caseSeed, numRuns: 1 });
        const result = await runPrepared(target, input, runCase);
        tally.cases++;
        tally[result.outcome]++;
        tally.longestMessage = Math.max(tally.longestMessage, result.message?.length ?? 0);
        tally.slowestMs = Math.max(tally.slowestMs, result.ms);
        tally.slowestWallMs = Math.max(tally.slowestWallMs, result.wallMs);
        tally.mostMemory = Math.max(tally.mostMemory, result.memoryBytes);
        if (result.ms > DEFAULT_LIMITS.timeMs) tally.overTime++;
        if (result.memoryBytes > DEFAULT_LIMITS.memoryBytes) tally.overMemory++;
        if (result.message !== undefined && /[\r\n\u2028\u2029]/.test(result.message)) tally.multiLine++;
        if ((result.message?.length ?? 0) > DEFAULT_LIMITS.messageChars) tally.longMessage++;
        const problems = violations(result);
        if (problems.length > 0 && tally.examples.length < 10) {
          process.stderr.write(`  ${name} --seed ${caseSeed}: ${problems.join('; ')}\n`);
          tally.examples.push(`  --seed ${caseSeed}: ${problems.join('; ')}\n    input: ${target.describe(input).slice(0, 400)}`);
        }
        if (performance.now() - shown > 15_000) {
          shown = performance.now();
          process.stderr.write(`  ${name}: ${i + 1}/${cases} cases from seed ${seed}, ${Math.round((shown - started) / 1000)} s, ${brokenCount(tally)} broken so far\n`);
        }
      }
      tally.seconds = (performance.now() - started) / 1000;
      broken += brokenCount(tally);
      if (values.json) process.stdout.write(`${JSON.stringify(tally)}\n`);
      else report(name, tally);
    }
  } finally {
    close();
  }
  process.exitCode = broken > 0 ? 1 : 0;
}

function brokenCount(t: Tally): number {
  return t.untyped + t.overMemory + t.overTime + t.multiLine + t.longMessage;
}

/** Runs the cases of one target in `workers` processes, each a contiguous range of seeds, and adds up their counts. */
async function inWorkers(name: TargetName, cases: number, seed: number, workers: number, maxSeconds: string | undefined): Promise<Tally> {
  const started = performance.now();
  const share = Math.ceil(cases / workers);
  const ranges = Array.from({ length: workers }, (_, w) => [seed + w * share, Math.min(share, cases - w * share)] as const).filter(([, n]) => n > 0);
  const tallies = await Promise.all(
    ranges.map(([start, count]) => new Promise<Tally>((resolve, reject) => {
      const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--target', name, '--cases', String(count), '--seed', String(start), '--json', ...(maxSeconds ? ['--max-seconds', maxSeconds] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.on('error', reject);
      child.on('close', () => {
        try {
          resolve(JSON.parse(out.trim().split('\n').pop()!) as Tally);
        } catch {
          reject(new Error(`a worker for ${name} (seeds ${start}..${start + count - 1}) printed no counts`));
        }
      });
    })),
  );
  const sum = (key: keyof Tally) => tallies.reduce((total, t) => total + (t[key] as number), 0);
  const max = (key: keyof Tally) => Math.max(...tallies.map((t) => t[key] as number));
  return {
    requested: sum('requested'), cases: sum('cases'), ok: sum('ok'), typed: sum('typed'), untyped: sum('untyped'), overMemory: sum('overMemory'), overTime: sum('overTime'),
    multiLine: sum('multiLine'), longMessage: sum('longMessage'), longestMessage: max('longestMessage'), slowestMs: max('slowestMs'), slowestWallMs: max('slowestWallMs'),
    mostMemory: max('mostMemory'), seconds: (performance.now() - started) / 1000, examples: tallies.flatMap((t) => t.examples).slice(0, 10),
  };
}

function report(name: string, t: Tally): void {
  const lines = [
    `${name}: ${t.cases} cases${t.cases < t.requested ? ` of ${t.requested} asked (stopped by --max-seconds)` : ''} in ${t.seconds.toFixed(1)} s: ${t.ok} loaded, ${t.typed} typed errors`,
    `  untyped exceptions: ${t.untyped}`,
    `  over ${DEFAULT_LIMITS.memoryBytes / 2 ** 20} MiB: ${t.overMemory} (most: ${(t.mostMemory / 2 ** 20).toFixed(1)} MiB)`,
    `  over ${DEFAULT_LIMITS.timeMs / 1000} s of CPU: ${t.overTime} (slowest: ${Math.round(t.slowestMs)} ms of CPU; longest wall time ${Math.round(t.slowestWallMs)} ms)`,
    `  messages over one line: ${t.multiLine}`,
    `  messages over ${DEFAULT_LIMITS.messageChars} characters: ${t.longMessage} (longest: ${t.longestMessage})`,
    ...(t.examples.length ? ['  first failing cases:', ...t.examples] : []),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`fuzz: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
