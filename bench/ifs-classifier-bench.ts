/**
 * Speed of the IFS classifiers (host JavaScript, one thread): texts/s of the response classifier (IFS) and of
 * the pair classifier (IFS-pair, the prompt seen too), on LIMA/Dolly/Alpaca responses cut to 300 characters
 * (about 64 tokens, what `heed ifs` classifies) with their instructions as prompts; the reference measured in
 * the same run is the response classifier. Writes bench/results/ifs-classifier-bench.json.
 *   node --import tsx bench/ifs-classifier-bench.ts [--n 3000]
 * With --encoder it also times the transformer encoder of scripts/ifs-transformer.ts (models/base-dolly, first
 * 64 tokens, batches of 64, pooled hidden states of layers 2 and 4 on the engine, wasm, all threads) on the same
 * texts — the part a transformer classifier or a cascade would add — against the response classifier in the same
 * run, and writes bench/results/ifs-encoder-bench.json instead.
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
if (process.argv.includes('--encoder')) {
  const { startEngine } = await import('../src/cli/common.js');
  const { jit, toHost, tree } = await import('../src/engine/index.js');
  const { loadModel } = await import('../src/models/load.js');
  const { pooledHidden, poolInputs } = await import('../src/models/hidden.js');
  const { invFreqFor } = await import('../src/models/run.js');
  const info = await startEngine('wasm');
  const m = await loadModel(join(ROOT, 'models/base-dolly'));
  const enc = jit((p: any, i: any, pos: any, seg: any, sl: any, pool: any, inv: any) => pooledHidden(m.config, p, { ids: i, positions: pos, seg, slots: sl, pool }, [2, 4], inv));
  const T = 64, B = 64;
  const run = async (xs: typeof items) => {
    for (let s = 0; s < xs.length; s += B) {
      const seqs = xs.slice(s, s + B).map((x) => [0, ...m.tokenizer.encode(x.text.trim())].slice(0, T));
      while (seqs.length < B) seqs.push([0]);
      const i = poolInputs(seqs, T);
      await toHost(enc(tree.ref(m.params), i.ids, i.positions, i.seg, i.slots, i.pool, invFreqFor(m.config)) as any);
    }
  };
  const ne = Math.min(items.length, 1024);
  await run(items.slice(0, B)); // compile
  const t0 = performance.now();
  await run(items.slice(0, ne));
  const te = (performance.now() - t0) / 1000;
  const encOut = {
    date: new Date().toISOString(), node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model, load_average: loadavg()[0], threads: info.threads,
    texts: ne, tokens: T, batch: B, encoder_texts_per_s: ne / te, response_texts_per_s: items.length / tr, encoder_vs_response: items.length / tr / (ne / te),
    cascade_per_s: Object.fromEntries([0.05, 0.1, 0.2].map((share) => [share, 1 / (tr / items.length + share * (te / ne))])),
  };
  console.log(JSON.stringify(encOut, null, 2));
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench/results/ifs-encoder-bench.json'), JSON.stringify(encOut, null, 2) + '\n');
  process.exit(0);
}
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
