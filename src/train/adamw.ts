/**
 * AdamW as torch.optim.AdamW computes it (decoupled weight decay, bias correction), written as a pure
 * function over parameter trees so that it runs inside the jitted training step.
 *   m ← β1 m + (1-β1) g;  v ← β2 v + (1-β2) g²
 *   p ← p·(1 - lr·wd) - lr/(1-β1ᵗ) · m / (√v/√(1-β2ᵗ) + ε)
 * Per-step scalars (lr/(1-β1ᵗ), 1/√(1-β2ᵗ), lr·wd) come in as arrays so the step compiles once.
 */
import { np, type Tensor } from '../engine/index.js';

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export type Tree = Record<string, Tensor>;

/** Parameters that get weight decay: matrices (not norms, not biases, not 1-D). */
export function decays(name: string, shape: readonly number[]): boolean {
  return shape.length >= 2 && !/norm|ln_/.test(name);
}

/** Host-side per-step scalars for step t (1-based). */
export function adamwScalars(lr: number, t: number, o: AdamWConfig): { stepSize: number; c2: number; decay: number } {
  return { stepSize: lr / (1 - o.beta1 ** t), c2: 1 / Math.sqrt(1 - o.beta2 ** t), decay: lr * o.weightDecay };
}

/** One update; consumes p, g, m, v and the scalar arrays; returns new trees. */
export function adamwUpdate(p: Tree, g: Tree, m: Tree, v: Tree, stepSize: Tensor, c2: Tensor, decay: Tensor, o: AdamWConfig): { p: Tree; m: Tree; v: Tree } {
  const np_: Tree = {}, nm: Tree = {}, nv: Tree = {};
  for (const k of Object.keys(p)) {
    const gk = g[k];
    const mk = m[k].mul(o.beta1).add(gk.ref.mul(1 - o.beta1));
    const vk = v[k].mul(o.beta2).add(np.square(gk).mul(1 - o.beta2));
    const denom = np.sqrt(vk.ref).mul(c2.ref).add(o.eps);
    let pk = p[k];
    if (decays(k, pk.shape)) pk = pk.mul(np.subtract(1, decay.ref));
    np_[k] = pk.sub(mk.ref.div(denom).mul(stepSize.ref));
    nm[k] = mk;
    nv[k] = vk;
  }
  stepSize.dispose();
  c2.dispose();
  decay.dispose();
  return { p: np_, m: nm, v: nv };
}
