/**
 * Byte-level BPE training (GPT-2 style), in project code.
 *
 * Text is split with GPT-2's pre-tokenisation regex (the one Hugging Face's ByteLevel pre-tokenizer uses with
 * `use_regex: true`), each piece is turned into UTF-8 bytes written in GPT-2's byte→unicode alphabet, and the
 * distinct pieces are counted. Merges are then learned greedily: the most frequent adjacent pair (ties broken by
 * the lexicographically smallest pair of token strings, so the result is deterministic) becomes a new token.
 * Pair counts are kept incrementally: a merge only revisits the words that contain the merged pair.
 *
 * The result feeds byteLevelTokenizerJson, which writes a standard tokenizer.json (specials first, then the
 * 256 byte tokens, then one token per merge).
 */
import { bytesToUnicode, byteLevelTokenizerJson } from '../io/byte-tokenizer.js';
import { HeedError } from '../errors.js';

/** GPT-2's pre-tokenisation regex (identical to the ByteLevel pre-tokenizer's). */
export const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export const DEFAULT_SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];

export interface BpeOptions {
  /** total vocabulary size: specials + 256 bytes + merges */
  vocabSize: number;
  specials?: string[];
  /** pairs seen fewer times than this are never merged (training stops early) */
  minFrequency?: number;
}

export interface BpeResult {
  merges: Array<[string, string]>;
  specials: string[];
  vocabSize: number;
  stats: { documents: number; bytes: number; pieces: number; distinctPieces: number; merges: number; seconds: number; stoppedEarly: boolean };
}

/** Split text into GPT-2 pre-tokens. */
export function preTokenize(text: string): string[] {
  return text.match(GPT2_SPLIT) ?? [];
}

/** Train byte-level BPE merges on a list of documents. */
export function trainBpe(docs: string[], opts: BpeOptions): BpeResult {
  const t0 = performance.now();
  const specials = opts.specials ?? DEFAULT_SPECIALS;
  const base = specials.length + 256;
  if (!Number.isInteger(opts.vocabSize) || opts.vocabSize < base) throw new HeedError(`vocabulary size ${opts.vocabSize} is below ${base} (the ${specials.length} specials + 256 bytes)`, `pass --vocab ${Math.max(base, 2048)}`);
  if (opts.vocabSize > 65535) throw new HeedError(`vocabulary size ${opts.vocabSize} is too large for this trainer (max 65535)`, 'pass --vocab 4096 or so');
  const minFreq = opts.minFrequency ?? 2;
  const byteChar = bytesToUnicode();
  const enc = new TextEncoder();

  // 1. count distinct pre-tokens
  const freq = new Map<string, number>();
  let bytes = 0;
  let pieces = 0;
  for (const d of docs) {
    for (const piece of preTokenize(d)) {
      freq.set(piece, (freq.get(piece) ?? 0) + 1);
      pieces++;
    }
    bytes += enc.encode(d).length;
  }
  // symbol table: id → token string (bytes first)
  const sym: string[] = [...byteChar];
  const symId = new Map<string, number>(sym.map((s, i) => [s, i]));
  const words: Uint16Array[] = [];
  const counts: number[] = [];
  // sort distinct pieces so the word order (and everything after) does not depend on Map insertion details
  for (const piece of [...freq.keys()].sort()) {
    const b = enc.encode(piece);
    words.push(Uint16Array.from(b));
    counts.push(freq.get(piece)!);
  }

  // 2. pair counts and pair → words index
  const K = 65536;
  const pairCount = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  const addWord = (wi: number, sign: 1 | -1) => {
    const w = words[wi];
    const c = counts[wi] * sign;
    for (let i = 0; i + 1 < w.length; i++) {
      const key = w[i] * K + w[i + 1];
      const n = (pairCount.get(key) ?? 0) + c;
      if (n === 0) pairCount.delete(key);
      else pairCount.set(key, n);
      if (sign > 0) {
        let s = where.get(key);
        if (!s) where.set(key, (s = new Set()));
        s.add(wi);
      }
    }
  };
  for (let wi = 0; wi < words.length; wi++) addWord(wi, 1);

  // 3. greedy merges
  const merges: Array<[string, string]> = [];
  const vocab = new Set<string>([...specials, ...sym]);
  let stoppedEarly = false;
  while (vocab.size < opts.vocabSize) {
    let best = -1;
    let bestN = 0;
    for (const [key, n] of pairCount) {
      if (n > bestN) {
        best = key;
        bestN = n;
      } else if (n === bestN && best >= 0) {
        // deterministic tie-break on the token strings
        const a = sym[Math.floor(key / K)], b = sym[key % K];
        const a0 = sym[Math.floor(best / K)], b0 = sym[best % K];
        if (a < a0 || (a === a0 && b < b0)) best = key;
      }
    }
    if (best < 0 || bestN < minFreq) {
      stoppedEarly = true;
      break;
    }
    const A = Math.floor(best / K), B = best % K;
    const merged = sym[A] + sym[B];
    let id = symId.get(merged);
    if (id === undefined) {
      id = sym.length;
      sym.push(merged);
      symId.set(merged, id);
    }
    merges.push([sym[A], sym[B]]);
    vocab.add(merged);
    const affected = [...(where.get(best) ?? [])];
    where.delete(best);
    for (const wi of affected) {
      const w = words[wi];
      addWord(wi, -1);
      const out: number[] = [];
      for (let i = 0; i < w.length; i++) {
        if (i + 1 < w.length && w[i] === A && w[i + 1] === B) {
          out.push(id);
          i++;
        } else out.push(w[i]);
      }
      words[wi] = Uint16Array.from(out);
      addWord(wi, 1);
    }
    pairCount.delete(best);
  }
  return {
    merges,
    specials,
    vocabSize: vocab.size,
    stats: { documents: docs.length, bytes, pieces, distinctPieces: words.length, merges: merges.length, seconds: (performance.now() - t0) / 1000, stoppedEarly },
  };
}

/** The tokenizer.json of a trained BPE. */
export function bpeTokenizerJson(r: Pick<BpeResult, 'merges' | 'specials'>): Record<string, unknown> {
  return byteLevelTokenizerJson({ specials: r.specials, merges: r.merges });
}
