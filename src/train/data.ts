/**
 * Training data for a run: rows of each stage (file weights applied), a held-out eval set prepared with the
 * `output` mask (so held-out loss is comparable across mask policies), and the per-epoch order
 * (a seeded permutation of (seed, stage, epoch): the same config always sees the same batches, and a
 * resumed run continues at the same place).
 */
import { HeedError } from '../errors.js';
import type { HeedTokenizer } from '../io/tokenizer.js';
import { DataPipeline, lossWeight } from '../data/pipeline.js';
import { loadExamples, type DatasetReport } from '../data/dataset.js';
import { makeBatch, packExamples, single, type Batch, type Sequence } from '../data/pack.js';
import type { Example } from '../data/types.js';
import { mulberry32 } from '../models/random.js';
import type { ResolvedStage, TrainConfig } from './config.js';

export interface RunData {
  stages: Example[][];
  evalRows: Example[];
  reports: DatasetReport[];
  padId: number;
}

function hash01(s: string, seed: number): number {
  let h = 2166136261 ^ seed;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return ((h >>> 0) % 1_000_003) / 1_000_003;
}

export function permutation(n: number, seed: number): number[] {
  const r = mulberry32(seed);
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

export async function loadRunData(c: TrainConfig, stages: ResolvedStage[], tok: HeedTokenizer, log: (s: string) => void): Promise<RunData> {
  const common = { template: c.template, includeSystem: c.include_system, markerQuirk: c.im_marker_quirk };
  const trainPipe = new DataPipeline(tok, { ...common, mask: c.mask });
  const evalPipe = c.mask === 'output' ? trainPipe : new DataPipeline(tok, { ...common, mask: 'output', enc: trainPipe.enc, template: trainPipe.template });
  const dsOpts = { onBadRow: c.on_bad_row, maxLength: c.max_length, truncation: c.truncation, shape: c.format } as const;
  const reports: DatasetReport[] = [];
  const evalRows: Example[] = [];
  const split = c.eval && 'split' in c.eval ? c.eval.split : 0;
  const out: Example[][] = [];
  for (const [si, st] of stages.entries()) {
    const rows: Example[] = [];
    for (const d of st.data) {
      const { examples, report } = await loadExamples(d.path, trainPipe, dsOpts);
      reports.push(report);
      let kept = examples;
      if (split > 0) {
        const { examples: ev } = await loadExamples(d.path, evalPipe, dsOpts);
        const held = new Set(ev.filter((e) => hash01(e.id, c.seed) < split).map((e) => e.id));
        evalRows.push(...ev.filter((e) => held.has(e.id) && lossWeight(e) > 0));
        kept = examples.filter((e) => !held.has(e.id));
      }
      kept = kept.filter((e) => lossWeight(e) > 0);
      // file weight w: floor(w) copies of every row plus a seeded fraction (w - floor(w)) of them
      const whole = Math.floor(d.weight);
      for (let k = 0; k < whole; k++) rows.push(...kept);
      const frac = d.weight - whole;
      if (frac > 0) rows.push(...kept.filter((e) => hash01(`${e.id}#w`, c.seed + si) < frac));
      log(`data ${d.path}: ${examples.length} rows${split > 0 ? `, ${examples.length - kept.length} held out` : ''}, weight ${d.weight} → ${rows.length} training rows so far (stage ${st.name})`);
    }
    if (rows.length === 0) throw new HeedError(`stage "${st.name}" has no training rows with loss-bearing tokens`, 'check the data files, the mask policy and max_length');
    out.push(rows);
  }
  if (c.eval && 'file' in c.eval) {
    const { examples, report } = await loadExamples(c.eval.file, evalPipe, dsOpts);
    reports.push(report);
    evalRows.push(...examples.filter((e) => lossWeight(e) > 0));
  }
  const evalCapped = permutation(evalRows.length, c.seed + 7).slice(0, c.eval_max_rows).sort((a, b) => a - b).map((i) => evalRows[i]);
  const padId = tok.padId ?? tok.eosIds[0] ?? 0;
  return { stages: out, evalRows: evalCapped, reports, padId };
}

/** The sequences of one epoch, in order: a seeded permutation of rows, packed (sequentially) when asked. */
export function epochSequences(rows: Example[], c: TrainConfig, stage: number, epoch: number, padId: number): Sequence[] {
  const order = permutation(rows.length, c.seed * 1000003 + stage * 7919 + epoch);
  const permuted = order.map((i) => rows[i]);
  return c.packing ? packExamples(permuted, { seqLen: c.max_length, padId, strategy: 'sequential' }) : permuted.map(single);
}

/** Round T up to a multiple of 32 (≤ maxLen) so the jitted step compiles for few shapes. */
export function bucketBatch(b: Batch, maxLen: number, padId: number): Batch {
  const T = Math.min(Math.max(maxLen, b.T), Math.ceil(b.T / 32) * 32);
  if (T === b.T) return b;
  const grow = <A extends Int32Array | Float32Array>(src: A, fill: number, make: (n: number) => A): A => {
    const out = make(b.B * T).fill(fill) as A;
    for (let r = 0; r < b.B; r++) out.set(src.subarray(r * b.T, (r + 1) * b.T), r * T);
    return out;
  };
  return {
    ...b,
    T,
    ids: grow(b.ids, padId, (n) => new Int32Array(n)),
    weights: grow(b.weights, 0, (n) => new Float32Array(n)),
    positions: grow(b.positions, 0, (n) => new Int32Array(n)),
    segments: grow(b.segments, -1, (n) => new Int32Array(n)),
  };
}

export function microBatches(seqs: Sequence[], batchSize: number, padId: number, maxLen: number): Batch[] {
  const out: Batch[] = [];
  for (let i = 0; i < seqs.length; i += batchSize) out.push(bucketBatch(makeBatch(seqs.slice(i, i + batchSize), padId), maxLen, padId));
  return out;
}

/** Host-side loss weights for the chosen normalisation. token: Σw·nll/Σw over the optimizer step's batch;
 * sequence: each row (segment) weighs equally: w/(Σ_row w)/rows. Returns weights and the normaliser. */
export function normalisedWeights(batches: Batch[], mode: 'token' | 'sequence'): { weights: Float32Array[]; norm: number } {
  if (mode === 'token') return { weights: batches.map((b) => b.weights), norm: batches.reduce((a, b) => a + b.lossWeight, 0) };
  const rows: Array<{ b: number; idx: number[]; sum: number }> = [];
  for (const [bi, b] of batches.entries()) {
    const byRow = new Map<string, number[]>();
    for (let i = 0; i < b.B * b.T; i++) {
      if (b.segments[i] < 0 || b.weights[i] === 0) continue;
      const key = `${Math.floor(i / b.T)}:${b.segments[i]}`;
      (byRow.get(key) ?? byRow.set(key, []).get(key)!).push(i);
    }
    for (const idx of byRow.values()) rows.push({ b: bi, idx, sum: idx.reduce((a, i) => a + b.weights[i], 0) });
  }
  const weights = batches.map((b) => new Float32Array(b.weights.length));
  for (const r of rows) for (const i of r.idx) weights[r.b][i] = batches[r.b].weights[i] / r.sum;
  return { weights, norm: rows.length };
}
