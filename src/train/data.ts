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
  /** what every stage of the data path removed, and why (printed, and written to summary.json) */
  drops: DropReport;
  /** the template the rows were rendered with: its name and its jinja form (saved as chat_template) */
  template: { name: string; jinja: string };
  /** the data format of the first file (given or detected) */
  format: string | null;
}

/** One data file of one stage: rows read → what each stage of the data path removed → training rows. */
export interface FileDrops {
  file: string;
  stage: string;
  /** rows seen in the file (good and bad; blank lines are counted apart) */
  rows_read: number;
  blank_lines: number;
  /** bad rows skipped (on_bad_row: skip), by reason */
  bad_rows_skipped: number;
  bad_by_reason: Record<string, number>;
  /** rows longer than max_length removed (truncation: drop) */
  dropped_too_long: number;
  /** rows with no loss-bearing token (none to begin with, or none left after truncation) */
  dropped_no_loss: number;
  /** rows shortened (truncate-right / truncate-left): kept, but changed */
  truncated: number;
  /** rows moved to the held-out eval set (not training rows, not lost) */
  held_out: number;
  /** rows that reached the weighting step */
  kept: number;
  weight: number;
  /** training rows this file contributes after its weight (copies + seeded fraction) */
  training_rows: number;
  /** example ids of dropped rows (the first 20) */
  dropped_ids: string[];
}

export interface DropReport {
  files: FileDrops[];
  /** eval rows removed: no loss-bearing token under the output mask, or beyond eval_max_rows */
  eval: { rows: number; dropped_no_loss: number; capped: number; used: number };
  rows_read: number;
  dropped: number;
  /** dropped / rows_read (rows_read = 0 → 0) */
  drop_share: number;
}

const dropsOf = (f: FileDrops) => f.bad_rows_skipped + f.dropped_too_long + f.dropped_no_loss;

/** The summary line of one file, e.g. "400 rows read, 251 dropped (251 longer than max_length 256), 12 held out". */
export function describeDrops(f: FileDrops, maxLength: number): string {
  const why: string[] = [];
  if (f.dropped_too_long) why.push(`${f.dropped_too_long} longer than max_length ${maxLength} (truncation: drop)`);
  if (f.dropped_no_loss) why.push(`${f.dropped_no_loss} with no loss-bearing token`);
  if (f.bad_rows_skipped) why.push(`${f.bad_rows_skipped} bad rows skipped (${Object.entries(f.bad_by_reason).map(([r, n]) => `${r} ${n}`).join(', ')})`);
  const d = dropsOf(f);
  return [`${f.rows_read} rows read`, `${d} dropped${why.length ? ` (${why.join(', ')})` : ''}`, ...(f.truncated ? [`${f.truncated} truncated`] : []), ...(f.held_out ? [`${f.held_out} held out`] : [])].join(', ');
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
  const evalPipe = c.mask === 'output' ? trainPipe : new DataPipeline(tok, { ...common, markerQuirk: false, mask: 'output', enc: trainPipe.enc, template: trainPipe.template }); // held-out loss: output tokens only (the IM marker quirk is a training-mask option)
  const dsOpts = { onBadRow: c.on_bad_row, maxLength: c.max_length, truncation: c.truncation, format: c.format, fields: c.fields, roles: c.roles, hints: 'config' } as const;
  const reports: DatasetReport[] = [];
  const evalRows: Example[] = [];
  const split = c.eval && 'split' in c.eval ? c.eval.split : 0;
  const out: Example[][] = [];
  const files: FileDrops[] = [];
  let evalNoLoss = 0;
  for (const [si, st] of stages.entries()) {
    const rows: Example[] = [];
    for (const d of st.data) {
      const { examples, report } = await loadExamples(d.path, trainPipe, dsOpts);
      reports.push(report);
      let kept = examples;
      let heldOut = 0;
      if (split > 0) {
        const { examples: ev } = await loadExamples(d.path, evalPipe, dsOpts);
        const held = new Set(ev.filter((e) => hash01(e.id, c.seed) < split).map((e) => e.id));
        for (const e of ev) if (held.has(e.id)) lossWeight(e) > 0 ? evalRows.push(e) : evalNoLoss++;
        kept = examples.filter((e) => !held.has(e.id));
        heldOut = examples.length - kept.length;
      }
      const noLoss = kept.filter((e) => !(lossWeight(e) > 0));
      kept = kept.filter((e) => lossWeight(e) > 0);
      // file weight w: floor(w) copies of every row plus a seeded fraction (w - floor(w)) of them
      const before = rows.length;
      const whole = Math.floor(d.weight);
      for (let k = 0; k < whole; k++) rows.push(...kept);
      const frac = d.weight - whole;
      if (frac > 0) rows.push(...kept.filter((e) => hash01(`${e.id}#w`, c.seed + si) < frac));
      const t = report.truncation;
      const f: FileDrops = {
        file: d.path,
        stage: st.name,
        rows_read: report.load.rows,
        blank_lines: report.load.blankLines,
        bad_rows_skipped: report.bad.count,
        bad_by_reason: { ...report.bad.byReason } as Record<string, number>,
        dropped_too_long: t.dropped.length,
        dropped_no_loss: t.vanished.length + noLoss.length,
        truncated: t.truncated,
        held_out: heldOut,
        kept: kept.length,
        weight: d.weight,
        training_rows: rows.length - before,
        dropped_ids: [...t.dropped, ...t.vanished, ...noLoss.map((e) => e.id), ...report.bad.first.map((b) => b.id ?? `line ${b.line}`)].slice(0, 20),
      };
      files.push(f);
      log(`data ${d.path}: ${describeDrops(f, c.max_length)}; ${f.kept} kept, weight ${d.weight} → ${f.training_rows} training rows (stage ${st.name})`);
    }
    if (rows.length === 0) throw new HeedError(`stage "${st.name}" has no training rows with loss-bearing tokens`, 'check the data files, the mask policy and max_length');
    out.push(rows);
  }
  if (c.eval && 'file' in c.eval) {
    const { examples, report } = await loadExamples(c.eval.file, evalPipe, dsOpts);
    reports.push(report);
    for (const e of examples) lossWeight(e) > 0 ? evalRows.push(e) : evalNoLoss++;
    evalNoLoss += report.truncation.dropped.length + report.truncation.vanished.length;
  }
  const evalCapped = permutation(evalRows.length, c.seed + 7).slice(0, c.eval_max_rows).sort((a, b) => a - b).map((i) => evalRows[i]);
  const rowsRead = files.reduce((a, f) => a + f.rows_read, 0);
  const dropped = files.reduce((a, f) => a + dropsOf(f), 0);
  const drops: DropReport = {
    files,
    eval: { rows: evalRows.length + evalNoLoss, dropped_no_loss: evalNoLoss, capped: evalRows.length - evalCapped.length, used: evalCapped.length },
    rows_read: rowsRead,
    dropped,
    drop_share: rowsRead ? dropped / rowsRead : 0,
  };
  if (drops.eval.capped || drops.eval.dropped_no_loss) log(`eval rows: ${drops.eval.used} used${drops.eval.capped ? `, ${drops.eval.capped} beyond eval_max_rows ${c.eval_max_rows}` : ''}${drops.eval.dropped_no_loss ? `, ${drops.eval.dropped_no_loss} dropped (too long or no loss-bearing token)` : ''}`);
  if (dropped) log(`dropped ${dropped} of ${rowsRead} rows (${(100 * drops.drop_share).toFixed(1)} %)${c.max_drop_share === null ? '' : `; max_drop_share ${c.max_drop_share}`}`);
  if (c.max_drop_share !== null && drops.drop_share > c.max_drop_share) {
    const worst = files.filter((f) => dropsOf(f) > 0).map((f) => `${f.file}: ${describeDrops(f, c.max_length)}`).join('; ');
    throw new HeedError(
      `${dropped} of ${rowsRead} training rows dropped (${(100 * drops.drop_share).toFixed(1)} % > max_drop_share ${c.max_drop_share}): ${worst}`,
      'raise max_length or use truncation: truncate-right, repair or remove the bad rows, or raise max_drop_share (--set max_drop_share=1 accepts any share)',
    );
  }
  const padId = tok.padId ?? tok.eosIds[0] ?? 0;
  return { stages: out, evalRows: evalCapped, reports, padId, drops, template: { name: trainPipe.template.name, jinja: trainPipe.template.jinja() }, format: reports[0]?.load.format ?? reports[0]?.load.shape ?? null };
}

/** The seed of the row order of (stage, epoch): one formula for the trainer and the PyTorch export. */
export const epochSeed = (seed: number, stage: number, epoch: number): number => seed * 1000003 + stage * 7919 + epoch;

/** The row order of (stage, epoch): a seeded permutation of the stage's rows. */
export const epochOrder = (nRows: number, seed: number, stage: number, epoch: number): number[] => permutation(nRows, epochSeed(seed, stage, epoch));

/** Where an optimizer step takes its micro-batches: [micro, end) of epoch `epoch`'s nMicro micro-batches. */
export interface StepSpan {
  epoch: number;
  micro: number;
  end: number;
  nMicro: number;
}

/**
 * The trainer's micro-batch cursor: the span of the step that starts at (epoch, micro). An exhausted epoch
 * moves to the next one; a step never spans two epochs (the last step of an epoch may have fewer than
 * grad_accum micro-batches). The next step starts at (span.epoch, span.end).
 */
export function stepSpan(at: { epoch: number; micro: number }, nMicroOf: (epoch: number) => number, gradAccum: number): StepSpan {
  let { epoch, micro } = at;
  let nMicro = nMicroOf(epoch);
  if (micro >= nMicro) {
    epoch++;
    micro = 0;
    nMicro = nMicroOf(epoch);
  }
  return { epoch, micro, end: Math.min(micro + gradAccum, nMicro), nMicro };
}

/** Optimizer steps of a stage: its `steps`, or `epochs` × the steps of its first epoch (nSeq0 sequences). */
export function plannedStageSteps(st: { steps?: number; epochs?: number }, nSeq0: number, batchSize: number, gradAccum: number): number {
  if (st.steps !== undefined) return st.steps;
  return Math.max(1, Math.round(st.epochs! * Math.ceil(Math.ceil(nSeq0 / batchSize) / gradAccum)));
}

/** The sequences of one epoch, in order: a seeded permutation of rows, packed (sequentially) when asked. */
export function epochSequences(rows: Example[], c: TrainConfig, stage: number, epoch: number, padId: number): Sequence[] {
  const order = epochOrder(rows.length, c.seed, stage, epoch);
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
