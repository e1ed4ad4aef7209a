/**
 * Pretraining corpus: plain-text documents from a .txt or .jsonl file.
 *
 * - text (any extension but .jsonl/.json): documents separated by lines that hold exactly `<|endoftext|>`; a file
 *   without such lines is split on blank lines instead.
 * - jsonl: one document per row, from `text` (or `content`, `response`, `output`), or from `messages` (the
 *   assistant turns joined by a newline: the answers of a conversation file, not its prompts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { HeedError } from '../errors.js';

export const DOC_SEPARATOR = '<|endoftext|>';

export function readCorpus(path: string): string[] {
  if (!existsSync(path)) throw new HeedError(`${path}: corpus file not found`, 'pass --data <file.txt|file.jsonl>');
  const raw = readFileSync(path, 'utf8').replace(/\r\n/g, '\n');
  let docs: string[];
  if (/\.jsonl?$/i.test(path)) {
    docs = [];
    raw.split('\n').forEach((line, i) => {
      if (!line.trim()) return;
      let row: Record<string, unknown>;
      try {
        row = JSON.parse(line);
      } catch (e) {
        throw new HeedError(`${path}:${i + 1}: not valid JSON (${(e as Error).message})`, 'one JSON object per line');
      }
      const field = ['text', 'content', 'response', 'output'].find((k) => typeof row[k] === 'string');
      if (field) docs.push(row[field] as string);
      else if (Array.isArray(row.messages)) {
        const t = (row.messages as Array<{ role?: string; content?: unknown }>).filter((m) => m?.role === 'assistant' && typeof m.content === 'string').map((m) => m.content as string).join('\n');
        if (t) docs.push(t);
      } else throw new HeedError(`${path}:${i + 1}: no "text" field and no "messages"`, 'give each row a "text" string (or a "messages" list with assistant turns)');
    });
  } else {
    const lines = raw.split('\n');
    if (lines.some((l) => l === DOC_SEPARATOR)) {
      docs = [];
      let cur: string[] = [];
      for (const l of lines) {
        if (l === DOC_SEPARATOR) {
          docs.push(cur.join('\n'));
          cur = [];
        } else cur.push(l);
      }
      docs.push(cur.join('\n'));
    } else docs = raw.split(/\n\s*\n/);
  }
  docs = docs.map((d) => d.trim()).filter((d) => d.length > 0);
  if (docs.length < 2) throw new HeedError(`${path}: ${docs.length} document(s) found; pretraining needs at least 2 (one is held out)`, 'separate documents with a line "<|endoftext|>" or a blank line');
  return docs;
}

/** Deterministic split: every `1/frac`-th document (spread over the file) is held out. */
export function splitHeldOut(docs: string[], frac = 0.05): { train: string[]; heldOut: string[] } {
  const every = Math.max(2, Math.round(1 / frac));
  const train: string[] = [];
  const heldOut: string[] = [];
  docs.forEach((d, i) => ((i % every) === every - 1 ? heldOut : train).push(d));
  if (heldOut.length === 0) heldOut.push(train.pop()!);
  return { train, heldOut };
}
