/**
 * Project-generated label-0 ("not an answer") examples for the IFS classifier: the text that tiny, random or
 * barely trained models emit. The paper's label 0 is "continuation-like / not an answer"; its data (Ic, Ic+R)
 * never contains text that is not language at all, so a classifier trained only on it scores byte noise and
 * degenerate loops as answer-like about as often as not. These kinds fill that gap (all seeded, per source
 * row, so a row's noise does not depend on the other rows and lands on the same side of the split as the row):
 *
 *  - bytes:       random characters: printable ASCII, Latin-1/extended letters, control characters, CJK,
 *                 U+FFFD, mixed in a per-example profile (what random-weight byte/BPE models print).
 *  - chars:       random "words" of random letters with spaces and punctuation.
 *  - salad:       words of real responses drawn at random (frequency-weighted), shuffled into no sentence.
 *  - loop-word:   one word or symbol repeated ("the the the …", "- - -"), optionally after a real opening.
 *  - loop-phrase: a real opening, then a phrase of 2–8 words of the response repeated until the length runs
 *                 out (space, newline or "- " separated; at least two repeats) — the greedy loop of an undertrained model.
 *  - truncated:   a 3–40 character slice of a response starting and ending inside a word.
 *  - echo:        the instruction itself given back (alone, repeated, or with an Alpaca header after it).
 *  - pseudo:      a real response with 60–95 % of its words replaced by letter-mutated non-words
 *                 (pseudo-English).
 *  - model:       generations of a pretrained-only model (data/ifs/negatives/tiny-dolly.jsonl, and
 *                 tiny-dolly-rules.jsonl decoded with the rule adapter; made by scripts/ifs-model-negatives.ts
 *                 with fixed seeds), read from the committed files.
 */
import { existsSync } from 'node:fs';
import { Prng } from '../../data/prng.js';
import { readJsonlRows, repoPath } from '../jsonl.js';
import { rowRng, type SourceRow } from './fragments.js';

export type NoiseKind = 'bytes' | 'chars' | 'salad' | 'loop-word' | 'loop-phrase' | 'truncated' | 'echo' | 'pseudo' | 'model';
export const SYNTHETIC_KINDS: NoiseKind[] = ['bytes', 'chars', 'salad', 'loop-word', 'loop-phrase', 'truncated', 'echo', 'pseudo'];

export interface NoiseText {
  text: string;
  label: 0;
  source_id: string;
  kind: NoiseKind;
}

export const DEFAULT_MODEL_NEGATIVES = [repoPath('data/ifs/negatives/tiny-dolly.jsonl'), repoPath('data/ifs/negatives/tiny-dolly-rules.jsonl')];

const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const VOWELS = 'aeiou';
const PUNCT = '.,;:!?-()"\'/*#';

function randomChar(r: Prng, profile: number[]): string {
  // profile: weights of [printable ASCII, Latin ext, control/whitespace, CJK, replacement/symbols]
  let u = r.next() * profile.reduce((a, b) => a + b, 0);
  let k = 0;
  while (k < profile.length - 1 && u >= profile[k]) u -= profile[k++];
  switch (k) {
    case 0:
      return String.fromCharCode(r.int(0x20, 0x7e));
    case 1:
      return String.fromCharCode(r.int(0xa1, 0x24f));
    case 2:
      return r.pick(['\n', '\t', '\r', '\x00', '\x07', '\x1b', ' ', '\n\n', '\x7f']);
    case 3:
      return String.fromCharCode(r.int(0x4e00, 0x9fff));
    default:
      return r.pick(['\ufffd', '\u2581', '\u0120', '�', '▁', '\u200b', String.fromCharCode(r.int(0x2500, 0x27bf))]);
  }
}

function bytesNoise(r: Prng): string {
  const profile = [r.next() * 4 + 0.2, r.next() * 2, r.next(), r.chance(0.3) ? r.next() * 2 : 0, r.next()];
  const n = r.int(4, 300);
  let s = '';
  for (let i = 0; i < n; i++) s += randomChar(r, profile);
  return s;
}

function randomWord(r: Prng, maxLen = 12): string {
  const n = r.int(1, maxLen);
  let w = '';
  for (let i = 0; i < n; i++) w += r.chance(0.35) ? VOWELS[r.int(0, 4)] : LOWER[r.int(0, 25)];
  return w;
}

function charsNoise(r: Prng): string {
  const n = r.int(2, 50);
  const words: string[] = [];
  for (let i = 0; i < n; i++) {
    let w = randomWord(r);
    if (r.chance(0.15)) w = w[0].toUpperCase() + w.slice(1);
    if (r.chance(0.1)) w += PUNCT[r.int(0, PUNCT.length - 1)];
    words.push(w);
  }
  return words.join(r.chance(0.8) ? ' ' : r.pick(['\n', '  ', ', ']));
}

/** A mutated, non-word version of `w` (letters replaced / inserted / dropped / swapped). */
function mutate(r: Prng, w: string): string {
  const cs = [...w];
  const edits = Math.max(1, Math.round(cs.length * (0.25 + 0.4 * r.next())));
  for (let e = 0; e < edits; e++) {
    const i = r.int(0, Math.max(0, cs.length - 1));
    const op = r.int(0, 3);
    const c = LOWER[r.int(0, 25)];
    if (op === 0 || cs.length === 0) cs[i] = c;
    else if (op === 1) cs.splice(i, 0, c);
    else if (op === 2 && cs.length > 2) cs.splice(i, 1);
    else if (i + 1 < cs.length) [cs[i], cs[i + 1]] = [cs[i + 1], cs[i]];
  }
  return cs.join('');
}

const words = (t: string) => t.match(/\S+/g) ?? [];

/** Cut to 40..400 characters, but never below `min` (so a loop keeps at least three repeats). */
function cutLen(r: Prng, s: string, min = 0): string {
  const n = Math.max(min, r.chance(0.3) ? r.int(30, 80) : r.int(40, 400));
  return s.length <= n ? s : s.slice(0, n);
}

/** One synthetic negative of `kind` for a source row; `vocab` = words of real responses (with repeats). */
export function syntheticNegative(kind: NoiseKind, row: SourceRow, vocab: readonly string[], r: Prng): string {
  const resp = words(row.response);
  switch (kind) {
    case 'bytes':
      return bytesNoise(r);
    case 'chars':
      return charsNoise(r);
    case 'salad': {
      const n = r.int(3, 70);
      const ws = Array.from({ length: n }, () => r.pick(vocab));
      if (r.chance(0.5)) ws[0] = ws[0][0].toUpperCase() + ws[0].slice(1);
      return ws.join(r.chance(0.85) ? ' ' : '\n');
    }
    case 'loop-word': {
      const w = r.chance(0.3) ? r.pick(['the', 'and', 'of', '-', '*', '.', 'a', 'to', 'is', 'I', '#', '\u2581', 'The', 'in']) : r.pick(vocab);
      const sep = r.pick([' ', ' ', ' ', '\n', ', ', '', '. ']);
      const pre = r.chance(0.4) ? resp.slice(0, r.int(1, 6)).join(' ') + ' ' : '';
      return cutLen(r, pre + Array.from({ length: r.int(4, 80) }, () => w).join(sep), pre.length + 4 * (w.length + sep.length));
    }
    case 'loop-phrase': {
      const src = resp.length >= 4 ? resp : [...resp, ...Array.from({ length: 6 }, () => r.pick(vocab))];
      const len = r.int(2, Math.min(8, src.length - 1));
      const at = r.int(0, src.length - len);
      const phrase = src.slice(at, at + len).join(' ');
      const pre = r.chance(0.7) ? src.slice(0, r.int(0, Math.min(12, src.length))).join(' ') : '';
      const sep = r.pick([' ', ' ', ' ', '\n', '\n- ', ', ', ' and ']);
      const reps = r.int(3, 20);
      const body = Array.from({ length: reps }, () => phrase).join(sep);
      const head = pre ? pre + (sep.startsWith('\n') ? sep : ' ') : r.chance(0.3) ? '- ' : '';
      return cutLen(r, head + body, head.length + 2 * (phrase.length + sep.length));
    }
    case 'truncated': {
      const t = row.response;
      if (t.length < 12) return mutate(r, t);
      const len = Math.min(t.length - 2, r.int(3, 40));
      const at = r.int(1, Math.max(1, t.length - len - 1));
      return t.slice(at, at + len).trim() || t.slice(1, 6);
    }
    case 'echo': {
      const I = row.instruction;
      switch (r.int(0, 3)) {
        case 0:
          return I;
        case 1:
          return `${I}\n${I}`;
        case 2:
          return `${I}\n\n### Response:`;
        default:
          return `### Instruction:\n${I}\n\n### Response:\n`;
      }
    }
    case 'pseudo': {
      const q = 0.6 + 0.35 * r.next();
      const src = resp.length ? resp : [r.pick(vocab)];
      const out = src.slice(0, r.int(3, 80)).map((w) => (r.chance(q) ? mutate(r, w) : w));
      return out.join(' ');
    }
    case 'model':
      return row.response;
  }
}

/** Words of real responses (with repeats, so draws are frequency-weighted), in row order. */
export function responseVocab(rows: readonly SourceRow[], maxWords = 200_000): string[] {
  const v: string[] = [];
  for (const r of rows) {
    for (const w of words(r.response)) {
      v.push(w);
      if (v.length >= maxWords) return v;
    }
  }
  return v;
}

/** One synthetic negative per source row (kind drawn per row from a PRNG seeded by (seed, row id)). */
export function syntheticNegatives(rows: readonly SourceRow[], vocab: readonly string[], seed: number): NoiseText[] {
  return rows.map((row) => {
    const r = rowRng(seed ^ 0x1f83d9ab, row.id);
    const kind = SYNTHETIC_KINDS[r.int(0, SYNTHETIC_KINDS.length - 1)];
    return { text: syntheticNegative(kind, row, vocab, r), label: 0 as const, source_id: row.id, kind };
  });
}

/** The committed generations of a pretrained-only model (label 0); absent files are skipped. */
export function readModelNegatives(paths: string[] = DEFAULT_MODEL_NEGATIVES): NoiseText[] {
  const out: NoiseText[] = [];
  for (const path of paths) {
    if (!existsSync(path)) continue;
    for (const row of readJsonlRows(path)) {
      const v = row.value as { text?: unknown; source_id?: unknown; id?: unknown } | undefined;
      if (!v || typeof v.text !== 'string' || !v.text.trim()) continue;
      out.push({ text: v.text.trim(), label: 0, source_id: String(v.source_id ?? v.id ?? `model:${row.line}`), kind: 'model' });
    }
  }
  return out;
}
