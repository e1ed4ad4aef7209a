/**
 * The optimizer state on the host: `heed train`'s executor of the optimizer chain on the CPU. The AdamW moments
 * and an exact f32 copy of the trainable parameters live in Float32Arrays outside the wasm heap (SmolLM2-135M,
 * full fine-tuning: 1 GiB of m + v and the update's transients leave jax-js's 4 GiB wasm32 memory); the device
 * holds the parameters the model reads and, during a step, the gradients.
 *
 * One update, per tensor in the run's canonical order: read the gradient (consumed on the device), update the
 * parameter and the moments in place with the chain's host loop (adamw.ts `compileHost`: the same rule the device
 * executes, recorded and compiled to a loop with f32 rounding after every operation — bit-identical to the
 * compiled device update), upload the new parameter and free the old one. Tensors are orchestrated here, the
 * arithmetic is the chain's.
 */
import { fromHost, toHost, type Tensor } from '../engine/index.js';
import type { HostTensor } from '../io/safetensors.js';
import type { HostOptimizer, Optimizer } from './adamw.js';

export class HostOptimizerState {
  /** trainable parameters (exact f32 copies of the device's) and per-slot state, by name in the run's order */
  private readonly params = new Map<string, HostTensor>();
  private readonly state = new Map<string, Float32Array[]>();
  private readonly exec: HostOptimizer;
  private readonly slots: readonly string[];

  /**
   * Takes over the arrays of `trainable` and of `moments` (updated in place from now on: the caller must not
   * reuse them). Missing state starts at zero.
   */
  constructor(optimizer: Optimizer, trainable: Map<string, HostTensor>, moments?: Record<string, Map<string, HostTensor>>) {
    this.exec = optimizer.compileHost();
    this.slots = optimizer.slots;
    for (const [k, t] of trainable) {
      this.params.set(k, t);
      this.state.set(
        k,
        this.slots.map((sl) => {
          const have = moments?.[sl]?.get(k);
          if (have && have.data.length !== t.data.length) throw new Error(`optimizer state ${sl}.${k}: ${have.data.length} values for ${t.data.length} parameters`);
          return have ? have.data : new Float32Array(t.data.length);
        }),
      );
    }
  }

  /**
   * One update of every tensor: consumes `device` (the current device parameters) and `grads`; returns the new
   * device parameters (same keys, same order).
   */
  async update(device: Record<string, Tensor>, grads: Record<string, Tensor>, scalars: Float32Array): Promise<Record<string, Tensor>> {
    const out: Record<string, Tensor> = {};
    for (const [k, t] of this.params) {
      const g = await toHost(grads[k]);
      this.exec.update(k, t.shape, t.data, g, this.state.get(k)!, scalars);
      device[k].dispose();
      out[k] = fromHost(t.data, t.shape);
    }
    return out;
  }

  /** the parameters and per-slot state by name, keys sorted (views of the live arrays: valid until the next update) */
  view(): { params: Map<string, HostTensor>; slots: Record<string, Map<string, HostTensor>> } {
    const keys = [...this.params.keys()].sort();
    const params = new Map(keys.map((k) => [k, this.params.get(k)!]));
    const slots = Object.fromEntries(this.slots.map((sl, j) => [sl, new Map(keys.map((k) => [k, { shape: this.params.get(k)!.shape, data: this.state.get(k)![j] }]))]));
    return { params, slots };
  }
}
