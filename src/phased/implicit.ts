/**
 * Data for the implicit instruction tuning experiment (Hewitt et al. 2024, arXiv 2409.14254): single-task
 * tuning on one Dolly category, response-only tuning and full instruction tuning, judged on prompts of the
 * *other* categories that no arm trained on.
 *
 * The category. databricks-dolly-15k labels every row with one of eight categories, but the AlpaGasus subset
 * in ../shared/data/dolly_3k.jsonl kept only `id`, `dataset` and `messages`: the label is gone. heed therefore
 * re-derives `creative_writing` with a documented rule over the instruction (wrappers removed with the IFS
 * cleaner): the first paragraph starts with write / compose / draft (optionally after "please"), or with
 * "imagine" / "pretend", or asks to "tell me a story" / "create a poem|story|song|haiku" — and the row has no
 * context paragraph (Dolly's creative_writing rows carry no context; "write key points from the passage" is
 * summarization). This is a reconstruction, not Dolly's label; the experiment's note says so.
 *
 * The split. A non-creative row is held out when FNV(seed, id) mod 10 == 0 (≈ 10 %); every other row is a
 * training row. Full instruction tuning and response-only tuning train on all training rows, single-task
 * tuning on the creative training rows. The judged prompts are the first `prompts` held-out rows (never
 * creative, never trained on) whose cleaned instruction is not also the cleaned instruction of a training row
 * (Dolly holds a few duplicated instructions; those are dropped and counted).
 */
import { cleanInstruction, rowRng } from '../eval/ifs/fragments.js';
import type { InstructionRow } from './rows.js';

export const CREATIVE_RULE = /^(?:please\s+)?(?:write|compose|draft|imagine|pretend|tell me an? (?:short )?story|create an? (?:poem|story|song|haiku))\b/i;

/** `creative_writing` by heed's rule (see the module comment), else `other`. */
export function dollyCategory(instruction: string): 'creative_writing' | 'other' {
  const s = cleanInstruction(instruction);
  if (/\n\s*\n/.test(s)) return 'other'; // a context paragraph: not creative writing
  return CREATIVE_RULE.test(s) ? 'creative_writing' : 'other';
}

export interface ImplicitSelection {
  /** every training row (full instruction tuning, response-only tuning) */
  full: InstructionRow[];
  /** the creative_writing training rows (single-task tuning) */
  singleTask: InstructionRow[];
  /** judged prompts: held-out rows of the other categories */
  prompts: Array<{ id: string; instruction: string }>;
  counts: { rows: number; creative: number; held_out: number; held_out_duplicates: number; train: number; single_task: number; prompts: number };
}

export function selectImplicit(rows: readonly InstructionRow[], o: { prompts?: number; seed?: number } = {}): ImplicitSelection {
  const seed = o.seed ?? 0;
  const cat = rows.map((r) => dollyCategory(r.instruction));
  const held = rows.map((r, i) => cat[i] === 'other' && rowRng(seed ^ 0x1b873593, r.id).int(0, 9) === 0);
  const full = rows.filter((_, i) => !held[i]);
  const singleTask = rows.filter((_, i) => !held[i] && cat[i] === 'creative_writing');
  const trained = new Set(full.map((r) => cleanInstruction(r.instruction).toLowerCase()));
  const pool = rows.filter((_, i) => held[i]).map((r) => ({ id: r.id, instruction: cleanInstruction(r.instruction) }));
  const fresh = pool.filter((p) => !trained.has(p.instruction.toLowerCase()));
  const prompts = fresh.slice(0, o.prompts ?? fresh.length);
  return {
    full,
    singleTask,
    prompts,
    counts: { rows: rows.length, creative: cat.filter((c) => c === 'creative_writing').length, held_out: pool.length, held_out_duplicates: pool.length - fresh.length, train: full.length, single_task: singleTask.length, prompts: prompts.length },
  };
}

/**
 * IFS prompts (data/ifs/prompts.jsonl rows, built from the same Dolly subset) whose source row no arm trained
 * on: IFS of the four models is measured on instructions none of them saw. Rows without a `source_id` are kept
 * only if their own id is not a training id.
 */
export function untrainedIfsPrompts<T extends { id: string; source_id?: string; instruction?: string }>(prompts: readonly T[], sel: Pick<ImplicitSelection, 'full'>): T[] {
  const ids = new Set(sel.full.map((r) => r.id));
  const trained = new Set(sel.full.map((r) => cleanInstruction(r.instruction).toLowerCase()));
  return prompts.filter((p) => !ids.has(p.source_id ?? p.id) && !(p.instruction && trained.has(cleanInstruction(p.instruction).toLowerCase())));
}
