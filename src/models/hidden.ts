/**
 * Pooled hidden states of a decoder: the residual stream after chosen layers (through the model's final norm),
 * pooled over each sequence by caller-given weights (mean over tokens, last token, ...). A feature extractor /
 * sequence-classification encoder on the same model code as generation and training (transformer.ts).
 * Traceable (no host reads): usable inside jit and valueAndGrad.
 */
import { fromHost, np, type Tensor } from '../engine/index.js';
import type { ModelConfig } from './config.js';
import { blockContext, disposeContext, embed, finalNorm, layerParams, block, type Params } from './transformer.js';

export interface PoolInputs {
  ids: Tensor; // [B, T] int32
  positions: Tensor; // [B, T] int32
  seg: Tensor; // [B, T] int32 (0 = token, -1 = padding)
  slots: Tensor; // [T] int32
  /** pooling weights [B, P, T] (e.g. P = 2: 1/len over the tokens, one-hot of the last token) */
  pool: Tensor;
}

/**
 * Runs layers 0..max(layers) and returns [B, layers.length * P * D]: for each chosen layer l (1-based: the
 * output of block l; 0 = the embeddings), finalNorm(h_l) pooled by `pool`. Consumes the inputs and invFreq; reads p.
 */
export function pooledHidden(c: ModelConfig, p: Params, inp: PoolInputs, layers: number[], invFreq: Tensor): Tensor {
  const [B, T] = inp.ids.shape;
  const P = inp.pool.shape[1];
  const top = Math.max(...layers);
  let x = embed(c, p, inp.ids, inp.positions.ref);
  const ctx = blockContext(c, { positions: inp.positions, qSeg: inp.seg.ref, kSeg: inp.seg, qSlot: inp.slots.ref, kSlot: inp.slots }, { invFreq });
  const outs: Tensor[] = [];
  const take = (h: Tensor) => outs.push(np.matmul(inp.pool.ref, finalNorm(c, p, h).reshape([B, T, c.hidden])).reshape([B, P * c.hidden]));
  if (layers.includes(0)) take(x.ref);
  for (let l = 0; l < top; l++) {
    const r = block(c, layerParams(c, p, l), x, ctx, {});
    r.k.dispose();
    r.v.dispose();
    x = r.x;
    if (layers.includes(l + 1)) take(l + 1 === top ? x : x.ref);
  }
  if (!layers.includes(top)) x.dispose();
  disposeContext(ctx);
  inp.pool.dispose();
  return outs.length === 1 ? outs[0] : np.concatenate(outs, -1);
}

/** Host → device inputs for right-padded token sequences: pooling weights mean (1/len) and last token (P = 2). */
export function poolInputs(seqs: number[][], T: number): PoolInputs {
  const B = seqs.length;
  const ids = new Int32Array(B * T);
  const seg = new Int32Array(B * T).fill(-1);
  const pos = new Int32Array(B * T);
  const pool = new Float32Array(B * 2 * T);
  seqs.forEach((s0, b) => {
    const s = s0.slice(0, T);
    s.forEach((id, t) => {
      ids[b * T + t] = id;
      seg[b * T + t] = 0;
      pos[b * T + t] = t;
      pool[b * 2 * T + t] = 1 / s.length;
    });
    if (s.length) pool[b * 2 * T + T + s.length - 1] = 1;
  });
  return {
    ids: fromHost(ids, [B, T]),
    positions: fromHost(pos, [B, T]),
    seg: fromHost(seg, [B, T]),
    slots: fromHost(Int32Array.from({ length: T }, (_, i) => i), [T]),
    pool: fromHost(pool, [B, 2, T]),
  };
}
