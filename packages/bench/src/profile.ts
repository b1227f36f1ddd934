#!/usr/bin/env node
/**
 * Where the time of a training step goes: the bench model (784-128-10, Adam, batch 32) trains on
 * Fashion-MNIST with every kernel call timed on the calling thread, for each thread count given,
 * in turns, so a busy moment of a shared machine spreads over all of them.
 *
 *   npm run profile -- [--threads 1,2] [--updates overlapped,waited] [--step-modes replayed,eager] [--steps 1000] [--rounds 3] [--data DIR]
 *
 * Every mode runs as `descent train` does, with V8's inlining of JavaScript off (the engine's
 * compiler-node.ts); `--js-inlining` keeps it on, to compare.
 *
 * Prints one markdown table: µs per step for each kernel (its wall time as the caller sees it,
 * waiting for workers included), for the JavaScript around them (autodiff, scopes, batch copies),
 * and in all, medians over the rounds; a step of a further pass in which no call is timed; and
 * what handing a task to the pool costs (an empty task, round trip). Timing adds ~0.1 µs per
 * kernel call. For each thread count above 1, a second table
 * gives each split kernel's shares: µs per share on the caller's thread and on a worker's, the
 * caller's wait for the workers (for an overlapped update, when the next kernel call came), and the part of the output the caller computed (the shares are
 * sized by the threads' measured speeds, so a slower core shows as a smaller part for its thread).
 * `--updates` runs each thread count above 1 with the split optimizer updates overlapped with the
 * JavaScript after them (the default), waited for as other calls are, or both, in turns (which
 * goes first alternates by round, and every round starts a new pool of workers). `--step-modes`
 * runs each column with fit's steps replayed from a recorded one (the default, see
 * step-recording.ts in the engine), run eagerly op by op (compile's runEagerly), or both in turns.
 *
 *   npm run profile -- --fresh [--threads 1,2] [--updates overlapped,waited] [--step-modes replayed,eager] [--runs 3] [--window 250] [--epochs 1] [--pair] [--spin MICROS] [--data DIR]
 *
 * The first epoch instead, as the bench's epoch suite times it: each run is a fresh process that
 * trains the bench model for one epoch (thread counts in turns, run by run), timed in windows of
 * `--window` steps. Prints, per window, µs per step, how many split calls the workers missed
 * (the caller then ran every share) and how many times a call found a worker asleep and woke it
 * (`--spin` sets how long workers spin for their next task before they sleep: with a long spin
 * they are seldom woken, so the calls they still miss are ones they were off their core for),
 * and over the epoch its seconds and the caller's stalls
 * (waits of over 50 µs for the workers' shares), medians over the runs. With `--epochs N` each
 * process trains N epochs, the windows run on through them, and each epoch's seconds get a row:
 * how far from its steady speed the first epoch is, while the JavaScript compiler is still at work.
 * On Linux, rows give each epoch's CPU time by thread (from /proc, in ticks of 10 ms): the calling
 * thread's, the pool's workers', and the runtime's helper threads' (V8 compiling hot JavaScript
 * and collecting garbage), which on one thread get the idle core and on two take a worker's.
 * `--pair` adds a column in which two one-thread processes train side by side: how fast each core
 * runs when both are busy, so no core is left idle for V8's compiler threads. Two threads of one
 * process cannot do better than that.
 *
 *   npm run profile -- --products 256x784x128,1024x1024x1024 [--threads 1,2] [--rounds 9]
 *
 * Products C[M,N] = A[M,K]·B[K,N] instead, each shape on each thread count in turns inside this
 * process, round after round (which thread count goes first alternates): each visit warms up, then
 * takes the median of 7 timings. Prints ms per product, medians over the rounds, and each thread
 * count's speed-up over the first: the median of the rounds' ratios, so that a slow stretch of a
 * shared machine weighs on both sides of a ratio alike.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import {
  adam, dense, flatten, loadDataset, MAX_SPIN_MICROS, sequential, setBackend, setThreads, threadsReady, turnOffJsInlining, type ImageDataset, type Kernels, type ShareTiming, type WasmKernels,
} from '@descent/engine';
import { coreSpeeds, cpuByRole, describeCpu, formatCoreSpeeds, machineInfo, threadCpuMs, wakeRoundTripMicros, type CpuByRole } from './machine.js';
import { median } from './stats.js';

const execFileAsync = promisify(execFile);

/** Kernel calls that are not work: the allocator. */
const UNTIMED = new Set(['alloc', 'free', 'allocBytes', 'freeBytes', 'memoryBytes']);

/** The active backend with every kernel call timed into `times` (µs, by kernel and shape). */
function timed(inner: Kernels, times: Map<string, number>): Kernels {
  return new Proxy(inner, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      const name = String(property);
      if (UNTIMED.has(name)) return (value as (...args: unknown[]) => unknown).bind(target);
      return (...args: unknown[]) => {
        const started = performance.now();
        try {
          return (value as (...args: unknown[]) => unknown).apply(target, args);
        } finally {
          const key = labelOf(name, args);
          times.set(key, (times.get(key) ?? 0) + (performance.now() - started) * 1000);
        }
      };
    },
  });
}

/** 'gemm 784×32×128 Aᵀ' (M×K×N), 'denseForward 32×784×128', or the kernel's name. */
function labelOf(name: string, args: unknown[]): string {
  if (name === 'gemm') return `gemm ${args[0]}×${args[2]}×${args[1]}${args[4] ? ' Aᵀ' : ''}${args[6] ? ' Bᵀ' : ''}`;
  if (name === 'denseForward') return `denseForward ${args[0]}×${args[2]}×${args[1]}`;
  return name;
}

interface Round {
  threads: number;
  stepMicros: number;
  /** A step in a pass of the same length with no kernel call timed. */
  untimedStepMicros: number;
  kernels: Map<string, number>;
  dispatchMicros: number;
  /** Per split task, over the timed pass: calls per step, µs per share on the caller and on a worker, the caller's wait per call, its part. */
  shares: Map<string, ShareRow>;
}

interface ShareRow {
  callsPerStep: number;
  callerShareMicros: number;
  workerShareMicros: number;
  waitMicros: number;
  /** The part of the output the caller computed in calls sized by the threads' speeds (NaN: none). */
  callerPart: number;
}

/** What the timed pass added to the pool's share timings, per call (µs) and per step. */
function shareRows(before: Map<string, ShareTiming>, after: Map<string, ShareTiming>, steps: number): Map<string, ShareRow> {
  const rows = new Map<string, ShareRow>();
  for (const [task, end] of after) {
    const start = before.get(task) ?? { calls: 0, callerShares: 0, callerMs: 0, workerShares: 0, workerMs: 0, waitMs: 0, sizedCalls: 0, callerPart: 0 };
    const calls = end.calls - start.calls;
    if (calls === 0) continue;
    const perShare = (ms: number, shares: number): number => (shares > 0 ? (ms * 1000) / shares : Number.NaN);
    rows.set(task, {
      callsPerStep: calls / steps,
      callerShareMicros: perShare(end.callerMs - start.callerMs, end.callerShares - start.callerShares),
      workerShareMicros: perShare(end.workerMs - start.workerMs, end.workerShares - start.workerShares),
      waitMicros: ((end.waitMs - start.waitMs) * 1000) / calls,
      callerPart: end.sizedCalls > start.sizedCalls ? (end.callerPart - start.callerPart) / (end.sizedCalls - start.sizedCalls) : Number.NaN,
    });
  }
  return rows;
}

async function profileRound(threads: number, overlapUpdates: boolean, eager: boolean, train: ImageDataset, steps: number): Promise<Round> {
  setThreads(threads);
  const inner = setBackend('wasm');
  await threadsReady();
  (inner as WasmKernels).threadPolicy.overlapUpdates = overlapUpdates;
  const times = new Map<string, number>();
  setBackend(timed(inner, times));
  try {
    const model = benchModel(eager);
    const count = steps * 32;
    const images = { ...train, count, images: train.images.subarray(0, count * 784), labels: train.labels.subarray(0, count) };
    // A first pass warms the JIT and the buffers (and lets the moments decay as in real training).
    await model.fit(images, images.labels, { epochs: 1, batchSize: 32, seed: 1 });
    times.clear();
    const sharesBefore = (inner as WasmKernels).shareTimings;
    const started = performance.now();
    await model.fit(images, images.labels, { epochs: 1, batchSize: 32, seed: 2 });
    const stepMicros = ((performance.now() - started) * 1000) / steps;
    const shares = shareRows(sharesBefore, (inner as WasmKernels).shareTimings, steps);
    for (const [key, total] of times) times.set(key, total / steps);
    // Once more without timing each call: what a step takes as training runs it.
    setBackend(inner);
    const untimedStarted = performance.now();
    await model.fit(images, images.labels, { epochs: 1, batchSize: 32, seed: 3 });
    const untimedStepMicros = ((performance.now() - untimedStarted) * 1000) / steps;
    model.dispose();
    return { threads, stepMicros, untimedStepMicros, kernels: times, dispatchMicros: dispatchCost(inner), shares };
  } finally {
    (inner as WasmKernels).threadPolicy.overlapUpdates = true;
    setBackend(inner);
  }
}

/** Median µs of one empty task handed to every thread and waited for (0 on one thread). */
function dispatchCost(backend: Kernels): number {
  const measure = (backend as { measureDispatch?: (calls: number) => number }).measureDispatch;
  if (!measure) return 0;
  const samples: number[] = [];
  for (let i = 0; i < 20; i++) samples.push(measure.call(backend, 2000));
  return median(samples);
}

/** The bench model, compiled as the bench compiles it (or to run every step eagerly). */
function benchModel(eager = false) {
  const model = sequential([flatten({ inputShape: [28, 28] }), dense({ units: 128, activation: 'relu' }), dense({ units: 10, activation: 'softmax' })], { seed: 1 });
  model.compile({ optimizer: adam(), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'], runEagerly: eager });
  return model;
}

/** A column of the tables: a thread count and, above one thread, how the optimizer updates run. */
interface Config {
  threads: number;
  overlap: boolean;
  /** Whether fit runs every step op by op instead of replaying a recorded one. */
  eager: boolean;
  /** Processes run at once (2: --pair's column, two one-thread processes side by side). */
  processes: number;
  label: string;
}

/** --pair's column: what each core does when both are busy, each with a one-thread epoch of its own. */
const PAIR_LABEL = '1 thread, two processes at once';

/** Each thread count and way of running the steps, and above one thread each way of running the updates given. */
function configsOf(threadCounts: readonly number[], updateModes: readonly string[], stepModes: readonly string[]): Config[] {
  return threadCounts.flatMap((threads) => stepModes.flatMap((stepMode) =>
    (threads === 1 ? [{ threads, overlap: true }] : updateModes.map((mode) => ({ threads, overlap: mode === 'overlapped' })))
      .map((config) => ({ ...config, eager: stepMode === 'eager' }))))
    .map((config) => ({ ...config, processes: 1, label: configLabel(config.threads, config.overlap, config.eager) }));
}

function configLabel(threads: number, overlap: boolean, eager: boolean): string {
  return `${threads} thread${threads === 1 ? '' : 's'}${overlap || threads === 1 ? '' : ', updates waited for'}${eager ? ', steps run eagerly' : ''}`;
}

/** A round's order of the columns: the ways of running the updates take turns at going first. */
function orderFor(configs: readonly Config[], round: number): readonly Config[] {
  return round % 2 === 0 ? configs : [...configs].sort((a, b) => a.threads - b.threads || a.processes - b.processes || Number(a.overlap) - Number(b.overlap) || Number(!a.eager) - Number(!b.eager));
}

/** One fresh process's first epoch (see the header's --fresh). */
interface FreshRun {
  label: string;
  threads: number;
  /** Seconds of each epoch, the first first. */
  epochSeconds: number[];
  /** Steps of the epoch. */
  steps: number;
  /** µs per step of each window of steps (the last may be shorter). */
  windowMicros: number[];
  /** Split calls of each window, and how many of them no worker took part in. */
  windowCalls: number[];
  windowMissed: number[];
  /** Workers woken from Atomics.wait by each window's split calls. */
  windowWakes: number[];
  stalls: number;
  stalledMs: number;
  /** CPU time of each epoch by thread role (Linux only; empty elsewhere). */
  epochCpu: CpuByRole[];
}

/** The child of --fresh: trains one epoch in this process and returns its windows. */
async function freshRun(threads: number, overlap: boolean, eager: boolean, window: number, epochs: number, dataDir: string | undefined, spinMicros: number | undefined): Promise<FreshRun> {
  const { train } = await loadDataset('fashion-mnist', dataDir ? { dir: dataDir } : {});
  // Threads that exist before the pool starts: this one and the runtime's helpers.
  const startupThreads = new Set(threadCpuMs()?.keys() ?? []);
  setThreads(threads);
  const kernels = setBackend('wasm') as WasmKernels;
  await threadsReady();
  kernels.threadPolicy.overlapUpdates = overlap;
  kernels.threadPolicy.workerSpinMicros = spinMicros;
  const model = benchModel(eager);
  const run: FreshRun = {
    label: configLabel(threads, overlap, eager), threads, epochSeconds: [], steps: 0, windowMicros: [], windowCalls: [], windowMissed: [], windowWakes: [], stalls: 0, stalledMs: 0, epochCpu: [],
  };
  let windowStart = performance.now(), stepsInWindow = 0;
  let calls = kernels.threadPolicy.splitCalls, workerShares = kernels.workerShares, wakes = kernels.wakes;
  const closeWindow = (): void => {
    const now = performance.now();
    run.windowMicros.push(((now - windowStart) * 1000) / stepsInWindow);
    const windowCalls = kernels.threadPolicy.splitCalls - calls;
    run.windowCalls.push(windowCalls);
    // Training's split calls have one share per thread: a call with none run by a worker was missed.
    run.windowMissed.push(threads > 1 ? Math.max(0, windowCalls - (kernels.workerShares - workerShares) / (threads - 1)) : 0);
    run.windowWakes.push(kernels.wakes - wakes);
    windowStart = now;
    stepsInWindow = 0;
    calls = kernels.threadPolicy.splitCalls;
    workerShares = kernels.workerShares;
    wakes = kernels.wakes;
  };
  let epochStarted = performance.now();
  let epochCpuStart = threadCpuMs();
  await model.fit(train, train.labels, {
    epochs, batchSize: 32, seed: 41, verbose: 0,
    callbacks: [{
      onEpochBegin: () => { epochCpuStart = threadCpuMs(); epochStarted = performance.now(); },
      onBatchEnd: () => { run.steps++; if (++stepsInWindow === window) closeWindow(); },
      onEpochEnd: () => {
        run.epochSeconds.push((performance.now() - epochStarted) / 1000);
        const now = threadCpuMs();
        if (epochCpuStart && now) run.epochCpu.push(cpuByRole(epochCpuStart, now, startupThreads, process.pid));
      },
    }],
  });
  if (stepsInWindow > 0) closeWindow();
  run.stalls = kernels.stalls.calls;
  run.stalledMs = kernels.stalls.ms;
  model.dispose();
  setThreads(1);
  return run;
}

/** The table of --fresh: medians over the runs of each column. */
function freshTable(runs: readonly FreshRun[], configs: readonly Config[], window: number): string {
  const byLabel = new Map(configs.map(({ label }) => [label, runs.filter((r) => r.label === label)]));
  const windows = Math.max(...runs.map((r) => r.windowMicros.length));
  const steps = Math.max(...runs.map((r) => r.steps));
  const cell = (label: string, pick: (r: FreshRun) => number | undefined, digits: number): string => {
    const values = byLabel.get(label)!.map(pick).filter((x): x is number => x !== undefined);
    return values.length === 0 ? '–' : median(values).toFixed(digits);
  };
  const multi = configs.filter((c) => c.threads > 1);
  const header = [
    'steps', ...configs.map(({ label }) => `${label}: µs/step`),
    ...multi.flatMap(({ label }) => [`${label}: calls missed by the workers`, `${label}: workers woken`]),
  ];
  const lines = [`| ${header.join(' | ')} |`, `| --- | ${header.slice(1).map(() => '---:').join(' | ')} |`];
  for (let w = 0; w < windows; w++) {
    lines.push(`| ${w * window + 1}–${Math.min((w + 1) * window, steps)} | ${[
      ...configs.map(({ label }) => cell(label, (r) => r.windowMicros[w], 0)),
      ...multi.flatMap(({ label }) => [`${cell(label, (r) => r.windowMissed[w], 0)} of ${cell(label, (r) => r.windowCalls[w], 0)}`, cell(label, (r) => r.windowWakes[w], 0)]),
    ].join(' | ')} |`);
  }
  const blanks = multi.flatMap(() => ['', '']);
  const perConfig = (pick: (r: FreshRun) => number | undefined, digits: number, oneThread: boolean): string[] =>
    configs.map(({ threads, label }) => (threads > 1 || oneThread ? cell(label, pick, digits) : '–'));
  const epochs = Math.max(...runs.map((r) => r.epochSeconds.length));
  for (let e = 0; e < epochs; e++) {
    lines.push(`| **epoch${epochs > 1 ? ` ${e + 1}` : ''} (s)** | ${[...perConfig((r) => r.epochSeconds[e], 2, true), ...blanks].join(' | ')} |`);
  }
  lines.push(`| stalls: waits over 50 µs for the workers (count) | ${[...perConfig((r) => r.stalls, 0, false), ...blanks].join(' | ')} |`);
  lines.push(`| stalls: their time (ms) | ${[...perConfig((r) => r.stalledMs, 0, false), ...blanks].join(' | ')} |`);
  if (runs.some((r) => r.epochCpu.length > 0)) {
    for (let e = 0; e < epochs; e++) {
      const epoch = epochs > 1 ? `, epoch ${e + 1}` : '';
      lines.push(`| CPU of the calling thread${epoch} (ms) | ${[...perConfig((r) => r.epochCpu[e]?.caller, 0, true), ...blanks].join(' | ')} |`);
      lines.push(`| CPU of the workers${epoch} (ms) | ${[...perConfig((r) => r.epochCpu[e]?.workers, 0, false), ...blanks].join(' | ')} |`);
      lines.push(`| CPU of the runtime's helper threads (compiler, GC)${epoch} (ms) | ${[...perConfig((r) => r.epochCpu[e]?.helpers, 0, true), ...blanks].join(' | ')} |`);
    }
  }
  return lines.join('\n');
}

function format(us: number): string {
  return us >= 100 ? us.toFixed(0) : us.toFixed(1);
}

/** How even the cores ran, measured before (`before`) and now: two threads cannot gain more than the slower core adds. */
function coreSpeedsNote(before: ReturnType<typeof coreSpeeds>): string {
  const after = coreSpeeds();
  return before && after
    ? ` Core speeds (a loop pinned to each core, relative to the fastest): ${formatCoreSpeeds(before)} before, ${formatCoreSpeeds(after)} after.`
    : '';
}

/** What waking a sleeping worker costs here: a split call that finds its worker asleep waits about this long for it. */
async function wakeNote(): Promise<string> {
  const micros = await wakeRoundTripMicros();
  return micros === undefined
    ? ''
    : ` A thread asleep in Atomics.wait answered a notify in ${format(micros)} µs (round trip, median of 400 wakes; a worker spins before it sleeps, and one that slept misses the start of the next split call by about that much).`;
}

/** A product's shape, M×K×N. */
interface ProductShape {
  m: number;
  k: number;
  n: number;
}

/** Most floats of A, B and C together that --products allocates (256 MB). */
const MAX_PRODUCT_FLOATS = 1 << 26;

/** '256x784x128' (or with ×) as M, K, N; throws a one-line error naming the flag. */
export function parseProductShape(text: string): ProductShape {
  const match = /^(\d{1,5})[x×](\d{1,5})[x×](\d{1,5})$/.exec(text.trim());
  const [m, k, n] = match ? match.slice(1).map(Number) : [0, 0, 0];
  if (!match || m < 1 || k < 1 || n < 1) {
    throw new Error(`profile: --products takes shapes MxKxN of positive whole numbers (e.g. 256x784x128,1024x1024x1024), got '${text}'`);
  }
  if (m * k + k * n + m * n > MAX_PRODUCT_FLOATS) {
    throw new Error(`profile: --products: ${text} needs more than ${MAX_PRODUCT_FLOATS.toLocaleString('en-US')} floats`);
  }
  return { m, k, n };
}

/** Milliseconds per product: a warm-up, then the median of 7 timings of enough products to take ~20 ms each. */
function timeProduct(run: () => void): number {
  const warmUntil = performance.now() + 100;
  let calls = 0;
  const warmStarted = performance.now();
  while (calls < 3 || performance.now() < warmUntil) {
    run();
    calls++;
  }
  const repeats = Math.max(1, Math.round((20 * calls) / (performance.now() - warmStarted)));
  const timings: number[] = [];
  for (let timing = 0; timing < 7; timing++) {
    const started = performance.now();
    for (let i = 0; i < repeats; i++) run();
    timings.push((performance.now() - started) / repeats);
  }
  return median(timings);
}

/** --products: each shape on each thread count in turns, in this process. */
async function mainProducts(list: string, threadCounts: readonly number[], rounds: number): Promise<void> {
  const shapes = list.split(',').map(parseProductShape);
  if (!(Number.isInteger(rounds) && rounds >= 1)) throw new Error('profile: --rounds takes a positive whole number');
  const kernels = setBackend('wasm');
  if (kernels.name !== 'wasm') throw new Error('profile: --products needs the WASM kernels, which this runtime cannot run');
  const label = ({ m, k, n }: ProductShape): string => `${m}×${k}×${n}`;
  const ms = new Map<string, number[]>();
  const speedUps = new Map<string, number[]>();
  const speedsBefore = coreSpeeds();
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? threadCounts : [...threadCounts].reverse();
    for (const shape of shapes) {
      const { m, k, n } = shape;
      const a = kernels.alloc(m * k), b = kernels.alloc(k * n), c = kernels.alloc(m * n);
      try {
        // Values that neither overflow nor underflow, the same every run.
        a.data.forEach((_, i, data) => (data[i] = ((i % 13) - 6) / 8));
        b.data.forEach((_, i, data) => (data[i] = ((i % 7) - 3) / 4));
        const measured = new Map<number, number>();
        for (const threads of order) {
          setThreads(threads);
          await threadsReady();
          measured.set(threads, timeProduct(() => kernels.gemm(m, n, k, a, false, b, false, c, false)));
        }
        for (const threads of threadCounts) {
          const key = `${label(shape)}|${threads}`;
          ms.set(key, [...(ms.get(key) ?? []), measured.get(threads)!]);
          speedUps.set(key, [...(speedUps.get(key) ?? []), measured.get(threadCounts[0])! / measured.get(threads)!]);
        }
        process.stderr.write(`round ${round + 1}/${rounds}, ${label(shape)}: ${threadCounts.map((t) => `${measured.get(t)!.toPrecision(3)} ms on ${t}`).join(', ')}\n`);
      } finally {
        kernels.free(a);
        kernels.free(b);
        kernels.free(c);
      }
    }
  }
  setThreads('auto');
  const threadsLabel = (t: number): string => `${t} thread${t === 1 ? '' : 's'}`;
  const others = threadCounts.slice(1);
  const lines = [
    `| product (M×K×N) | ${[...threadCounts.map((t) => `${threadsLabel(t)}: ms`), ...others.map((t) => `${threadsLabel(t)}: speed-up`)].join(' | ')} |`,
    `| --- | ${[...threadCounts, ...others].map(() => '---:').join(' | ')} |`,
    ...shapes.map((shape) => `| ${label(shape)} | ${[
      ...threadCounts.map((t) => String(Number(median(ms.get(`${label(shape)}|${t}`)!).toPrecision(3)))),
      ...others.map((t) => `${median(speedUps.get(`${label(shape)}|${t}`)!).toFixed(2)}×`),
    ].join(' | ')} |`),
  ];
  const speeds = coreSpeedsNote(speedsBefore);
  const machine = machineInfo();
  process.stdout.write(
    `${lines.join('\n')}\n\n${describeCpu(machine)}, ${machine.cores} cores, Node ${machine.node}; C = A·B in float32 on descent's WASM kernels (${(kernels as WasmKernels).variant}), ` +
      `medians of ${rounds} round(s), thread counts in turns; a speed-up is the median of the rounds' ratios to ${threadsLabel(threadCounts[0])}.${speeds}\n`,
  );
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      threads: { type: 'string', default: '1,2' }, updates: { type: 'string', default: 'overlapped' }, steps: { type: 'string', default: '1000' }, rounds: { type: 'string', default: '3' }, data: { type: 'string' },
      fresh: { type: 'boolean', default: false }, pair: { type: 'boolean', default: false }, runs: { type: 'string', default: '3' }, window: { type: 'string', default: '250' }, epochs: { type: 'string', default: '1' },
      'step-modes': { type: 'string', default: 'replayed' },
      'js-inlining': { type: 'boolean', default: false },
      spin: { type: 'string' },
      child: { type: 'string' }, 'child-updates': { type: 'string', default: 'overlapped' }, 'child-steps': { type: 'string', default: 'replayed' }, products: { type: 'string' },
    },
  });
  // As `descent train` runs the wasm kernels, unless asked to keep V8's inlining (to compare).
  if (!values['js-inlining']) turnOffJsInlining();
  const threadCounts = values.threads.split(',').map(Number);
  if (values.products !== undefined) {
    if (threadCounts.some((t) => !Number.isInteger(t) || t < 1)) throw new Error('profile: --threads takes positive whole numbers (e.g. 1,2)');
    await mainProducts(values.products, threadCounts, Number(values.rounds));
    return;
  }
  const spinMicros = values.spin === undefined ? undefined : Number(values.spin);
  if (spinMicros !== undefined && !(Number.isInteger(spinMicros) && spinMicros >= 0 && spinMicros <= MAX_SPIN_MICROS)) {
    throw new Error(`profile: --spin takes a whole number of µs from 0 to ${MAX_SPIN_MICROS}, not ${values.spin}`);
  }
  if (values.child !== undefined) {
    const run = await freshRun(Number(values.child), values['child-updates'] === 'overlapped', values['child-steps'] === 'eager', Number(values.window), Number(values.epochs), values.data, spinMicros);
    process.stdout.write(`${JSON.stringify(run)}\n`);
    return;
  }
  const updateModes = values.updates.split(',');
  const stepModes = values['step-modes'].split(',');
  if (
    threadCounts.some((t) => !Number.isInteger(t) || t < 1) || updateModes.some((mode) => mode !== 'overlapped' && mode !== 'waited') ||
    stepModes.some((mode) => mode !== 'replayed' && mode !== 'eager')
  ) {
    throw new Error('profile: --threads takes positive whole numbers (e.g. 1,2), --updates overlapped, waited or both, --step-modes replayed, eager or both');
  }
  // Columns: each thread count and way of running the steps, and above 1 thread each way of running the updates.
  const configs = configsOf(threadCounts, updateModes, stepModes);
  if (values.pair) {
    if (!values.fresh) throw new Error('profile: --pair needs --fresh');
    configs.push({ threads: 1, overlap: true, eager: false, processes: 2, label: PAIR_LABEL });
  }
  if (spinMicros !== undefined && !values.fresh) throw new Error('profile: --spin needs --fresh');
  if (values.fresh) {
    await mainFresh(configs, Number(values.runs), Number(values.window), Number(values.epochs), values.data, values['js-inlining'], spinMicros);
    return;
  }
  const steps = Number(values.steps), rounds = Number(values.rounds);
  if (!(steps >= 1 && steps <= 1875) || !(rounds >= 1)) {
    throw new Error('profile: --steps takes 1 to 1875, --rounds at least 1');
  }
  const { train } = await loadDataset('fashion-mnist', values.data ? { dir: values.data } : {});
  // Two threads cannot gain more than the slower core adds, so the profile says how even the cores ran.
  const speedsBefore = coreSpeeds();
  const results = new Map<string, Round[]>(configs.map(({ label }) => [label, []]));
  for (let round = 0; round < rounds; round++) {
    // The ways of running the updates take turns at going first (each round starts its pool afresh).
    for (const { threads, overlap, eager, label } of orderFor(configs, round)) {
      setThreads(1);
      const result = await profileRound(threads, overlap, eager, train, steps);
      results.get(label)!.push(result);
      process.stderr.write(`round ${round + 1}/${rounds}, ${label}: ${result.stepMicros.toFixed(1)} µs/step\n`);
    }
  }
  setThreads('auto');

  // Rows: every kernel seen, biggest first (by the first thread count's time).
  const medianOf = (label: string, pick: (r: Round) => number): number => median(results.get(label)!.map(pick));
  const keys = [...new Set([...results.values()].flatMap((list) => list.flatMap((r) => [...r.kernels.keys()])))];
  const first = configs[0].label;
  keys.sort((a, b) => medianOf(first, (r) => r.kernels.get(b) ?? 0) - medianOf(first, (r) => r.kernels.get(a) ?? 0));
  const header = ['µs per step', ...configs.map(({ label }) => label)];
  const lines = [`| ${header.join(' | ')} |`, `| --- | ${configs.map(() => '---:').join(' | ')} |`];
  const row = (label: string, pick: (r: Round) => number): void => {
    lines.push(`| ${label} | ${configs.map((config) => format(medianOf(config.label, pick))).join(' | ')} |`);
  };
  for (const key of keys) row(key, (r) => r.kernels.get(key) ?? 0);
  row('everything else (JavaScript: the step\'s own or its replay, batch copies)', (r) => r.stepMicros - [...r.kernels.values()].reduce((a, b) => a + b, 0));
  row('**one step**', (r) => r.stepMicros);
  row('one step, no kernel call timed (another pass)', (r) => r.untimedStepMicros);
  row('handing an empty task to the workers and back', (r) => r.dispatchMicros);
  // Per split kernel: how long one share ran on the caller's thread and on a worker's, and how
  // long the caller then waited for the workers. Equal shares on even cores run equally long.
  for (const { label } of configs.filter((config) => config.threads > 1)) {
    const tasks = [...new Set(results.get(label)!.flatMap((r) => [...r.shares.keys()]))];
    const share = (task: string, pick: (row: ShareRow) => number, show = format): string => {
      const value = median(results.get(label)!.map((r) => (r.shares.has(task) ? pick(r.shares.get(task)!) : Number.NaN)).filter((x) => !Number.isNaN(x)));
      return Number.isNaN(value) ? '–' : show(value);
    };
    const percent = (fraction: number): string => `${(fraction * 100).toFixed(0)}%`;
    lines.push(
      '',
      `| split kernel, ${label} | calls per step | µs per share, caller | µs per share, a worker | µs the caller waited per call | caller's part of the output |`,
      '| --- | ---: | ---: | ---: | ---: | ---: |',
      ...tasks.map((task) => `| ${task} | ${[
        share(task, (r) => r.callsPerStep), share(task, (r) => r.callerShareMicros), share(task, (r) => r.workerShareMicros),
        share(task, (r) => r.waitMicros), share(task, (r) => r.callerPart, percent),
      ].join(' | ')} |`),
    );
  }
  const speeds = coreSpeedsNote(speedsBefore);
  const wake = configs.some((config) => config.threads > 1) ? await wakeNote() : '';
  const machine = machineInfo();
  process.stdout.write(
    `${lines.join('\n')}\n\n${describeCpu(machine)}, ${machine.cores} cores, Node ${machine.node}; ${steps} steps of batch 32 after a warm-up pass, ` +
      `medians of ${rounds} round(s), thread counts in turns.${speeds}${wake}\n`,
  );
}

/** --fresh: one child process per run, thread counts in turns. */
async function mainFresh(
  configs: readonly Config[], runs: number, window: number, epochs: number, dataDir: string | undefined, jsInlining: boolean, spinMicros: number | undefined,
): Promise<void> {
  if (![runs, window, epochs].every((value) => Number.isInteger(value) && value >= 1)) {
    throw new Error('profile: --runs, --window and --epochs take positive whole numbers');
  }
  const self = fileURLToPath(import.meta.url);
  const { train } = await loadDataset('fashion-mnist', dataDir ? { dir: dataDir } : {});
  const results: FreshRun[] = [];
  for (let run = 0; run < runs; run++) {
    for (const { threads, overlap, eager, processes, label } of orderFor(configs, run)) {
      // Node's own flags carry over (`node --no-opt …/profile.js --fresh` profiles without the optimizing compiler).
      const args = [
        ...process.execArgv, self, '--child', String(threads), '--child-updates', overlap ? 'overlapped' : 'waited', '--child-steps', eager ? 'eager' : 'replayed', '--window', String(window), '--epochs', String(epochs),
        ...(dataDir ? ['--data', dataDir] : []), ...(jsInlining ? ['--js-inlining'] : []), ...(spinMicros === undefined ? [] : ['--spin', String(spinMicros)]),
      ];
      const outputs = await Promise.all(Array.from({ length: processes }, () => execFileAsync(process.execPath, args, { encoding: 'utf8' })));
      const finished = outputs.map(({ stdout }) => ({ ...(JSON.parse(stdout) as FreshRun), label }));
      results.push(...finished);
      process.stderr.write(`run ${run + 1}/${runs}, ${label}: ${finished.map((r) => r.epochSeconds.map((seconds) => seconds.toFixed(2)).join(', ')).join(' / ')} s\n`);
    }
  }
  const machine = machineInfo();
  process.stdout.write(
    `${freshTable(results, configs, window)}\n\n${describeCpu(machine)}, ${machine.cores} cores, Node ${machine.node}; ` +
      `${epochs === 1 ? 'the first epoch' : `the first ${epochs} epochs`} of a fresh process ` +
      `(the bench model, ${train.count.toLocaleString('en-US')} Fashion-MNIST training images, batch 32), medians of ${runs} run(s), thread counts in turns` +
      `${configs.some((config) => config.processes > 1) ? `; "${PAIR_LABEL}": two such processes started together, the medians over both` : ''}` +
      `${spinMicros === undefined ? '' : `; workers spin ${spinMicros} µs for their next task before they sleep`}.\n`,
  );
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
