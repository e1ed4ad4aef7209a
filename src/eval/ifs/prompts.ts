/** The IFS prompt set file: JSONL rows written by `heed ifs build` (PromptRow); a plain `{"prompt": …}` row counts as a full instruction. */
import { existsSync } from 'node:fs';
import { HeedError } from '../../errors.js';
import { readJsonlRows, repoPath } from '../jsonl.js';
import type { PromptRow } from './fragments.js';
import { Prng } from '../../data/prng.js';

/** The Dolly prompt set: the default of IFS early stopping in `heed train`, the demo and the benches. */
export const DEFAULT_PROMPTS_PATH = repoPath('data/ifs/prompts.jsonl');

/**
 * Shipped prompt sets by name (`--prompts NAME`). `dolly` is drawn from the AlpaGasus Dolly 3k that the demo,
 * the shipped base model's pretraining corpus and most users' first runs use; `alpaca-eval` from AlpacaEval's
 * 805 evaluation instructions, which no shipped or shared training file holds (docs/ifs.md).
 */
export const PROMPT_SETS: Record<string, string> = {
  dolly: DEFAULT_PROMPTS_PATH,
  'alpaca-eval': repoPath('data/ifs/alpaca-eval.jsonl'),
};

/** The set `heed ifs` uses without --prompts (docs/ifs.md says why). */
export const IFS_CLI_DEFAULT_SET = 'alpaca-eval';

/** A set name or a file path → the file path. */
export const promptSetPath = (nameOrPath?: string): string => (nameOrPath === undefined ? DEFAULT_PROMPTS_PATH : PROMPT_SETS[nameOrPath] ?? nameOrPath);

/** A seeded order (mulberry32 Fisher–Yates), so that the first N rows of a set mix all of its sources. */
export function seededShuffle<T>(xs: readonly T[], seed: number): T[] {
  return new Prng(seed ^ 0x1f5).shuffle([...xs]);
}

export function loadPromptSet(nameOrPath?: string): { prompts: PromptRow[]; bad: Array<{ line: number; error: string }> } {
  const path = promptSetPath(nameOrPath);
  if (!existsSync(path)) throw new HeedError(`IFS prompts "${nameOrPath}": no such set or file`, `name a shipped set (${Object.keys(PROMPT_SETS).join(', ')}) or a JSONL file made with heed ifs build`);
  const prompts: PromptRow[] = [];
  const bad: Array<{ line: number; error: string }> = [];
  for (const r of readJsonlRows(path)) {
    const v = r.value;
    if (!v) {
      bad.push({ line: r.line, error: r.error! });
      continue;
    }
    if (typeof v.prompt !== 'string' || !v.prompt.trim()) {
      bad.push({ line: r.line, error: 'no non-empty "prompt" string' });
      continue;
    }
    const kind = v.kind === 'partial' ? 'partial' : v.kind === undefined || v.kind === 'full' ? 'full' : undefined;
    if (!kind) {
      bad.push({ line: r.line, error: `"kind" must be "full" or "partial", got ${JSON.stringify(v.kind)}` });
      continue;
    }
    const id = typeof v.id === 'string' ? v.id : `line${r.line}`;
    prompts.push({ ...(v as object), id, source_id: typeof v.source_id === 'string' ? v.source_id : id, kind, prompt: v.prompt, instruction: typeof v.instruction === 'string' ? v.instruction : v.prompt } as PromptRow);
  }
  if (prompts.length === 0) throw new HeedError(`${path}: no usable prompt rows${bad.length ? ` (${bad.length} bad, first at line ${bad[0].line}: ${bad[0].error})` : ''}`, 'build one with `heed ifs build --data <conversations.jsonl> --out prompts.jsonl`');
  return { prompts, bad };
}
