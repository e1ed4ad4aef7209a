/**
 * Generation in three layers (src/backends/types.ts):
 *  1. a logits session — here the in-process engine's EngineSession: prompts left-padded to one length, a
 *     jitted prefill computes the KV cache and the first logits, a jitted one-token decode step after that (the
 *     cache has a fixed capacity, prompt length + maxTokens rounded up, so the step compiles once);
 *  2. decodeLoop, the one host loop over any session: logits processors (the rule adapter), repetition penalty,
 *     sampling, EOS, stop strings, streaming;
 *  3. TextGenerator: EngineGenerator (engine) and SessionGenerator (any session, e.g. llama.cpp).
 */
import { jit, np, fromHost, toHost, tree, type Tensor } from '../engine/index.js';
import { HeedError } from '../errors.js';
import { ropeInvFreq, type ModelConfig } from '../models/config.js';
import { block, blockContext, contextFrom, contextTensors, embed, embedNames, forward, head, headNames, layerParams, pickParams, runsLayerByLayer, type KvCache, type Params } from '../models/transformer.js';
import type { Model } from '../models/load.js';
import { mulberry32 } from '../models/random.js';
import { applyRepetitionPenalty, sampleToken, type SamplingOptions } from './sampling.js';
import type { LogitsSession } from '../backends/types.js';

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

  private async prefillLayered(capacity: number, args: PrefillArgs): Promise<{ logits: Tensor; k: Tensor[]; v: Tensor[] }> {
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

  /** A logits session (layer 1) over this model: prefill a batch, then one token per row at a time. */
  session(): EngineSession {
    return new EngineSession(this.model.config, this.model.tokenizer.padId ?? this.model.tokenizer.eosIds[0] ?? 0, {
      params: () => this.model.params,
      layered: () => this.layered(),
      prefillLayered: (capacity, args) => this.prefillLayered(capacity, args),
      prefill: (capacity) => this.prefill(capacity),
      decode: () => this.decode(),
      invFreq: () => this.invFreqTensor(),
    });
  }

  /** Generate from token ids: the host decode loop over an engine session. */
  async generateIds(promptIds: number[][], opts: GenerateOptions = {}): Promise<Generation[]> {
    if (promptIds.length === 0) return [];
    const s = this.session();
    try {
      return await decodeLoop(s, promptIds, this.model.tokenizer, opts);
    } finally {
      s.dispose();
    }
  }
}

type PrefillArgs = { ids: Tensor; positions: Tensor; qSeg: Tensor; kSeg: Tensor; qSlot: Tensor; kSlot: Tensor; invFreq: Tensor };
interface EngineParts {
  params(): Params;
  layered(): boolean;
  prefillLayered(capacity: number, args: PrefillArgs): Promise<{ logits: Tensor; k: Tensor[]; v: Tensor[] }>;
  prefill(capacity: number): ReturnType<typeof jit>;
  decode(): ReturnType<typeof jit>;
  invFreq(): Tensor;
}

/**
 * The engine's logits session: prompts left-padded to one length (a multiple of 32, so that prompts of similar
 * length share one compiled prefill), a KV cache of fixed capacity (prompt length + maxTokens, rounded up to 64,
 * so the decode step compiles once), rows that stopped masked out of the cache.
 */
export class EngineSession implements LogitsSession {
  readonly vocabSize: number;
  private cache: KvCache | undefined;
  private T = 0;
  private capacity = 0;
  private steps = 0;
  private kSegFull = new Int32Array(0);
  private nextPos: number[] = [];
  private B = 0;

  constructor(private readonly c: ModelConfig, private readonly padId: number, private readonly e: EngineParts) {
    this.vocabSize = c.vocabSize;
  }

  private rows(flat: Float32Array): Float32Array[] {
    const V = this.vocabSize;
    return Array.from({ length: this.B }, (_, b) => flat.subarray(b * V, (b + 1) * V));
  }

  async prefill(promptIds: number[][], o: { maxTokens?: number; argmaxOnly?: boolean } = {}): Promise<Float32Array[]> {
    const c = this.c;
    if (this.cache) throw new Error('EngineSession.prefill called twice');
    const B = (this.B = promptIds.length);
    for (const [i, ids] of promptIds.entries()) {
      if (ids.length === 0) throw new HeedError(`prompt ${i} is empty after tokenisation`, 'give a non-empty prompt (or keep the BOS token)');
      for (const id of ids) if (!(id >= 0 && id < c.vocabSize)) throw new HeedError(`prompt ${i}: token id ${id} is outside the vocabulary (0..${c.vocabSize - 1})`, 'use the tokenizer that belongs to this model');
    }
    const maxTokens = o.maxTokens ?? 128;
    const longest = Math.max(...promptIds.map((p) => p.length));
    const T = (this.T = Math.min(Math.max(longest, c.maxPositions - maxTokens), ceilTo(longest, 32)));
    if (longest + maxTokens > c.maxPositions) {
      throw new HeedError(`prompt (${longest} tokens) + max tokens (${maxTokens}) exceeds the model's context length ${c.maxPositions}`, `lower --max-tokens to at most ${Math.max(0, c.maxPositions - longest)} or shorten the prompt`);
    }
    const capacity = (this.capacity = Math.min(c.maxPositions, ceilTo(T + maxTokens, 64)));
    const padId = this.padId;
    // left padding: row b's tokens occupy slots T - len .. T - 1
    const ids = new Int32Array(B * T).fill(padId);
    const pos = new Int32Array(B * T);
    const seg = new Int32Array(B * T).fill(-1);
    const kSegFull = (this.kSegFull = new Int32Array(B * capacity).fill(-1));
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
    this.nextPos = promptIds.map((x) => x.length);
    const p = this.e.params();
    const pre = this.e.layered()
      ? await this.e.prefillLayered(capacity, { ids: fromHost(ids, [B, T]), positions: fromHost(pos, [B, T]), qSeg: fromHost(seg, [B, T]), kSeg: fromHost(seg, [B, T]), qSlot: fromHost(slots(T), [T]), kSlot: fromHost(slots(T), [T]), invFreq: this.e.invFreq() })
      : (this.e.prefill(capacity)(tree.ref(p), fromHost(ids, [B, T]), fromHost(pos, [B, T]), fromHost(seg, [B, T]), fromHost(seg, [B, T]), fromHost(slots(T), [T]), fromHost(slots(T), [T]), this.e.invFreq()) as { logits: Tensor; k: Tensor[]; v: Tensor[] });
    this.cache = { k: pre.k, v: pre.v };
    return this.rows(await toHost(pre.logits));
  }

  async step(tokens: number[], active: readonly boolean[]): Promise<Float32Array[]> {
    if (!this.cache) throw new Error('EngineSession.step before prefill');
    const { B, capacity } = this;
    const slot = this.T + this.steps;
    if (slot >= capacity) throw new HeedError(`the engine session's cache is full (${capacity} slots)`, 'pass maxTokens to prefill');
    this.steps++;
    const next = new Int32Array(B).fill(this.padId);
    for (let b = 0; b < B; b++) if (active[b]) next[b] = tokens[b];
    const kSeg = this.kSegFull;
    for (let b = 0; b < B; b++) kSeg[b * capacity + slot] = active[b] ? 0 : -1;
    const posArr = Int32Array.from(this.nextPos);
    for (let b = 0; b < B; b++) this.nextPos[b]++;
    const qSeg = Int32Array.from({ length: B }, (_, b) => (active[b] ? 0 : -1));
    const wm = new Float32Array(capacity);
    wm[slot] = 1;
    const out = this.e.decode()(tree.ref(this.e.params()), this.cache.k, this.cache.v, fromHost(next, [B, 1]), fromHost(posArr, [B, 1]), fromHost(qSeg, [B, 1]), fromHost(kSeg, [B, capacity]), fromHost(Int32Array.of(slot), [1]), fromHost(slots(capacity), [capacity]), fromHost(wm, [capacity, 1]), this.e.invFreq()) as { logits: Tensor; k: Tensor[]; v: Tensor[] };
    this.cache = { k: out.k, v: out.v };
    return this.rows(await toHost(out.logits));
  }

  dispose(): void {
    if (!this.cache) return;
    tree.dispose(this.cache.k);
    tree.dispose(this.cache.v);
    this.cache = undefined;
  }
}

const slots = (n: number, from = 0) => Int32Array.from({ length: n }, (_, i) => from + i);

/** The tokenizer surface the host loop needs. */
export interface LoopTokenizer {
  decode(ids: number[], o?: { skipSpecialTokens?: boolean }): string;
  readonly eosIds: number[];
}

/**
 * The host decode loop (layer 2), the same for every backend with a logits session: each step, for every active
 * row, the logits processors (the rule adapter, …), the repetition penalty, then sampling; a row ends at an EOS
 * id, at a stop string (the text is cut before it) or after maxTokens; text is streamed through onText as it grows
 * (never half a UTF-8 character). The session is not disposed here.
 */
export async function decodeLoop(session: LogitsSession, promptIds: number[][], tok: LoopTokenizer, opts: GenerateOptions = {}): Promise<Generation[]> {
  const B = promptIds.length;
  if (B === 0) return [];
  const maxTokens = opts.maxTokens ?? 128;
  const eos = new Set(opts.eosIds ?? tok.eosIds);
  const stop = (opts.stop ?? []).filter((s) => s.length > 0);
  const rand = mulberry32(opts.seed ?? 0);
  const argmaxOnly = !(opts.temperature && opts.temperature > 0) && !opts.logitsProcessors?.length && (opts.repetitionPenalty === undefined || opts.repetitionPenalty === 1);
  let logits = await session.prefill(promptIds, { maxTokens, argmaxOnly });
  const seqs = promptIds.map((x) => [...x]);
  const gen: number[][] = promptIds.map(() => []);
  const texts = promptIds.map(() => '');
  const done: (FinishReason | null)[] = promptIds.map(() => null);
  for (let step = 0; step < maxTokens; step++) {
    const next: number[] = new Array(B).fill(0);
    for (let b = 0; b < B; b++) {
      if (done[b]) continue;
      let row = logits[b];
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
    logits = await session.step(next, done.map((d) => !d));
  }
  return promptIds.map((pids, b) => ({
    prompt: '',
    promptIds: pids,
    text: done[b] === 'stop' ? texts[b] : gen[b].length ? tok.decode(gen[b], { skipSpecialTokens: true }) : '',
    ids: gen[b],
    finishReason: done[b] ?? 'length',
  }));
}

/**
 * A TextGenerator (layer 3) over any backend with a logits session and a tokenizer: encode, run the host loop,
 * decode. Used for llama.cpp; the engine's EngineGenerator is the same loop over an EngineSession.
 */
export class SessionGenerator implements TextGenerator {
  constructor(
    readonly name: string,
    private readonly tok: LoopTokenizer & { encode(text: string, o?: { addSpecialTokens?: boolean }): number[] },
    private readonly open: () => Promise<LogitsSession>,
  ) {}

  async generate(prompts: string[], opts: GenerateOptions = {}): Promise<Generation[]> {
    const promptIds = prompts.map((p) => this.tok.encode(p, { addSpecialTokens: opts.addSpecialTokens ?? true }));
    const res = await this.generateIds(promptIds, opts);
    return res.map((r, i) => ({ ...r, prompt: prompts[i] }));
  }

  async generateIds(promptIds: number[][], opts: GenerateOptions = {}): Promise<Generation[]> {
    if (promptIds.length === 0) return [];
    const s = await this.open();
    try {
      return await decodeLoop(s, promptIds, this.tok, opts);
    } finally {
      await s.dispose();
    }
  }
}

