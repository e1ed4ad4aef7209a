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
import { gaussian } from '../models/random.js';
import { featurize, mlpIndex, mlpSees, TextClassifier, type ClassifierMeta, type FeatureConfig, type Features, type MlpHead } from './text-classifier.js';

export interface TrainOptions {
  epochs: number;
  batch: number;
  lr: number;
  weightDecay: number;
  seed: number;
  /** called after each epoch with the mean training loss */
  onEpoch?: (epoch: number, loss: number) => void;
  /**
   * Train a nonlinear head beside the linear weights (text-classifier.ts `MlpHead`): `buckets` rows (a power of
   * two) of `hidden` units, initialised from a seeded host PRNG (N(0, initScale²) for E, N(0, 1/hidden) for w2).
   */
  mlp?: {
    buckets: number;
    hidden: number;
    initScale?: number;
    input?: 'all' | 'engineered';
    weightDecay?: number;
    /**
     * The head's weights are trained as E/scale and w2/scale (E = scale·E_trained, stored so): with AdamW's
     * steps of about lr per weight, this runs the head at `scale`× the learning rate of the linear part.
     */
    scale?: number;
    /** at most this many head inputs per text (the first the head sees; text-classifier.ts `MlpHead.maxInputs`) */
    maxInputs?: number;
  };
}

export const DEFAULT_TRAIN: TrainOptions = { epochs: 2, batch: 128, lr: 0.01, weightDecay: 0.0, seed: 0 };

/** `feats`: the examples' features when the caller has them already (must equal `featurize(text, cfg)`). */
export async function trainClassifier(examples: Array<{ text: string; label: number; weight?: number }>, cfg: FeatureConfig, meta: ClassifierMeta, o: TrainOptions = DEFAULT_TRAIN, feats?: Features[]): Promise<TextClassifier> {
  feats ??= examples.map((e) => featurize(e.text, cfg));
  const K = cfg.maxFeatures;
  const B = o.batch;
  const D = cfg.buckets;
  // l2 on w only (through weight decay), never on the bias
  const M = o.mlp;
  // decoupled weight decay: on w (o.weightDecay), or on the head's matrices (M.weightDecay) — one rate per optimizer
  const mwd = M?.weightDecay ?? 0;
  if (mwd && o.weightDecay && mwd !== o.weightDecay) throw new Error('trainClassifier: weightDecay and mlp.weightDecay must agree when both are set');
  const decayMask = (name: string) => (name === 'w' && o.weightDecay > 0) || (mwd > 0 && (name === 'mlp_e' || name === 'mlp_w2')) || (name === 'w' && !mwd);
  const opt = chain(adamw({ beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: mwd || o.weightDecay, decayMask, f64Complements: true }));
  let p: Tree = { w: np.zeros([D, 1]), b: np.zeros([1]) };
  const head0 = M ? { input: M.input ?? 'all', from: cfg.pair ? cfg.buckets - cfg.pair.buckets : undefined } : undefined;
  const K2 = M ? Math.min(K, M.maxInputs ?? K) : 0;
  if (M) {
    const H = M.hidden;
    const r = new Prng((o.seed ^ 0x5bd1e995) >>> 0);
    const gauss = gaussian(() => r.next());
    const s0 = M.initScale ?? 0.1;
    const k = M.scale ?? 1;
    p.mlp_e = fromHost(Float32Array.from({ length: M.buckets * H }, () => (gauss() * s0) / k), [M.buckets, H]);
    p.mlp_b1 = np.zeros([H]);
    p.mlp_w2 = fromHost(Float32Array.from({ length: H }, () => gauss() / Math.sqrt(H) / k), [H]);
  }
  let st: OptState = opt.init(p);
  const lossFn = (params: Tree, idx: Tensor, val: Tensor, y: Tensor, wt: Tensor, didx?: Tensor, dval?: Tensor) => {
    const gathered = embedLookup(params.w, idx).reshape([B, K]); // [B, K]
    let z = gathered.mul(val).sum(1).add(params.b); // [B]
    if (M && didx && dval) {
      const k = M.scale ?? 1;
      const e = embedLookup(params.mlp_e, didx); // [B, K2, H]
      const h = nn.relu(e.mul(dval.reshape([B, K2, 1])).sum(1).mul(k).add(params.mlp_b1)); // [B, H]
      z = z.add(h.mul(params.mlp_w2).sum(1).mul(k));
    }
    // BCE with logits: softplus(z) - y z, weighted mean
    const l = nn.softplus(z.ref).sub(y.mul(z));
    return l.mul(wt.ref).sum().div(np.maximum(wt.sum(), 1));
  };
  const step = jit((params: Tree, state: OptState, idx: Tensor, val: Tensor, y: Tensor, wt: Tensor, s: Tensor) => {
    const [loss, g] = valueAndGrad(lossFn)(tree.ref(params), idx, val, y, wt);
    const up = opt.update(params, g as Tree, state, s);
    return { loss, p: up.params, state: up.state };
  });
  const stepMlp = jit((params: Tree, state: OptState, idx: Tensor, val: Tensor, y: Tensor, wt: Tensor, didx: Tensor, dval: Tensor, s: Tensor) => {
    const [loss, g] = valueAndGrad(lossFn)(tree.ref(params), idx, val, y, wt, didx, dval);
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
      let out: { loss: Tensor; p: Tree; state: OptState };
      if (M) {
        // the head's inputs, compacted: the first K2 entries it sees (padding: row 0, value 0)
        const didx = new Int32Array(B * K2);
        const dval = new Float32Array(B * K2);
        for (let r = 0; r < B && s + r < order.length; r++) {
          const f = feats[order[s + r]];
          let n = 0;
          for (let i = 0; i < Math.min(K, f.idx.length) && n < K2; i++) {
            if (!mlpSees(head0!, f, i)) continue;
            didx[r * K2 + n] = mlpIndex(f.idx[i], M.buckets);
            dval[r * K2 + n++] = f.val[i];
          }
        }
        out = stepMlp(p, st, fromHost(idx, [B, K]), fromHost(val, [B, K]), fromHost(y, [B]), fromHost(wt, [B]), fromHost(didx, [B, K2]), fromHost(dval, [B, K2]), fromHost(sc, [sc.length])) as typeof out;
      } else out = step(p, st, fromHost(idx, [B, K]), fromHost(val, [B, K]), fromHost(y, [B]), fromHost(wt, [B]), fromHost(sc, [sc.length])) as typeof out;
      p = out.p;
      st = out.state;
      lossSum += (await toHost(out.loss))[0];
      nb++;
    }
    o.onEpoch?.(epoch, lossSum / nb);
  }
  const w = await toHost(p.w);
  const b = (await toHost(p.b))[0];
  let head: MlpHead | undefined;
  if (M) {
    const k = Math.fround(M.scale ?? 1);
    const e = await toHost(p.mlp_e), w2 = await toHost(p.mlp_w2);
    if (k !== 1) for (const a of [e, w2]) for (let i = 0; i < a.length; i++) a[i] *= k;
    head = { buckets: M.buckets, hidden: M.hidden, ...(head0!.input === 'engineered' ? { input: 'engineered' as const, ...(head0!.from !== undefined ? { from: head0!.from } : {}) } : {}), ...(K2 < K ? { maxInputs: K2 } : {}), e, b1: await toHost(p.mlp_b1), w2 };
  }
  tree.dispose(st);
  step.dispose?.();
  stepMlp.dispose?.();
  return new TextClassifier(w, b, cfg, meta, 0.5, undefined, head);
}
