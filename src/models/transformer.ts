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
  const w = c.arch === 'gpt2' ? p['wte.weight'].ref : c.tieEmbeddings ? p['model.embed_tokens.weight'].ref : p['lm_head.weight'].ref;
  const logits = np.matmul(h, w.transpose());
  return lastOnly ? logits : logits.reshape([B, T, c.vocabSize]);
}

function llamaForward(c: LlamaConfig, p: Params, inp: ForwardInputs, o: ForwardOptions): ForwardOutput {
  const [B, T] = inp.ids.shape;
  const S = inp.kSlot.shape[0];
  const hd = c.headDim;
  const bias = attentionBias(inp, B, T, S, c.slidingWindow);
  const ang = inp.positions.astype(np.float32).reshape([B, 1, T, 1]).mul(o.invFreq!.reshape([1, 1, 1, hd / 2]));
  const cos = np.cos(ang.ref);
  const sin = np.sin(ang);
  let x = embedLookup(p['model.embed_tokens.weight'].ref, inp.ids).reshape([B * T, c.hidden]);
  const newK: Tensor[] = [];
  const newV: Tensor[] = [];
  for (let l = 0; l < c.layers; l++) {
    const g = (n: string) => p[`model.layers.${l}.${n}`]?.ref;
    const m = (n: string) => `model.layers.${l}.${n}`;
    const h = rmsNorm(x.ref, g('input_layernorm.weight'), c.rmsEps);
    const q = proj(p, m('self_attn.q_proj'), h.ref, o).reshape([B, T, c.heads, hd]).transpose([0, 2, 1, 3]);
    let k = proj(p, m('self_attn.k_proj'), h.ref, o).reshape([B, T, c.kvHeads, hd]).transpose([0, 2, 1, 3]);
    let v = proj(p, m('self_attn.v_proj'), h, o).reshape([B, T, c.kvHeads, hd]).transpose([0, 2, 1, 3]);
    const qr = rope(q, cos.ref, sin.ref);
    k = mergeCache(o.cache?.k[l], rope(k, cos.ref, sin.ref), o.writeMask);
    v = mergeCache(o.cache?.v[l], v, o.writeMask);
    if (o.returnCache) {
      newK.push(k.ref);
      newV.push(v.ref);
    }
    const y = attend(qr, k, v, bias.ref, c.heads, c.kvHeads);
    x = x.add(proj(p, m('self_attn.o_proj'), y, o));
    const h2 = rmsNorm(x.ref, g('post_attention_layernorm.weight'), c.rmsEps);
    const gate = nn.silu(proj(p, m('mlp.gate_proj'), h2.ref, o));
    const up = proj(p, m('mlp.up_proj'), h2, o);
    x = x.add(proj(p, m('mlp.down_proj'), gate.mul(up), o));
  }
  bias.dispose();
  cos.dispose();
  sin.dispose();
  o.writeMask?.dispose();
  x = rmsNorm(x, p['model.norm.weight'].ref, c.rmsEps);
  const logits = lmHead(c, p, x, B, T, o.lastOnly ?? false);
  return { logits, cache: o.returnCache ? { k: newK, v: newV } : undefined };
}

function gpt2Forward(c: Gpt2Config, p: Params, inp: ForwardInputs, o: ForwardOptions): ForwardOutput {
  const [B, T] = inp.ids.shape;
  const S = inp.kSlot.shape[0];
  const D = c.hidden;
  const hd = c.headDim;
  const bias = attentionBias(inp, B, T, S, null);
  let x = embedLookup(p['wte.weight'].ref, inp.ids).add(embedLookup(p['wpe.weight'].ref, inp.positions)).reshape([B * T, D]);
  const newK: Tensor[] = [];
  const newV: Tensor[] = [];
  const heads = (t: Tensor) => t.reshape([B, T, c.heads, hd]).transpose([0, 2, 1, 3]);
  for (let l = 0; l < c.layers; l++) {
    const g = (n: string) => p[`h.${l}.${n}`].ref;
    const m = (n: string) => `h.${l}.${n}`;
    const h = layerNorm(x.ref, g('ln_1.weight'), g('ln_1.bias'), c.eps);
    const qkv = proj(p, m('attn.c_attn'), h, o, true);
    const [q, k0, v0] = np.split(qkv, 3, -1);
    const k = mergeCache(o.cache?.k[l], heads(k0), o.writeMask);
    const v = mergeCache(o.cache?.v[l], heads(v0), o.writeMask);
    if (o.returnCache) {
      newK.push(k.ref);
      newV.push(v.ref);
    }
    const y = attend(heads(q), k, v, bias.ref, c.heads, c.heads);
    x = x.add(proj(p, m('attn.c_proj'), y, o, true));
    const h2 = layerNorm(x.ref, g('ln_2.weight'), g('ln_2.bias'), c.eps);
    const f = nn.gelu(proj(p, m('mlp.c_fc'), h2, o, true), { approximate: true });
    x = x.add(proj(p, m('mlp.c_proj'), f, o, true));
  }
  bias.dispose();
  o.writeMask?.dispose();
  x = layerNorm(x, p['ln_f.weight'].ref, p['ln_f.bias'].ref, c.eps);
  const logits = lmHead(c, p, x, B, T, o.lastOnly ?? false);
  return { logits, cache: o.returnCache ? { k: newK, v: newV } : undefined };
}

/** One forward pass. Consumes the inputs, the cache and writeMask; reads params. */
export function forward(c: ModelConfig, p: Params, inp: ForwardInputs, o: ForwardOptions = {}): ForwardOutput {
  return c.arch === 'gpt2' ? gpt2Forward(c, p, inp, o) : llamaForward(c, p, inp, o);
}
