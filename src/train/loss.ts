/**
 * Weighted next-token cross-entropy.
 * Batch layout: ids [B,T]; weights [B,T] where weights[b,t] is the loss weight of predicting ids[b,t] from
 * the tokens before it (weights[b,0] must be 0). Loss = Σ w·nll / Σ w — normalised by the loss-bearing
 * weight of the batch (so a batch's loss is a per-token mean over the tokens that carry loss).
 */
import { lax, np, nn, type Tensor } from '../engine/index.js';
import type { ModelConfig } from '../models/config.js';
import { forward, type ForwardInputs, type ForwardOptions, type Params } from '../models/transformer.js';

export interface TrainBatch {
  ids: Tensor; // [B,T] int32
  targets: Tensor; // [B,T] int32: ids shifted left by one (last position: any id, weight 0)
  weights: Tensor; // [B,T] float32: weight of the prediction made at position t (i.e. of target t)
  positions: Tensor; // [B,T] int32
  segments: Tensor; // [B,T] int32 (-1 padding)
  slots: Tensor; // [T] int32 (0..T-1)
}

/** Per-position negative log-likelihood [B,T] of the targets. */
export function tokenNll(c: ModelConfig, p: Params, b: Omit<TrainBatch, 'weights'>, invFreq?: Tensor, extra: Pick<ForwardOptions, 'loraScale' | 'loraDropoutMasks'> = {}): Tensor {
  const inp: ForwardInputs = { ids: b.ids, positions: b.positions, qSeg: b.segments.ref, kSeg: b.segments, qSlot: b.slots.ref, kSlot: b.slots };
  const { logits } = forward(c, p, inp, { invFreq, ...extra });
  return nllFromLogits(logits, b.targets);
}

/** Per-position negative log-likelihood [B,T] of `targets` [B,T] under `logits` [B,T,V]. Consumes both. */
export function nllFromLogits(logits: Tensor, targets: Tensor): Tensor {
  const [B, T] = targets.shape;
  const V = logits.shape[2];
  // nll = logsumexp(logits) − logits[target], written so that its gradient with respect to the logits is a
  // buffer computed in the forward pass: d = softmax(logits) − onehot(target) (stop-gradient), and
  // nll = sg(lse − picked) + Σ_v d·(logits − sg(logits)) — the same value (the second term is exactly 0) and
  // the same gradient. Why: autodiff of logsumexp / take would leave the cotangent as a chain of elementwise
  // ops that jax-js fuses into the LM head's backward matmuls, which then run without their tiled path (the
  // input-gradient matmul took 38 s of a 39 s SmolLM2-shape LoRA step at 1x256; with this form the head's
  // forward + backward costs about what the bare matmuls do). The one-hot is a comparison against a
  // broadcast iota, never nn.oneHot (jax-js builds that from a V×V identity: 9.7 GB at V = 49,152).
  const lse = nn.logsumexp(logits.ref, -1, { keepdims: true });
  const iota = np.arange(V, undefined, undefined, { dtype: np.int32 }).reshape([1, 1, V]);
  const tgt = targets.reshape([B, T, 1]);
  const d = lax.stopGradient(np.exp(logits.ref.sub(lse.ref)).sub(np.equal(tgt.ref, iota).astype(logits.dtype)));
  // the gathered values are multiplied by a constant ones-vector so that the cotangent reaching the gather's
  // transpose (a scatter) is materialised under jit (it is zero here, but jit still builds the scatter)
  const picked = np.takeAlongAxis(logits.ref, tgt, -1).mul(np.ones([1], { dtype: np.float32 }));
  const value = lax.stopGradient(lse.sub(picked)).reshape([B, T]);
  return value.add(d.mul(logits.ref.sub(lax.stopGradient(logits))).sum(-1));
}

/** Σ w·nll / Σ w (a scalar). The caller guarantees Σ w > 0 (data stage refuses all-zero batches). */
export function weightedLoss(c: ModelConfig, p: Params, b: TrainBatch, invFreq?: Tensor): Tensor {
  const nll = tokenNll(c, p, b, invFreq);
  return nll.mul(b.weights.ref).sum().div(b.weights.sum());
}
