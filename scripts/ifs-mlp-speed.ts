/**
 * Speed of the shipped pair classifier with its nonlinear head against the same classifier without the head
 * (its linear part) and the response classifier (issue 14 item 3: ≥ 200 responses/s on 2 cores), on
 * LIMA/Dolly/Alpaca responses cut to 300 characters with their instructions as prompts (as
 * bench/ifs-classifier-bench.ts), one thread, same run, best of three interleaved rounds.
 *   node --import tsx scripts/ifs-mlp-speed.ts [--n 3000] [--out F.json]
 */
import { cpus, loadavg } from 'node:os';
import { writeFileSync } from 'node:fs';
import { readSources, DEFAULT_TRAIN_FILES, loadIfsClassifier, loadIfsPairClassifier } from '../src/eval/ifs/classifier.js';
import { TextClassifier } from '../src/eval/text-classifier.js';

const arg = (k: string, d: number) => Number(process.argv[process.argv.indexOf(`--${k}`) + 1] || d) || d;
const n = arg('n', 3000);
const { rows } = readSources(DEFAULT_TRAIN_FILES);
const step = Math.max(1, Math.floor(rows.length / n));
const items = rows.filter((_, i) => i % step === 0).slice(0, n).map((r) => ({ prompt: r.instruction, text: r.response.slice(0, 300) }));
const resp = loadIfsClassifier();
const pair = loadIfsPairClassifier();
const linear = new TextClassifier(pair.w, pair.b, pair.cfg, pair.meta, pair.threshold, pair.gate);
const time = (f: (x: { prompt: string; text: string }) => number) => {
  let sink = 0;
  const t0 = performance.now();
  items.forEach((x) => (sink += f(x)));
  return (performance.now() - t0) / 1000 + sink * 0;
};
const fs: Array<(x: { prompt: string; text: string }) => number> = [(x) => resp.prob(x.text), (x) => linear.prob(x.text, x.prompt), (x) => pair.prob(x.text, x.prompt)];
fs.forEach(time); // warm-up
const best = [Infinity, Infinity, Infinity];
for (let round = 0; round < 3; round++) fs.forEach((f, i) => (best[i] = Math.min(best[i], time(f))));
const [tr, tl, tp] = best;
const out = {
  date: new Date().toISOString(), node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model, load_average: loadavg()[0], texts: items.length,
  head: pair.mlp ? { buckets: pair.mlp.buckets, hidden: pair.mlp.hidden, input: pair.mlp.input } : null,
  response_per_s: items.length / tr, pair_linear_per_s: items.length / tl, pair_shipped_per_s: items.length / tp,
  pair_shipped_vs_linear: tl / tp, pair_shipped_vs_response: tr / tp,
};
console.log(JSON.stringify(out, null, 2));
const o = process.argv.indexOf('--out');
if (o > 0) writeFileSync(process.argv[o + 1], JSON.stringify(out, null, 2) + '\n');
