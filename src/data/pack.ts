/**
 * Packing and batching: plain arrays the model consumes (docs/data.md, "Packing and batches").
 *
 * A Sequence holds one or more rows laid end to end:
 *   ids[t]        token id
 *   weights[t]    loss weight of ids[t] AS A TARGET: the loss term computed from the logits at t-1
 *                 predicting ids[t]. weights is 0 at the first token of every row (nothing in the
 *                 row predicts it) and on padding, so the loss never crosses rows:
 *                   loss = Σ_t weights[t] · CE(logits[t-1], ids[t]) / Σ_t weights[t]
 *   positions[t]  position within its row: 0 at each row start (position ids reset per row)
 *   segments[t]   index of the row within the sequence (0, 1, ...); -1 on padding
 * Attention: token i may attend to token j iff segments[i] === segments[j] >= 0 and j <= i
 * (block-diagonal causal mask; blockCausalMask() builds it). With that mask and the position reset,
 * each row sees exactly what it would see alone, so the packed loss equals the unpacked loss over the
 * same rows (same normaliser Σ weights).
 */
import { HeedError } from '../errors.js';
import type { Example } from './types.js';

export interface Sequence {
  ids: Int32Array;
  weights: Float32Array;
  positions: Int32Array;
  segments: Int32Array;
  /** ids of the rows in this sequence, in segment order */
  rows: string[];
  /** tokens used by rows (the rest, up to ids.length, is padding) */
  length: number;
}

export type PackStrategy = 'best-fit-decreasing' | 'sequential';

/** An unpacked row as a sequence with one segment and no padding. */
export function single(ex: Example): Sequence {
  const n = ex.ids.length;
  const positions = new Int32Array(n);
  for (let t = 0; t < n; t++) positions[t] = t;
  const weights = ex.weights.slice();
  if (n) weights[0] = 0;
  return { ids: ex.ids.slice(), weights, positions, segments: new Int32Array(n), rows: [ex.id], length: n };
}

function build(group: Example[], seqLen: number, padId: number): Sequence {
  const ids = new Int32Array(seqLen).fill(padId);
  const weights = new Float32Array(seqLen);
  const positions = new Int32Array(seqLen);
  const segments = new Int32Array(seqLen).fill(-1);
  let o = 0;
  group.forEach((ex, s) => {
    const n = ex.ids.length;
    ids.set(ex.ids, o);
    weights.set(ex.weights, o);
    weights[o] = 0;
    for (let t = 0; t < n; t++) {
      positions[o + t] = t;
      segments[o + t] = s;
    }
    o += n;
  });
  return { ids, weights, positions, segments, rows: group.map((e) => e.id), length: o };
}

/**
 * Pack rows into sequences of exactly seqLen tokens (padded). `best-fit-decreasing` (default) places
 * rows longest first into the fullest sequence that still fits them; `sequential` keeps file order and
 * starts a new sequence when the next row does not fit. Both are deterministic.
 */
export function packExamples(examples: Example[], opts: { seqLen: number; padId: number; strategy?: PackStrategy }): Sequence[] {
  const { seqLen, padId } = opts;
  for (const ex of examples) {
    if (ex.ids.length > seqLen) throw new HeedError(`row ${ex.id} has ${ex.ids.length} tokens, more than the pack length ${seqLen}`, 'truncate rows to the pack length first (--max-length ≤ pack length)');
  }
  const groups: Example[][] = [];
  if ((opts.strategy ?? 'best-fit-decreasing') === 'sequential') {
    let cur: Example[] = [];
    let used = 0;
    for (const ex of examples) {
      if (used + ex.ids.length > seqLen && cur.length) {
        groups.push(cur);
        cur = [];
        used = 0;
      }
      cur.push(ex);
      used += ex.ids.length;
    }
    if (cur.length) groups.push(cur);
  } else {
    const order = examples.map((_, i) => i).sort((a, b) => examples[b].ids.length - examples[a].ids.length || a - b);
    // buckets[r]: packs with r tokens of room left (stack, most recent last)
    const buckets: number[][] = Array.from({ length: seqLen + 1 }, () => []);
    const room: number[] = [];
    for (const i of order) {
      const len = examples[i].ids.length;
      let r = len;
      while (r <= seqLen && buckets[r].length === 0) r++;
      let g: number;
      if (r > seqLen) {
        g = groups.length;
        groups.push([]);
        room.push(seqLen);
      } else {
        g = buckets[r].pop()!;
      }
      groups[g].push(examples[i]);
      room[g] -= len;
      buckets[room[g]].push(g);
    }
  }
  return groups.map((g) => build(g, seqLen, padId));
}

export interface Batch {
  /** rows × columns of the flattened arrays below (row-major) */
  B: number;
  T: number;
  ids: Int32Array;
  weights: Float32Array;
  positions: Int32Array;
  segments: Int32Array;
  /** row ids of each sequence */
  rows: string[][];
  /** Σ weights: the loss normaliser */
  lossWeight: number;
}

/** Stack sequences into one batch, right-padded to the longest. A batch whose total loss weight is 0 is an error. */
export function makeBatch(seqs: Sequence[], padId: number): Batch {
  if (seqs.length === 0) throw new HeedError('empty batch', 'this is a bug in the caller: a batch needs at least one sequence');
  const B = seqs.length;
  const T = Math.max(...seqs.map((s) => s.ids.length));
  const ids = new Int32Array(B * T).fill(padId);
  const weights = new Float32Array(B * T);
  const positions = new Int32Array(B * T);
  const segments = new Int32Array(B * T).fill(-1);
  let lossWeight = 0;
  seqs.forEach((s, b) => {
    ids.set(s.ids, b * T);
    weights.set(s.weights, b * T);
    positions.set(s.positions, b * T);
    segments.set(s.segments, b * T);
    for (const w of s.weights) lossWeight += w;
  });
  if (!(lossWeight > 0)) {
    throw new HeedError(`a batch has zero loss weight (rows: ${seqs.flatMap((s) => s.rows).slice(0, 10).join(', ')}): its loss would be 0/0`, 'check the mask policy and truncation (heed data stats lists rows whose loss-bearing tokens vanished)');
  }
  return { B, T, ids, weights, positions, segments, rows: seqs.map((s) => s.rows), lossWeight };
}

/** Consecutive batches of batchSize sequences (the last may be smaller). */
export function* batches(seqs: Sequence[], batchSize: number, padId: number): Generator<Batch> {
  for (let i = 0; i < seqs.length; i += batchSize) yield makeBatch(seqs.slice(i, i + batchSize), padId);
}

/** T×T attention mask of one sequence (1 = may attend): same segment, not padding, causal. */
export function blockCausalMask(segments: Int32Array): Uint8Array {
  const T = segments.length;
  const m = new Uint8Array(T * T);
  for (let i = 0; i < T; i++) {
    const s = segments[i];
    if (s < 0) continue;
    for (let j = i; j >= 0 && segments[j] === s; j--) m[i * T + j] = 1;
  }
  return m;
}

/** The pad id to use: the tokenizer's pad, else its first EOS, else 0. Padding never carries loss. */
export function defaultPadId(tok: { padId: number | undefined; eosIds: number[] }): number {
  return tok.padId ?? tok.eosIds[0] ?? 0;
}
