/**
 * A model folder as a TextGenerator for evaluation (IFS, ObjecQA, the demo): the engine generator, the rule
 * adapter's logits processor when asked for, and a fit check against the model's context. The engine must be
 * started (cli/common.ts startEngine, or initEngine).
 */
import { HeedError } from '../errors.js';
import { EngineGenerator, type LogitsProcessor } from '../decode/generate.js';
import { compileRules, loadRules, type RuleTokenizer } from '../decode/rules.js';
import { disposeParams, loadModel } from '../models/load.js';

export interface EvalGenerator {
  gen: EngineGenerator;
  /** whether a prompt plus maxTokens new tokens fits the context */
  fits: (prompt: string) => boolean;
  logitsProcessors: LogitsProcessor[];
  context: number;
  tokenizer: RuleTokenizer;
  /** free the weights and the compiled programs */
  dispose(): void;
}

/** `rules` (a rules file path, a preset name, or '' for the default preset) adds the rule adapter. */
export async function openGenerator(dir: string, o: { rules?: string; maxTokens: number; warn?: (s: string) => void }): Promise<EvalGenerator> {
  const rules = o.rules === undefined ? undefined : loadRules(o.rules);
  const model = await loadModel(dir);
  const logitsProcessors: LogitsProcessor[] = [];
  if (rules) {
    const compiled = compileRules(rules, model.tokenizer);
    const unmapped = compiled.tokens.filter((t) => t.ids.length === 0).map((t) => JSON.stringify(t.string));
    if (unmapped.length) (o.warn ?? console.error)(`[rules: ${unmapped.length} token rule(s) match no single token of this tokenizer: ${unmapped.join(', ')}; see heed rules explain]`);
    logitsProcessors.push(compiled.processor);
  }
  const ctx = model.config.maxPositions;
  if (o.maxTokens >= ctx) {
    disposeParams(model.params);
    throw new HeedError(`--max-tokens ${o.maxTokens} leaves no room for a prompt in the model's context of ${ctx}`, `lower --max-tokens below ${ctx}`);
  }
  const fits = (p: string) => model.tokenizer.encode(p, { addSpecialTokens: true }).length + o.maxTokens <= ctx;
  const gen = new EngineGenerator(model);
  return {
    gen,
    fits,
    logitsProcessors,
    context: ctx,
    tokenizer: model.tokenizer,
    dispose() {
      gen.dispose();
      disposeParams(model.params);
    },
  };
}
