/**
 * The comparison tables of docs/ifs.md "A nonlinear head and style features": the pair classifier of each
 * variant measured by scripts/ifs-mlp.ts (its JSON outputs), against the committed report, per fold, with
 * 95 % Wilson intervals; writes them (and every variant's full fold report) to docs/ifs-mlp.json.
 *   BASE=old-eval.json BASE_NAME=name DETAIL=variant,variant node --import tsx scripts/ifs-mlp-table.ts OUT.json RESULT.json ...
 * (the JSON keeps the full pair report of the DETAIL variants, accuracy and per-type rates of the others)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { DEFAULT_EVAL_PATH } from '../src/eval/ifs/classifier.js';
import type { FoldReport, ModelReport } from '../src/eval/ifs/heldout.js';
import { NEGATIVE_TYPES } from '../src/eval/ifs/pairs.js';
import type { Ratio } from '../src/eval/ifs/score.js';

const [out, ...files] = process.argv.slice(2);
// BASE: the report of the linear pair classifier shipped before (default: the committed report)
const base = (JSON.parse(readFileSync(process.env.BASE ?? DEFAULT_EVAL_PATH, 'utf8')) as { folds: FoldReport[] }).folds;
const baseName = process.env.BASE_NAME ?? 'shipped';
const results = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as { variant: string; fold: number; seconds: number; report: FoldReport });
const f3 = (x: number) => x.toFixed(3);
const fr = (r: Ratio | undefined) => (r ? `${f3(r.value)} [${f3(r.ci[0])}, ${f3(r.ci[1])}]` : '–');
const rows: Array<[string, (m: ModelReport) => Ratio | undefined]> = [
  ['accuracy', (m) => m.accuracy],
  ['recall (answers)', (m) => m.recall],
  ...NEGATIVE_TYPES.map((t) => [`false-answer ${t}`, (m: ModelReport) => m.false_answer_by_type[t]] as [string, (m: ModelReport) => Ratio | undefined]),
  ...['space', 'newline', 'blank'].map((j) => [`false-answer, join ${j}`, (m: ModelReport) => m.false_answer_by_join[j]] as [string, (m: ModelReport) => Ratio | undefined]),
  ...['prose', 'clarify', 'synth:fence', 'synth:lower', 'synth:short'].map((s) => [`recall, shape ${s}`, (m: ModelReport) => m.recall_by_shape[s]] as [string, (m: ModelReport) => Ratio | undefined]),
  ['flip rate, lower', (m) => m.flip_by_perturbation.lower?.all],
  ['flip rate, trunc100', (m) => m.flip_by_perturbation.trunc100?.all],
  ['noise set (share rejected)', (m) => m.noise_accuracy],
];
// every variant's accuracy on both folds, then the detail tables of the variants named in DETAIL (comma list)
const names = [...new Set(results.map((r) => r.variant))];
const detail = new Set((process.env.DETAIL ?? names.join(',')).split(','));
const md: string[] = ['| pair classifier | ' + base.map((b) => b.fold).join(' | ') + ' |', '|---|---|---|'];
md.push(`| ${baseName} | ${base.map((b) => fr(b.pair.accuracy)).join(' | ')} |`);
for (const n of names) md.push(`| ${n} | ${[0, 1].map((f) => fr(results.find((r) => r.variant === n && r.fold === f)?.report.pair.accuracy)).join(' | ')} |`);
md.push('');
for (const fold of [0, 1]) {
  const rs = results.filter((r) => r.fold === fold && detail.has(r.variant));
  if (!rs.length) continue;
  md.push(`**${base[fold].fold}** — pair classifier (IFS-pair)`, '');
  md.push(`| measure | ${baseName} | ${rs.map((r) => r.variant).join(' | ')} |`, `|---|---|${rs.map(() => '---').join('|')}|`);
  for (const [name, get] of rows) md.push(`| ${name} | ${fr(get(base[fold].pair))} | ${rs.map((r) => fr(get(r.report.pair))).join(' | ')} |`);
  md.push('');
}
console.log(md.join('\n'));
writeFileSync(out, JSON.stringify({ note: 'pair classifier variants of scripts/ifs-mlp.ts on the held-out folds of src/eval/ifs/heldout.ts (seed 0, F16 round trip); the response classifier is unchanged in every variant', results: results.map((r) => ({ variant: r.variant, fold: base[r.fold].fold, seconds: Math.round(r.seconds), pair: detail.has(r.variant) ? r.report.pair : { accuracy: r.report.pair.accuracy, recall: r.report.pair.recall, false_answer_by_type: r.report.pair.false_answer_by_type } })) }, null, 1) + '\n');
