/**
 * metrics.jsonl: one JSON object per line, each with a numeric `step` — the trainer's records (step, stage,
 * epoch, lr, loss, grad_norm, tokens, tokens_per_s, eval_loss and callback metrics at evaluations) and, for a
 * PyTorch job, `heed watch`'s. The one reader of the file for the trainer and `heed watch`:
 *
 * - a last line without its newline is a write under way (a live run) or torn by a kill -9: it is kept when
 *   it is a complete record (a JSON object cannot parse before its closing brace), else reported as `torn`
 *   and left out — never an error;
 * - any other line that is not a JSON object with a numeric `step` is a counted skip (`bad`: 1-based line
 *   numbers), which the caller reports; blank lines are ignored.
 */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';

export type MetricsRecord = Record<string, unknown> & { step: number };

export interface MetricsRead {
  records: MetricsRecord[];
  /** the last line is incomplete (no newline, not a complete record) and was left out */
  torn: boolean;
  /** 1-based numbers of the other lines that are not records (skipped, counted) */
  bad: number[];
}

const asRecord = (l: string): MetricsRecord | undefined => {
  try {
    const v = JSON.parse(l) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) && typeof (v as { step?: unknown }).step === 'number' ? (v as MetricsRecord) : undefined;
  } catch {
    return undefined;
  }
};

/** Read metrics.jsonl (a missing file reads as no records). */
export function readMetrics(path: string): MetricsRead {
  if (!existsSync(path)) return { records: [], torn: false, bad: [] };
  const lines = readFileSync(path, 'utf8').split('\n');
  const tail = lines.pop()!; // '' when the file ends with a newline
  const records: MetricsRecord[] = [];
  const bad: number[] = [];
  for (const [i, l] of lines.entries()) {
    if (!l.trim()) continue;
    const r = asRecord(l);
    if (r) records.push(r);
    else bad.push(i + 1);
  }
  let torn = false;
  if (tail.trim()) {
    const r = asRecord(tail);
    if (r) records.push(r);
    else torn = true;
  }
  return { records, torn, bad };
}

/** One line saying what was skipped, or undefined when nothing was. */
export function describeSkips(path: string, m: Pick<MetricsRead, 'torn' | 'bad'>): string | undefined {
  const parts: string[] = [];
  if (m.bad.length) parts.push(`${m.bad.length} unreadable line(s) skipped (line${m.bad.length > 1 ? 's' : ''} ${m.bad.slice(0, 5).join(', ')}${m.bad.length > 5 ? ', ...' : ''})`);
  if (m.torn) parts.push('an incomplete last line left out (a write cut by a kill)');
  return parts.length ? `${path}: ${parts.join('; ')}` : undefined;
}

/**
 * Resuming at `step`: rewrite the file with the records up to `step` (those past the checkpoint are redone,
 * the torn and unreadable lines go). Returns what was read and what was kept.
 */
export function truncateMetrics(path: string, step: number): MetricsRead & { kept: MetricsRecord[]; dropped: number } {
  const m = readMetrics(path);
  const kept = m.records.filter((r) => r.step <= step);
  if (existsSync(path)) writeFileSync(path, kept.map((r) => JSON.stringify(r) + '\n').join(''));
  return { ...m, kept, dropped: m.records.length - kept.length };
}

/** Append one record (one write of one line). */
export function appendMetrics(path: string, rec: MetricsRecord): void {
  appendFileSync(path, JSON.stringify(rec) + '\n');
}
