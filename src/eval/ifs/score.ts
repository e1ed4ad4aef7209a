/**
 * IFS scoring (arXiv 2307.03692): generate one response per prompt, classify each as answer-like (1) or
 * continuation-like (0); IFS = answer-like ÷ all, IFS_partial over the Ip prompts, IFS_full over the I prompts.
 * Generation goes through the TextGenerator interface only, so any generator (in-process engine, a GGUF
 * runner, an OpenAI-compatible endpoint) can be scored.
 *
 * Defaults: greedy decoding (temperature 0), at most DEFAULT_MAX_TOKENS = 64 new tokens, batches of 16
 * prompts. The response text is classified after trimming surrounding whitespace; an empty response counts as
 * not answer-like (label 0, probability 0).
 */
import type { GenerateOptions, Generation, TextGenerator } from '../../decode/generate.js';
import { generationError, generationTokens } from '../../backends/types.js';
import { ALPACA_PROMPT_NO_INPUT_HEAD } from '../../data/templates.js';
import type { TextClassifier } from '../text-classifier.js';
import type { PromptRow } from './fragments.js';

/**
 * A/B/C: the paper's three variants. H: the chat template of Hewitt et al. 2024 (arXiv 2409.14254),
 * `<|user|>\n{p}\n<|assistant|>\n`, used by `heed rules ablate` (not one of the IFS paper's variants).
 */
export type Variant = 'A' | 'B' | 'C' | 'H';
export const VARIANTS: Variant[] = ['A', 'B', 'C'];
export const DEFAULT_MAX_TOKENS = 64;
export const DEFAULT_BATCH = 16;

/** The three prompt variants of the paper. */
export function wrapPrompt(prompt: string, v: Variant): string {
  switch (v) {
    case 'A':
      return `${ALPACA_PROMPT_NO_INPUT_HEAD}### Instruction:\n${prompt}\n\n### Response:\n`;
    case 'B':
      return `${prompt}\n\n### Response:\n`;
    case 'C':
      return prompt;
    case 'H':
      return `<|user|>\n${prompt}\n<|assistant|>\n`;
  }
}

/** Wilson score interval for k successes out of n (z = 1.96 for 95 %). n = 0 gives [0, 1]. */
export function wilson(k: number, n: number, z = 1.959963984540054): [number, number] {
  if (n === 0) return [0, 1];
  const p = k / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

export interface Ratio {
  k: number;
  n: number;
  value: number;
  ci: [number, number];
}

export function ratio(k: number, n: number): Ratio {
  return { k, n, value: n ? k / n : 0, ci: wilson(k, n) };
}

export interface IfsResponse {
  id: string;
  source_id: string;
  kind: 'full' | 'partial';
  variant: Variant;
  prompt: string;
  response: string;
  label: 0 | 1;
  prob: number;
  /** the pair classifier's verdict on (prompt, response), when one was given (IFS-pair) */
  pair_label?: 0 | 1;
  pair_prob?: number;
  finish_reason: string;
  tokens: number;
}

export interface IfsScore {
  variant: Variant;
  ifs: Ratio;
  ifs_partial: Ratio;
  ifs_full: Ratio;
  /**
   * IFS-pair (beyond the paper): the same ratios with the pair classifier, which also sees the prompt (Ip or
   * I, unwrapped) — present when `ScoreOptions.pair` is given.
   */
  ifs_pair?: Ratio;
  ifs_pair_partial?: Ratio;
  ifs_pair_full?: Ratio;
  /** prompts that were skipped (e.g. too long for the model's context) */
  skipped: number;
  /** prompts whose generation failed on the backend after every retry (not scored; present when > 0) */
  failed?: number;
}

export interface ScoreOptions {
  variants?: Variant[];
  maxTokens?: number;
  batchSize?: number;
  /** extra generation options (temperature, stop, logitsProcessors, eosIds, …); greedy by default */
  generate?: GenerateOptions;
  /** prompts (already wrapped) for which this returns false are skipped and counted */
  fits?: (wrapped: string) => boolean;
  /** called after every batch: done, total (over all variants) */
  onProgress?: (done: number, total: number) => void;
  onResponse?: (r: IfsResponse) => void;
  /** a pair classifier (`loadIfsPairClassifier`): adds IFS-pair beside IFS */
  pair?: TextClassifier;
  /** a prompt whose generation failed on the backend (reported, not scored) */
  onFailure?: (f: { id: string; variant: Variant; prompt: string; error: string }) => void;
}

export function summarise(variant: Variant, rs: IfsResponse[], skipped = 0, failed = 0): IfsScore {
  const count = (xs: IfsResponse[]) => ratio(xs.filter((r) => r.label === 1).length, xs.length);
  const s: IfsScore = { variant, ifs: count(rs), ifs_partial: count(rs.filter((r) => r.kind === 'partial')), ifs_full: count(rs.filter((r) => r.kind === 'full')), skipped, ...(failed ? { failed } : {}) };
  if (rs.length && rs.every((r) => r.pair_label !== undefined)) {
    const pc = (xs: IfsResponse[]) => ratio(xs.filter((r) => r.pair_label === 1).length, xs.length);
    Object.assign(s, { ifs_pair: pc(rs), ifs_pair_partial: pc(rs.filter((r) => r.kind === 'partial')), ifs_pair_full: pc(rs.filter((r) => r.kind === 'full')) });
  }
  return s;
}

/**
 * `gen.generate`, but a batch that fails because one row produced no token before EOS (the engine generator
 * cannot decode an empty id list: "token_ids must be a non-empty array") is retried row by row, and a row that
 * fails alone becomes an empty response that ended with EOS (which IFS scores as not answer-like).
 */
export async function generateRobust(gen: TextGenerator, prompts: string[], opts: GenerateOptions): Promise<Generation[]> {
  const emptyDecode = (e: unknown) => /non-empty array/.test(String((e as Error)?.message ?? e));
  try {
    return await gen.generate(prompts, opts);
  } catch (e) {
    if (!emptyDecode(e)) throw e;
  }
  const out: Generation[] = [];
  for (const p of prompts) {
    try {
      out.push((await gen.generate([p], opts))[0]);
    } catch (e) {
      if (!emptyDecode(e)) throw e;
      out.push({ prompt: p, promptIds: [], text: '', ids: [], finishReason: 'eos' });
    }
  }
  return out;
}

/** Score `prompts` under each variant. */
export async function scoreIfs(gen: TextGenerator, classifier: TextClassifier, prompts: PromptRow[], o: ScoreOptions = {}): Promise<{ scores: IfsScore[]; responses: IfsResponse[] }> {
  const variants = o.variants ?? ['A', 'B', 'C'];
  const B = o.batchSize ?? DEFAULT_BATCH;
  const maxTokens = o.maxTokens ?? DEFAULT_MAX_TOKENS;
  const total = variants.length * prompts.length;
  let done = 0;
  const scores: IfsScore[] = [];
  const all: IfsResponse[] = [];
  for (const v of variants) {
    const items = prompts.map((p) => ({ p, text: wrapPrompt(p.prompt, v) }));
    const kept = o.fits ? items.filter((x) => o.fits!(x.text)) : items;
    const skipped = items.length - kept.length;
    done += skipped;
    const rs: IfsResponse[] = [];
    let failed = 0;
    for (let s = 0; s < kept.length; s += B) {
      const batch = kept.slice(s, s + B);
      const gens = await generateRobust(
        gen,
        batch.map((x) => x.text),
        { temperature: 0, ...o.generate, maxTokens },
      );
      gens.forEach((g, i) => {
        const p = batch[i].p;
        const error = generationError(g);
        if (error !== undefined) {
          failed++;
          o.onFailure?.({ id: p.id, variant: v, prompt: batch[i].text, error });
          return;
        }
        const text = g.text.trim();
        const c = text ? classifier.classify(text) : { label: 0 as const, prob: 0 };
        const r: IfsResponse = { id: p.id, source_id: p.source_id, kind: p.kind, variant: v, prompt: batch[i].text, response: g.text, label: c.label, prob: Number(c.prob.toFixed(6)), finish_reason: g.finishReason, tokens: generationTokens(g) };
        if (o.pair) {
          const q = text ? o.pair.classify(text, p.prompt) : { label: 0 as const, prob: 0 };
          Object.assign(r, { pair_label: q.label, pair_prob: Number(q.prob.toFixed(6)) });
        }
        rs.push(r);
        o.onResponse?.(r);
      });
      done += batch.length;
      o.onProgress?.(done, total);
    }
    scores.push(summarise(v, rs, skipped, failed));
    all.push(...rs);
  }
  return { scores, responses: all };
}

/** A fixed, balanced subset: the first ⌈n/2⌉ partial and ⌊n/2⌋ full prompts in file order (fewer if short). */
export function budgetSubset(prompts: PromptRow[], n: number): PromptRow[] {
  if (n >= prompts.length) return prompts;
  const partial = prompts.filter((p) => p.kind === 'partial');
  const full = prompts.filter((p) => p.kind === 'full');
  let np_ = Math.min(partial.length, Math.ceil(n / 2));
  const nf = Math.min(full.length, n - np_);
  np_ = Math.min(partial.length, n - nf);
  const pick = new Set([...partial.slice(0, np_), ...full.slice(0, nf)]);
  return prompts.filter((p) => pick.has(p));
}

const pct = (x: number) => x.toFixed(3);
export function formatRatio(r: Ratio): string {
  if (r.n === 0) return 'n/a (0/0)';
  return `${pct(r.value)} [${pct(r.ci[0])}, ${pct(r.ci[1])}] (${r.k}/${r.n})`;
}

/** The table `heed ifs` prints. */
export function formatTable(scores: IfsScore[]): string {
  const pair = scores.some((s) => s.ifs_pair);
  const head = ['variant', 'IFS', 'IFS_partial', 'IFS_full', ...(pair ? ['IFS-pair'] : [])];
  const rows = scores.map((s) => [s.variant, formatRatio(s.ifs), formatRatio(s.ifs_partial), formatRatio(s.ifs_full), ...(pair ? [s.ifs_pair ? formatRatio(s.ifs_pair) : 'n/a'] : [])]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd();
  return [line(head), ...rows.map(line), `(95 % Wilson intervals; k/n answer-like responses${pair ? '; IFS-pair: the pair classifier, which also sees the prompt (docs/ifs.md)' : ''})`].join('\n');
}
