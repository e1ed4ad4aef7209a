import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const TINY = join(ROOT, 'test/fixtures/tiny');
export const TINY_NAMES = ['llama-gqa', 'llama-tied-llama3rope', 'qwen2', 'mistral-window', 'gpt2'];
export const SHARED = join(ROOT, '..', 'shared');
export const tmp = (prefix = 'heed-') => mkdtempSync(join(tmpdir(), prefix));

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const shortCache = new Map<string, string>();
/**
 * The rows of a `messages` JSONL file whose message contents come to at most `maxLength` UTF-8 bytes, in their
 * order, written once per process to a temp file. For a tokenizer with one token per byte (the test models'
 * byte-level BPE without merges: checked here) templating only adds tokens, so every row that fits `maxLength`
 * is among them: a run with `truncation: drop` trains on and holds out exactly the rows it would from the whole
 * file (the same metrics, measured for test/train.test.ts's config), without tokenizing the ~97 % that it drops.
 * Only the drop counts in its log differ.
 */
export function shortRows(file: string, maxLength: number, model: string): string {
  const tok = JSON.parse(readFileSync(join(model, 'tokenizer.json'), 'utf8')) as { model: { type: string; vocab: Record<string, number>; merges?: unknown[] } };
  if (tok.model.type !== 'BPE' || (tok.model.merges ?? []).length > 0 || Object.keys(tok.model.vocab).length > 300) throw new Error(`shortRows: ${model}'s tokenizer is not byte-level without merges`);
  const key = `${file}\0${maxLength}`;
  let out = shortCache.get(key);
  if (!out) {
    const rows = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '');
    const keep = rows.filter((l) => (JSON.parse(l) as { messages: Array<{ content: string }> }).messages.reduce((n, m) => n + Buffer.byteLength(m.content), 0) <= maxLength);
    out = join(tmp('heed-short-'), `short-${maxLength}.jsonl`);
    writeFileSync(out, keep.join('\n') + '\n');
    shortCache.set(key, out);
  }
  return out;
}
