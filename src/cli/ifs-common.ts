/** Shared pieces of the IFS / ObjecQA commands: progress bar, model generator with --adapter, fit check. */
import { HeedError } from '../errors.js';
import { startEngine } from './common.js';
import { num } from './args.js';
import type { LogitsProcessor } from '../decode/generate.js';
import type { RuleTokenizer } from '../decode/rules.js';
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

/**
 * Open any model spec (folder | gguf:<path> | openai:<base-url>#<model>) as a TextGenerator with a fit check
 * against its context; the rule adapter, if asked for, is applied inside the backend (refused on text-only
 * backends). `logitsProcessors` stays for callers that pass processors of their own (empty here).
 */
export async function modelGenerator(spec: string, o: { adapter?: string; device?: unknown; threads?: unknown; maxTokens: number; needLogits?: string }) {
  checkAdapter(o.adapter);
  const { openModel, parseSpec } = await import('../backends/spec.js');
  const parsed = parseSpec(spec);
  if (o.needLogits && parsed.kind === 'openai') {
    throw new HeedError(`${o.needLogits} needs full-vocabulary logits at every step, and ${parsed.display} is a text-only backend`, 'run it on a model folder or a gguf: spec');
  }
  if (parsed.kind === 'engine') await startEngine(o.device, o.threads); // checks --device; the backend reuses the engine
  const backend = await openModel(parsed, { rules: o.adapter === undefined ? undefined : o.adapter.slice('rules:'.length), maxTokens: o.maxTokens, device: o.device as string | undefined, threads: num(o.threads, 'threads', { int: true, min: 1 }) });
  if (o.needLogits && !backend.capabilities.logits) {
    await backend.dispose();
    throw new HeedError(`${o.needLogits} needs full-vocabulary logits at every step, and ${backend.spec} (${backend.kind}) has none`, 'run it on a model folder or a gguf: spec');
  }
  return {
    backend,
    gen: backend.gen,
    fits: (prompt: string) => backend.fits(prompt, o.maxTokens),
    logitsProcessors: [] as LogitsProcessor[],
    tokenizer: backend.tokenizer as unknown as RuleTokenizer,
    dispose: () => backend.dispose(),
  };
}

/** One line for stderr when some items failed on the backend, with what a re-run does. */
export function failureNote(n: number, first: string | undefined, what = 'prompt'): string {
  return `[${n} ${what}(s) failed on the backend after every retry and were not scored; first: ${first}; run the same command again: finished answers come from the cache, only these are asked again]`;
}
