#!/usr/bin/env node
/**
 * `npm run fuzz -- --cases N [--target idx,model,optimizer,image] [--seed S]`: long fuzz runs.
 * Each case is generated from its own seed (the run's seed plus its number), so any case can be
 * run again alone with `--seed <its seed> --cases 1`. Prints, per target, how every case ended
 * and every broken rule: an untyped exception, a message over one line or 300 characters, more
 * than 256 MiB of memory, more than 2 s. Exits 1 when any rule was broken.
 */
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { DEFAULT_LIMITS, TARGET_NAMES, makeTargets, runCase, violations, type TargetName } from './index.js';

interface Tally {
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
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write('usage: npm run fuzz -- [--cases N] [--target idx,model,optimizer,image] [--seed S]\n');
    return;
  }
  const cases = Number(values.cases);
  const seed = Number(values.seed);
  const names = values.target!.split(',').map((n) => n.trim()) as TargetName[];
  const unknown = names.filter((n) => !TARGET_NAMES.includes(n));
  if (!Number.isInteger(cases) || cases < 1 || !Number.isInteger(seed) || unknown.length > 0) {
    process.stderr.write(`fuzz: --cases and --seed take integers, --target one or more of ${TARGET_NAMES.join(', ')}\n`);
    process.exitCode = 2;
    return;
  }
  const { targets, close } = await makeTargets(names);
  let broken = 0;
  try {
    for (const [name, target] of targets) {
      process.stderr.write(`${name}: ${target.description}; ${cases} cases from seed ${seed}\n`);
      const tally: Tally = { cases: 0, ok: 0, typed: 0, untyped: 0, overMemory: 0, overTime: 0, multiLine: 0, longMessage: 0, longestMessage: 0, slowestMs: 0, mostMemory: 0, seconds: 0, examples: [] };
      const started = performance.now();
      let shown = started;
      for (let i = 0; i < cases; i++) {
        const caseSeed = seed + i;
        const [input] = fc.sample(target.arbitrary, { seed: caseSeed, numRuns: 1 });
        const result = await runCase(() => target.run(input));
        tally.cases++;
        tally[result.outcome]++;
        tally.longestMessage = Math.max(tally.longestMessage, result.message?.length ?? 0);
        tally.slowestMs = Math.max(tally.slowestMs, result.ms);
        tally.mostMemory = Math.max(tally.mostMemory, result.memoryBytes);
        if (result.ms > DEFAULT_LIMITS.timeMs) tally.overTime++;
        if (result.memoryBytes > DEFAULT_LIMITS.memoryBytes) tally.overMemory++;
        if (result.message !== undefined && /[\r\n\u2028\u2029]/.test(result.message)) tally.multiLine++;
        if ((result.message?.length ?? 0) > DEFAULT_LIMITS.messageChars) tally.longMessage++;
        const problems = violations(result);
        if (problems.length > 0 && tally.examples.length < 10) {
          tally.examples.push(`  --seed ${caseSeed}: ${problems.join('; ')}\n    input: ${target.describe(input).slice(0, 400)}`);
        }
        if (performance.now() - shown > 15_000) {
          shown = performance.now();
          process.stderr.write(`  ${name}: ${i + 1}/${cases} cases, ${Math.round((shown - started) / 1000)} s\n`);
        }
      }
      tally.seconds = (performance.now() - started) / 1000;
      broken += tally.untyped + tally.overMemory + tally.overTime + tally.multiLine + tally.longMessage;
      report(name, tally);
    }
  } finally {
    close();
  }
  process.exitCode = broken > 0 ? 1 : 0;
}

function report(name: string, t: Tally): void {
  const lines = [
    `${name}: ${t.cases} cases in ${t.seconds.toFixed(1)} s: ${t.ok} loaded, ${t.typed} typed errors`,
    `  untyped exceptions: ${t.untyped}`,
    `  over ${DEFAULT_LIMITS.memoryBytes / 2 ** 20} MiB: ${t.overMemory} (most: ${(t.mostMemory / 2 ** 20).toFixed(1)} MiB)`,
    `  over ${DEFAULT_LIMITS.timeMs / 1000} s: ${t.overTime} (slowest: ${Math.round(t.slowestMs)} ms)`,
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
