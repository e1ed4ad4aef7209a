/** Shared pieces of the IFS / ObjecQA commands: progress bar, model generator with --adapter, fit check. */
import { HeedError, fromSystemError } from '../errors.js';
import { startEngine } from './common.js';
import { num } from './args.js';
import type { LogitsProcessor } from '../decode/generate.js';
import type { RuleTokenizer } from '../decode/rules.js';
import { Progress, clock } from './progress.js';
import { existsSync } from 'node:fs';
import { isAbsolute, relative } from 'node:path';
import type { PromptRow } from '../eval/ifs/fragments.js';
import type { OverlapReport } from '../eval/overlap.js';
import type { LoadOptions } from '../data/load.js';

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

/**
 * Say what will happen: one plan line before the first generation, one estimate line once the first batch
 * has finished (its rate × the generations left), then the progress bar (n/N, rate, ETA) — all on stderr.
 */
export function planned(label: string, total: number, detail: string) {
  console.error(`[${label}: ${total} generation(s) to run: ${detail}; time estimated after the first batch]`);
  const bar = progressBar(label);
  const t0 = performance.now();
  let estimated = false;
  return {
    update(done: number) {
      if (!estimated && done > 0 && done < total) {
        estimated = true;
        const s = (performance.now() - t0) / 1000;
        console.error(`[${label}: first ${done} in ${clock(s)}: about ${clock((s / done) * (total - done))} for the other ${total - done}]`);
      }
      bar.update(done, total);
    },
  };
}

/** Relative to the working folder when inside it (printed and recorded paths name no machine). */
export const shownPath = (p: string) => {
  const r = relative(process.cwd(), p);
  return r && !r.startsWith('..') && !isAbsolute(r) ? r : p;
};

export interface IfsOverlapResult {
  prompts: PromptRow[];
  /** null when no training data is known (a folder heed did not train, no --train-data) */
  report: null | (Omit<OverlapReport, 'matches'> & { checked_against: string[]; named_by: string; excluded: number; kept: boolean; matches: OverlapReport['matches'] });
}

/**
 * IFS prompts whose source instruction occurs in the model's training data (src/eval/overlap.ts): the data
 * from `--train-data` files, else the data a heed-trained folder names. Excluded unless `keep`; said on stderr.
 */
export async function ifsOverlap(spec: string, trainData: string[] | undefined, prompts: PromptRow[], keep: boolean): Promise<IfsOverlapResult> {
  const ov = await import('../eval/overlap.js');
  let paths: string[];
  let opts: LoadOptions = {};
  let namedBy: string;
  if (trainData?.length) {
    for (const f of trainData) if (!existsSync(f)) throw new HeedError(`--train-data ${f}: file not found`, 'pass a training data file (any format heed train reads), or leave --train-data out');
    paths = trainData;
    namedBy = '--train-data';
  } else {
    const { parseSpec } = await import('../backends/spec.js');
    const parsed = parseSpec(spec);
    const ref = parsed.kind === 'engine' ? await ov.trainingDataOf(parsed.dir) : undefined;
    if (!ref) return { prompts, report: null };
    namedBy = shownPath(ref.from);
    for (const m of ref.missing) console.error(`[overlap: ${shownPath(m)} (named by ${namedBy}) not found: not checked; pass --train-data F to check against a copy]`);
    if (!ref.paths.length) return { prompts, report: null };
    paths = ref.paths;
    opts = ref.opts;
  }
  const report = ov.findOverlap(prompts, await ov.trainingPromptTexts(paths, opts));
  const kept = keep ? prompts : ov.withoutOverlap(prompts, report);
  const src = paths.map(shownPath);
  if (!report.overlapping_prompts) console.error(`[overlap: none of the ${report.prompts} IFS prompts occurs in the training data (${src.join(', ')}, from ${namedBy})]`);
  else if (keep) console.error(`warning: ${ov.describeOverlap(report)} (${src.join(', ')}, from ${namedBy}); kept (--keep-overlap): on them IFS partly measures memorisation`);
  else console.error(`[overlap: ${ov.describeOverlap(report)} (${src.join(', ')}, from ${namedBy}); excluded, ${kept.length} left (--keep-overlap keeps them)]`);
  return { prompts: kept, report: { ...report, checked_against: src, named_by: namedBy, excluded: prompts.length - kept.length, kept: keep, matches: report.matches.slice(0, 50) } };
}

/**
 * Run a batched evaluation; running out of the engine's heap becomes one line that names the batch size to
 * try (a batch of long prompts needs more memory than the default batch of 16 leaves on small-context,
 * byte-level models such as models/tiny-dolly on the alpaca-eval set).
 */
export async function batchOom<T>(f: () => Promise<T>, batch: number | undefined, where: () => string): Promise<T> {
  try {
    return await f();
  } catch (e) {
    const sys = fromSystemError(e);
    const msg = (e as Error)?.message ?? String(e);
    if (!(sys && /^out of memory/.test(sys.message)) && !/memory32|out of memory/i.test(msg)) throw e;
    const b = batch ?? 16;
    throw new HeedError(`out of memory ${where()} at --batch ${b} (${msg.replace(/^out of memory \((.*)\)$/, '$1')})`, b > 1 ? `rerun with --batch ${Math.max(1, b >> 1)} (or fewer --max-tokens)` : 'use fewer --max-tokens or a smaller model');
  }
}
