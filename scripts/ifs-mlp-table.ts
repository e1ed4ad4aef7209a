/**
 * The comparison tables of docs/ifs.md "A nonlinear head and style features": the pair classifier of each
 * variant measured by scripts/ifs-mlp.ts (its JSON outputs), against the committed report, per fold, with
 * 95 % Wilson intervals; writes them (and every variant's full fold report) to docs/ifs-mlp.json.
 *   node --import tsx scripts/ifs-mlp-table.ts OUT.json RESULT.json ...
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { DEFAULT_EVAL_PATH } from '../src/eval/ifs/classifier.js';
import type { FoldReport, ModelReport } from '../src/eval/ifs/heldout.js';
import { NEGATIVE_TYPES } from '../src/eval/ifs/pairs.js';
import type { Ratio } from '../src/eval/ifs/score.js';

const [out, ...files] = process.argv.slice(2);
const base = (JSON.parse(readFileSync(DEFAULT_EVAL_PATH, 'utf8')) as { folds: FoldReport[] }).folds;
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
const md: string[] = [];
for (const fold of [0, 1]) {
  const rs = results.filter((r) => r.fold === fold);
  if (!rs.length) continue;
  md.push(`**${base[fold].fold}** — pair classifier (IFS-pair); "shipped" = data/ifs/classifier-eval.json`, '');
  md.push(`| measure | shipped | ${rs.map((r) => r.variant).join(' | ')} |`, `|---|---|${rs.map(() => '---').join('|')}|`);
  for (const [name, get] of rows) md.push(`| ${name} | ${fr(get(base[fold].pair))} | ${rs.map((r) => fr(get(r.report.pair))).join(' | ')} |`);
  md.push('');
}
console.log(md.join('\n'));
writeFileSync(out, JSON.stringify({ note: 'pair classifier variants of scripts/ifs-mlp.ts on the held-out folds of src/eval/ifs/heldout.ts (seed 0, F16 round trip); the response classifier is unchanged in every variant', results: results.map((r) => ({ variant: r.variant, fold: base[r.fold].fold, seconds: Math.round(r.seconds), pair: r.report.pair })) }, null, 1) + '\n');
