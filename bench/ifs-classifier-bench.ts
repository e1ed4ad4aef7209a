/**
 * Speed of the IFS classifiers (host JavaScript, one thread): texts/s of the response classifier (IFS) and of
 * the pair classifier (IFS-pair, the prompt seen too), on LIMA/Dolly/Alpaca responses cut to 300 characters
 * (about 64 tokens, what `heed ifs` classifies) with their instructions as prompts; the reference measured in
 * the same run is the response classifier. Writes bench/results/ifs-classifier-bench.json.
 *   node --import tsx bench/ifs-classifier-bench.ts [--n 3000]
 */
import { cpus, loadavg } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSources, DEFAULT_TRAIN_FILES, loadIfsClassifier, loadIfsPairClassifier } from '../src/eval/ifs/classifier.js';
import { ROOT } from './common.js';

const n = Number(process.argv[process.argv.indexOf('--n') + 1] || 3000) || 3000;
const { rows } = readSources(DEFAULT_TRAIN_FILES);
const step = Math.max(1, Math.floor(rows.length / n));
const items = rows.filter((_, i) => i % step === 0).slice(0, n).map((r) => ({ prompt: r.instruction, text: r.response.slice(0, 300) }));
const resp = loadIfsClassifier();
const pair = loadIfsPairClassifier();
const time = (f: () => void) => {
  f(); // warm-up
  const t0 = performance.now();
  f();
  return (performance.now() - t0) / 1000;
};
let sink = 0;
const tr = time(() => items.forEach((x) => (sink += resp.prob(x.text))));
const tp = time(() => items.forEach((x) => (sink += pair.prob(x.text, x.prompt))));
const both = time(() => items.forEach((x) => (sink += resp.prob(x.text) + pair.prob(x.text, x.prompt))));
const out = {
  date: new Date().toISOString(), node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model, load_average: loadavg()[0],
  texts: items.length, mean_chars: items.reduce((a, x) => a + x.text.length, 0) / items.length,
  response_texts_per_s: items.length / tr, pair_texts_per_s: items.length / tp, both_per_s: items.length / both,
  pair_vs_response: tr / tp, both_vs_response: tr / both,
};
console.log(JSON.stringify(out, null, 2));
mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
writeFileSync(join(ROOT, 'bench/results/ifs-classifier-bench.json'), JSON.stringify(out, null, 2) + '\n');
void sink;
