/** Learning mode: one training step explained number by number, and a per-layer training trace. */
export { EXPLAIN_EXAMPLE, explainOneStep, formatExplanation, formatValues, formatNumbers } from './explain.js';
export type { Explanation, ExplainStep, ExplainPhase } from './explain.js';
export { TraceCallback, formatTrace, isTracedStep } from './trace.js';
export type { LayerTrace, StepTrace, TraceOptions } from './trace.js';
