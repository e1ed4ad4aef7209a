/**
 * Issue 14 item 3: a small transformer classifier against the hashed-feature models, on the same held-out
 * source folds (src/eval/ifs/heldout.ts: the same training rows, the same seeded test sample, the same test
 * examples). The encoder is models/base-dolly (Llama, 4 layers, d 192, its tokenizer), run by heed's engine
 * (src/models/hidden.ts: pooled hidden states); the heads are trained by the same engine trainer as the
 * feature models (src/eval/train-classifier.ts: jit + valueAndGrad + AdamW).
 *
 *   FOLD=0|1 N=6000 T=64 nice -n 10 node --import tsx scripts/ifs-transformer.ts
 *
 * N: training examples encoded (a seeded sample of the fold's training examples), T: tokens per text.
 * Encoded features are cached under $CACHE (default <os tmpdir>/heed-ifs-transformer). Prints one line per variant:
 * accuracy, false-answer rate per negative type, recall, on the fold's test examples.
 */
import { mkdirSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, loadavg, tmpdir } from 'node:os';
import { startEngine } from '../src/cli/common.js';
import { fromHost, jit, nn, np, toHost, tree, valueAndGrad, type Tensor } from '../src/engine/index.js';
import { adamw, chain, type OptState } from '../src/train/adamw.js';
import { loadModel } from '../src/models/load.js';
import { pooledHidden, poolInputs } from '../src/models/hidden.js';
import { invFreqFor } from '../src/models/run.js';
import { trainingSets, trainIfsModels, FOLDS, MAX_TEST_ROWS, responseFeatures } from '../src/eval/ifs/heldout.js';
import { pairExamples, NEGATIVE_TYPES, type PairExample } from '../src/eval/ifs/pairs.js';
import { readModelNegatives } from '../src/eval/ifs/negatives.js';
import { buildDict, readSources, DEFAULT_TRAIN_FILES, IFS_LABELS } from '../src/eval/ifs/classifier.js';
import { trainClassifier, DEFAULT_TRAIN } from '../src/eval/train-classifier.js';
import { concatFeatures, featurize, type FeatureConfig, type Features } from '../src/eval/text-classifier.js';
import { Prng } from '../src/data/prng.js';

const FOLD = Number(process.env.FOLD ?? 0);
const N = Number(process.env.N ?? 6000);
const T = Number(process.env.T ?? 64);
const LAYERS = [2, 4];
const CACHE = process.env.CACHE ?? join(tmpdir(), 'heed-ifs-transformer');
mkdirSync(CACHE, { recursive: true });
const seed = 0;
const log = (s: string) => console.error(s);

await startEngine('wasm');
const { rows } = readSources(DEFAULT_TRAIN_FILES);
const fold = FOLDS[FOLD];
// exactly evaluateFold's split and test sample
const trainRows = rows.filter((r) => !fold.test(r.dataset));
const r = new Prng(seed ^ 0xc2b2ae35);
const testPool = rows.filter((x) => fold.test(x.dataset));
const testRows = (testPool.length <= MAX_TEST_ROWS ? testPool : r.shuffle([...testPool]).slice(0, MAX_TEST_ROWS)).sort((a, b) => rows.indexOf(a) - rows.indexOf(b));
const test: PairExample[] = pairExamples(testRows, seed, { mode: 'test', templates: 'test' });
const ids = new Set(trainRows.map((x) => x.id));
const { main } = trainingSets(trainRows, seed, 'train', readModelNegatives().filter((m) => ids.has(m.source_id)));
const sub = new Prng(7).shuffle(main.map((_, i) => i)).slice(0, N).sort((a, b) => a - b).map((i) => main[i]);
log(`[${fold.name}: train rows ${trainRows.length} (${main.length} examples, ${sub.length} encoded), test rows ${testRows.length} (${test.length} examples); T ${T}; ${cpus()[0].model}, load ${loadavg()[0].toFixed(1)}]`);

// --- the feature models (as shipped: full training set) -----------------------------------------------
const fmPath = join(CACHE, `fold${FOLD}-feature-probs.json`);
let fm: { resp: number[]; pair: number[]; gate: number[]; respSub: number[] };
if (existsSync(fmPath)) fm = JSON.parse(readFileSync(fmPath, 'utf8'));
else {
  const t0 = performance.now();
  const models = await trainIfsModels(trainRows, { seed, templates: 'train', log });
  fm = {
    resp: test.map((e) => models.response.mainProb(e.text)),
    pair: test.map((e) => models.pair.mainProb(e.text, e.prompt)),
    gate: test.map((e) => models.response.gateProb(e.text)),
    respSub: sub.map((e) => models.response.mainProb(e.text)),
  };
  writeFileSync(fmPath, JSON.stringify(fm));
  log(`[feature models trained in ${((performance.now() - t0) / 1000).toFixed(0)} s]`);
}

const meta = { labels: IFS_LABELS, task: 'x' };
const sig = (z: number) => 1 / (1 + Math.exp(-z));
const logit = (p: number) => Math.log(Math.max(p, 1e-7) / Math.max(1 - p, 1e-7));

function report(name: string, probs: number[]): void {
  let ok = 0, pos = 0, tp = 0;
  const fa: Record<string, [number, number]> = {};
  test.forEach((e, i) => {
    const y = probs[i] >= 0.5 ? 1 : 0;
    ok += y === e.label ? 1 : 0;
    if (e.label === 1) (pos++, (tp += y));
    else { const v = (fa[e.type] ??= [0, 0]); v[0] += y; v[1]++; }
  });
  const f = NEGATIVE_TYPES.map((k) => `${k} ${(fa[k][0] / fa[k][1]).toFixed(3)}`).join(', ');
  console.log(`${fold.name} | ${name.padEnd(44)} | accuracy ${(ok / test.length).toFixed(4)} | recall ${(tp / pos).toFixed(3)} | false-answer ${f}`);
}
const gated = (ps: number[]) => ps.map((p, i) => Math.min(p, fm.gate[i]));

// --- fine-tuning (MODE=finetune): the top TOP layers + final norm + a logistic head on L4 mean+last -------
if (process.env.MODE === 'finetune') {
  const TOP = Number(process.env.TOP ?? 2), LR = Number(process.env.LR ?? 5e-4), B = 32;
  const m0 = await loadModel('models/base-dolly');
  const c = m0.config;
  const L = c.layers;
  const trainable = (n: string) => n === 'model.norm.weight' || Array.from({ length: TOP }, (_, k) => `model.layers.${L - 1 - k}.`).some((pre) => n.startsWith(pre));
  let tp: Record<string, Tensor> = { head_w: np.zeros([2 * c.hidden, 1]), head_b: np.zeros([1]) };
  const frozen: Record<string, Tensor> = {};
  for (const [k, v] of Object.entries(m0.params)) (trainable(k) ? (tp[k] = v) : (frozen[k] = v));
  const opt = chain(adamw({ beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decayMask: () => false }));
  let st: OptState = opt.init(tp);
  const zOf = (p: Record<string, Tensor>, fz: Record<string, Tensor>, i: Tensor, pos: Tensor, seg: Tensor, sl: Tensor, pool: Tensor, inv: Tensor) => {
    const { head_w, head_b, ...rest } = p;
    const h = pooledHidden(c, { ...fz, ...rest }, { ids: i, positions: pos, seg, slots: sl, pool }, [L], inv); // [B, 2D]
    return np.matmul(h, head_w).reshape([-1]).add(head_b);
  };
  const lossFn = (p: Record<string, Tensor>, fz: Record<string, Tensor>, i: Tensor, pos: Tensor, seg: Tensor, sl: Tensor, pool: Tensor, inv: Tensor, y: Tensor) => {
    const z = zOf(p, fz, i, pos, seg, sl, pool, inv);
    return nn.softplus(z.ref).sub(y.mul(z)).mean();
  };
  const step = jit((p: Record<string, Tensor>, s: OptState, fz: Record<string, Tensor>, i: Tensor, pos: Tensor, seg: Tensor, sl: Tensor, pool: Tensor, inv: Tensor, y: Tensor, sc: Tensor) => {
    const [loss, g] = valueAndGrad(lossFn)(tree.ref(p), fz, i, pos, seg, sl, pool, inv, y);
    const u = opt.update(p, g as Record<string, Tensor>, s, sc);
    return { loss, p: u.params, state: u.state };
  });
  const order = new Prng(11).shuffle(sub.map((_, i) => i));
  const t0 = performance.now();
  let lossSum = 0;
  for (let s = 0, t = 1; s + B <= order.length; s += B, t++) {
    const batch = order.slice(s, s + B).map((k) => sub[k]);
    const inp = poolInputs(batch.map((e) => [0, ...m0.tokenizer.encode(e.text.trim())].slice(0, T)), T);
    const sc = opt.scalars({ lr: LR, count: t });
    const out = step(tp, st, tree.ref(frozen), inp.ids, inp.positions, inp.seg, inp.slots, inp.pool, invFreqFor(c), fromHost(Float32Array.from(batch, (e) => e.label), [B]), fromHost(sc, [sc.length])) as { loss: Tensor; p: Record<string, Tensor>; state: OptState };
    tp = out.p;
    st = out.state;
    lossSum += (await toHost(out.loss))[0];
    if (t % 20 === 0) { const el = (performance.now() - t0) / 1000; log(`[finetune step ${t}/${Math.floor(order.length / B)}: loss ${(lossSum / 20).toFixed(4)}, ${((t * B) / el).toFixed(1)} texts/s, ETA ${((order.length / B - t) * el / t).toFixed(0)} s]`); lossSum = 0; }
  }
  const ev = jit(zOf);
  const probs: number[] = [];
  const t1 = performance.now();
  for (let s = 0; s < test.length; s += 64) {
    const seqs = test.slice(s, s + 64).map((e) => [0, ...m0.tokenizer.encode(e.text.trim())].slice(0, T));
    const n = seqs.length;
    while (seqs.length < 64) seqs.push([0]);
    const inp = poolInputs(seqs, T);
    const z = await toHost(ev(tree.ref(tp), tree.ref(frozen), inp.ids, inp.positions, inp.seg, inp.slots, inp.pool, invFreqFor(c)) as Tensor);
    for (let k = 0; k < n; k++) probs.push(sig(z[k]));
    if ((s / 64) % 20 === 0) log(`[finetune test ${s + n}/${test.length}, ${((s + n) / ((performance.now() - t1) / 1000)).toFixed(1)} texts/s]`);
  }
  writeFileSync(join(CACHE, `fold${FOLD}-finetune-top${TOP}-T${T}-n${sub.length}.json`), JSON.stringify(probs));
  report(`fine-tuned top ${TOP} layers + head (N ${sub.length}, 1 epoch, lr ${LR})`, gated(probs));
  report(`ensemble: response feature model + fine-tuned`, gated(fm.resp.map((p, i) => sig((logit(p) + logit(probs[i])) / 2))));
  report(`ensemble: pair feature model + fine-tuned`, gated(fm.pair.map((p, i) => sig((logit(p) + logit(probs[i])) / 2))));
  for (const band of [0.2, 0.3]) {
    const share = fm.resp.filter((p) => p > band && p < 1 - band).length / fm.resp.length;
    report(`cascade resp [${band}, ${1 - band}] → fine-tuned (${(100 * share).toFixed(0)} %)`, gated(fm.resp.map((p, i) => (p > band && p < 1 - band ? probs[i] : p))));
  }
  process.exit(0);
}

// --- encoder features ---------------------------------------------------------------------------------
const model = await loadModel('models/base-dolly');
const enc = jit((p: Record<string, Tensor>, i: Tensor, pos: Tensor, seg: Tensor, sl: Tensor, pool: Tensor, inv: Tensor) => pooledHidden(model.config, p, { ids: i, positions: pos, seg, slots: sl, pool }, LAYERS, inv));
const D = LAYERS.length * 2 * model.config.hidden;
async function encode(texts: string[], name: string): Promise<Float32Array> {
  const path = join(CACHE, `fold${FOLD}-${name}-T${T}-n${texts.length}.f32`);
  if (existsSync(path)) return new Float32Array(readFileSync(path).buffer.slice(0));
  const B = 64;
  const out = new Float32Array(texts.length * D);
  const t0 = performance.now();
  for (let s = 0; s < texts.length; s += B) {
    const seqs = texts.slice(s, s + B).map((t) => [0, ...model.tokenizer.encode(t.trim())].slice(0, T));
    const n = seqs.length;
    while (seqs.length < B) seqs.push([0]);
    const i = poolInputs(seqs, T);
    const h = await toHost(enc(tree.ref(model.params), i.ids, i.positions, i.seg, i.slots, i.pool, invFreqFor(model.config)) as Tensor);
    out.set(h.subarray(0, n * D), s * D);
    const done = s + n, el = (performance.now() - t0) / 1000;
    if ((s / B) % 10 === 0 || done === texts.length) log(`[encode ${name}: ${done}/${texts.length}, ${(done / el).toFixed(1)} texts/s, ETA ${(((texts.length - done) * el) / done).toFixed(0)} s]`);
  }
  writeFileSync(path, out);
  return out;
}
const Xtr = await encode(sub.map((e) => e.text), 'train');
const Xte = await encode(test.map((e) => e.text), 'test');

// --- heads ----------------------------------------------------------------------------------------------
// dims: layer-major, then [mean, last], each `hidden` wide
const H = model.config.hidden;
const block = (layer: number, pool: 0 | 1) => { const li = LAYERS.indexOf(layer); const o = (li * 2 + pool) * H; return Array.from({ length: H }, (_, k) => o + k); };
const mu = new Float64Array(D), sd = new Float64Array(D);
for (let i = 0; i < sub.length; i++) for (let d = 0; d < D; d++) mu[d] += Xtr[i * D + d] / sub.length;
for (let i = 0; i < sub.length; i++) for (let d = 0; d < D; d++) sd[d] += (Xtr[i * D + d] - mu[d]) ** 2 / sub.length;
for (let d = 0; d < D; d++) sd[d] = Math.sqrt(sd[d]) || 1;
const dense = (X: Float32Array, i: number, dims: number[], offset = 0): Features => ({ idx: Int32Array.from(dims, (_, k) => offset + k), val: Float32Array.from(dims, (d) => (X[i * D + d] - mu[d]) / sd[d]) });
report('feature model, response (shipped recipe)', gated(fm.resp));
report('feature model, pair (shipped recipe)', gated(fm.pair));

const dimsets: Record<string, number[]> = {
  'L4 mean': block(4, 0),
  'L4 last': block(4, 1),
  'L4 mean+last': [...block(4, 0), ...block(4, 1)],
  'L2+L4 mean+last': [...block(2, 0), ...block(2, 1), ...block(4, 0), ...block(4, 1)],
};
const E = Number(process.env.EPOCHS ?? 10);
const encProbs: Record<string, number[]> = {};
for (const [name, dims] of Object.entries(dimsets)) {
  const cfg = { buckets: dims.length, maxFeatures: dims.length } as unknown as FeatureConfig;
  const m = await trainClassifier(sub, cfg, meta, { ...DEFAULT_TRAIN, epochs: E, lr: 0.003 }, sub.map((_, i) => dense(Xtr, i, dims)));
  const ps = test.map((_, i) => { const f = dense(Xte, i, dims); let z = m.b; for (let k = 0; k < f.idx.length; k++) z += m.w[f.idx[k]] * f.val[k]; return sig(z); });
  encProbs[name] = ps;
  report(`encoder ${name} + logistic head (N ${sub.length})`, gated(ps));
}
// hashed features alone and concatenated with the encoder features, trained on the same N examples
const rcfg = responseFeatures(buildDict(trainRows));
const fTr = sub.map((e) => featurize(e.text, rcfg));
const fTe = test.map((e) => featurize(e.text, rcfg));
const lin = (w: Float32Array, b: number, f: Features) => { let z = b; for (let k = 0; k < f.idx.length; k++) z += w[f.idx[k]] * f.val[k]; return sig(z); };
{
  const m = await trainClassifier(sub, rcfg, meta, DEFAULT_TRAIN, fTr);
  report(`hashed features alone (same N ${sub.length})`, gated(fTe.map((f) => lin(m.w, m.b, f))));
}
const best = dimsets['L2+L4 mean+last'];
{
  const cfg = { ...rcfg, buckets: rcfg.buckets + best.length, maxFeatures: rcfg.maxFeatures + best.length };
  const m = await trainClassifier(sub, cfg, meta, DEFAULT_TRAIN, fTr.map((f, i) => concatFeatures(f, dense(Xtr, i, best), rcfg.buckets)));
  report(`hashed + encoder L2+L4 concatenated (N ${sub.length})`, gated(fTe.map((f, i) => lin(m.w, m.b, concatFeatures(f, dense(Xte, i, best), rcfg.buckets)))));
}
// ensembles with the shipped-recipe feature model (trained on all training examples): mean log-odds, no tuning
for (const name of ['L4 mean+last', 'L2+L4 mean+last']) {
  const e = encProbs[name];
  report(`ensemble: response feature model + encoder ${name}`, gated(fm.resp.map((p, i) => sig((logit(p) + logit(e[i])) / 2))));
  report(`ensemble: pair feature model + encoder ${name}`, gated(fm.pair.map((p, i) => sig((logit(p) + logit(e[i])) / 2))));
  for (const band of [0.2, 0.3]) {
    const cas = fm.resp.map((p, i) => (p > band && p < 1 - band ? e[i] : p));
    const share = fm.resp.filter((p) => p > band && p < 1 - band).length / fm.resp.length;
    report(`cascade: resp decides outside [${band}, ${1 - band}] (${(100 * share).toFixed(0)} % to encoder ${name})`, gated(cas));
  }
}
