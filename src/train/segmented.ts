/**
 * Layer-by-layer loss and gradients (activation checkpointing at block boundaries).
 *
 * Why: jax-js allocates every buffer of a jitted program when it is called and its wasm allocator reuses a
 * freed buffer only for the same size, so one jitted valueAndGrad over a whole model needs memory for every
 * intermediate of every layer at once. A SmolLM2-135M LoRA step at 1x256 did not fit the 4 GiB wasm32 heap
 * that way. Here a step runs small jitted programs instead — the masking context, the embedding, one block
 * (compiled once, called for every layer: all layers have the same shapes and parameter names), the head with
 * the loss — keeping only each block's input x_l [B*T, D]. The backward pass walks the layers in reverse: each
 * block's program recomputes its forward and returns the gradients of its parameters and of its input
 * (one extra forward pass in all, the usual price of checkpointing). Peak memory: the weights, the trainable
 * state, L activations of size B*T*D and one block's intermediates — instead of all of them.
 *
 * Flushing: jax-js queues the kernels of a jitted call and keeps every buffer they touch alive until they are
 * submitted (when a result is awaited), so a chain of un-awaited calls holds all their intermediates at once —
 * exactly what splitting the step is meant to avoid. Each block's output is therefore awaited
 * (blockUntilReady) before the next block is queued.
 *
 * Stored (checkpointing: stored, `stored: true`): no recompute. The forward pass calls, per layer, jax-js's vjp of
 * the same jitted block; jax-js partially evaluates the jit primitive, so the forward runs as one compiled program
 * that also returns the block's residuals, and the layer's pullback (called in the backward pass instead of
 * blockGrad) is one compiled transposed program. Peak memory: the weights and every layer's residuals (the
 * estimate behind checkpointing: auto is planGradients below). Costs measured in bench/README.md: each call
 * re-traces the JVP, partial evaluation and transposition (tens of ms per layer), and, jax-js having no symbolic
 * zero tangents, frozen weights are vjp inputs whose cotangents are computed and dropped.
 *
 * The numbers equal the fused valueAndGrad of tokenNll (test/train-segmented.test.ts checks loss and
 * gradients on every architecture, full, LoRA and LoRA dropout, recomputing and stored).
 */
import { jit, nn, np, random, tree, valueAndGrad, vjp, grad as gradOf, type Tensor } from '../engine/index.js';
import { expectedShapes, type ModelConfig } from '../models/config.js';
import { block, blockContext, contextFrom, contextTensors, embed, embedNames, finalNorm, head, headNames, layerPrefix, outputMatrix, outputMatrixName, pickParams, splitLayerName, type ForwardOptions, type Params } from '../models/transformer.js';
import { nllFromLogits, tokenNll, type TrainBatch } from './loss.js';

export interface SegmentedOptions {
  /** names of the trainable tensors (gradients are returned for these only) */
  trainable: Set<string>;
  loraScale?: number;
  loraDropout?: number;
  /** the LoRA target modules inside a layer (names without the layer prefix), for dropout keys */
  loraModules?: string[];
  /** logits per head call (rows × vocabulary), default HEAD_ELEMENTS */
  headElements?: number;
  /**
   * keep each block's residuals from the forward pass (vjp of the jitted block, called per layer) instead of
   * recomputing the block's forward in the backward pass (checkpointing: stored)
   */
  stored?: boolean;
}

type Ctx = Record<string, Tensor>;

/** logits per head call (rows × vocabulary): 8M floats = 32 MB per [rows, V] buffer */
const HEAD_ELEMENTS = 8 * 2 ** 20;

/** LoRA dropout: a scaled keep-mask for module `index` from one layer's split keys. Reads keys. */
function dropoutMask(keys: Tensor, index: number, dropout: number, shape: number[]): Tensor {
  return random.bernoulli(keys.ref.slice(index), 1 - dropout, shape).astype(np.float32).mul(1 / (1 - dropout));
}

export function makeSegmented(c: ModelConfig, opts: SegmentedOptions): GradEngine {
  const dropout = opts.loraDropout ?? 0;
  const modIndex = new Map((opts.loraModules ?? []).map((m, i) => [m, i]));
  const fwdOpts = (key: Tensor | undefined): ForwardOptions => {
    if (!key) return { loraScale: opts.loraScale };
    const ks = random.split(key, Math.max(1, modIndex.size));
    return { loraScale: opts.loraScale, loraDropoutMasks: (m, shape) => dropoutMask(ks, modIndex.get(m)!, dropout, shape) };
  };

  const ctxFn = jit((positions: Tensor, qSeg: Tensor, kSeg: Tensor, qSlot: Tensor, kSlot: Tensor, invFreq: Tensor): Ctx => contextTensors(blockContext(c, { positions, qSeg, kSeg, qSlot, kSlot }, { invFreq })));
  const embedFwd = jit((e: Params, ids: Tensor, positions: Tensor) => embed(c, e, ids, positions));
  const embedGrad = jit((eT: Params, eF: Params, ids: Tensor, positions: Tensor, g: Tensor) =>
    gradOf((t: Params) => embed(c, { ...eF, ...t }, ids.ref, positions.ref).mul(g.ref).sum())(eT),
  );
  const runBlock = (lp: Params, x: Tensor, ctx: Ctx, key: Tensor | undefined) => {
    const r = block(c, lp, x, contextFrom(ctx), fwdOpts(key));
    r.k.dispose();
    r.v.dispose();
    return r.x;
  };
  const blockFwd = jit((lpT: Params, lpF: Params, x: Tensor, ctx: Ctx) => runBlock({ ...lpF, ...lpT }, x, ctx, undefined));
  const blockFwdDrop = jit((lpT: Params, lpF: Params, x: Tensor, ctx: Ctx, key: Tensor) => runBlock({ ...lpF, ...lpT }, x, ctx, key));
  const blockGradFn = (withKey: boolean) =>
    jit((lpT: Params, lpF: Params, x: Tensor, ctx: Ctx, g: Tensor, key: Tensor) => {
      const f = (t: Params, xx: Tensor) => runBlock({ ...lpF, ...t }, xx, ctx, withKey ? key.ref : undefined).mul(g.ref).sum();
      const [, grads] = valueAndGrad(f, { argnums: [0, 1] })(lpT, x) as unknown as [Tensor, [Params, Tensor]];
      if (!withKey) key.dispose();
      return grads;
    });
  const blockGrad = blockGradFn(dropout > 0);
  const headValue = jit((hp: Params, x: Tensor, targets: Tensor, weights: Tensor) => {
    const [B, T] = targets.shape;
    return nllFromLogits(head(c, hp, x, B, T), targets).mul(weights).sum();
  });
  /** value, d = w/norm · (softmax − onehot) [R, V] and the normed input h [R, D] of one head chunk */
  const headForward = (hp: Params, x: Tensor, targets: Tensor, weights: Tensor, norm: Tensor) => {
    const [, R] = targets.shape;
    const W = outputMatrix(c, hp);
    const h = finalNorm(c, hp, x);
    const logits = np.matmul(h.ref, W.ref.transpose());
    const V = logits.shape[1];
    const lse = nn.logsumexp(logits.ref, -1, { keepdims: true });
    const tgt = targets.reshape([R, 1]);
    const iota = np.arange(V, undefined, undefined, { dtype: np.int32 }).reshape([1, V]);
    const picked = np.takeAlongAxis(logits.ref, tgt.ref, -1);
    const wn = weights.reshape([R, 1]).div(norm);
    const value = lse.ref.sub(picked).mul(wn.ref).sum();
    const d = np.exp(logits.sub(lse)).sub(np.equal(tgt, iota).astype(np.float32)).mul(wn);
    return { value, d, h, W };
  };
  // The head's gradients are written out instead of autodiff through the output matmul: dh = d·W, dW = dᵀ·h,
  // then the final norm's vjp by autodiff. Autodiff through x·Wᵀ made the program hold several W-sized
  // buffers (a Qwen2.5-0.5B LoRA head step took 1.8 GB beyond the weights: 545 MB per copy of its tied
  // [151936, 896] embedding); written out it holds none (87 MB). Same numbers (test/train-segmented.test.ts).
  const headGradX = jit((hF: Params, x: Tensor, targets: Tensor, weights: Tensor, norm: Tensor) => {
    const { value, d, h, W } = headForward(hF, x.ref, targets, weights, norm);
    h.dispose();
    const dh = np.matmul(d, W.ref);
    const dx = gradOf((xx: Tensor) => finalNorm(c, hF, xx).mul(dh.ref).sum())(x);
    dh.dispose();
    return [value, dx];
  });
  const headGradAll = jit((hT: Params, hF: Params, x: Tensor, targets: Tensor, weights: Tensor, norm: Tensor) => {
    const all = { ...hF, ...hT };
    const { value, d, h, W } = headForward(all, x.ref, targets, weights, norm);
    const dh = np.matmul(d.ref, W.ref);
    const wn = outputMatrixName(c);
    const rest: Params = {};
    for (const [k, v] of Object.entries(hT)) if (k !== wn) rest[k] = v;
    const [dRest, dx] = gradOf((t: Params, xx: Tensor) => finalNorm(c, { ...all, ...t }, xx).mul(dh.ref).sum(), { argnums: [0, 1] })(rest, x) as unknown as [Params, Tensor];
    dh.dispose();
    const dT: Params = { ...dRest };
    if (hT[wn]) dT[wn] = np.matmul(d.transpose(), h);
    else {
      d.dispose();
      h.dispose();
    }
    return [value, [dT, dx]];
  });

  const split = (p: Params, names: string[]) => {
    const T: Params = {};
    const F: Params = {};
    for (const n of names) if (p[n]) (opts.trainable.has(n) ? T : F)[n] = p[n].ref;
    return { T, F };
  };
  const layerSplit = (p: Params, l: number) => {
    const pre = layerPrefix(c, l);
    const T: Params = {};
    const F: Params = {};
    for (const [k, v] of Object.entries(p)) if (k.startsWith(pre)) (opts.trainable.has(k) ? T : F)[k.slice(pre.length)] = v.ref;
    return { T, F, pre };
  };
  /** row ranges for the head: at most HEAD_ELEMENTS logits per chunk (32 MB per [rows, V] buffer) */
  const headChunks = (b: TrainBatch) => {
    const [B, T] = b.targets.shape;
    const rows = B * T;
    const n = Math.max(1, Math.min(rows, Math.floor((opts.headElements ?? HEAD_ELEMENTS) / c.vocabSize)));
    const chunks: Array<[number, number]> = [];
    for (let a = 0; a < rows; a += n) chunks.push([a, Math.min(rows, a + n)]);
    return { rows, chunks };
  };
  /** rows a..e of the final activations x [rows, D] and of the flat targets / weights [rows], as one [1, e-a] batch */
  const chunkOf = (x: Tensor, tg: Tensor, w: Tensor, a: number, e: number): [Tensor, Tensor, Tensor] => [x.ref.slice([a, e]), tg.ref.slice([a, e]).reshape([1, e - a]), w.ref.slice([a, e]).reshape([1, e - a])];
  const eNames = embedNames(c);
  const hNames = headNames(c);

  /** Forward through the blocks, keeping every block input. Consumes nothing of p; consumes the batch's masking inputs and invFreq. */
  const forwardBlocks = async (p: Params, b: TrainBatch, invFreq: Tensor, keyBase: number | undefined) => {
    const ctx = ctxFn(b.positions.ref, b.segments.ref, b.segments, b.slots.ref, b.slots, invFreq) as Ctx;
    const xs: Tensor[] = [embedFwd(pickParams(p, eNames), b.ids.ref, b.positions.ref) as Tensor];
    for (let l = 0; l < c.layers; l++) {
      const { T, F } = layerSplit(p, l);
      const x = xs[l].ref;
      xs.push((keyBase === undefined ? blockFwd(T, F, x, tree.ref(ctx)) : blockFwdDrop(T, F, x, tree.ref(ctx), random.key(keyBase + l))) as Tensor);
      await xs[l + 1].blockUntilReady(); // see the note on flushing at the top
    }
    return { ctx, xs };
  };
  type Pull = ((ct: Tensor) => [Params, Tensor]) & { dispose(): void };
  /** Forward through the blocks keeping each block's residuals: per layer, the vjp of the jitted block. */
  const forwardStored = async (p: Params, b: TrainBatch, invFreq: Tensor, keyBase: number | undefined) => {
    const ctx = ctxFn(b.positions.ref, b.segments.ref, b.segments, b.slots.ref, b.slots, invFreq) as Ctx;
    let x = embedFwd(pickParams(p, eNames), b.ids.ref, b.positions.ref) as Tensor;
    const pulls: Pull[] = [];
    for (let l = 0; l < c.layers; l++) {
      const { T, F } = layerSplit(p, l);
      const key = keyBase === undefined ? undefined : random.key(keyBase + l);
      // every input of the block is a primal of the vjp, frozen weights and masking context included, and their
      // cotangents are dropped: jax-js has no symbolic zero tangents, so an input closed over instead would get a
      // materialised zero tangent whose products (x·0ᵀ for every frozen weight) run in the forward program
      const f = (t: Params, ff: Params, xx: Tensor, cx: Ctx) => (key ? blockFwdDrop(t, ff, xx, cx, key) : blockFwd(t, ff, xx, cx)) as Tensor;
      const [y, pull] = vjp(f, [T, F, x, tree.ref(ctx)]) as unknown as [Tensor, ((ct: Tensor) => [Params, Params, Tensor, Ctx]) & { dispose(): void }];
      pulls.push(
        Object.assign(
          (ct: Tensor): [Params, Tensor] => {
            const [dT, dF, dx, dC] = pull(ct);
            tree.dispose(dF);
            tree.dispose(dC);
            return [dT, dx];
          },
          { dispose: () => pull.dispose() },
        ),
      );
      x = y;
      await x.blockUntilReady(); // see the note on flushing at the top
    }
    return { ctx, x, pulls };
  };

  return {
    /**
     * Σ w·nll / norm and its gradients for the trainable tensors (full names). Reads p; consumes the batch,
     * invFreq and the norm array. `keyBase` seeds LoRA dropout (layer l uses key keyBase + l).
     */
    async grad(p: Params, b: TrainBatch, invFreq: Tensor, norm: Tensor, keyBase: number): Promise<{ loss: Tensor; grads: Params }> {
      const kb = dropout > 0 ? keyBase : undefined;
      const fw = opts.stored ? await forwardStored(p, b, invFreq, kb) : { ...(await forwardBlocks(p, b, invFreq, kb)), pulls: undefined };
      const ctx = fw.ctx;
      const xs = 'xs' in fw ? fw.xs : undefined;
      // the head in row chunks: its [rows, V] buffers (logits, softmax, ...) are the largest of the step
      const h = split(p, hNames);
      const grads: Params = {};
      const trainHead = Object.keys(h.T).length > 0;
      const { rows, chunks } = headChunks(b);
      const x = xs ? xs[c.layers] : (fw as { x: Tensor }).x;
      const tg = b.targets.reshape([rows]);
      const w = b.weights.reshape([rows]);
      let loss: Tensor | undefined;
      const dxs: Tensor[] = [];
      for (const [a, e] of chunks) {
        const [xc, tc, wc] = chunkOf(x, tg, w, a, e);
        let l: Tensor;
        if (trainHead) {
          const [lv, [dh, g]] = headGradAll(tree.ref(h.T), tree.ref(h.F), xc, tc, wc, norm.ref) as unknown as [Tensor, [Params, Tensor]];
          for (const [k, v] of Object.entries(dh)) grads[k] = grads[k] ? grads[k].add(v) : v;
          l = lv;
          dxs.push(g);
        } else {
          const [lv, g] = headGradX(tree.ref(h.F), xc, tc, wc, norm.ref) as [Tensor, Tensor];
          l = lv;
          dxs.push(g);
        }
        loss = loss ? loss.add(l) : l;
        await dxs[dxs.length - 1].blockUntilReady();
      }
      for (const t of [x, tg, w, norm]) t.dispose();
      tree.dispose(h.T);
      tree.dispose(h.F);
      let dx = dxs.length === 1 ? dxs[0] : np.concatenate(dxs, 0);
      for (let l = c.layers - 1; l >= 0; l--) {
        const pre = layerPrefix(c, l);
        let dT: Params, dxl: Tensor;
        if (fw.pulls) {
          [dT, dxl] = fw.pulls[l](dx);
          fw.pulls[l].dispose();
        } else {
          const { T, F } = layerSplit(p, l);
          [dT, dxl] = blockGrad(T, F, xs![l], tree.ref(ctx), dx, random.key(dropout > 0 ? keyBase + l : 0)) as [Params, Tensor];
        }
        for (const [k, v] of Object.entries(dT)) grads[pre + k] = v;
        dx = dxl;
        await dx.blockUntilReady();
      }
      tree.dispose(ctx);
      const e = split(p, eNames);
      if (Object.keys(e.T).length) {
        const dE = embedGrad(e.T, e.F, b.ids, b.positions, dx) as Params;
        for (const [k, v] of Object.entries(dE)) grads[k] = grads[k] ? grads[k].add(v) : v;
      } else {
        tree.dispose(e.T);
        tree.dispose(e.F);
        dx.dispose();
        b.ids.dispose();
        b.positions.dispose();
      }
      return { loss: loss!, grads };
    },
    /** Σ w·nll (no dropout). Reads p; consumes the batch and invFreq. */
    async lossSum(p: Params, b: TrainBatch, invFreq: Tensor): Promise<Tensor> {
      const { ctx, xs } = await forwardBlocks(p, b, invFreq, undefined);
      tree.dispose(ctx);
      for (const x of xs.slice(0, -1)) x.dispose();
      b.ids.dispose();
      b.positions.dispose();
      const { rows, chunks } = headChunks(b);
      const hp = pickParams(p, hNames);
      const x = xs[c.layers];
      const tg = b.targets.reshape([rows]);
      const w = b.weights.reshape([rows]);
      let sum: Tensor | undefined;
      for (const [a, e] of chunks) {
        const l = headValue(tree.ref(hp), ...chunkOf(x, tg, w, a, e)) as Tensor;
        sum = sum ? sum.add(l) : l;
        await sum.blockUntilReady();
      }
      for (const t of [x, tg, w]) t.dispose();
      tree.dispose(hp);
      return sum!;
    },
    dispose() {
      for (const f of [ctxFn, embedFwd, embedGrad, blockFwd, blockFwdDrop, blockGrad, headValue, headGradX, headGradAll]) f.dispose();
    },
  };
}

/** How a run computes its gradients (checkpointing: off | stored | layers). */
export type GradMode = 'fused' | 'stored' | 'layers';

/** jax-js's wasm32 heap: every array of the wasm engine lives in one 4 GiB memory */
export const WASM_HEAP_BYTES = 4 * 2 ** 30;
/**
 * The share of the heap the stored engine's estimate may reach: jax-js's allocator reuses a freed buffer only
 * for the same size, so the heap fragments and real peaks run past the live bytes.
 */
export const STORED_HEAP_SHARE = 0.75;

/**
 * Bytes the stored engine keeps per layer for one [B, T] micro-batch: the residuals of the block's vjp — every
 * intermediate its backward reads (norm inputs and factors, q/k/v before and after RoPE, the attention
 * probabilities, the MLP's pre-activations and products, LoRA's x·Aᵀ: per token ~12 D-sized, ~4 KV-sized, ~6
 * MLP-sized and ~4 [heads, T] attention vectors of floats) — plus one copy of the layer's weight matrices (the
 * transposed W that the backward's dX = dY·W reads is a residual of jax-js's partial evaluation, materialised).
 * Calibrated on peak RSS, stored minus layers, in the same bench:train run (bench/README.md, "checkpointing:
 * stored"): SmolLM2-135M LoRA 1×256 43.6 MB per layer measured vs 44.5 MB here; Llama-30M full 4×256 66 MB vs 113
 * MB here (the token term overestimates it: safe).
 */
export function storedLayerBytes(c: ModelConfig, B: number, T: number): number {
  const kv = c.arch === 'gpt2' ? c.hidden : c.kvHeads * c.headDim;
  const perToken = 12 * c.hidden + 4 * kv + 6 * c.intermediate + 4 * c.heads * T;
  const pre = layerPrefix(c, 0);
  let weights = 0;
  for (const [k, shape] of expectedShapes(c)) if (k.startsWith(pre) && shape.length === 2) weights += shape[0] * shape[1];
  return 4 * (B * T * perToken + weights);
}

export interface GradPlan {
  mode: GradMode;
  /** the stored engine's estimated peak heap bytes, and what it was allowed */
  storedBytes: number;
  budgetBytes: number;
}

/**
 * checkpointing: auto. Small models (runsLayerByLayer false: below 8 layers and 20M parameters) take the fused
 * program; larger ones the stored engine when its estimate — the weights, the gradients twice (one micro-batch's
 * and the accumulated sum), the device optimizer's moments where they are on the device, every layer's residuals,
 * one block's backward and the head's chunk buffers — stays within STORED_HEAP_SHARE of the 4 GiB heap; else the
 * recomputing layer-by-layer engine.
 */
export function planGradients(o: { config: ModelConfig; small: boolean; weightBytes: number; trainableBytes: number; optimizerOnDevice: boolean; B: number; T: number }): GradPlan {
  const c = o.config;
  const layer = storedLayerBytes(c, o.B, o.T);
  const head = 4 * 4 * Math.min(o.B * o.T * c.vocabSize, HEAD_ELEMENTS);
  const storedBytes = o.weightBytes + 2 * o.trainableBytes + (o.optimizerOnDevice ? 2 * o.trainableBytes : 0) + (c.layers + 2) * layer + head;
  const budgetBytes = STORED_HEAP_SHARE * WASM_HEAP_BYTES;
  const mode: GradMode = o.small ? 'fused' : storedBytes <= budgetBytes ? 'stored' : 'layers';
  return { mode, storedBytes, budgetBytes };
}

/** What the trainer needs from a gradient engine (segmented above, or fused below). */
export interface GradEngine {
  grad(p: Params, b: TrainBatch, invFreq: Tensor, norm: Tensor, keyBase: number): Promise<{ loss: Tensor; grads: Params }>;
  lossSum(p: Params, b: TrainBatch, invFreq: Tensor): Promise<Tensor>;
  dispose(): void;
}

/**
 * The whole model in one jitted valueAndGrad: no recomputation, so faster for small models (the 2.2M demo model:
 * ~1.35x), but jax-js holds every intermediate of every layer at once. Same numbers as makeSegmented, LoRA dropout
 * included (layer l's masks come from key keyBase + l split over the same module list).
 */
export function makeFused(c: ModelConfig, opts: SegmentedOptions): GradEngine {
  const dropout = opts.loraDropout ?? 0;
  const modIndex = new Map((opts.loraModules ?? []).map((m, i) => [m, i]));
  const lossSumOf = (t: Params, fr: Params, b: TrainBatch, inv: Tensor, keys: Tensor[] | undefined) => {
    let split: Tensor[] | undefined;
    const masks = keys
      ? (name: string, shape: number[]) => {
          split ??= keys.map((k) => random.split(k, Math.max(1, modIndex.size)));
          const { layer, sub } = splitLayerName(name)!;
          return dropoutMask(split[layer], modIndex.get(sub)!, dropout, shape);
        }
      : undefined;
    const nll = tokenNll(c, { ...fr, ...t }, b, inv, { loraScale: opts.loraScale, loraDropoutMasks: masks });
    split?.forEach((k) => k.dispose());
    return nll.mul(b.weights).sum();
  };
  const gradFn = jit((t: Params, fr: Params, b: TrainBatch, inv: Tensor, norm: Tensor, keys: Tensor[]) =>
    valueAndGrad((tt: Params) => lossSumOf(tt, fr, b, inv.ref, dropout > 0 ? keys.map((k) => k.ref) : undefined).div(norm.ref))(t),
  );
  const evalFn = jit((p: Params, b: TrainBatch, inv: Tensor) => lossSumOf({}, p, b, inv, undefined));
  const split = (p: Params) => {
    const T: Params = {};
    const F: Params = {};
    for (const [k, v] of Object.entries(p)) (opts.trainable.has(k) ? T : F)[k] = v.ref;
    return { T, F };
  };
  return {
    async grad(p, b, invFreq, norm, keyBase) {
      const { T, F } = split(p);
      const keys = Array.from({ length: dropout > 0 ? c.layers : 0 }, (_, l) => random.key(keyBase + l));
      const [loss, grads] = gradFn(T, F, b, invFreq, norm, keys) as [Tensor, Params];
      return { loss, grads };
    },
    async lossSum(p, b, invFreq) {
      return evalFn(tree.ref(p), b, invFreq) as Tensor;
    },
    dispose() {
      gradFn.dispose();
      evalFn.dispose();
    },
  };
}

