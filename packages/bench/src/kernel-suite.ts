/**
 * The GEMM kernel suite: GFLOP/s of one matrix product, per shape and engine, in one process.
 *
 * Shapes are written M×K×N: C[M,N] = op(A)[M,K]·op(B)[K,N], 2·M·K·N floating-point operations.
 * They are the products of one training step of the MNIST MLP (784 → 128 → 10, batch 32),
 * a larger batch of the first layer, and 1024³ as the classic square case.
 *
 * Engines: descent's WASM kernels on one thread and on two (the same kernels, rows or columns of
 * C split between two threads) and its reference TS kernels (called directly through the
 * Kernels interface: no tensors, no autodiff), @tensorflow/tfjs-backend-wasm and
 * @tensorflow/tfjs's cpu backend (tf.matMul with transposeA/B, then dataSync and dispose, the
 * way a tfjs op is used), and @tensorflow/tfjs-node when it loads. Timing is benny
 * (benchmark.js) after a timed warm-up; each cell is the median time per product, and in the
 * full suite the median over three rounds that visit every shape and engine in turn.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import * as b from 'benny';
import type * as TF from '@tensorflow/tfjs';
import {
  createReferenceKernels, createWasmKernels, kernels as activeKernels, setBackend, setThreads, threadCount, threadsReady, type Kernels,
} from '@descent/engine';

export interface GemmShape {
  /** 'M×K×N', with Aᵀ / Bᵀ marking a transposed operand. */
  label: string;
  m: number;
  k: number;
  n: number;
  transposeA: boolean;
  transposeB: boolean;
  /** Where the product comes from. */
  role: string;
}

export const KERNEL_ENGINES = ['descent-wasm', 'descent-wasm-2t', 'descent-wasm-relaxed', 'descent-ts', 'tfjs-wasm', 'tfjs-cpu', 'tfjs-node'] as const;
export type KernelEngine = (typeof KERNEL_ENGINES)[number];

export interface KernelSuiteRow {
  shape: string;
  engine: KernelEngine;
  gflops: number;
  /** gflops / tfjs-wasm's gflops on the same shape (NaN if tfjs-wasm was not measured). */
  ratioToTfjsWasm: number;
  /** Median milliseconds per product. */
  medianMs: number;
  samples: number;
}

export interface KernelSuiteResult {
  quick: boolean;
  date: string;
  node: string;
  /** descent's WASM build that ran ('simd' or 'relaxed-simd'), or why WASM did not run. */
  descentWasm: string;
  shapes: GemmShape[];
  rows: KernelSuiteRow[];
  /** Engine/shape pairs not measured, and why (e.g. `tfjs-node: not available: …`). */
  notes: string[];
}

export interface KernelSuiteOptions {
  quick: boolean;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

function shape(m: number, k: number, n: number, role: string, transposeA = false, transposeB = false): GemmShape {
  const label = `${m}×${k}×${n}${transposeA ? ' Aᵀ' : ''}${transposeB ? ' Bᵀ' : ''}`;
  return { label, m, k, n, transposeA, transposeB, role };
}

export const KERNEL_SHAPES: readonly GemmShape[] = [
  shape(256, 784, 128, 'dense 1 forward, batch 256'),
  shape(32, 784, 128, 'dense 1 forward: X·W1'),
  shape(784, 32, 128, 'dense 1 weight gradient: Xᵀ·dZ1', true, false),
  shape(32, 128, 10, 'dense 2 forward: H·W2'),
  shape(128, 32, 10, 'dense 2 weight gradient: Hᵀ·dZ2', true, false),
  shape(32, 10, 128, 'dense 2 input gradient: dZ2·W2ᵀ', false, true),
  shape(1024, 1024, 1024, 'square'),
];

const QUICK_SHAPES = ['256×784×128', '784×32×128 Aᵀ', '32×128×10'];

/** Above this many multiply-adds the slow engines are skipped (seconds per product). */
const SLOW_ENGINE_LIMIT = 2e8;
const SLOW_ENGINES: readonly KernelEngine[] = ['descent-ts', 'tfjs-cpu'];

const flops = (s: GemmShape): number => 2 * s.m * s.k * s.n;

/** A small deterministic fill (no Math.random): values in [-0.5, 0.5). */
function fillValues(values: { length: number; [i: number]: number }, seed: number): void {
  let state = seed >>> 0;
  for (let i = 0; i < values.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    values[i] = state / 4294967296 - 0.5;
  }
}

/** One engine's way to run a product: returns the function benny times, and a cleanup. */
type Prepare = (s: GemmShape) => { run: () => void; dispose: () => void };

function descentPrepare(k: Kernels): Prepare {
  return (s) => {
    const a = k.alloc(s.m * s.k), bb = k.alloc(s.k * s.n), c = k.alloc(s.m * s.n);
    fillValues(a.data, 1);
    fillValues(bb.data, 2);
    return {
      run: () => k.gemm(s.m, s.n, s.k, a, s.transposeA, bb, s.transposeB, c, false),
      dispose: () => {
        k.free(a);
        k.free(bb);
        k.free(c);
      },
    };
  };
}

function tfjsPrepare(tf: typeof TF): Prepare {
  return (s) => {
    const av = new Float32Array(s.m * s.k), bv = new Float32Array(s.k * s.n);
    fillValues(av, 1);
    fillValues(bv, 2);
    const a = tf.tensor2d(av, s.transposeA ? [s.k, s.m] : [s.m, s.k]);
    const bt = tf.tensor2d(bv, s.transposeB ? [s.n, s.k] : [s.k, s.n]);
    return {
      run: () => {
        const c = tf.matMul(a, bt, s.transposeA, s.transposeB);
        c.dataSync();
        c.dispose();
      },
      dispose: () => {
        a.dispose();
        bt.dispose();
      },
    };
  };
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0].trim();
}

/** Times one product with benny; returns the median seconds per product and the sample count. */
async function timeCase(
  engine: KernelEngine,
  s: GemmShape,
  prepare: Prepare,
  quick: boolean,
): Promise<{ seconds: number; samples: number }> {
  const { run, dispose } = prepare(s);
  try {
    // Warm up for a while, not a few calls: V8 first runs WASM in its baseline compiler and
    // swaps in optimized code only after a function has been hot for some time.
    const warmUntil = performance.now() + (quick ? 150 : 400);
    for (let i = 0; i < 3 || performance.now() < warmUntil; i++) run();
    const options = quick ? { minSamples: 4, maxTime: 0.2, initCount: 1 } : { minSamples: 6, maxTime: 0.6, initCount: 1 };
    // benny announces every suite on console.log; this suite reports through `log` instead.
    const consoleLog = console.log;
    console.log = () => {};
    let summary: Awaited<ReturnType<typeof b.suite>>;
    try {
      summary = await b.suite(`gemm ${s.label} ${engine}`, b.add(engine, () => run, options));
    } finally {
      console.log = consoleLog;
    }
    const result = summary.results[0];
    return { seconds: result.details.median, samples: result.samples };
  } finally {
    dispose();
  }
}

/**
 * Runs the suite. In quick mode: three shapes, short timing, well under 20 s.
 * Engines that cannot run are left out with a note (never a failure of the whole suite).
 */
export async function runKernelSuite(options: KernelSuiteOptions): Promise<KernelSuiteResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const shapes = options.quick ? KERNEL_SHAPES.filter((s) => QUICK_SHAPES.includes(s.label)) : [...KERNEL_SHAPES];
  const notes: string[] = [];
  const engines: Array<{ engine: KernelEngine; prepare: Prepare; before?: () => Promise<void> }> = [];

  // descent: the WASM kernels through the engine's own backend switch (so a fall back shows),
  // on one thread and on two.
  const previous = activeKernels();
  const wasm = setBackend('wasm');
  let descentWasm: string;
  if (wasm.name === 'wasm') {
    descentWasm = (wasm as Kernels & { variant?: string }).variant ?? 'simd';
    const useThreads = (threads: number) => async (): Promise<void> => {
      setThreads(threads);
      await threadsReady();
      if (threadCount() !== threads) throw new Error(`the kernels run on ${threadCount()} thread(s), not ${threads}`);
    };
    engines.push({ engine: 'descent-wasm', prepare: descentPrepare(wasm), before: useThreads(1) });
    engines.push({ engine: 'descent-wasm-2t', prepare: descentPrepare(wasm), before: useThreads(2) });
    // The relaxed-SIMD build (fused multiply-adds), on one thread, for comparison: Node 20 takes it
    // only with V8's flag, set here after the engine's own backend was made with the plain build.
    setFlagsFromString('--experimental-wasm-relaxed-simd');
    try {
      engines.push({ engine: 'descent-wasm-relaxed', prepare: descentPrepare(createWasmKernels({ variant: 'relaxed-simd' })) });
    } catch (error) {
      notes.push(`descent-wasm-relaxed: not available: ${firstLine(error)}`);
    }
  } else {
    descentWasm = 'not available: fell back to the reference kernels';
    notes.push(`descent-wasm: ${descentWasm}`);
  }
  engines.push({ engine: 'descent-ts', prepare: descentPrepare(createReferenceKernels('float32')) });

  // TensorFlow.js: one tfjs-core, switching backends between engines.
  let tf: typeof TF | undefined;
  try {
    tf = await import('@tensorflow/tfjs');
  } catch (error) {
    notes.push(`tfjs: not available: ${firstLine(error)}`);
  }
  if (tf) {
    const tfjs = tf;
    const useBackend = async (name: string): Promise<void> => {
      if (!(await tfjs.setBackend(name))) throw new Error(`tfjs could not start its ${name} backend`);
      await tfjs.ready();
    };
    try {
      const { setWasmPaths } = await import('@tensorflow/tfjs-backend-wasm');
      // In Node the backend finds its .wasm files only through an explicit directory.
      const require = createRequire(import.meta.url);
      setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'))}/`);
      engines.push({ engine: 'tfjs-wasm', prepare: tfjsPrepare(tfjs), before: () => useBackend('wasm') });
    } catch (error) {
      notes.push(`tfjs-wasm: not available: ${firstLine(error)}`);
    }
    engines.push({ engine: 'tfjs-cpu', prepare: tfjsPrepare(tfjs), before: () => useBackend('cpu') });
    try {
      const moduleName: string = '@tensorflow/tfjs-node'; // optional: not a literal, so it need not be installed
      await import(moduleName);
      engines.push({ engine: 'tfjs-node', prepare: tfjsPrepare(tfjs), before: () => useBackend('tensorflow') });
    } catch (error) {
      const line = `tfjs-node: not available: ${firstLine(error)}`;
      notes.push(line);
      log(line);
    }
  }

  // Rounds visit every shape and engine in turn, so a busy moment of a shared machine does
  // not land on one engine only; each cell reports the median over its rounds.
  const rounds = options.quick ? 1 : 3;
  const times = new Map<string, Array<{ seconds: number; samples: number }>>(); // key: engine|shape
  const failed = new Set<KernelEngine>();
  for (const { engine } of engines) {
    if (!SLOW_ENGINES.includes(engine)) continue;
    for (const s of shapes) {
      if (s.m * s.k * s.n > SLOW_ENGINE_LIMIT) notes.push(`${engine} ${s.label}: skipped (over a second per product)`);
    }
  }
  try {
    for (let round = 0; round < rounds; round++) {
      log(`kernel suite: round ${round + 1} of ${rounds}`);
      for (const s of shapes) {
        for (const { engine, prepare, before } of engines) {
          if (failed.has(engine)) continue;
          if (SLOW_ENGINES.includes(engine) && s.m * s.k * s.n > SLOW_ENGINE_LIMIT) continue;
          try {
            await before?.();
            const t = await timeCase(engine, s, prepare, options.quick);
            const key = `${engine}|${s.label}`;
            times.set(key, [...(times.get(key) ?? []), t]);
          } catch (error) {
            failed.add(engine);
            notes.push(`${engine}: failed: ${firstLine(error)}`);
          }
        }
      }
    }
  } finally {
    setThreads('auto');
    setBackend(previous);
  }
  const seconds = new Map<string, { seconds: number; samples: number }>();
  for (const [key, list] of times) {
    const sorted = [...list].sort((x, y) => x.seconds - y.seconds);
    seconds.set(key, {
      seconds: sorted[(sorted.length - 1) >> 1].seconds,
      samples: list.reduce((total, t) => total + t.samples, 0),
    });
  }

  const rows: KernelSuiteRow[] = [];
  for (const s of shapes) {
    const reference = seconds.get(`tfjs-wasm|${s.label}`);
    const referenceGflops = reference ? flops(s) / reference.seconds / 1e9 : NaN;
    for (const { engine } of engines) {
      const t = seconds.get(`${engine}|${s.label}`);
      if (!t) continue;
      const gflops = flops(s) / t.seconds / 1e9;
      rows.push({
        shape: s.label,
        engine,
        gflops,
        ratioToTfjsWasm: gflops / referenceGflops,
        medianMs: t.seconds * 1e3,
        samples: t.samples,
      });
    }
  }

  return {
    quick: options.quick,
    date: new Date().toISOString(),
    node: process.version,
    descentWasm,
    shapes,
    rows,
    notes,
  };
}

/** descent's speed-up from one thread to two on a shape (NaN if either was not measured). */
export function twoThreadSpeedup(result: KernelSuiteResult, shape: string): number {
  const gflops = (engine: KernelEngine) => result.rows.find((r) => r.shape === shape && r.engine === engine)?.gflops ?? NaN;
  return gflops('descent-wasm-2t') / gflops('descent-wasm');
}

/** descent's relaxed-SIMD build against its SIMD build, one thread each, on a shape (NaN if either was not measured). */
export function relaxedSpeedup(result: KernelSuiteResult, shape: string): number {
  const gflops = (engine: KernelEngine) => result.rows.find((r) => r.shape === shape && r.engine === engine)?.gflops ?? NaN;
  return gflops('descent-wasm-relaxed') / gflops('descent-wasm');
}

/** A markdown table: one row per shape, GFLOP/s per engine, descent-wasm ÷ tfjs-wasm, 2 threads ÷ 1, relaxed ÷ SIMD. */
export function formatKernelSuite(result: KernelSuiteResult): string {
  const engines = KERNEL_ENGINES.filter((e) => result.rows.some((r) => r.engine === e));
  const header = ['shape (M×K×N)', ...engines.map((e) => `${e} GFLOP/s`), 'descent-wasm ÷ tfjs-wasm', 'descent 2 threads ÷ 1', 'descent relaxed SIMD ÷ SIMD'];
  const lines = [`| ${header.join(' | ')} |`, `| ${header.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`];
  for (const s of result.shapes) {
    const cells = [s.label];
    for (const e of engines) {
      const row = result.rows.find((r) => r.shape === s.label && r.engine === e);
      cells.push(row ? row.gflops.toFixed(row.gflops < 10 ? 2 : 1) : '–');
    }
    const mine = result.rows.find((r) => r.shape === s.label && r.engine === 'descent-wasm');
    cells.push(mine && Number.isFinite(mine.ratioToTfjsWasm) ? `${mine.ratioToTfjsWasm.toFixed(2)}×` : '–');
    const speedup = twoThreadSpeedup(result, s.label);
    cells.push(Number.isFinite(speedup) ? `${speedup.toFixed(2)}×` : '–');
    const relaxed = relaxedSpeedup(result, s.label);
    cells.push(Number.isFinite(relaxed) ? `${relaxed.toFixed(2)}×` : '–');
    lines.push(`| ${cells.join(' | ')} |`);
  }
  const footer = [
    `descent WASM build: ${result.descentWasm}; descent-wasm-2t: the same kernels with C split between 2 threads; descent-wasm-relaxed: the relaxed-SIMD build (fused multiply-adds, other floats), one thread; Node ${result.node}; median time per product.`,
  ];
  for (const note of result.notes) footer.push(`- ${note}`);
  return `${lines.join('\n')}\n\n${footer.join('\n')}`;
}
