import { mkdtempSync } from 'node:fs';
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
