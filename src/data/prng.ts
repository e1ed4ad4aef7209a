/** A small seeded PRNG (mulberry32) for property tests and deterministic shuffles, and random conversations. */
import type { Conversation, Message } from './types.js';

export class Prng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** uniform in [0, 1) */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** integer in [lo, hi] */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [xs[i], xs[j]] = [xs[j], xs[i]];
    }
    return xs;
  }
}

/** Pieces of text that stress tokenization boundaries: whitespace at the edges, unicode, special-token strings. */
const WORDS = ['the', 'cat', 'Hello', 'world', '42', '3.14', 'naïve', 'café', '中文', '🙂', 'x', "don't", 'C++', '```js', 'a_b', '<b>', '###', '-->'];
const TRAPS = ['</s>', '<s>', '<|im_end|>', '<|im_start|>', '<|endoftext|>', '<|user|>', '<|assistant|>', '<unk>', '\u00a0', '\t'];
const SEPS = [' ', ' ', ' ', '\n', '\n\n', '  ', ', ', '. '];

export function randomText(r: Prng, maxWords = 12): string {
  const n = r.int(1, maxWords);
  let s = r.chance(0.2) ? r.pick(['\n', ' ', '\n\n', '  ', '\t']) : '';
  for (let i = 0; i < n; i++) {
    s += r.chance(0.1) ? r.pick(TRAPS) : r.pick(WORDS);
    if (i < n - 1) s += r.pick(SEPS);
  }
  if (r.chance(0.2)) s += r.pick(['\n', ' ', '\n\n', '?', ' \n']);
  return s.trim() === '' ? 'x' : s;
}

/** A random valid conversation: optional system turn, 1–3 user/assistant pairs. */
export function randomConversation(r: Prng, id: string, opts: { maxTurns?: number; maxWords?: number } = {}): Conversation {
  const messages: Message[] = [];
  if (r.chance(0.3)) messages.push({ role: 'system', content: randomText(r, opts.maxWords) });
  const turns = r.int(1, opts.maxTurns ?? 3);
  for (let i = 0; i < turns; i++) {
    messages.push({ role: 'user', content: randomText(r, opts.maxWords) });
    messages.push({ role: 'assistant', content: randomText(r, opts.maxWords) });
  }
  return { id, line: 1, messages };
}
