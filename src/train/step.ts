/** The jitted training step: loss and gradients (valueAndGrad) then the optimizer (adamw.ts), in one compiled function. */
import { jit, valueAndGrad, np, fromHost, tree, type Tensor } from '../engine/index.js';
import type { ModelConfig } from '../models/config.js';
import { invFreqFor } from '../models/run.js';
import type { Params } from '../models/transformer.js';
import type { Optimizer, OptState, StepInfo } from './adamw.js';
import { weightedLoss, type TrainBatch } from './loss.js';

export interface HostBatch {
  B: number;
  T: number;
  ids: Int32Array;
  weights: Float32Array; // weight of target t = ids[t+1]... see toDeviceBatch
  positions?: Int32Array;
  segments?: Int32Array;
}

/**
 * Host batch → device batch. `weights[b,t]` (host) is the weight of token t *as a target*; the device batch
 * shifts it so the prediction at t-1 carries it. Positions default to 0..T-1, segments to 0.
 */
export function toDeviceBatch(h: HostBatch): TrainBatch {
  const { B, T } = h;
  const targets = new Int32Array(B * T);
  const w = new Float32Array(B * T);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < T; t++) {
      targets[b * T + t] = h.ids[b * T + t + 1];
      const sameSeg = !h.segments || h.segments[b * T + t] === h.segments[b * T + t + 1];
      w[b * T + t] = sameSeg ? h.weights[b * T + t + 1] : 0;
    }
  }
  const positions = h.positions ?? Int32Array.from({ length: B * T }, (_, i) => i % T);
  const segments = h.segments ?? new Int32Array(B * T);
  return {
    ids: fromHost(h.ids, [B, T]),
    targets: fromHost(targets, [B, T]),
    weights: fromHost(w, [B, T]),
    positions: fromHost(positions, [B, T]),
    segments: fromHost(segments, [B, T]),
    slots: fromHost(Int32Array.from({ length: T }, (_, i) => i), [T]),
  };
}


/**
 * Build loss-only and train-step functions for a model config. The optimizer runs inside the fused step, so
 * its chain cannot clip by a host-measured gradient norm (heed train measures the norm between its programs).
 */
export function makeTrainer(c: ModelConfig, opt: Optimizer) {
  if (opt.needsGradNorm) throw new Error('makeTrainer: the fused step cannot clip by the global gradient norm');
  const lossFn = (p: Params, b: TrainBatch, invFreq: Tensor) => weightedLoss(c, p, b, invFreq);
  const evalLoss = jit(lossFn);
  const step = jit((p: Params, st: OptState, b: TrainBatch, invFreq: Tensor, s: Tensor) => {
    const [loss, grads] = valueAndGrad(lossFn)(p, b, invFreq);
    const u = opt.update(p, grads as Params, st, s);
    return { loss, p: u.params, state: u.state };
  });
  return {
    evalLoss: (p: Params, b: TrainBatch) => evalLoss(tree.ref(p), b, invFreqFor(c)) as Tensor,
    /** one step; consumes p, the optimizer state and the batch */
    step(p: Params, st: OptState, b: TrainBatch, info: StepInfo) {
      const s = opt.scalars(info);
      return step(p, st, b, invFreqFor(c), fromHost(s, [s.length])) as { loss: Tensor; p: Params; state: OptState };
    },
  };
}
