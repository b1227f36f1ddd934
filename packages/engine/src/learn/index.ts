/** Learning mode: one training step explained number by number, and a per-layer training trace. */
export { EXPLAIN_EXAMPLE, explainOneStep, formatExplanation, formatValues, formatNumbers } from './explain.js';
export type { Explanation, ExplainStep, ExplainPhase, ExplainOptions, ExplainWeight, MlpSettings, CnnSettings } from './explain.js';
export { EXPLAIN_CNN_EXAMPLE, explainCnnStep } from './explain-cnn.js';
export { TraceCallback, formatTrace, isTracedStep } from './trace.js';
export type { LayerTrace, StepTrace, TraceOptions } from './trace.js';
