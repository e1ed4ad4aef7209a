/**
 * Speed of the pair classifier with and without an MLP head of the given shape (issue 14 item 3: ≥ 200
 * responses/s on 2 cores): the shipped pair classifier, and the same with a head of seeded random weights
 * (speed does not depend on the values), on LIMA/Dolly/Alpaca responses cut to 300 characters with their
 * instructions as prompts (as bench/ifs-classifier-bench.ts), one thread, same run, best of three interleaved rounds.
 *   node --import tsx scripts/ifs-mlp-speed.ts [--n 3000] [--buckets 16384] [--hidden 64] [--out F.json]
 */
import { cpus, loadavg } from 'node:os';
import { writeFileSync } from 'node:fs';
import { readSources, DEFAULT_TRAIN_FILES, loadIfsPairClassifier } from '../src/eval/ifs/classifier.js';
import { TextClassifier } from '../src/eval/text-classifier.js';
import { Prng } from '../src/data/prng.js';

const arg = (k: string, d: number) => Number(process.argv[process.argv.indexOf(`--${k}`) + 1] || d) || d;
const n = arg('n', 3000), buckets = arg('buckets', 1 << 14), hidden = arg('hidden', 64);
const { rows } = readSources(DEFAULT_TRAIN_FILES);
const step = Math.max(1, Math.floor(rows.length / n));
const items = rows.filter((_, i) => i % step === 0).slice(0, n).map((r) => ({ prompt: r.instruction, text: r.response.slice(0, 300) }));
const pair = loadIfsPairClassifier();
const r = new Prng(1);
const from = pair.cfg.buckets - pair.cfg.pair!.buckets;
const head = { buckets, hidden, input: 'engineered' as const, from, e: Float32Array.from({ length: buckets * hidden }, () => r.next() - 0.5), b1: new Float32Array(hidden), w2: Float32Array.from({ length: hidden }, () => r.next() - 0.5) };
const withHead = new TextClassifier(pair.w, pair.b, pair.cfg, pair.meta, pair.threshold, pair.gate, head);
const allHead = new TextClassifier(pair.w, pair.b, pair.cfg, pair.meta, pair.threshold, pair.gate, { ...head, input: 'all' });
const time = (c: TextClassifier) => {
  let sink = 0;
  items.forEach((x) => (sink += c.prob(x.text, x.prompt)));
  const t0 = performance.now();
  items.forEach((x) => (sink += c.prob(x.text, x.prompt)));
  return { s: (performance.now() - t0) / 1000, sink };
};
// three interleaved rounds, the best of each (the machine is shared)
const best = [Infinity, Infinity, Infinity];
for (let round = 0; round < 3; round++) [pair, withHead, allHead].forEach((m, i) => (best[i] = Math.min(best[i], time(m).s)));
const [a, b, c] = best.map((s) => ({ s }));
const out = {
  date: new Date().toISOString(), node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model, load_average: loadavg()[0], texts: items.length,
  head: { buckets, hidden },
  linear_pair_per_s: items.length / a.s, mlp_engineered_pair_per_s: items.length / b.s, mlp_all_pair_per_s: items.length / c.s,
  mlp_engineered_vs_linear: a.s / b.s, mlp_all_vs_linear: a.s / c.s,
};
console.log(JSON.stringify(out, null, 2));
const o = process.argv.indexOf('--out');
if (o > 0) writeFileSync(process.argv[o + 1], JSON.stringify(out, null, 2) + '\n');
