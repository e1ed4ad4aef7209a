/**
 * `heed data stats`: what a data file becomes under a template and a mask (docs/data.md, "Stats").
 * Token counts per role are over all good rows before truncation (a property of the data and the
 * template); the "kept" numbers are what training sees after truncation.
 */
import { streamDataset, newReport, type DatasetOptions } from './dataset.js';
import type { DataPipeline } from './pipeline.js';
import { KIND } from './types.js';

export interface DataStats {
  file: string;
  fileKind: string | null;
  shape: string | null;
  /** the named format (sharegpt, openai, …; given or detected) */
  format: string | null;
  template: string;
  mask: string;
  maxLength: number | null;
  truncation: string;
  rows: { read: number; good: number; bad: number; kept: number; truncated: number; dropped: number; vanished: number; blankLines: number; boundarySplits: number };
  tokens: { total: number; marker: number; system: number; user: number; assistant: number; end: number; perRow: { mean: number; median: number; p95: number; max: number } };
  /** loss-bearing tokens (weight > 0) and their total weight, before and after truncation */
  loss: { tokens: number; weight: number; keptTokens: number; keptWeight: number };
  kept: { rows: number; tokens: number };
  ratio: { meanInstruction: number; meanOutput: number; ratio: number; reading: string };
  longest: Array<{ id: string; line: number; tokens: number }>;
  droppedIds: string[];
  vanishedIds: string[];
  badRows: { policy: string; count: number; byReason: Record<string, number>; first: Array<{ line: number; id?: string; reason: string; message: string }> };
}

/**
 * How to read the instruction/output ratio (heuristic from the Instruction Modelling paper, arXiv 2405.14394:
 * IM helps most when instructions are long relative to outputs, or when there are few training rows).
 */
export function imReading(ratio: number, rows: number): string {
  if (!Number.isFinite(ratio)) return 'no output tokens: nothing to compare';
  if (ratio >= 1) return 'high ratio (instructions at least as long as outputs): IM (--mask instruction) likely helps';
  if (rows <= 10000) return `low ratio but small data (${rows} rows ≤ 10k): IM likely helps (the paper's small-data regime)`;
  if (ratio >= 0.5) return 'moderate ratio, large data: IM may help a little; compare IT and IM';
  return 'low ratio and large data (long outputs, many rows): IM unlikely to beat IT';
}

const pct = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : 0);

export async function computeStats(path: string, pipeline: DataPipeline, opts: DatasetOptions & { longest?: number; listIds?: number } = {}): Promise<DataStats> {
  const report = newReport(path, opts.onBadRow, opts.hints);
  const nLongest = opts.longest ?? 5;
  const listIds = opts.listIds ?? 50;
  const t = { total: 0, marker: 0, system: 0, user: 0, assistant: 0, end: 0 };
  const loss = { tokens: 0, weight: 0, keptTokens: 0, keptWeight: 0 };
  const lengths: number[] = [];
  let longest: Array<{ id: string; line: number; tokens: number }> = [];
  let instr = 0;
  let outp = 0;
  let keptRows = 0;
  let keptTokens = 0;
  let splits = 0;
  for await (const it of streamDataset(path, pipeline, opts, report)) {
    const ex = it.prepared.example;
    const n = ex.ids.length;
    lengths.push(n);
    t.total += n;
    for (let i = 0; i < n; i++) {
      const k = ex.kinds[i];
      if (k === KIND.marker) t.marker++;
      else if (k === KIND.system) t.system++;
      else if (k === KIND.user) t.user++;
      else if (k === KIND.assistant) t.assistant++;
      else t.end++;
      if (ex.weights[i] > 0) {
        loss.tokens++;
        loss.weight += ex.weights[i];
      }
    }
    if (pipeline.boundarySplit(it.prepared)) splits++;
    if (longest.length < nLongest || n > longest[longest.length - 1].tokens) {
      longest.push({ id: ex.id, line: ex.line, tokens: n });
      longest = longest.sort((a, b) => b.tokens - a.tokens).slice(0, nLongest);
    }
    if (it.example) {
      keptRows++;
      keptTokens += it.example.ids.length;
      for (const w of it.example.weights) {
        if (w > 0) {
          loss.keptTokens++;
          loss.keptWeight += w;
        }
      }
    }
  }
  // instruction = user content (+ system content when the mask includes it), output = assistant content
  instr = t.user + (pipeline.mask.includeSystem ? t.system : 0);
  outp = t.assistant;
  const good = lengths.length;
  const sorted = lengths.slice().sort((a, b) => a - b);
  const meanInstruction = good ? instr / good : 0;
  const meanOutput = good ? outp / good : 0;
  const ratio = meanOutput > 0 ? meanInstruction / meanOutput : Number.POSITIVE_INFINITY;
  const tr = report.truncation;
  return {
    file: path,
    fileKind: report.load.kind ?? null,
    shape: report.load.shape ?? null,
    format: report.load.format ?? report.load.shape ?? null,
    template: pipeline.template.name,
    mask: pipeline.maskName,
    maxLength: opts.maxLength ?? null,
    truncation: opts.maxLength ? (opts.truncation ?? 'truncate-right') : 'none',
    rows: { read: report.load.rows, good, bad: report.bad.count, kept: keptRows, truncated: tr.truncated, dropped: tr.dropped.length, vanished: tr.vanished.length, blankLines: report.load.blankLines, boundarySplits: splits },
    tokens: { ...t, perRow: { mean: good ? t.total / good : 0, median: pct(sorted, 0.5), p95: pct(sorted, 0.95), max: sorted[sorted.length - 1] ?? 0 } },
    loss,
    kept: { rows: keptRows, tokens: keptTokens },
    ratio: {
      meanInstruction,
      meanOutput,
      ratio,
      reading: pipeline.mask.policy === 'response-only' ? 'response-only renders no instruction, so the ratio is 0 by construction (use --mask output for the data set\'s ratio)' : imReading(ratio, good),
    },
    longest,
    droppedIds: tr.dropped.slice(0, listIds),
    vanishedIds: tr.vanished.slice(0, listIds),
    badRows: report.bad.toJSON() as DataStats['badRows'],
  };
}

const f = (n: number) => n.toLocaleString('en-US');
const f1 = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 1 });

export function formatStats(s: DataStats, model?: string): string {
  const L: string[] = [];
  const row = (k: string, v: string) => L.push(`${k.padEnd(11)}${v}`);
  row('data', `${s.file} (${s.fileKind ?? '?'}, ${s.format && s.format !== s.shape ? `${s.format} format, ` : ''}${s.shape ?? 'unknown'} shape)`);
  if (model) row('model', model);
  row('template', `${s.template}   mask: ${s.mask}`);
  const r = s.rows;
  row('rows', `${f(r.read)} read · ${f(r.good)} good · ${f(r.bad)} bad${s.badRows.policy === 'skip' ? ' (skipped)' : ''}${r.blankLines ? ` · ${f(r.blankLines)} blank lines` : ''}`);
  if (s.badRows.count) {
    row('', `skipped by reason: ${Object.entries(s.badRows.byReason).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    for (const b of s.badRows.first.slice(0, 5)) row('', `  line ${b.line}${b.id ? ` (${b.id})` : ''}: ${b.message}`);
    if (s.badRows.count > 5) row('', `  … and ${f(s.badRows.count - 5)} more`);
  }
  const t = s.tokens;
  row('tokens', `${f(t.total)} total: user ${f(t.user)} · assistant ${f(t.assistant)} · system ${f(t.system)} · template ${f(t.marker)} · end ${f(t.end)}`);
  row('per row', `mean ${f1(t.perRow.mean)} · median ${f(t.perRow.median)} · p95 ${f(t.perRow.p95)} · max ${f(t.perRow.max)}`);
  row('loss', `${f(s.loss.tokens)} loss-bearing tokens (Σ weight ${f1(s.loss.weight)}) = ${t.total ? ((100 * s.loss.tokens) / t.total).toFixed(1) : '0'}% of tokens`);
  row('ratio', `instruction/output = ${Number.isFinite(s.ratio.ratio) ? s.ratio.ratio.toFixed(3) : '∞'}  (mean ${f1(s.ratio.meanInstruction)} instruction tokens ÷ ${f1(s.ratio.meanOutput)} output tokens per row)`);
  row('', `reading: ${s.ratio.reading}`);
  row('longest', s.longest.map((x) => `${x.id} (line ${x.line}) ${f(x.tokens)}`).join(' · '));
  if (s.maxLength) {
    row('truncation', `--max-length ${s.maxLength} ${s.truncation}: ${f(r.truncated)} truncated · ${f(r.dropped)} dropped · ${f(r.vanished)} lost all loss-bearing tokens`);
    if (s.droppedIds.length) row('', `dropped: ${s.droppedIds.join(', ')}${r.dropped > s.droppedIds.length ? ', …' : ''}`);
    row('kept', `${f(s.kept.rows)} rows · ${f(s.kept.tokens)} tokens · ${f(s.loss.keptTokens)} loss-bearing (Σ weight ${f1(s.loss.keptWeight)})`);
  }
  if (s.vanishedIds.length) row('no loss', `rows with no loss-bearing token left (excluded): ${s.vanishedIds.join(', ')}${r.vanished > s.vanishedIds.length ? ', …' : ''}`);
  row('boundary', `${f(r.boundarySplits)} rows where a content boundary splits what whole-text tokenization would merge (docs/data.md)`);
  return L.join('\n');
}
