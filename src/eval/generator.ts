/**
 * A model folder as a TextGenerator for evaluation (IFS, ObjecQA, the demo): the engine generator, the rule
 * adapter's logits processor when asked for, and a fit check against the model's context. The engine must be
 * started (cli/common.ts startEngine, or initEngine). It lives with the engine backend (src/backends/engine.ts);
 * any model spec opens with src/backends/spec.ts openModel.
 */
export { openGenerator, type EvalGenerator } from '../backends/engine.js';
