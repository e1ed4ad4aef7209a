/** The IFS prompt set file: JSONL rows written by `heed ifs build` (PromptRow); a plain `{"prompt": …}` row counts as a full instruction. */
import { HeedError } from '../../errors.js';
import { readJsonlRows, repoPath } from '../jsonl.js';
import type { PromptRow } from './fragments.js';

export const DEFAULT_PROMPTS_PATH = repoPath('data/ifs/prompts.jsonl');

export function loadPromptSet(path = DEFAULT_PROMPTS_PATH): { prompts: PromptRow[]; bad: Array<{ line: number; error: string }> } {
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
