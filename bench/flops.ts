/**
 * Model FLOPs of a training step (bench/train-bench.ts): the arithmetic the model needs per token, independent of
 * how an engine computes it (no activation recompute counted — the "MFU" convention, not "HFU"). Pure functions,
 * tested by test/bench-flops.test.ts.
 *
 * Per token, with N = parameters that take part in matrix products (every 2-D weight; the head counted once, so
 * with tied embeddings the embedding matrix counts as the head; an untied input embedding and GPT-2's position
 * table are lookups and do not count), N_lora = the LoRA adapters' parameters (r·(in + out) per adapted
 * projection), and attention's two products (QKᵀ and P·V over the full T×T square, as both engines compute them)
 * A = 4·L·T·d_attn forward (L layers, d_attn = heads × head_dim):
 *
 *   full fine-tuning:  forward 2N + A,         backward of activations 2N + 2A,          weight gradients 2N
 *                      = 6N + 3A                                      (the textbook 6·N·tokens plus attention)
 *   LoRA:              forward 2N + 2N_lora + A, backward of activations 2N + 2N_lora + 2A, LoRA weight grads 2N_lora
 *                      = 4N + 6N_lora + 3A                            (frozen weights get no weight gradient)
 *
 * FLOPs = 2 per multiply-add. A step's model FLOPs = per-token FLOPs × B·T.
 */

export interface FlopModel {
  /** parameters in matrix products (see above) */
  matmulParams: number;
  /** LoRA adapter parameters; 0 or undefined for full fine-tuning */
  loraParams?: number;
  /** layers, sequence length T, attention width heads × head_dim; omit to leave attention out */
  attention?: { layers: number; seqLen: number; attnDim: number };
}

export interface StepFlops {
  /** model FLOPs per token: forward + backward of activations + weight gradients */
  perToken: number;
  forward: number;
  backwardActs: number;
  weightGrads: number;
  /** of perToken: attention's QKᵀ and P·V products (forward and backward) */
  attention: number;
  /** the formula as text, for the results file */
  formula: string;
}

export function trainFlopsPerToken(m: FlopModel): StepFlops {
  const N = m.matmulParams;
  const Nl = m.loraParams ?? 0;
  if (!(N > 0) || Nl < 0) throw new Error(`trainFlopsPerToken: matmulParams must be > 0 and loraParams >= 0 (got ${N}, ${Nl})`);
  const a = m.attention;
  const A = a ? 4 * a.layers * a.seqLen * a.attnDim : 0;
  const lora = Nl > 0;
  const forward = 2 * N + 2 * Nl + A;
  const backwardActs = 2 * N + 2 * Nl + 2 * A;
  const weightGrads = lora ? 2 * Nl : 2 * N;
  const formula = lora
    ? `LoRA: 4N + 6N_lora${a ? ' + 12·L·T·d_attn' : ''} per token (forward 2N+2N_lora, backward of activations 2N+2N_lora, LoRA weight grads 2N_lora${a ? '; attention QKᵀ/PV 4·L·T·d_attn forward, twice that backward' : ''})`
    : `full fine-tuning: 6N${a ? ' + 12·L·T·d_attn' : ''} per token (forward 2N, backward of activations 2N, weight grads 2N${a ? '; attention QKᵀ/PV 4·L·T·d_attn forward, twice that backward' : ''})`;
  return { perToken: forward + backwardActs + weightGrads, forward, backwardActs, weightGrads, attention: 3 * A, formula };
}

/**
 * N of a model from its tensor shapes (name → shape, e.g. src/models/config.ts `expectedShapes`): every 2-D
 * tensor except lookup tables — GPT-2's `wpe.weight`, and the input embedding when the model has a separate
 * `lm_head.weight` (tied models use the embedding matrix as the head, so it counts once).
 */
export function matmulParamsOf(shapes: Map<string, readonly number[]>): number {
  const untied = [...shapes.keys()].some((k) => /(^|\.)lm_head\.weight$/.test(k));
  let n = 0;
  for (const [name, s] of shapes) {
    if (s.length !== 2) continue;
    if (/(^|\.)wpe\.weight$/.test(name)) continue;
    if (untied && /(^|\.)(embed_tokens|wte)\.weight$/.test(name)) continue;
    n += s[0] * s[1];
  }
  return n;
}

/** FLOP/s and its share of a peak: GFLOP/s = flops per step / step seconds / 1e9 */
export function flopRate(flopsPerStep: number, stepMs: number, peakGflops?: number): { gflops: number; peakShare?: number } {
  const gflops = flopsPerStep / (stepMs / 1000) / 1e9;
  return { gflops, peakShare: peakGflops && peakGflops > 0 ? gflops / peakGflops : undefined };
}
