/**
 * Instruction rows for difficulty scoring, stages and win rates: any of heed's data shapes (messages,
 * alpaca instruction/input/output, prompt/completion, or a bare {"instruction"} / {"prompt"} prompts file)
 * read into { id, instruction, output }. Every row keeps its original JSON (`raw`) so that scored and staged
 * files carry every input field through. A row without an output is kept (output undefined) and callers
 * that need one report it as a counted skip; a row without an instruction, a bad JSON line, or two rows with
 * the same id stop the read with a one-line error naming the line.
 */
import { readJsonlRows } from '../eval/jsonl.js';
import { HeedError } from '../errors.js';

export interface InstructionRow {
  id: string;
  instruction: string;
  output?: string;
  /** the input line as parsed (written out again with the scores) */
  raw: Record<string, unknown>;
  line: number;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** { instruction, output } of one parsed row, or the reason it has none. */
export function rowTexts(v: Record<string, unknown>): { instruction: string; output?: string } | { error: string } {
  if (Array.isArray(v.messages)) {
    const msgs = v.messages as Array<Record<string, unknown>>;
    const u = msgs.findIndex((m) => m && m.role === 'user' && typeof m.content === 'string');
    if (u < 0) return { error: 'messages hold no user turn' };
    const a = msgs.slice(u + 1).find((m) => m && m.role === 'assistant' && typeof m.content === 'string');
    return { instruction: String(msgs[u].content), output: a ? String(a.content) : undefined };
  }
  const ins = str(v.instruction) ?? str(v.prompt) ?? str(v.question);
  if (ins === undefined) return { error: 'no "messages", "instruction" or "prompt" field' };
  const input = str(v.input);
  const instruction = input && input.trim() ? `${ins}\n${input}` : ins;
  const output = str(v.output) ?? str(v.completion) ?? str(v.response);
  return { instruction, output };
}

export function readInstructionRows(path: string): InstructionRow[] {
  const out: InstructionRow[] = [];
  const seen = new Map<string, number>();
  for (const r of readJsonlRows(path)) {
    if (r.error) throw new HeedError(`${path}:${r.line}: ${r.error}`, 'fix or remove that line');
    const v = r.value!;
    const t = rowTexts(v);
    if ('error' in t) throw new HeedError(`${path}:${r.line}: ${t.error}`, 'each row needs messages [{role:"user"},{role:"assistant"}], or instruction/input/output, or prompt/completion');
    if (!t.instruction.trim()) throw new HeedError(`${path}:${r.line}: the instruction is empty`, 'fix or remove that line');
    const id = v.id === undefined || v.id === null ? `line-${r.line}` : String(v.id);
    const prev = seen.get(id);
    if (prev !== undefined) throw new HeedError(`${path}:${r.line}: duplicate id "${id}" (first on line ${prev})`, 'give every row a unique "id": scores, stages and resumed runs are keyed by it');
    seen.set(id, r.line);
    out.push({ id, instruction: t.instruction, output: t.output, raw: v, line: r.line });
  }
  if (!out.length) throw new HeedError(`${path}: no rows`, 'pass a JSONL file with one row per line');
  return out;
}
