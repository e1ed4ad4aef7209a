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
 *
 * The loop has a native twin for heed's one chain, chain(clipByGlobalNorm, adamw) (native/adamw.cc, optional, built
 * by `npm run build:native`; threads over the tensor): it is used only when the run's chain records exactly the
 * loop the native kernel implements (`source` compared as text) and a start-up check on random values of every
 * magnitude gives the JS loop's bits; otherwise, or without the addon (or with HEED_NATIVE=0), the JS loop runs.
 */
import { engineInfo, fromHost, toHost, type Tensor } from '../engine/index.js';
import type { HostTensor } from '../io/safetensors.js';
import { adamw, chain, clipByGlobalNorm, decays, type HostOptimizer, type Optimizer } from './adamw.js';
import { mulberry32 } from '../models/random.js';

interface NativeAdamw {
  adamw(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, scalars: Float32Array, decay: boolean, threads: number): void;
}

/** the chain native/adamw.cc implements (its structure: the scalars are the step's, not these) */
const nativeChain = () => chain(clipByGlobalNorm(1), adamw({ beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, decayMask: decays }));

let native: Promise<{ addon: NativeAdamw | null; reason: string }> | undefined;

/**
 * The native AdamW addon, checked once per process against the JS loop (null with the reason when absent, off or
 * different in any bit).
 */
export function nativeAdamw(): Promise<{ addon: NativeAdamw | null; reason: string }> {
  return (native ??= (async () => {
    if (typeof process === 'undefined' || !process.versions?.node) return { addon: null, reason: 'not in Node' };
    let loader: { loadNativeAdamw(): NativeAdamw | null; lastAdamwReason(): string };
    try {
      // @ts-ignore -- plain ESM JavaScript next to the addon (native/, beside src/ and dist/), typed by its JSDoc
      loader = (await import('../../native/load.mjs')) as typeof loader;
    } catch (e) {
      return { addon: null, reason: `native/load.mjs is not part of this installation (${(e as Error).message.split('\n')[0]})` };
    }
    const addon = loader.loadNativeAdamw?.();
    if (!addon || typeof addon.adamw !== 'function') return { addon: null, reason: loader.lastAdamwReason?.() || 'the addon has no adamw (rebuild it with npm run build:native)' };
    // start-up check: 70k values from 1 down to 1e-12 in magnitude (and zeros), both variants, clipped and not
    const opt = nativeChain();
    const js = opt.compileHost();
    const r = mulberry32(17);
    const n = 70_001;
    const rnd = () => (r() < 0.01 ? 0 : (r() * 2 - 1) * 10 ** (-12 * r()));
    for (const decay of [true, false]) {
      const a = [0, 1, 2, 3].map((k) => Float32Array.from({ length: n }, () => (k === 3 ? Math.abs(rnd()) : rnd())));
      const b = a.map((x) => x.slice());
      for (let t = 1; t <= 3; t++) {
        const g = Float32Array.from({ length: n }, rnd);
        const sc = opt.scalars({ count: t, lr: 1e-3 * t, gradNorm: t === 2 ? 0.5 : 3 });
        const [name, shape] = decay ? ['w.weight', [n, 1]] : ['w.norm.weight', [n]];
        js.update(name, shape, a[0], g, [a[2], a[3]], sc);
        addon.adamw(b[0], g, b[2], b[3], sc, js.variant(name, shape), 2);
      }
      for (const k of [0, 2, 3]) for (let i = 0; i < n; i++) if (!Object.is(a[k][i], b[k][i])) return { addon: null, reason: `native AdamW differs from the JS loop (${['p', '', 'm', 'v'][k]}[${i}]: ${b[k][i]} vs ${a[k][i]}); using the JS loop` };
    }
    return { addon, reason: '' };
  })());
}

export class HostOptimizerState {
  /** trainable parameters (exact f32 copies of the device's) and per-slot state, by name in the run's order */
  private readonly params = new Map<string, HostTensor>();
  private readonly state = new Map<string, Float32Array[]>();
  private readonly exec: HostOptimizer;
  private readonly slots: readonly string[];
  /** the run's chain is the one native/adamw.cc implements */
  private readonly nativeShape: boolean;
  private readonly allowNative: boolean;
  private nativeAddon: NativeAdamw | null | undefined;
  /** which loop ran the last update, and why not native when not */
  executor: { kind: 'native' | 'js'; reason: string } = { kind: 'js', reason: 'no update yet' };

  /**
   * Takes over the arrays of `trainable` and of `moments` (updated in place from now on: the caller must not
   * reuse them). Missing state starts at zero.
   */
  constructor(optimizer: Optimizer, trainable: Map<string, HostTensor>, moments?: Record<string, Map<string, HostTensor>>, opts: { native?: boolean } = {}) {
    this.exec = optimizer.compileHost();
    this.slots = optimizer.slots;
    const ref = nativeChain().compileHost();
    this.nativeShape = [true, false].every((d) => ref.source(d) === this.exec.source(d));
    this.allowNative = opts.native ?? true;
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
    if (this.nativeAddon === undefined) {
      const why = !this.allowNative ? 'off for this run' : !this.nativeShape ? 'the chain is not clip + AdamW' : '';
      const nat = why ? { addon: null, reason: why } : await nativeAdamw();
      this.nativeAddon = nat.addon;
      this.executor = nat.addon ? { kind: 'native', reason: '' } : { kind: 'js', reason: nat.reason };
    }
    const threads = engineInfo()?.threads ?? 1;
    const out: Record<string, Tensor> = {};
    for (const [k, t] of this.params) {
      const g = await toHost(grads[k]);
      const st = this.state.get(k)!;
      if (this.nativeAddon) this.nativeAddon.adamw(t.data, g, st[0], st[1], scalars, this.exec.variant(k, t.shape), threads);
      else this.exec.update(k, t.shape, t.data, g, st, scalars);
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
