/**
 * Decoder-only transformers as pure functions: (config, params, inputs) → logits, with an optional KV cache.
 * Params are a flat record keyed by Hugging Face tensor names in Hugging Face layouts (Linear weights
 * [out, in]; GPT-2 Conv1D weights [in, out]; GPT-2 names without the "transformer." prefix).
 *
 * Attention masking is one rule for every use (training, packing, batched generation with left padding):
 * query i may attend key j iff slot(j) <= slot(i) and segment(j) == segment(i) (and, with a sliding window,
 * slot(i) - slot(j) < window). Padding gets segment -1. Masked scores get -1e9 (not -inf) so a fully
 * masked padding row yields a harmless uniform softmax instead of NaN.
 *
 * jax-js ownership: every op consumes its array arguments; `.ref` keeps a reference. Functions here
 * consume their inputs except `p` (params), which they only read via `.ref`.
 */
import { np, nn, embedLookup, materialize, type Tensor } from '../engine/index.js';
import type { Gpt2Config, LlamaConfig, ModelConfig } from './config.js';

export type Params = Record<string, Tensor>;

export interface ForwardInputs {
  ids: Tensor; // [B, T] int32
  positions: Tensor; // [B, T] int32: RoPE / learned-position index of each token
  qSeg: Tensor; // [B, T] int32 segment of each query (-1 = padding)
  kSeg: Tensor; // [B, S] int32 segment of each key
  qSlot: Tensor; // [T] int32 slot (sequence index) of each query
  kSlot: Tensor; // [S] int32 slot of each key
}

/** KV cache: per layer keys/values [B, kvHeads, S, headDim]; writeMask [S, 1] one-hot of the slot being written. */
export interface KvCache {
  k: Tensor[];
  v: Tensor[];
}

export interface ForwardOptions {
  /** keys/values of earlier tokens (decode step, T = 1), to be updated at writeMask's slot */
  cache?: KvCache;
  writeMask?: Tensor; // [S, 1] float32
  /** compute logits for the last position only */
  lastOnly?: boolean;
  /** return the new keys/values (prefill returns [B,kvH,T,hd] per layer; decode returns the updated cache) */
  returnCache?: boolean;
  /** RoPE inverse frequencies [headDim/2] (llama family; consumed) */
  invFreq?: Tensor;
  /** LoRA: alpha / r */
  loraScale?: number;
  /** LoRA dropout: returns a scaled keep-mask for the input of a module's LoRA branch */
  loraDropoutMasks?: (module: string, shape: number[]) => Tensor;
}

export interface ForwardOutput {
  logits: Tensor; // [B, T, V] or [B, V] with lastOnly
  cache?: KvCache;
}

const NEG = -1e9;

function attentionBias(inp: ForwardInputs, B: number, T: number, S: number, window: number | null): Tensor {
  const qSlot = inp.qSlot.reshape([1, T, 1]);
  const kSlot = inp.kSlot.reshape([1, 1, S]);
  let allowed = np.lessEqual(kSlot.ref, qSlot.ref);
  if (window !== null) allowed = np.logicalAnd(allowed, np.less(qSlot.sub(kSlot), window));
  else {
    qSlot.dispose();
    kSlot.dispose();
  }
  allowed = np.logicalAnd(allowed, np.equal(inp.kSeg.reshape([B, 1, S]), inp.qSeg.reshape([B, T, 1])));
  return np.where(allowed, 0, NEG).astype(np.float32).reshape([B, 1, 1, T, S]);
}

/** softmax(q kᵀ / √d + bias) v with grouped-query heads. q [B,H,T,hd], k/v [B,kvH,S,hd] → [B*T, H*hd]. */
function attend(q: Tensor, k: Tensor, v: Tensor, bias: Tensor, heads: number, kvHeads: number): Tensor {
  const [B, , T, hd] = q.shape;
  const S = k.shape[2];
  const rep = heads / kvHeads;
  const q5 = q.reshape([B, kvHeads, rep, T, hd]).mul(1 / Math.sqrt(hd));
  const kT = k.reshape([B, kvHeads, 1, S, hd]).transpose([0, 1, 2, 4, 3]);
  const scores = np.matmul(q5, kT).add(bias);
  const probs = nn.softmax(scores, -1);
  const out = np.matmul(probs, v.reshape([B, kvHeads, 1, S, hd])); // [B,kvH,rep,T,hd]
  return materialize(out.reshape([B, heads, T, hd]).transpose([0, 2, 1, 3])).reshape([B * T, heads * hd]);
}

/**
 * A projection by module name: y = x·Wᵀ + b (HF Linear, W [out,in]) or y = x·W + b (GPT-2 Conv1D, W [in,out]),
 * plus a LoRA branch scale·(x·Aᵀ)·Bᵀ when `<module>.lora_A` [r,in] and `<module>.lora_B` [out,r] are in p.
 */
function proj(p: Params, module: string, x: Tensor, o: ForwardOptions, conv1d = false): Tensor {
  const w = p[`${module}.weight`].ref;
  const b = p[`${module}.bias`]?.ref;
  const A = p[`${module}.lora_A`];
  let y = A ? np.matmul(x.ref, conv1d ? w : w.transpose()) : np.matmul(x, conv1d ? w : w.transpose());
  if (b) y = y.add(b);
  if (A) {
    let xa = x;
    if (o.loraDropoutMasks) xa = xa.mul(o.loraDropoutMasks(module, x.shape));
    const z = np.matmul(np.matmul(xa, A.ref.transpose()), p[`${module}.lora_B`].ref.transpose());
    y = y.add(z.mul(o.loraScale ?? 1));
  }
  return y;
}

function rmsNorm(x: Tensor, w: Tensor, eps: number): Tensor {
  const ms = np.square(x.ref).mean(-1, { keepdims: true });
  return x.mul(np.reciprocal(np.sqrt(ms.add(eps)))).mul(w);
}

function layerNorm(x: Tensor, w: Tensor, b: Tensor, eps: number): Tensor {
  const mu = x.ref.mean(-1, { keepdims: true });
  const xc = x.sub(mu);
  const va = np.square(xc.ref).mean(-1, { keepdims: true });
  return xc.mul(np.reciprocal(np.sqrt(va.add(eps)))).mul(w).add(b);
}

/** rotate_half RoPE on x [B, nh, T, hd] with cos/sin [B, 1, T, hd/2]. */
function rope(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  const [x1, x2] = np.split(x, 2, -1);
  const a = x1.ref.mul(cos.ref).sub(x2.ref.mul(sin.ref));
  const b = x2.mul(cos).add(x1.mul(sin));
  return np.concatenate([a, b], -1);
}

function mergeCache(old: Tensor | undefined, fresh: Tensor, writeMask: Tensor | undefined): Tensor {
  if (!old) return fresh;
  // fresh [B,kvH,1,hd] broadcasts over the S axis; writeMask [S,1] selects the slot being written.
  const keep = np.subtract(1, writeMask!.ref);
  return old.mul(keep).add(fresh.mul(writeMask!.ref));
}

function lmHead(c: ModelConfig, p: Params, x: Tensor, B: number, T: number, lastOnly: boolean): Tensor {
  let h = x;
  if (lastOnly) h = h.reshape([B, T, c.hidden]).slice([], T - 1);
  const logits = np.matmul(h, outputMatrix(c, p).ref.transpose());
  return lastOnly ? logits : logits.reshape([B, T, c.vocabSize]);
}

/** What every block of one forward pass shares: the attention bias and (llama) the RoPE tables. */
export interface BlockContext {
  B: number;
  T: number;
  bias: Tensor; // [B,1,1,T,S]
  cos?: Tensor; // [B,1,T,hd/2]
  sin?: Tensor;
}

/** The attention bias and RoPE tables (no parameters). Consumes the masking inputs and o.invFreq. */
export function blockContext(c: ModelConfig, inp: Omit<ForwardInputs, 'ids'> & { ids?: Tensor }, o: Pick<ForwardOptions, 'invFreq'>): BlockContext {
  const [B, T] = inp.qSeg.shape;
  const S = inp.kSlot.shape[0];
  inp.ids?.dispose();
  const bias = attentionBias(inp as ForwardInputs, B, T, S, c.arch === 'llama' ? c.slidingWindow : null);
  if (c.arch !== 'llama') {
    inp.positions.dispose();
    o.invFreq?.dispose();
    return { B, T, bias };
  }
  const ang = inp.positions.astype(np.float32).reshape([B, 1, T, 1]).mul(o.invFreq!.reshape([1, 1, 1, c.headDim / 2]));
  return { B, T, bias, cos: np.cos(ang.ref), sin: np.sin(ang) };
}

export function disposeContext(ctx: BlockContext): void {
  ctx.bias.dispose();
  ctx.cos?.dispose();
  ctx.sin?.dispose();
}

/** A block context as a plain record of arrays (what a jitted function can return or take). */
export function contextTensors(ctx: BlockContext): Record<string, Tensor> {
  return ctx.cos ? { bias: ctx.bias, cos: ctx.cos, sin: ctx.sin! } : { bias: ctx.bias };
}

/** The inverse of contextTensors (B and T come from the bias [B,1,1,T,S]). */
export function contextFrom(t: Record<string, Tensor>): BlockContext {
  return { B: t.bias.shape[0], T: t.bias.shape[3], bias: t.bias, cos: t.cos, sin: t.sin };
}

/**
 * Whether to run a model block by block (training gradients, generation prefill) rather than as one jitted
 * program: from 8 layers or 20M parameters on. jax-js holds every buffer of a queued program until it has run,
 * so a whole-model program needs every layer's intermediates at once; below this size that fits and one
 * program is faster.
 */
export function runsLayerByLayer(c: ModelConfig, p: Params): boolean {
  return c.layers >= 8 || Object.values(p).reduce((a, t) => a + t.size, 0) >= 20e6;
}

/** Names of the embedding tensors (read by `embed`). */
export function embedNames(c: ModelConfig): string[] {
  return c.arch === 'gpt2' ? ['wte.weight', 'wpe.weight'] : ['model.embed_tokens.weight'];
}

/** Names of the tensors read by `head` (final norm and output matrix; tied models: the embedding). */
export function headNames(c: ModelConfig): string[] {
  return [...(c.arch === 'gpt2' ? ['ln_f.weight', 'ln_f.bias'] : ['model.norm.weight']), outputMatrixName(c)];
}

/** Name of the output matrix [V, D] (tied models: the embedding). */
export function outputMatrixName(c: ModelConfig): string {
  return c.arch === 'gpt2' ? 'wte.weight' : c.tieEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
}

/** Prefix of layer l's tensor names. */
export function layerPrefix(c: ModelConfig, l: number): string {
  return c.arch === 'gpt2' ? `h.${l}.` : `model.layers.${l}.`;
}

/** Layer index and name inside the layer of a layer tensor or module name (undefined for other names). */
export function splitLayerName(name: string): { layer: number; sub: string } | undefined {
  const m = /^(?:model\.layers|h)\.(\d+)\.(.*)$/.exec(name);
  return m ? { layer: Number(m[1]), sub: m[2] } : undefined;
}

/** The named tensors present in p, each with a new reference (for passing into a jitted call). */
export function pickParams(p: Params, names: string[]): Params {
  return Object.fromEntries(names.filter((n) => p[n]).map((n) => [n, p[n].ref]));
}

/** Layer l's tensors keyed by their names without the layer prefix (the same keys for every layer). */
export function layerParams(c: ModelConfig, p: Params, l: number): Params {
  const pre = layerPrefix(c, l);
  const out: Params = {};
  for (const [k, v] of Object.entries(p)) if (k.startsWith(pre)) out[k.slice(pre.length)] = v;
  return out;
}

/** Token (+ GPT-2 position) embeddings → x [B*T, D]. Consumes ids and positions; reads p. */
export function embed(c: ModelConfig, p: Params, ids: Tensor, positions: Tensor): Tensor {
  const [B, T] = ids.shape;
  if (c.arch === 'gpt2') return embedLookup(p['wte.weight'].ref, ids).add(embedLookup(p['wpe.weight'].ref, positions)).reshape([B * T, c.hidden]);
  positions.dispose();
  return embedLookup(p['model.embed_tokens.weight'].ref, ids).reshape([B * T, c.hidden]);
}

export interface BlockCache {
  k?: Tensor;
  v?: Tensor;
  writeMask?: Tensor;
}

/**
 * One transformer block on x [B*T, D] with the layer's params `lp` (names without the layer prefix). Consumes
 * x and the cache tensors; reads lp and ctx. Returns the new x and the block's keys/values (for caching).
 */
export function block(c: ModelConfig, lp: Params, x: Tensor, ctx: BlockContext, o: ForwardOptions, cache: BlockCache = {}): { x: Tensor; k: Tensor; v: Tensor } {
  return c.arch === 'gpt2' ? gpt2Block(c, lp, x, ctx, o, cache) : llamaBlock(c, lp, x, ctx, o, cache);
}

function llamaBlock(c: LlamaConfig, lp: Params, x: Tensor, ctx: BlockContext, o: ForwardOptions, cache: BlockCache): { x: Tensor; k: Tensor; v: Tensor } {
  const { B, T } = ctx;
  const hd = c.headDim;
  const g = (n: string) => lp[n].ref;
  const h = rmsNorm(x.ref, g('input_layernorm.weight'), c.rmsEps);
  const q = proj(lp, 'self_attn.q_proj', h.ref, o).reshape([B, T, c.heads, hd]).transpose([0, 2, 1, 3]);
  let k = proj(lp, 'self_attn.k_proj', h.ref, o).reshape([B, T, c.kvHeads, hd]).transpose([0, 2, 1, 3]);
  let v = proj(lp, 'self_attn.v_proj', h, o).reshape([B, T, c.kvHeads, hd]).transpose([0, 2, 1, 3]);
  const qr = rope(q, ctx.cos!.ref, ctx.sin!.ref);
  k = mergeCache(cache.k, rope(k, ctx.cos!.ref, ctx.sin!.ref), cache.writeMask);
  v = mergeCache(cache.v, v, cache.writeMask);
  cache.writeMask?.dispose();
  const y = attend(qr, k.ref, v.ref, ctx.bias.ref, c.heads, c.kvHeads);
  x = x.add(proj(lp, 'self_attn.o_proj', y, o));
  const h2 = rmsNorm(x.ref, g('post_attention_layernorm.weight'), c.rmsEps);
  const gate = nn.silu(proj(lp, 'mlp.gate_proj', h2.ref, o));
  const up = proj(lp, 'mlp.up_proj', h2, o);
  x = x.add(proj(lp, 'mlp.down_proj', gate.mul(up), o));
  return { x, k, v };
}

function gpt2Block(c: Gpt2Config, lp: Params, x: Tensor, ctx: BlockContext, o: ForwardOptions, cache: BlockCache): { x: Tensor; k: Tensor; v: Tensor } {
  const { B, T } = ctx;
  const hd = c.headDim;
  const g = (n: string) => lp[n].ref;
  const heads = (t: Tensor) => t.reshape([B, T, c.heads, hd]).transpose([0, 2, 1, 3]);
  const h = layerNorm(x.ref, g('ln_1.weight'), g('ln_1.bias'), c.eps);
  const qkv = proj(lp, 'attn.c_attn', h, o, true);
  const [q, k0, v0] = np.split(qkv, 3, -1);
  const k = mergeCache(cache.k, heads(k0), cache.writeMask);
  const v = mergeCache(cache.v, heads(v0), cache.writeMask);
  cache.writeMask?.dispose();
  const y = attend(heads(q), k.ref, v.ref, ctx.bias.ref, c.heads, c.heads);
  x = x.add(proj(lp, 'attn.c_proj', y, o, true));
  const h2 = layerNorm(x.ref, g('ln_2.weight'), g('ln_2.bias'), c.eps);
  const f = nn.gelu(proj(lp, 'mlp.c_fc', h2, o, true), { approximate: true });
  x = x.add(proj(lp, 'mlp.c_proj', f, o, true));
  return { x, k, v };
}

/** Final norm and LM head: x [B*T, D] → logits [B,T,V] (or [B,V] with lastOnly). Consumes x; reads p. */
export function head(c: ModelConfig, p: Params, x: Tensor, B: number, T: number, lastOnly = false): Tensor {
  return lmHead(c, p, finalNorm(c, p, x), B, T, lastOnly);
}

/** The final norm before the LM head. Consumes x; reads p. */
export function finalNorm(c: ModelConfig, p: Params, x: Tensor): Tensor {
  return c.arch === 'gpt2' ? layerNorm(x, p['ln_f.weight'].ref, p['ln_f.bias'].ref, c.eps) : rmsNorm(x, p['model.norm.weight'].ref, c.rmsEps);
}

/** The output matrix [V, D] (tied models: the embedding). Read, not consumed. */
export function outputMatrix(c: ModelConfig, p: Params): Tensor {
  return p[outputMatrixName(c)];
}

/** One forward pass. Consumes the inputs, the cache and writeMask; reads params. */
export function forward(c: ModelConfig, p: Params, inp: ForwardInputs, o: ForwardOptions = {}): ForwardOutput {
  const [B, T] = inp.ids.shape;
  let x = embed(c, p, inp.ids, inp.positions.ref);
  const ctx = blockContext(c, { ...inp, ids: undefined }, o);
  const newK: Tensor[] = [];
  const newV: Tensor[] = [];
  for (let l = 0; l < c.layers; l++) {
    const pre = layerPrefix(c, l);
    const lo: ForwardOptions = o.loraDropoutMasks ? { ...o, loraDropoutMasks: (m, shape) => o.loraDropoutMasks!(pre + m, shape) } : o;
    const r = block(c, layerParams(c, p, l), x, ctx, lo, { k: o.cache?.k[l], v: o.cache?.v[l], writeMask: o.writeMask?.ref });
    x = r.x;
    if (o.returnCache) {
      newK.push(r.k);
      newV.push(r.v);
    } else {
      r.k.dispose();
      r.v.dispose();
    }
  }
  disposeContext(ctx);
  o.writeMask?.dispose();
  const logits = head(c, p, x, B, T, o.lastOnly ?? false);
  return { logits, cache: o.returnCache ? { k: newK, v: newV } : undefined };
}
