/**
 * Training of the hashed-feature logistic regression (text-classifier.ts) on the engine: mini-batches of
 * fixed shape [batch, maxFeatures] (padding has value 0 and example weight 0), mean binary cross-entropy
 * with logits, one jitted step = valueAndGrad + the project's optimizer core (src/train/adamw.ts: AdamW with
 * its f64 rounding of 1 − β, which the shipped classifiers were trained with). Deterministic for a seed (seeded
 * shuffles; the engine's kernels are deterministic on wasm).
 */
import { embedLookup, fromHost, jit, nn, np, toHost, tree, valueAndGrad, type Tensor } from '../engine/index.js';
import { adamw, chain, type OptState, type Tree } from '../train/adamw.js';
import { Prng } from '../data/prng.js';
import { featurize, TextClassifier, type ClassifierMeta, type FeatureConfig, type Features } from './text-classifier.js';

export interface TrainOptions {
  epochs: number;
  batch: number;
  lr: number;
  weightDecay: number;
  seed: number;
  /** called after each epoch with the mean training loss */
  onEpoch?: (epoch: number, loss: number) => void;
}

export const DEFAULT_TRAIN: TrainOptions = { epochs: 2, batch: 128, lr: 0.01, weightDecay: 0.0, seed: 0 };

/** `feats`: the examples' features when the caller has them already (must equal `featurize(text, cfg)`). */
export async function trainClassifier(examples: Array<{ text: string; label: number; weight?: number }>, cfg: FeatureConfig, meta: ClassifierMeta, o: TrainOptions = DEFAULT_TRAIN, feats?: Features[]): Promise<TextClassifier> {
  feats ??= examples.map((e) => featurize(e.text, cfg));
  const K = cfg.maxFeatures;
  const B = o.batch;
  const D = cfg.buckets;
  // l2 on w only (through weight decay), never on the bias
  const opt = chain(adamw({ beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: o.weightDecay, decayMask: (name) => name === 'w', f64Complements: true }));
  let p: Tree = { w: np.zeros([D, 1]), b: np.zeros([1]) };
  let st: OptState = opt.init(p);
  const lossFn = (params: Tree, idx: Tensor, val: Tensor, y: Tensor, wt: Tensor) => {
    const gathered = embedLookup(params.w, idx).reshape([B, K]); // [B, K]
    const z = gathered.mul(val).sum(1).add(params.b); // [B]
    // BCE with logits: softplus(z) - y z, weighted mean
    const l = nn.softplus(z.ref).sub(y.mul(z));
    return l.mul(wt.ref).sum().div(np.maximum(wt.sum(), 1));
  };
  const step = jit((params: Tree, state: OptState, idx: Tensor, val: Tensor, y: Tensor, wt: Tensor, s: Tensor) => {
    const [loss, g] = valueAndGrad(lossFn)(tree.ref(params), idx, val, y, wt);
    const up = opt.update(params, g as Tree, state, s);
    return { loss, p: up.params, state: up.state };
  });
  const rng = new Prng(o.seed);
  const order = examples.map((_, i) => i);
  let t = 0;
  for (let epoch = 1; epoch <= o.epochs; epoch++) {
    rng.shuffle(order);
    let lossSum = 0, nb = 0;
    for (let s = 0; s < order.length; s += B) {
      const idx = new Int32Array(B * K);
      const val = new Float32Array(B * K);
      const y = new Float32Array(B);
      const wt = new Float32Array(B);
      for (let r = 0; r < B && s + r < order.length; r++) {
        const e = order[s + r];
        const f = feats[e];
        idx.set(f.idx.subarray(0, K), r * K);
        val.set(f.val.subarray(0, K), r * K);
        y[r] = examples[e].label;
        wt[r] = examples[e].weight ?? 1;
      }
      t++;
      const sc = opt.scalars({ lr: o.lr, count: t });
      const out = step(p, st, fromHost(idx, [B, K]), fromHost(val, [B, K]), fromHost(y, [B]), fromHost(wt, [B]), fromHost(sc, [sc.length])) as { loss: Tensor; p: Tree; state: OptState };
      p = out.p;
      st = out.state;
      lossSum += (await toHost(out.loss))[0];
      nb++;
    }
    o.onEpoch?.(epoch, lossSum / nb);
  }
  const w = await toHost(p.w);
  const b = (await toHost(p.b))[0];
  tree.dispose(st);
  step.dispose?.();
  return new TextClassifier(w, b, cfg, meta);
}
