/** Convenience: full-sequence logits for a batch of token-id sequences (right-padded, padding masked). */
import { fromHost, np, toHost, type Tensor } from '../engine/index.js';
import { ropeInvFreq, type ModelConfig } from './config.js';
import { forward, type Params } from './transformer.js';

/** RoPE inverse frequencies as a tensor (a placeholder [1] for models without RoPE). */
export function invFreqFor(c: ModelConfig): Tensor {
  if (c.arch !== 'llama') return np.zeros([1]);
  const f = ropeInvFreq(c);
  return fromHost(f, [f.length]);
}

/** Returns, per sequence, a Float32Array of [len × vocab] logits. */
export async function sequenceLogits(c: ModelConfig, p: Params, seqs: number[][]): Promise<Float32Array[]> {
  const B = seqs.length;
  const T = Math.max(...seqs.map((s) => s.length));
  const ids = new Int32Array(B * T);
  const seg = new Int32Array(B * T).fill(-1);
  const pos = new Int32Array(B * T);
  seqs.forEach((s, b) =>
    s.forEach((id, t) => {
      ids[b * T + t] = id;
      seg[b * T + t] = 0;
      pos[b * T + t] = t;
    }),
  );
  const slots = Int32Array.from({ length: T }, (_, i) => i);
  const { logits } = forward(c, p, { ids: fromHost(ids, [B, T]), positions: fromHost(pos, [B, T]), qSeg: fromHost(seg, [B, T]), kSeg: fromHost(seg, [B, T]), qSlot: fromHost(slots, [T]), kSlot: fromHost(slots, [T]) }, { invFreq: invFreqFor(c) });
  const all = await toHost(logits);
  const V = c.vocabSize;
  return seqs.map((s, b) => all.slice(b * T * V, (b * T + s.length) * V));
}
