/**
 * IFS fragments (arXiv 2307.03692, §3): from a conversation set take each first user instruction I and its
 * response R; cutting I at a shifted point gives a partial instruction Ip and its continuation Ic.
 *
 * heed's construction, precisely (plain TypeScript, no tensors):
 *  1. I = the first user message, cleaned of the instruction-augmentation wrappers that the AlpaGasus
 *     subsets carry ("Write a response that appropriately completes the request.", "### Instruction:",
 *     "Plase answer the following request:", trailing "Answer:" / "Output:" / "### Response:", …; see
 *     `cleanInstruction`). R = the assistant message right after it, trimmed. Rows without both, or whose I
 *     has fewer than MIN_WORDS words, are skipped (the count is reported).
 *  2. Words are maximal runs of non-whitespace. With n words, the cut point is word k, where
 *     k = clamp(round(f·n), 1, n-1) and the fraction f is drawn uniformly from [CUT_LO, CUT_HI] = [0.2, 0.8]
 *     by a seeded PRNG per row ("shifted": every row is cut at its own point, never only at the middle).
 *     Ip = the text before word k with trailing whitespace removed; Ic = the rest (starting at word k).
 *     Ip + (the whitespace removed) + Ic === I, character for character.
 *  3. Prompt set: each kept row gives exactly one prompt, partial (Ip) with probability `partialShare`
 *     (default 0.5), else full (I). Rows carry their source id, so scores can be traced back.
 *  4. Classifier examples: each kept row gives one positive, R (label 1), and one negative (label 0), which is
 *     Ic or Ic + "\n" + R with probability 1/2 each — the text a model produces when it continues a partial
 *     instruction instead of answering it.
 */
import { HeedError } from '../../errors.js';
import { Prng } from '../../data/prng.js';

export const MIN_WORDS = 3;
export const CUT_LO = 0.2;
export const CUT_HI = 0.8;

export interface SourceRow {
  id: string;
  dataset?: string;
  instruction: string;
  response: string;
}

export interface PromptRow {
  /** unique id of the prompt: `<source id>#full` or `<source id>#partial` */
  id: string;
  source_id: string;
  dataset?: string;
  kind: 'full' | 'partial';
  /** the text given to the model (I or Ip), before any variant wrapper */
  prompt: string;
  /** the full instruction I */
  instruction: string;
  /** for partial rows: the continuation Ic and the character offset where it starts in I */
  continuation?: string;
  cut?: number;
}

export interface Fragment {
  partial: string;
  continuation: string;
  /** character offset of the continuation in the instruction */
  cut: number;
  /** word index of the cut and word count */
  k: number;
  n: number;
}

const HEAD_WRAPPERS: RegExp[] = [
  /^Below is an instruction that describes a task(?:, paired with an input that provides further context)?\. Write a response that appropriately completes the request\.\s*/i,
  /^Write a response that appropriately completes the request\.\s*/i,
  /^You need to complete the following task:\s*/i,
  /^Can you help with this\?\s*\n\s*/i,
  /^Tell me how would you respond to the following request\.\s*/i,
  /^Plase answer the following request:\s*/i,
  /^Please answer the following request:\s*/i,
  /^(?:### )?Instruction:\s*/i,
  /^Task:\s*/i,
];
const TAIL_WRAPPERS: RegExp[] = [/\s*(?:### )?Response:\s*$/i, /\s*Answer:\s*$/i, /\s*Output:\s*$/i];

/**
 * Remove instruction-augmentation wrappers (see the module comment); an Alpaca `### Input:` block is kept as
 * a second paragraph (`I\n\nInput`), "No input" markers are dropped. Plain instructions come back trimmed.
 */
export function cleanInstruction(text: string): string {
  let s = text.replace(/\r\n/g, '\n').trim();
  for (let changed = true; changed; ) {
    changed = false;
    for (const re of HEAD_WRAPPERS) {
      const t = s.replace(re, '');
      if (t !== s) (s = t.trim()), (changed = true);
    }
    for (const re of TAIL_WRAPPERS) {
      const t = s.replace(re, '');
      if (t !== s) (s = t.trim()), (changed = true);
    }
  }
  s = s.replace(/\n*(?:### )?Input:\s*(?:No ?input\.?|<noinput>|N\/A)?\s*$/i, '');
  s = s.replace(/\n+(?:### )?(?:Input|Additional Context):\s*\n?/i, '\n\n');
  s = s.replace(/\n\s*No ?Input\.?\s*$/i, '');
  return s.trim();
}

/** Cut `text` at word k of its n words (1 ≤ k ≤ n-1). */
export function cutAtWord(text: string, k: number): Fragment {
  const starts: number[] = [];
  const re = /\S+/g;
  for (let m; (m = re.exec(text)); ) starts.push(m.index);
  const n = starts.length;
  if (n < 2 || k < 1 || k > n - 1) throw new HeedError(`cannot cut a ${n}-word text at word ${k}`, 'cut at 1..n-1');
  const cut = starts[k];
  return { partial: text.slice(0, cut).trimEnd(), continuation: text.slice(cut), cut, k, n };
}

export function wordCount(text: string): number {
  return (text.match(/\S+/g) ?? []).length;
}

/** The shifted cut of the module comment, drawing f from `rng`. */
export function shiftedCut(text: string, rng: Prng): Fragment {
  const n = wordCount(text);
  const f = CUT_LO + (CUT_HI - CUT_LO) * rng.next();
  const k = Math.min(n - 1, Math.max(1, Math.round(f * n)));
  return cutAtWord(text, k);
}

/** A seeded PRNG per source row: the cut of a row does not depend on which other rows are in the file. */
export function rowRng(seed: number, id: string): Prng {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return new Prng(h >>> 0);
}

/** First user instruction and its response from a `messages` (or alpaca / prompt-completion) row. */
/** A source row; `needResponse: false` (prompt sets: `heed ifs build`) takes instruction-only rows too (response ''). */
export function sourceFromRecord(rec: Record<string, unknown>, fallbackId: string, needResponse = true): SourceRow | { error: string } {
  const id = typeof rec.id === 'string' || typeof rec.id === 'number' ? String(rec.id) : fallbackId;
  const dataset = typeof rec.dataset === 'string' ? rec.dataset : undefined;
  let instruction: unknown, response: unknown;
  if (Array.isArray(rec.messages)) {
    const msgs = rec.messages as Array<{ role?: unknown; content?: unknown }>;
    const u = msgs.findIndex((m) => m && m.role === 'user');
    if (u < 0) return { error: 'no user message' };
    instruction = msgs[u].content;
    response = msgs[u + 1]?.role === 'assistant' ? msgs[u + 1].content : undefined;
  } else if (typeof rec.instruction === 'string') {
    instruction = rec.input ? `${rec.instruction}\n\n${rec.input}` : rec.instruction;
    response = rec.output ?? rec.response;
  } else if (typeof rec.prompt === 'string') {
    instruction = rec.prompt;
    response = rec.completion ?? rec.response;
  } else return { error: 'no "messages", "instruction" or "prompt" field' };
  if (typeof instruction !== 'string') return { error: 'the user message has no text content' };
  if (!needResponse && (response === undefined || response === null)) return { id, dataset, instruction: cleanInstruction(instruction), response: '' };
  if (typeof response !== 'string' || !response.trim()) return { error: 'no assistant response after the first user message' };
  return { id, dataset, instruction: cleanInstruction(instruction), response: response.trim() };
}

export interface BuildOptions {
  partialShare?: number;
  seed?: number;
}

/** Prompt rows (one per usable source row) and the number of rows skipped as too short. */
export function buildPrompts(rows: SourceRow[], opts: BuildOptions = {}): { prompts: PromptRow[]; skipped: number } {
  const share = opts.partialShare ?? 0.5;
  const seed = opts.seed ?? 0;
  if (!(share >= 0 && share <= 1)) throw new HeedError(`--partial-share must be within 0..1, got ${share}`, 'pass e.g. --partial-share 0.5');
  const prompts: PromptRow[] = [];
  let skipped = 0;
  for (const r of rows) {
    if (wordCount(r.instruction) < MIN_WORDS) {
      skipped++;
      continue;
    }
    const rng = rowRng(seed, r.id);
    const partial = rng.next() < share;
    const base = { source_id: r.id, ...(r.dataset ? { dataset: r.dataset } : {}), instruction: r.instruction };
    if (partial) {
      const f = shiftedCut(r.instruction, rng);
      prompts.push({ id: `${r.id}#partial`, ...base, kind: 'partial', prompt: f.partial, continuation: f.continuation, cut: f.cut });
    } else prompts.push({ id: `${r.id}#full`, ...base, kind: 'full', prompt: r.instruction });
  }
  return { prompts, skipped };
}

export interface LabelledText {
  text: string;
  label: 0 | 1;
  source_id: string;
  kind: 'R' | 'Ic' | 'Ic+R';
}

/** Classifier examples: R (1) and Ic or Ic+R (0) per usable row. */
export function classifierExamples(rows: SourceRow[], seed = 0): LabelledText[] {
  const out: LabelledText[] = [];
  for (const r of rows) {
    if (wordCount(r.instruction) < MIN_WORDS) continue;
    const rng = rowRng(seed ^ 0x5bd1e995, r.id);
    const f = shiftedCut(r.instruction, rng);
    out.push({ text: r.response, label: 1, source_id: r.id, kind: 'R' });
    if (rng.next() < 0.5) out.push({ text: f.continuation, label: 0, source_id: r.id, kind: 'Ic' });
    else out.push({ text: `${f.continuation}\n${r.response}`, label: 0, source_id: r.id, kind: 'Ic+R' });
  }
  return out;
}
