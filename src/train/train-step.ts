/**
 * The device side of a run: the trainable parameters, AdamW moments and compiled programs, and one optimizer
 * step (accumulate → clip → update). The trainer loop (trainer.ts) hands it host batches and numbers and gets
 * numbers back; no tensor leaves this module except the read-only weights view for generation.
 *
 * One step: for each micro-batch the layer-by-layer gradients (segmented.ts) of Σ w·nll / N (N = the
 * loss-bearing weight of the whole optimizer step, or the number of rows with loss_norm: sequence) — so
 * accumulated gradients sum to the gradient of the step's loss —, then the global gradient norm, clipping, and
 * AdamW applied one tensor at a time, by one of two executors of the same chain (adamw.ts):
 *   host    (default in Node on the wasm engine) the moments and an exact copy of the trainable parameters in
 *           Float32Arrays outside the wasm heap, the update a host loop per tensor (host-optimizer.ts): the
 *           device holds only the parameters and, during a step, the gradients;
 *   device  (WebGPU, the browser; HEED_OPTIMIZER=device) the moments on the device, a small jitted update per
 *           tensor (the transient copy is one tensor, not the whole state).
 * Both give the same bits (test/optimizer-host.test.ts); checkpoints are the same files.
 */
import { blockUntilReady, engineInfo, fromHost, jit, np, toHost, tree, type Tensor } from '../engine/index.js';
import type { HostTensor } from '../io/safetensors.js';
import type { Batch } from '../data/pack.js';
import { toDevice, toHostTensors } from '../models/load.js';
import type { ModelConfig } from '../models/config.js';
import { runsLayerByLayer, splitLayerName, type Params } from '../models/transformer.js';
import type { TrainBatch } from './loss.js';
import { makeFused, makeSegmented, planGradients, type GradMode, type GradPlan } from './segmented.js';
import { globalNormSq, type Optimizer } from './adamw.js';
import { HostOptimizerState } from './host-optimizer.js';
import { HeedError } from '../errors.js';
import { toDeviceBatch } from './step.js';
import { invFreqFor } from '../models/run.js';

/** A data batch on the device with loss weights `weights` (host alignment: weight of token t as a target). */
const deviceBatch = (b: Batch, weights: Float32Array): TrainBatch => toDeviceBatch({ B: b.B, T: b.T, ids: b.ids, weights, positions: b.positions, segments: b.segments });

/**
 * Builds the compiled pieces of a run: the loss and its gradients layer by layer (segmented.ts: memory for one
 * block's intermediates instead of the whole model's), the gradient norm, accumulation and per-tensor AdamW.
 */
function compile(c: ModelConfig, mode: GradMode, trainable: Set<string>, loraScale: number | undefined, loraDropout: number, loraModuleNames: string[], optimizer: Optimizer, onDevice: boolean) {
  const o = { trainable, loraScale, loraDropout, loraModules: [...new Set(loraModuleNames.map((n) => splitLayerName(n)!.sub))] };
  const seg = mode === 'fused' ? makeFused(c, o) : makeSegmented(c, { ...o, stored: mode === 'stored' });
  const sqSum = jit(globalNormSq);
  const addTrees = jit((a: Record<string, Tensor>, b: Record<string, Tensor>) => {
    const o: Record<string, Tensor> = {};
    for (const k of Object.keys(a)) o[k] = a[k].add(b[k]);
    return o;
  });
  const upd = onDevice ? optimizer.compile() : undefined;
  /** free the compiled programs and their constants (a process may run several trainings) */
  const dispose = () => {
    seg.dispose();
    [sqSum, addTrees].forEach((f) => f.dispose());
    upd?.dispose();
  };
  return { seg, sqSum, addTrees, upd, dispose };
}

export interface StepInput {
  /** the step's micro-batches, their (normalised) loss weights and the normaliser */
  micro: Batch[];
  weights: Float32Array[];
  norm: number;
  /** LoRA dropout key of micro-batch i (layer l uses key + l) */
  dropoutKey: (i: number) => number;
  lr: number;
  /** 1-based global step (AdamW bias correction counts all steps: moments carry across stages) */
  t: number;
}

export type StepResult = { ok: true; loss: number; gradNorm: number } | { ok: false; loss: number; gradNorm: number };

export interface DeviceRunInit {
  config: ModelConfig;
  /** the base weights (frozen under LoRA) */
  base: Map<string, HostTensor>;
  /** trainable parameters at start: the base weights (full fine-tuning) or the LoRA adapters */
  trainable: Map<string, HostTensor>;
  /** AdamW moments to resume from (same keys and order as trainable); zeros when absent */
  moments?: { m: Map<string, HostTensor>; v: Map<string, HostTensor> };
  lora: boolean;
  loraScale?: number;
  loraDropout: number;
  loraModules: string[];
  /**
   * gradients layer by layer recomputing each block's forward ('layers'), layer by layer keeping the forward's
   * activations ('stored'), one fused program ('off'), or chosen from the model size and a memory estimate ('auto':
   * segmented.ts planGradients)
   */
  checkpointing: 'auto' | 'layers' | 'stored' | 'off';
  /** the largest micro-batch (sequences × tokens) the run will step on: the memory estimate of 'auto' */
  microBatch?: { B: number; T: number };
  /** the update: chain(clipByGlobalNorm(grad_clip), adamw(...)) from adamw.ts */
  optimizer: Optimizer;
  /**
   * where the optimizer state lives and the update runs (see the top of this file); default `optimizerPlace()`.
   * 'host' takes over the arrays of `trainable` and `moments` (updated in place).
   */
  optimizerOn?: 'host' | 'device';
}

/**
 * The default executor: HEED_OPTIMIZER=host|device, else the host in Node on the wasm engine (the state off the
 * 4 GiB wasm heap) and the device elsewhere (WebGPU, the browser).
 */
export function optimizerPlace(): 'host' | 'device' {
  const env = typeof process !== 'undefined' ? process.env?.HEED_OPTIMIZER : undefined;
  if (env !== undefined && env !== '') {
    if (env !== 'host' && env !== 'device') throw new HeedError(`HEED_OPTIMIZER must be host or device, got "${env}"`, 'unset it (the default: host on the CPU engine) or set HEED_OPTIMIZER=device');
    return env;
  }
  const node = typeof process !== 'undefined' && !!process.versions?.node;
  return node && (engineInfo()?.device ?? 'wasm') === 'wasm' ? 'host' : 'device';
}

/** Trainable parameters, moments and compiled programs of one run on the device. */
export class DeviceRun {
  private frozen: Params;
  private trainable: Params;
  private m: Record<string, Tensor> = {};
  private v: Record<string, Tensor> = {};
  /** the host executor's state (optimizerOn: 'host') */
  private readonly host?: HostOptimizerState;
  private readonly fns: ReturnType<typeof compile>;
  private readonly optimizer: Optimizer;
  readonly config: ModelConfig;
  readonly trainableCount: number;
  /** how the gradients are computed: one fused program, layer by layer with stored activations, or recomputing */
  readonly gradients: GradMode;
  /** checkpointing: auto's estimate (undefined when the mode was given) */
  readonly plan?: GradPlan;
  /** where the optimizer state lives and the update runs */
  readonly optimizerOn: 'host' | 'device';

  constructor(o: DeviceRunInit) {
    this.config = o.config;
    this.optimizerOn = o.optimizerOn ?? optimizerPlace();
    this.frozen = o.lora ? toDevice(o.base) : {};
    this.trainable = toDevice(o.trainable);
    if (this.optimizerOn === 'host') this.host = new HostOptimizerState(o.optimizer, o.trainable, o.moments);
    else if (o.moments) {
      this.m = toDevice(o.moments.m);
      this.v = toDevice(o.moments.v);
    } else {
      for (const [k, t] of Object.entries(this.trainable)) {
        // real buffers now (np.zeros is lazy): allocated before the first step fragments the wasm heap
        this.m[k] = fromHost(new Float32Array(t.size), t.shape);
        this.v[k] = fromHost(new Float32Array(t.size), t.shape);
      }
    }
    this.trainableCount = Object.values(this.trainable).reduce((a, t) => a + t.size, 0);
    // auto: one fused program for small models (no recomputation: ~1.35x faster on the 2.2M demo model, and they
    // fit either way); layer by layer for larger ones, keeping the activations where the estimate fits the heap
    if (o.checkpointing === 'auto') {
      const bytes = (p: Params) => Object.values(p).reduce((a, t) => a + 4 * t.size, 0);
      this.plan = planGradients({ config: o.config, small: !runsLayerByLayer(o.config, this.weights()), weightBytes: bytes(this.weights()), trainableBytes: bytes(this.trainable), optimizerOnDevice: this.optimizerOn === 'device', B: o.microBatch?.B ?? 1, T: o.microBatch?.T ?? o.config.maxPositions });
      this.gradients = this.plan.mode;
    } else this.gradients = o.checkpointing === 'off' ? 'fused' : o.checkpointing;
    this.optimizer = o.optimizer;
    this.fns = compile(o.config, this.gradients, new Set(Object.keys(this.trainable)), o.loraScale, o.loraDropout, o.loraModules, o.optimizer, this.optimizerOn === 'device');
  }

  /** gradients are computed layer by layer (stored or recomputing) */
  get layered(): boolean {
    return this.gradients !== 'fused';
  }

  /** The current weights (frozen + trainable) for generation: read-only, valid until the next step. */
  weights(): Params {
    return { ...this.frozen, ...this.trainable };
  }

  /** One optimizer step; on a non-finite loss or gradient norm nothing is applied (ok: false). */
  async step(s: StepInput): Promise<StepResult> {
    const invFreq = () => invFreqFor(this.config);
    let loss = 0;
    let grads: Record<string, Tensor> | undefined;
    for (const [i, b] of s.micro.entries()) {
      const { loss: l, grads: g } = await this.fns.seg.grad(this.weights(), deviceBatch(b, s.weights[i]), invFreq(), np.array(s.norm), s.dropoutKey(i));
      loss += (await toHost(l))[0];
      grads = grads ? (this.fns.addTrees(grads, g) as Record<string, Tensor>) : g;
    }
    const gradNorm = Math.sqrt((await toHost(this.fns.sqSum(tree.ref(grads!)) as Tensor))[0]);
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      tree.dispose(grads!);
      return { ok: false, loss, gradNorm };
    }
    const scal = this.optimizer.scalars({ count: s.t, lr: s.lr, gradNorm });
    if (this.host) this.trainable = await this.host.update(this.trainable, grads!, scal);
    else {
      // one small program per tensor (the transient copy is one tensor, not the whole state)
      const u = await this.fns.upd!.update(this.trainable, grads!, { m: this.m, v: this.v }, scal);
      this.trainable = u.params;
      this.m = u.state.m;
      this.v = u.state.v;
    }
    await blockUntilReady([this.trainable, this.m, this.v]); // the step's time includes its own update
    return { ok: true, loss, gradNorm };
  }

  /** A frozen (base) weight read back to the host (LoRA: the base the adapters train on). */
  async frozenTensor(name: string): Promise<HostTensor> {
    const t = this.frozen[name];
    if (!t) throw new Error(`DeviceRun: no frozen tensor ${name}`);
    return { shape: [...t.shape], data: await toHost(t.ref) };
  }

  /** Σ w·nll and Σ w over `batches` (loss weights of the batches themselves). */
  async lossSum(batches: Batch[]): Promise<{ sum: number; weight: number }> {
    let sum = 0;
    let weight = 0;
    for (const b of batches) {
      sum += (await toHost(await this.fns.seg.lossSum(this.weights(), deviceBatch(b, b.weights), invFreqFor(this.config))))[0];
      weight += b.lossWeight;
    }
    return { sum, weight };
  }

  /**
   * The state to save: trainable parameters and moments on the host (`param.`/`m.`/`v.` keys), or null when a
   * parameter is not finite (the update of a finite gradient can still overflow: never saved).
   */
  async hostState(): Promise<{ params: Map<string, HostTensor>; optimizer: Map<string, HostTensor> } | null> {
    // host executor: views of its live arrays (valid until the next step; the caller writes them at once)
    const hv = this.host?.view();
    const tr = hv ? hv.params : await toHostTensors(this.trainable);
    for (const t of tr.values()) for (let i = 0; i < t.data.length; i++) if (!Number.isFinite(t.data[i])) return null;
    const mm = hv ? hv.slots.m : await toHostTensors(this.m);
    const vv = hv ? hv.slots.v : await toHostTensors(this.v);
    const opt = new Map<string, HostTensor>();
    for (const [k, t] of tr) opt.set(`param.${k}`, t);
    for (const [k, t] of mm) opt.set(`m.${k}`, t);
    for (const [k, t] of vv) opt.set(`v.${k}`, t);
    return { params: tr, optimizer: opt };
  }

  dispose(): void {
    this.fns.dispose();
    tree.dispose(this.trainable);
    tree.dispose(this.m);
    tree.dispose(this.v);
    tree.dispose(this.frozen);
  }
}
