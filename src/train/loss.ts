/**
 * Weighted next-token cross-entropy.
 * Batch layout: ids [B,T]; weights [B,T] where weights[b,t] is the loss weight of predicting ids[b,t] from
 * the tokens before it (weights[b,0] must be 0). Loss = Σ w·nll / Σ w — normalised by the loss-bearing
 * weight of the batch (so a batch's loss is a per-token mean over the tokens that carry loss).
 */
import { np, nn, type Tensor } from '../engine/index.js';
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
  // nll = logsumexp(logits) − logits[target]. A gather, not a one-hot product: jax-js builds oneHot from a
  // V×V identity (9.7 GB at V = 49,152). The gathered values are multiplied by a constant ones-vector before
  // the reshape so the cotangent reaching the gather's transpose (a scatter) is materialised under jit.
  const [B, T] = b.targets.shape;
  const lse = nn.logsumexp(logits.ref, -1);
  const picked = np.takeAlongAxis(logits, b.targets.reshape([B, T, 1]), -1).mul(np.ones([1], { dtype: np.float32 })).reshape([B, T]);
  return lse.sub(picked);
}

/** Σ w·nll / Σ w (a scalar). The caller guarantees Σ w > 0 (data stage refuses all-zero batches). */
export function weightedLoss(c: ModelConfig, p: Params, b: TrainBatch, invFreq?: Tensor): Tensor {
  const nll = tokenNll(c, p, b, invFreq);
  return nll.mul(b.weights.ref).sum().div(b.weights.sum());
}
