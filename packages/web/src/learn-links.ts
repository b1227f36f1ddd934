/**
 * Where each number of the Learn page is derived (a section of docs/learn) and which source
 * function computes it. Paths are from the repository root; the build copies docs/learn and the
 * engine's source into the app (vite.config.ts), and test/learn-links.test.ts checks that every
 * section and symbol exists.
 */
export interface LearnLink {
  /** A file under docs/learn and the text of one of its headings. */
  doc: { file: string; heading: string };
  /** A source file and a symbol in it: a function, class or constant, or Class.method. */
  source: { file: string; symbol: string };
}

const GRADIENTS = 'docs/learn/gradients.md';
const ONE_STEP = 'docs/learn/one-step.md';
const H = {
  example: 'The same step, small enough to read every number',
  matmul: '1. Matrix product: dX = dY·Wᵀ and dW = Xᵀ·dY',
  bias: '2. Bias: column sums',
  relu: '3. ReLU: the gradient passes where the unit was on',
  softmaxCe: '4. Softmax with sparse categorical cross-entropy: dz = (p − onehot) / N',
  flatten: '5. Flatten: the same numbers, another shape',
  adam: "9. Adam, with Keras's bias correction",
  glorot: '10. Where the weights start: Glorot uniform',
};
const ENGINE = 'packages/engine/src';
const link = (docFile: string, heading: string, file: string, symbol: string): LearnLink => ({ doc: { file: docFile, heading }, source: { file: `${ENGINE}/${file}`, symbol } });

const adam = link(GRADIENTS, H.adam, 'optimizers/adam.ts', 'Adam.step');

/** The link of a step key (explainOneStep's keys; m_W1, v_b2, … share Adam's). */
export function learnLink(key: string): LearnLink {
  if (/^(m|v|step)_|_new$|^lr_t$/.test(key)) return adam;
  return LINKS[key] ?? link(ONE_STEP, H.example, 'learn/explain.ts', 'explainOneStep');
}

export const LINKS: Record<string, LearnLink> = {
  pixels: link(ONE_STEP, H.example, 'learn/explain.ts', 'EXPLAIN_EXAMPLE'),
  y: link(ONE_STEP, H.example, 'learn/explain.ts', 'EXPLAIN_EXAMPLE'),
  x: link(GRADIENTS, H.flatten, 'ops/reshape.ts', 'flatten'),
  W1: link(GRADIENTS, H.glorot, 'nn/initializers.ts', 'initialKernel'),
  W2: link(GRADIENTS, H.glorot, 'nn/initializers.ts', 'initialKernel'),
  b1: link(GRADIENTS, H.glorot, 'nn/layers.ts', 'Dense.build'),
  b2: link(GRADIENTS, H.glorot, 'nn/layers.ts', 'Dense.build'),
  z1: link(GRADIENTS, H.matmul, 'ops/dense.ts', 'dense'),
  z2: link(GRADIENTS, H.matmul, 'ops/dense.ts', 'dense'),
  h1: link(GRADIENTS, H.relu, 'ops/relu.ts', 'relu'),
  p: link(GRADIENTS, H.softmaxCe, 'ops/softmax.ts', 'softmax'),
  loss: link(GRADIENTS, H.softmaxCe, 'ops/cross-entropy.ts', 'sparseCategoricalCrossentropy'),
  onehot: link(GRADIENTS, H.softmaxCe, 'ops/cross-entropy.ts', 'sparseCategoricalCrossentropy'),
  dz2: link(GRADIENTS, H.softmaxCe, 'ops/cross-entropy.ts', 'sparseCategoricalCrossentropy'),
  dW2: link(GRADIENTS, H.matmul, 'ops/dense.ts', 'dense'),
  db2: link(GRADIENTS, H.bias, 'ops/dense.ts', 'dense'),
  dh1: link(GRADIENTS, H.matmul, 'ops/dense.ts', 'dense'),
  dz1: link(GRADIENTS, H.relu, 'ops/relu.ts', 'relu'),
  dW1: link(GRADIENTS, H.matmul, 'ops/dense.ts', 'dense'),
  db1: link(GRADIENTS, H.bias, 'ops/dense.ts', 'dense'),
  loss_after: link(ONE_STEP, H.example, 'learn/explain.ts', 'explainLossAfter'),
};

/** A heading's id as GitHub makes it: lower case, punctuation dropped, spaces to dashes. */
export function slug(heading: string): string {
  return heading.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').trim().replace(/\s/g, '-');
}

/**
 * The line (1-based) where `symbol` is defined in `text`: `function name`, `class name`,
 * `const name`, `name(` inside a class for `Class.method`; undefined if not found.
 */
export function symbolLine(text: string, symbol: string): number | undefined {
  const lines = text.split('\n');
  const [outer, member] = symbol.split('.');
  const definition = new RegExp(`^\\s*(export\\s+)?(default\\s+)?(async\\s+)?(function\\*?|class|const|let|interface|type)\\s+${outer}\\b`);
  const start = lines.findIndex((line) => definition.test(line));
  if (start < 0) return undefined;
  if (!member) return start + 1;
  const method = new RegExp(`^\\s+(public\\s+|private\\s+|protected\\s+|override\\s+|static\\s+|async\\s+|get\\s+)*${member}\\s*[(<]`);
  const at = lines.findIndex((line, i) => i > start && method.test(line));
  return at < 0 ? undefined : at + 1;
}
