/** Shared pieces of the IFS / ObjecQA commands: progress bar, model generator with --adapter, fit check. */
import { HeedError } from '../errors.js';
import type { LogitsProcessor, TextGenerator } from '../decode/generate.js';
import { startEngine } from './common.js';
import { Progress } from './progress.js';

/** A progress bar with rate and ETA on stderr: the shared Progress line, driven by (done, total). */
export function progressBar(label: string) {
  const p = new Progress(label, 0); // the clock starts now, not at the first finished batch
  return {
    update(done: number, total: number) {
      p.setTotal(total);
      p.update(done, {}, done >= total);
      if (done >= total) p.done();
    },
  };
}

export const ADAPTER_FIX = 'use --adapter rules (default preset), --adapter rules:hewitt-2024 or --adapter rules:path/to/rules.json';

export function checkAdapter(adapter: string | undefined): void {
  if (adapter !== undefined && adapter !== 'rules' && !adapter.startsWith('rules:')) throw new HeedError(`--adapter "${adapter}" is not known`, ADAPTER_FIX);
}

/** Load a model folder as a TextGenerator (+ a fit check against its context), with the rule adapter if asked. */
export async function modelGenerator(dir: string, o: { adapter?: string; device?: unknown; threads?: unknown; maxTokens: number }): Promise<{ gen: TextGenerator; fits: (prompt: string) => boolean; logitsProcessors: LogitsProcessor[]; context: number; tokenizer: import('../decode/rules.js').RuleTokenizer }> {
  checkAdapter(o.adapter);
  const rules = o.adapter === undefined ? undefined : (await import('../decode/rules.js')).loadRules(o.adapter.slice('rules:'.length));
  await startEngine(o.device, o.threads);
  const { loadModel } = await import('../models/load.js');
  const { EngineGenerator } = await import('../decode/generate.js');
  const model = await loadModel(dir);
  const logitsProcessors: LogitsProcessor[] = [];
  if (rules) {
    const compiled = (await import('../decode/rules.js')).compileRules(rules, model.tokenizer);
    const unmapped = compiled.tokens.filter((t) => t.ids.length === 0).map((t) => JSON.stringify(t.string));
    if (unmapped.length) console.error(`[rules: ${unmapped.length} token rule(s) match no single token of this tokenizer: ${unmapped.join(', ')}; see heed rules explain]`);
    logitsProcessors.push(compiled.processor);
  }
  const ctx = model.config.maxPositions;
  if (o.maxTokens >= ctx) throw new HeedError(`--max-tokens ${o.maxTokens} leaves no room for a prompt in the model's context of ${ctx}`, `lower --max-tokens below ${ctx}`);
  const fits = (p: string) => model.tokenizer.encode(p, { addSpecialTokens: true }).length + o.maxTokens <= ctx;
  return { gen: new EngineGenerator(model), fits, logitsProcessors, context: ctx, tokenizer: model.tokenizer };
}
