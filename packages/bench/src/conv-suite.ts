/**
 * The convolution kernel suite: the tutorial CNN's two convolutions (batch 32), forward, filter
 * gradient and input gradient, on each of descent's WASM paths, beside the GEMM on 256×784×128,
 * all in one process and in turn (rounds), so that the ratios hold on a shared machine.
 *
 *   im2col           patches copied into a matrix, then the GEMM (the dense layer's kernels)
 *   direct           the forward computed in place, 4 pixels × 8 filters in registers, no patch matrix
 *   winograd         F(2×2, 3×3): transforms around 16 smaller GEMMs (3×3 stride 1 only)
 *   skip zeros       the gradients skip the output gradient's exact zeros (what max pooling
 *                    leaves), with the same floats as the GEMM
 *   default          what the backend's policies choose
 *
 * GFLOP/s counts the direct convolution's 2·positions·kh·kw·C·F operations, whatever the path
 * computes, so paths compare by time; "of the GEMM" divides by the GEMM's GFLOP/s in the same run.
 * The output gradient is made the way training makes it: a ReLU map pooled 2×2, with a random
 * gradient sent back through the pooling and the ReLU (about four in five values are 0).
 */
import { setBackend, kernels as activeKernels, windowAxis, type Kernels, type Storage, type Window2d } from '@descent/engine';

export interface ConvLayerCase {
  name: string;
  g: Window2d;
  filters: number;
}

export interface ConvSuiteRow {
  layer: string;
  pass: 'forward' | 'filter gradient' | 'input gradient';
  path: string;
  ms: number;
  gflops: number;
  /** gflops ÷ the GEMM's, measured in the same run. */
  ofGemm: number;
}

export interface ConvSuiteResult {
  gemmGflops: number;
  /** Share of the output gradient's values that are 0 (the second convolution's). */
  gradientZeros: number;
  rows: ConvSuiteRow[];
  notes: string[];
}

/** The wasm backend's policies this suite switches (engine/src/backend/wasm.ts, wasm-conv.ts). */
interface ConvPolicies {
  winograd: { enabled: boolean };
  sparseGradient: { enabled: boolean };
  sparseInput: { enabled: boolean };
  directConv: { enabled: boolean; maxPatch: number };
  directFilterGrad: { enabled: boolean; maxPatch: number };
}

function geometry(batch: number, size: number, channels: number): Window2d {
  const axis = windowAxis(size, 3, 1, 'valid');
  return {
    batch, inHeight: size, inWidth: size, channels, outHeight: axis.out, outWidth: axis.out,
    windowHeight: 3, windowWidth: 3, strideHeight: 1, strideWidth: 1, padTop: 0, padLeft: 0,
  };
}

export const CONV_LAYERS: readonly ConvLayerCase[] = [
  { name: 'conv 1: 28×28×1 → 26×26×32', g: geometry(32, 28, 1), filters: 32 },
  { name: 'conv 2: 13×13×32 → 11×11×64', g: geometry(32, 13, 32), filters: 64 },
];

/** Deterministic values in [low, high). */
function fill(storage: Storage, seed: number, low = -0.5, high = 0.5): void {
  let state = seed >>> 0;
  const data = storage.data;
  for (let i = 0; i < data.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    data[i] = low + (high - low) * (state / 4294967296);
  }
}

/**
 * Milliseconds: wall time, or the process's CPU time (user + system), which load from other
 * processes on a shared machine does not stretch (right for one thread only).
 */
export type Clock = 'wall' | 'cpu';
const clocks: Record<Clock, () => number> = {
  wall: () => performance.now(),
  cpu: () => {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1000;
  },
};

function timeMs(run: () => void, quick: boolean, clock: Clock): number {
  const now = clocks[clock];
  const warmUntil = now() + (quick ? 100 : 300);
  for (let i = 0; i < 2 || now() < warmUntil; i++) run();
  const samples: number[] = [];
  const until = now() + (quick ? 150 : 500);
  while (samples.length < 5 || now() < until) {
    const started = now();
    run();
    samples.push(now() - started);
  }
  samples.sort((a, b) => a - b);
  return samples[samples.length >> 1];
}

/** An output gradient as training makes it: through a 2×2 max pooling and the ReLU of the layer. */
function trainingGradient(k: Kernels, g: Window2d, filters: number, seed: number): Storage {
  const size = g.batch * g.outHeight * g.outWidth * filters;
  const y = k.alloc(size);
  fill(y, seed, -1, 1);
  k.reluForward(y, y);
  const pool = windowAxis(g.outHeight, 2, 2, 'valid');
  const p: Window2d = {
    batch: g.batch, inHeight: g.outHeight, inWidth: g.outWidth, channels: filters, outHeight: pool.out, outWidth: pool.out,
    windowHeight: 2, windowWidth: 2, strideHeight: 2, strideWidth: 2, padTop: 0, padLeft: 0,
  };
  const pooled = k.alloc(g.batch * pool.out * pool.out * filters), dPooled = k.alloc(pooled.length);
  k.maxPool2d(p, y, pooled);
  fill(dPooled, seed + 1);
  const dh = k.alloc(size), dz = k.alloc(size);
  k.maxPool2dGrad(p, y, pooled, dPooled, dh, false);
  k.reluBackward(y, dh, dz, false);
  for (const s of [y, pooled, dPooled, dh]) k.free(s);
  return dz;
}

export async function runConvSuite({ quick, clock = 'wall', log = () => {} }: { quick: boolean; clock?: Clock; log?: (line: string) => void }): Promise<ConvSuiteResult> {
  const previous = activeKernels();
  const k = setBackend('wasm');
  const notes: string[] = [];
  try {
    if (k.name !== 'wasm') return { gemmGflops: NaN, gradientZeros: NaN, rows: [], notes: ['descent-wasm: not available'] };
    const policies = k as unknown as ConvPolicies;
    // "direct": the direct kernels (forward, filter gradient) for every patch size, not only the small ones they take by default.
    const defaults = {
      winograd: policies.winograd.enabled, sparseGradient: policies.sparseGradient.enabled, sparseInput: policies.sparseInput.enabled,
      directConv: policies.directConv.enabled, directFilterGrad: policies.directFilterGrad.enabled, anyPatch: false,
    };
    const maxPatches = { directConv: policies.directConv.maxPatch, directFilterGrad: policies.directFilterGrad.maxPatch };
    const off = { winograd: false, sparseGradient: false, sparseInput: false, directConv: false, directFilterGrad: false, anyPatch: false };
    const paths: Array<[string, typeof defaults]> = [
      ['im2col', off],
      ['direct', { ...off, directConv: true, directFilterGrad: true, anyPatch: true }],
      ['winograd', { ...off, winograd: true }],
      ['skip zeros', { ...off, sparseGradient: true }],
      ['default', defaults],
    ];
    const apply = (policy: typeof defaults) => {
      policies.winograd.enabled = policy.winograd;
      policies.sparseGradient.enabled = policy.sparseGradient;
      policies.sparseInput.enabled = policy.sparseInput;
      policies.directConv.enabled = policy.directConv;
      policies.directFilterGrad.enabled = policy.directFilterGrad;
      policies.directConv.maxPatch = policy.anyPatch ? Infinity : maxPatches.directConv;
      policies.directFilterGrad.maxPatch = policy.anyPatch ? Infinity : maxPatches.directFilterGrad;
    };
    const a = k.alloc(256 * 784), b = k.alloc(784 * 128), c = k.alloc(256 * 128);
    fill(a, 1);
    fill(b, 2);
    const layers = CONV_LAYERS.map((layer, i) => {
      const { g, filters } = layer;
      const x = k.alloc(g.batch * g.inHeight * g.inWidth * g.channels), w = k.alloc(9 * g.channels * filters), bias = k.alloc(filters);
      fill(x, 10 + i, 0, 1);
      fill(w, 20 + i, -0.1, 0.1);
      const y = k.alloc(g.batch * g.outHeight * g.outWidth * filters), dx = k.alloc(x.length), dw = k.alloc(w.length);
      const dz = trainingGradient(k, g, filters, 30 + i);
      return { ...layer, x, w, bias, y, dx, dw, dz };
    });
    let zeros = 0;
    for (const v of layers[1].dz.data) zeros += v === 0 ? 1 : 0;
    const gradientZeros = zeros / layers[1].dz.length;

    const gemm: number[] = [];
    const times = new Map<string, number[]>();
    const rounds = quick ? 1 : 3;
    for (let round = 0; round < rounds; round++) {
      log(`conv suite: round ${round + 1} of ${rounds}`);
      gemm.push(timeMs(() => k.gemm(256, 128, 784, a, false, b, false, c, false), quick, clock));
      for (const layer of layers) {
        const { g, filters } = layer;
        for (const [path, policy] of paths) {
          if (path === 'winograd' && g.channels < 4) continue; // one input channel: not taken
          apply(policy);
          const passes: Array<[ConvSuiteRow['pass'], () => void]> = [['forward', () => k.conv2d(g, filters, layer.x, layer.w, layer.bias, layer.y, true)]];
          // The direct kernels are a forward and a filter gradient.
          passes.push(['filter gradient', () => k.conv2dFilterGrad(g, filters, layer.x, layer.dz, layer.dw, false)]);
          if (path !== 'direct' && g.channels > 1) passes.push(['input gradient', () => k.conv2dInputGrad(g, filters, layer.dz, layer.w, layer.dx, false)]);
          for (const [pass, run] of passes) {
            const key = `${layer.name}|${pass}|${path}`;
            times.set(key, [...(times.get(key) ?? []), timeMs(run, quick, clock)]);
          }
        }
      }
    }
    apply(defaults);

    const median = (values: number[]): number => [...values].sort((x, y) => x - y)[(values.length - 1) >> 1];
    const gemmGflops = (2 * 256 * 784 * 128) / median(gemm) / 1e6;
    const rows: ConvSuiteRow[] = [];
    for (const [key, list] of times) {
      const [layerName, pass, path] = key.split('|');
      const layer = layers.find((l) => l.name === layerName)!;
      const flops = 2 * layer.g.batch * layer.g.outHeight * layer.g.outWidth * 9 * layer.g.channels * layer.filters;
      const ms = median(list);
      const gflops = flops / ms / 1e6;
      rows.push({ layer: layerName, pass: pass as ConvSuiteRow['pass'], path, ms, gflops, ofGemm: gflops / gemmGflops });
    }
    for (const layer of layers) for (const s of [layer.x, layer.w, layer.bias, layer.y, layer.dx, layer.dw, layer.dz]) k.free(s);
    for (const s of [a, b, c]) k.free(s);
    return { gemmGflops, gradientZeros, rows, notes };
  } finally {
    setBackend(previous);
  }
}

/** One markdown table: per layer and pass, milliseconds and share of the GEMM's rate per path. */
export function formatConvSuite(result: ConvSuiteResult): string {
  if (result.rows.length === 0) return result.notes.join('\n');
  const paths = [...new Set(result.rows.map((r) => r.path))];
  const header = ['layer', 'pass', ...paths.map((p) => `${p} ms (of GEMM)`)];
  const lines = [`| ${header.join(' | ')} |`, `| ${header.map((_, i) => (i < 2 ? '---' : '---:')).join(' | ')} |`];
  const keys = [...new Set(result.rows.map((r) => `${r.layer}|${r.pass}`))];
  for (const key of keys) {
    const [layer, pass] = key.split('|');
    const cells = paths.map((p) => {
      const row = result.rows.find((r) => r.layer === layer && r.pass === pass && r.path === p);
      return row ? `${row.ms.toFixed(2)} (${Math.round(100 * row.ofGemm)}%)` : '–';
    });
    lines.push(`| ${layer} | ${pass} | ${cells.join(' | ')} |`);
  }
  return `${lines.join('\n')}\n\nGEMM 256×784×128 in the same run: ${result.gemmGflops.toFixed(1)} GFLOP/s. "of GEMM": the direct convolution's FLOPs per second over the GEMM's. Output gradients ${Math.round(100 * result.gradientZeros)}% zeros (made through 2×2 max pooling and ReLU).${result.notes.length ? `\n${result.notes.map((n) => `- ${n}`).join('\n')}` : ''}`;
}
