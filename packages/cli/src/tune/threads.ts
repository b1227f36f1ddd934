/** `--threads` of `descent tune` and `descent worker`: the WASM kernel threads of each job. */
import { Option } from 'commander';
import type { BackendName } from '@descent/engine';
import { defaultJobThreads } from '@descent/jobs';
import { threadCount } from '../flags.js';

/** `--threads` of tune and worker: the kernel threads of each job, by default its share of the cores. */
export function trialThreadsOption(): Option {
  return new Option('--threads <n>', "threads each trial's wasm kernels may use: a number, or 'auto' for its share of the cores (cores / workers, at least 1)")
    .argParser(threadCount)
    .default('auto');
}

/** The kernel threads of each trial that --threads asks for (undefined: the runner's default share). */
export function trialThreads(flags: { threads: number | 'auto' }): number | undefined {
  return flags.threads === 'auto' ? undefined : flags.threads;
}

/** ", 1 kernel thread each" for the search's description (wasm only). */
export function kernelThreadsText(flags: { threads: number | 'auto'; workers: number; backend: BackendName }): string {
  if (flags.backend !== 'wasm') return '';
  const threads = trialThreads(flags) ?? defaultJobThreads(flags.workers);
  return `, ${threads} kernel thread${threads === 1 ? '' : 's'} each`;
}
