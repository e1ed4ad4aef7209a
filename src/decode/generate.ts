/**
 * Batched generation with a KV cache on the in-process engine.
 *
 * Prompts are left-padded to one length; a jitted prefill computes the cache and the first logits, then a
 * jitted one-token decode step runs until every row stopped (EOS, a stop string, or maxTokens). The cache
 * has a fixed capacity (prompt length + maxTokens, rounded up) so the decode step compiles once.
 * Logits come to the host each step, where logits processors (the rule adapter, penalties) and sampling run.
 */
import { jit, np, fromHost, toHost, tree, type Tensor } from '../engine/index.js';
import { HeedError } from '../errors.js';
import { ropeInvFreq, type ModelConfig } from '../models/config.js';
import { block, blockContext, contextFrom, contextTensors, embed, embedNames, forward, head, headNames, layerParams, pickParams, runsLayerByLayer, type KvCache, type Params } from '../models/transformer.js';
import type { Model } from '../models/load.js';
import { mulberry32 } from '../models/random.js';
import { applyRepetitionPenalty, sampleToken, type SamplingOptions } from './sampling.js';

/** Context passed to a logits processor. */
export interface ProcessorContext {
  row: number;
  /** number of prompt tokens (the generated part starts there) */
  promptLength: number;
  /** tokens generated so far for this row */
  step: number;
}

/**
 * A logits processor: (token ids so far — prompt then generated —, logits) → logits. It may modify the array
 * in place and return it. Applied to every row at every step before sampling.
 */
export type LogitsProcessor = (ids: readonly number[], logits: Float32Array, ctx: ProcessorContext) => Float32Array;

export interface GenerateOptions extends SamplingOptions {
  maxTokens?: number;
  seed?: number;
  /** stop when the generated text contains one of these (the text is cut before it) */
  stop?: string[];
  /** token ids that end a row; defaults to the tokenizer's EOS ids */
  eosIds?: number[];
  logitsProcessors?: LogitsProcessor[];
  /** called with each row's newly decoded text as it grows (streaming) */
  onText?: (row: number, delta: string) => void;
  /** add the tokenizer's special tokens (e.g. BOS) when encoding string prompts; default true */
  addSpecialTokens?: boolean;
}

export type FinishReason = 'eos' | 'stop' | 'length';

export interface Generation {
  prompt: string;
  promptIds: number[];
  text: string;
  ids: number[];
  finishReason: FinishReason;
}

/** The one generation interface: a batch of prompts in, texts and token ids out. */
export interface TextGenerator {
  readonly name: string;
  generate(prompts: string[], opts?: GenerateOptions): Promise<Generation[]>;
}

const ceilTo = (n: number, m: number) => Math.ceil(n / m) * m;

/** In-process generator over a loaded model: compiles prefill/decode once per shape and reuses them. */
export class EngineGenerator implements TextGenerator {
  readonly name: string;
  private readonly invFreq: Float32Array | undefined;
  private prefillFns = new Map<string, ReturnType<typeof jit>>();
  private decodeFn: ReturnType<typeof jit> | undefined;

  constructor(readonly model: Pick<Model, 'config' | 'params' | 'tokenizer'> & { dir?: string; /** LoRA alpha/r when params hold lora_A/lora_B adapters */ loraScale?: number }) {
    this.name = model.dir ?? 'model';
    this.invFreq = model.config.arch === 'llama' ? ropeInvFreq(model.config) : undefined;
  }

  /** Free the compiled prefill/decode programs (they are rebuilt on the next call). */
  dispose(): void {
    for (const f of this.prefillFns.values()) f.dispose();
    this.prefillFns.clear();
    this.decodeFn?.dispose();
    if (this.layerFns) {
      for (const fn of [this.layerFns.ctx, this.layerFns.embed, this.layerFns.head, ...this.layerFns.blocks.values()]) fn.dispose();
      this.layerFns = undefined;
    }
    this.decodeFn = undefined;
  }

  private invFreqTensor(): Tensor {
    return this.invFreq ? fromHost(this.invFreq, [this.invFreq.length]) : np.zeros([1]);
  }

  /**
   * Prefill block by block for larger models (runsLayerByLayer, the trainer's rule): one jitted
   * whole-model prefill holds every layer's intermediates at once, and each prompt length compiles a program
   * whose buffers the wasm allocator cannot reuse for other lengths — `heed ifs` on the SmolLM2-135M shape ran
   * out of the 4 GiB heap after 64 prompts. Block by block (each awaited), one block's buffers are alive.
   */
  private layered(): boolean {
    return this.prefillMode === 'auto' ? runsLayerByLayer(this.model.config, this.model.params) : this.prefillMode === 'layers';
  }

  private layerFns?: { ctx: ReturnType<typeof jit>; embed: ReturnType<typeof jit>; head: ReturnType<typeof jit>; blocks: Map<number, ReturnType<typeof jit>> };

  private async prefillLayered(capacity: number, args: { ids: Tensor; positions: Tensor; qSeg: Tensor; kSeg: Tensor; qSlot: Tensor; kSlot: Tensor; invFreq: Tensor }): Promise<{ logits: Tensor; k: Tensor[]; v: Tensor[] }> {
    const c = this.model.config;
    const o = { loraScale: this.model.loraScale };
    const f = (this.layerFns ??= {
      ctx: jit((positions: Tensor, qSeg: Tensor, kSeg: Tensor, qSlot: Tensor, kSlot: Tensor, invFreq: Tensor) => contextTensors(blockContext(c, { positions, qSeg, kSeg, qSlot, kSlot }, { invFreq }))),
      embed: jit((e: Params, ids: Tensor, positions: Tensor) => embed(c, e, ids, positions)),
      head: jit((hp: Params, x3: Tensor) => {
        const [B, T, D] = x3.shape;
        return head(c, hp, x3.reshape([B * T, D]), B, T, true);
      }),
      blocks: new Map(),
    });
    let blk = f.blocks.get(capacity);
    if (!blk) {
      blk = jit((lp: Params, x: Tensor, ctx: Record<string, Tensor>) => {
        const bc = contextFrom(ctx);
        const r = block(c, lp, x, bc, o);
        const padKv = (t: Tensor) => np.pad(t, [[0, 0], [0, 0], [0, capacity - bc.T], [0, 0]]);
        return { x: r.x, k: padKv(r.k), v: padKv(r.v) };
      });
      f.blocks.set(capacity, blk);
    }
    const p = this.model.params;
    const [B, T] = args.ids.shape;
    const ctx = f.ctx(args.positions.ref, args.qSeg, args.kSeg, args.qSlot, args.kSlot, args.invFreq) as Record<string, Tensor>;
    let x = f.embed(pickParams(p, embedNames(c)), args.ids, args.positions) as Tensor;
    const k: Tensor[] = [];
    const v: Tensor[] = [];
    for (let l = 0; l < c.layers; l++) {
      const r = blk(tree.ref(layerParams(c, p, l)), x, tree.ref(ctx)) as { x: Tensor; k: Tensor; v: Tensor };
      x = r.x;
      k.push(r.k);
      v.push(r.v);
      await x.blockUntilReady();
    }
    tree.dispose(ctx);
    return { logits: f.head(pickParams(p, headNames(c)), x.reshape([B, T, c.hidden])) as Tensor, k, v };
  }

  /** prefill whole-model (`fused`), block by block (`layers`), or by model size (`auto`) */
  prefillMode: 'auto' | 'layers' | 'fused' = 'auto';

  private prefill(capacity: number) {
    const c = this.model.config;
    const key = String(capacity);
    let fn = this.prefillFns.get(key);
    if (!fn) {
      fn = jit((p: Params, ids: Tensor, positions: Tensor, qSeg: Tensor, kSeg: Tensor, qSlot: Tensor, kSlot: Tensor, invFreq: Tensor) => {
        const out = forward(c, p, { ids, positions, qSeg, kSeg, qSlot, kSlot }, { lastOnly: true, returnCache: true, invFreq, loraScale: this.model.loraScale });
        const T = ids.shape[1];
        const padKv = (x: Tensor) => np.pad(x, [[0, 0], [0, 0], [0, capacity - T], [0, 0]]);
        return { logits: out.logits, k: out.cache!.k.map(padKv), v: out.cache!.v.map(padKv) };
      });
      this.prefillFns.set(key, fn);
    }
    return fn;
  }

  private decode() {
    const c = this.model.config;
    if (!this.decodeFn) {
      this.decodeFn = jit((p: Params, k: Tensor[], v: Tensor[], ids: Tensor, positions: Tensor, qSeg: Tensor, kSeg: Tensor, qSlot: Tensor, kSlot: Tensor, writeMask: Tensor, invFreq: Tensor) => {
        const out = forward(c, p, { ids, positions, qSeg, kSeg, qSlot, kSlot }, { lastOnly: true, returnCache: true, cache: { k, v }, writeMask, invFreq, loraScale: this.model.loraScale });
        return { logits: out.logits, k: out.cache!.k, v: out.cache!.v };
      });
    }
    return this.decodeFn;
  }

  async generate(prompts: string[], opts: GenerateOptions = {}): Promise<Generation[]> {
    const tok = this.model.tokenizer;
    const promptIds = prompts.map((p) => tok.encode(p, { addSpecialTokens: opts.addSpecialTokens ?? true }));
    const res = await this.generateIds(promptIds, opts);
    return res.map((r, i) => ({ ...r, prompt: prompts[i] }));
  }

  /** Generate from token ids. */
  async generateIds(promptIds: number[][], opts: GenerateOptions = {}): Promise<Generation[]> {
    const c: ModelConfig = this.model.config;
    const tok = this.model.tokenizer;
    const B = promptIds.length;
    if (B === 0) return [];
    for (const [i, ids] of promptIds.entries()) {
      if (ids.length === 0) throw new HeedError(`prompt ${i} is empty after tokenisation`, 'give a non-empty prompt (or keep the BOS token)');
      for (const id of ids) if (!(id >= 0 && id < c.vocabSize)) throw new HeedError(`prompt ${i}: token id ${id} is outside the vocabulary (0..${c.vocabSize - 1})`, 'use the tokenizer that belongs to this model');
    }
    const maxTokens = opts.maxTokens ?? 128;
    // Left-pad to a multiple of 32 so that prompts of similar length share one compiled prefill (each new
    // shape costs a trace and memory in jax-js); padding is masked out, positions are unaffected.
    const longest = Math.max(...promptIds.map((p) => p.length));
    const T = Math.min(Math.max(longest, c.maxPositions - maxTokens), ceilTo(longest, 32));
    if (longest + maxTokens > c.maxPositions) {
      throw new HeedError(`prompt (${longest} tokens) + max tokens (${maxTokens}) exceeds the model's context length ${c.maxPositions}`, `lower --max-tokens to at most ${Math.max(0, c.maxPositions - longest)} or shorten the prompt`);
    }
    const capacity = Math.min(c.maxPositions, ceilTo(T + maxTokens, 64));
    const eos = new Set(opts.eosIds ?? tok.eosIds);
    const stop = (opts.stop ?? []).filter((s) => s.length > 0);
    const rand = mulberry32(opts.seed ?? 0);
    const padId = tok.padId ?? tok.eosIds[0] ?? 0;

    // left padding: row b's tokens occupy slots T - len .. T - 1
    const ids = new Int32Array(B * T).fill(padId);
    const pos = new Int32Array(B * T);
    const seg = new Int32Array(B * T).fill(-1);
    const kSegFull = new Int32Array(B * capacity).fill(-1);
    for (let b = 0; b < B; b++) {
      const p = promptIds[b];
      const off = T - p.length;
      for (let t = 0; t < p.length; t++) {
        ids[b * T + off + t] = p[t];
        pos[b * T + off + t] = t;
        seg[b * T + off + t] = 0;
        kSegFull[b * capacity + off + t] = 0;
      }
    }
    const slots = (n: number, from = 0) => Int32Array.from({ length: n }, (_, i) => from + i);
    const p = this.model.params;
    const pre = this.layered()
      ? await this.prefillLayered(capacity, { ids: fromHost(ids, [B, T]), positions: fromHost(pos, [B, T]), qSeg: fromHost(seg, [B, T]), kSeg: fromHost(seg, [B, T]), qSlot: fromHost(slots(T), [T]), kSlot: fromHost(slots(T), [T]), invFreq: this.invFreqTensor() })
      : (this.prefill(capacity)(tree.ref(p), fromHost(ids, [B, T]), fromHost(pos, [B, T]), fromHost(seg, [B, T]), fromHost(seg, [B, T]), fromHost(slots(T), [T]), fromHost(slots(T), [T]), this.invFreqTensor()) as { logits: Tensor; k: Tensor[]; v: Tensor[] });
    let cache: KvCache = { k: pre.k, v: pre.v };
    let logits = await toHost(pre.logits);

    const seqs = promptIds.map((x) => [...x]);
    const gen: number[][] = promptIds.map(() => []);
    const texts = promptIds.map(() => '');
    const done: (FinishReason | null)[] = promptIds.map(() => null);
    const V = c.vocabSize;
    const nextPos = promptIds.map((x) => x.length);
    try {
      for (let step = 0; step < maxTokens; step++) {
        const next = new Int32Array(B).fill(padId);
        for (let b = 0; b < B; b++) {
          if (done[b]) continue;
          let row = logits.subarray(b * V, (b + 1) * V);
          for (const proc of opts.logitsProcessors ?? []) row = proc(seqs[b], row, { row: b, promptLength: promptIds[b].length, step });
          if (opts.repetitionPenalty !== undefined) row = applyRepetitionPenalty(row, seqs[b], opts.repetitionPenalty);
          const t = sampleToken(row, opts, rand);
          next[b] = t;
          if (eos.has(t)) {
            done[b] = 'eos';
            continue;
          }
          seqs[b].push(t);
          gen[b].push(t);
          const text = tok.decode(gen[b], { skipSpecialTokens: true });
          let cut = -1;
          for (const s of stop) {
            const at = text.indexOf(s);
            if (at >= 0 && (cut < 0 || at < cut)) cut = at;
          }
          const shown = cut >= 0 ? text.slice(0, cut) : text.endsWith('\uFFFD') ? texts[b] : text;
          if (shown.length > texts[b].length && shown.startsWith(texts[b])) opts.onText?.(b, shown.slice(texts[b].length));
          texts[b] = shown;
          if (cut >= 0) done[b] = 'stop';
        }
        if (done.every((d) => d)) break;
        if (step === maxTokens - 1) break;
        // one decode step at slot T + step
        const slot = T + step;
        const kSeg = kSegFull;
        for (let b = 0; b < B; b++) kSeg[b * capacity + slot] = done[b] ? -1 : 0;
        const posArr = Int32Array.from(nextPos);
        for (let b = 0; b < B; b++) nextPos[b]++;
        const qSeg = Int32Array.from({ length: B }, (_, b) => (done[b] ? -1 : 0));
        const wm = new Float32Array(capacity);
        wm[slot] = 1;
        const out = this.decode()(tree.ref(p), cache.k, cache.v, fromHost(next, [B, 1]), fromHost(posArr, [B, 1]), fromHost(qSeg, [B, 1]), fromHost(kSeg, [B, capacity]), fromHost(Int32Array.of(slot), [1]), fromHost(slots(capacity), [capacity]), fromHost(wm, [capacity, 1]), this.invFreqTensor()) as { logits: Tensor; k: Tensor[]; v: Tensor[] };
        cache = { k: out.k, v: out.v };
        logits = await toHost(out.logits);
      }
    } finally {
      tree.dispose(cache.k);
      tree.dispose(cache.v);
    }
    return promptIds.map((pids, b) => ({
      prompt: '',
      promptIds: pids,
      text: done[b] === 'stop' ? texts[b] : gen[b].length ? tok.decode(gen[b], { skipSpecialTokens: true }) : '',
      ids: gen[b],
      finishReason: done[b] ?? 'length',
    }));
  }
}
