/**
 * Markdown tables of scripts/ifs-augment.ts results against the committed report (data/ifs/classifier-eval.json),
 * one per fold and classifier, every measure a row, 95 % Wilson intervals; writes them with the runs to a JSON file.
 *
 *   node --import tsx scripts/ifs-augment-table.ts docs/ifs-augment.json runs/aug-*.json
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { DEFAULT_EVAL_PATH } from '../src/eval/ifs/classifier.js';
import type { FoldReport, ModelReport } from '../src/eval/ifs/heldout.js';
import type { Ratio } from '../src/eval/ifs/score.js';

const [outPath, ...files] = process.argv.slice(2).filter((a) => a !== '--full');
if (!outPath || !files.length) {
  console.error('usage: node --import tsx scripts/ifs-augment-table.ts OUT.json RUN.json...');
  process.exit(2);
}
const base = (JSON.parse(readFileSync(DEFAULT_EVAL_PATH, 'utf8')) as { folds: FoldReport[] }).folds;
const runs = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as { variant: string; augment: unknown; fold: number; seconds: number; cpu: string; load: number; report: FoldReport });
const cells = (m: ModelReport): Record<string, Ratio> => ({
  accuracy: m.accuracy, 'recall (answers)': m.recall,
  ...Object.fromEntries(Object.entries(m.false_answer_by_type).map(([k, v]) => [`false-answer ${k}`, v])),
  ...Object.fromEntries(Object.entries(m.false_answer_by_join).map(([k, v]) => [`false-answer, join ${k}`, v])),
  ...Object.fromEntries(Object.entries(m.false_answer_by_opening).map(([k, v]) => [`false-answer, opening ${k}`, v])),
  ...Object.fromEntries(Object.entries(m.recall_by_shape).filter(([, v]) => v.n >= 20).map(([k, v]) => [`recall, shape ${k}`, v])),
  ...Object.fromEntries(Object.entries(m.flip_by_perturbation).map(([k, v]) => [`flip rate, ${k}`, v.all])),
  'noise set (share rejected)': m.noise_accuracy,
});
const fr = (r: Ratio | undefined) => (r ? `${r.value.toFixed(3)} [${r.ci[0].toFixed(3)}, ${r.ci[1].toFixed(3)}]` : '–');
const out: string[] = [];
for (let fold = 0; fold < base.length; fold++) {
  const rs = runs.filter((r) => r.fold === fold);
  if (!rs.length) continue;
  for (const model of ['response', 'pair'] as const) {
    out.push(`**${base[fold].fold}** — ${model} classifier`, '');
    out.push(`| measure | shipped (no augmentation) | ${rs.map((r) => r.variant).join(' | ')} |`, `|---|---|${rs.map(() => '---|').join('')}`);
    const b = cells(base[fold][model]);
    const v = rs.map((r) => cells(r.report[model]));
    for (const k of Object.keys(b)) out.push(`| ${k} | ${fr(b[k])} | ${v.map((x) => fr(x[k])).join(' | ')} |`);
    out.push('');
  }
}
// compact: one row per (variant, classifier), the measures the issue names
const COLS: Array<[string, (m: ModelReport) => Ratio | undefined]> = [
  ['accuracy', (m) => m.accuracy], ['recall', (m) => m.recall],
  ['I,Ic', (m) => m.false_answer_by_type['I,Ic']], ['I,Ic+R', (m) => m.false_answer_by_type['I,Ic+R']], ['Ip,Ic', (m) => m.false_answer_by_type['Ip,Ic']], ['Ip,Ic+R', (m) => m.false_answer_by_type['Ip,Ic+R']], ['same line', (m) => m.false_answer_by_join.space],
  ['fence', (m) => (m.recall_by_shape.fence?.n ?? 0) >= 20 ? m.recall_by_shape.fence : m.recall_by_shape['synth:fence']], ['lyrics', (m) => m.recall_by_shape.lyrics], ['heading', (m) => m.recall_by_shape.heading], ['short', (m) => m.recall_by_shape.short], ['lower', (m) => m.recall_by_shape['synth:lower']], ['clarify', (m) => m.recall_by_shape.clarify],
  ['flip lower', (m) => m.flip_by_perturbation.lower.all], ['flip t100', (m) => m.flip_by_perturbation.trunc100.all], ['flip t200', (m) => m.flip_by_perturbation.trunc200.all], ['noise', (m) => m.noise_accuracy],
];
const compact: string[] = [];
for (let fold = 0; fold < base.length; fold++) {
  const rs = runs.filter((r) => r.fold === fold);
  if (!rs.length) continue;
  compact.push(`**${base[fold].fold}** (false-answer rates: lower is better; recalls, accuracy, noise: higher is better)`, '');
  compact.push(`| variant | classifier | ${COLS.map(([k]) => k).join(' | ')} |`, `|---|---|${COLS.map(() => '---|').join('')}`);
  for (const model of ['response', 'pair'] as const) {
    // a pair-only variant's response classifier is the shipped one (Augment.models 'pair'): its rows are left out
    const vs = rs.filter((r) => model === 'pair' || (r.augment as { models?: string }).models !== 'pair');
    for (const [name, rep] of [['shipped (none)', base[fold]] as const, ...vs.map((r) => [r.variant, r.report] as const)]) {
      compact.push(`| ${name} | ${model} | ${COLS.map(([, f]) => { const x = f(rep[model]); return x ? (x.n >= 20 ? x.value.toFixed(3) : `(${x.k}/${x.n})`) : '–'; }).join(' | ')} |`);
    }
  }
  compact.push('');
}
console.log(process.argv.includes('--full') ? out.join('\n') : compact.join('\n'));
// every measure of both classifiers with its interval, one run per line (the full fold reports stay in the run files)
const measures = (rep: FoldReport) => ({ response: cells(rep.response), pair: cells(rep.pair) });
const head = { what: 'issue 14: training augmentation variants (src/eval/ifs/heldout.ts Augment, scripts/ifs-augment.ts) on the held-out source folds; "shipped" = the committed report (data/ifs/classifier-eval.json); every measure a Wilson ratio {k, n, value, ci}', command: 'node --import tsx scripts/ifs-augment-table.ts docs/ifs-augment.json runs/aug-*.json' };
const lines = [
  ...base.map((b) => JSON.stringify({ variant: 'shipped', fold: b.fold, measures: measures(b) })),
  ...runs.map((r) => JSON.stringify({ variant: r.variant, augment: r.augment, fold: base[r.fold].fold, seconds: Math.round(r.seconds), cpu: r.cpu, load: Number(r.load.toFixed(1)), measures: measures(r.report) })),
];
writeFileSync(outPath, `{\n "what": ${JSON.stringify(head.what)},\n "command": ${JSON.stringify(head.command)},\n "runs": [\n  ${lines.join(',\n  ')}\n ]\n}\n`);
