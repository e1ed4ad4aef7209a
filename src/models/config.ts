/**
 * config.json of a Hugging Face causal LM → a normalised, validated ModelConfig.
 * Supported: llama (incl. SmolLM/SmolLM2, TinyLlama), qwen2, mistral, gpt2.
 */
import { join } from 'node:path';
import { HeedError } from '../errors.js';
import { readJson } from '../io/json.js';

export const SUPPORTED_MODEL_TYPES = ['llama', 'qwen2', 'mistral', 'gpt2'] as const;

export type RopeScaling =
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number }
  | { type: 'linear'; factor: number };

export interface LlamaConfig {
  arch: 'llama';
  modelType: 'llama' | 'qwen2' | 'mistral';
  vocabSize: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  rmsEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  tieEmbeddings: boolean;
  qkvBias: boolean;
  oBias: boolean;
  mlpBias: boolean;
  maxPositions: number;
  slidingWindow: number | null;
}

export interface Gpt2Config {
  arch: 'gpt2';
  modelType: 'gpt2';
  vocabSize: number;
  hidden: number;
  layers: number;
  heads: number;
  headDim: number;
  intermediate: number;
  eps: number;
  maxPositions: number;
  tieEmbeddings: true;
}

export type ModelConfig = LlamaConfig | Gpt2Config;

type Raw = Record<string, unknown>;

function field(raw: Raw, file: string, key: string, opts: { int?: boolean; min?: number; optional?: boolean; dflt?: number } = {}): number {
  const v = raw[key];
  if (v === undefined || v === null) {
    if (opts.dflt !== undefined) return opts.dflt;
    throw new HeedError(`${file}: missing "${key}"`, `add "${key}" (a ${opts.int ? 'positive integer' : 'number'}) to config.json`);
  }
  if (typeof v !== 'number' || !Number.isFinite(v) || (opts.int && !Number.isInteger(v)) || (opts.min !== undefined && v < opts.min)) {
    throw new HeedError(`${file}: "${key}" must be ${opts.int ? 'an integer' : 'a number'}${opts.min !== undefined ? ` >= ${opts.min}` : ''}, got ${JSON.stringify(v)}`, `fix "${key}" in config.json`);
  }
  return v;
}

function bool(raw: Raw, file: string, key: string, dflt: boolean): boolean {
  const v = raw[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw new HeedError(`${file}: "${key}" must be true or false, got ${JSON.stringify(v)}`, `fix "${key}" in config.json`);
  return v;
}

function ropeScaling(raw: Raw, file: string): RopeScaling | null {
  const rs = raw.rope_scaling as Raw | null | undefined;
  if (rs == null) return null;
  const type = (rs.rope_type ?? rs.type) as string | undefined;
  const num = (k: string) => field(rs, `${file} rope_scaling`, k, { min: 0 });
  if (type === 'llama3') {
    return { type, factor: num('factor'), lowFreqFactor: num('low_freq_factor'), highFreqFactor: num('high_freq_factor'), originalMaxPositions: num('original_max_position_embeddings') };
  }
  if (type === 'linear') return { type, factor: num('factor') };
  if (type === 'default') return null;
  throw new HeedError(`${file}: rope_scaling type ${JSON.stringify(type)} is not supported`, 'supported rope_scaling types: llama3, linear (or none)');
}

/**
 * Bounds on config.json sizes, checked before anything is allocated: a config with 1e8 layers or a hidden size
 * of 1e9 is refused here instead of after gigabytes of bookkeeping. Far above any model heed can run (the
 * largest tensor must fit the engine's 4 GiB heap: 2^30 f32 values).
 */
export const CONFIG_BOUNDS: Record<string, number> = {
  vocab_size: 1 << 22, hidden_size: 1 << 17, n_embd: 1 << 17, intermediate_size: 1 << 19, n_inner: 1 << 19,
  num_hidden_layers: 4096, n_layer: 4096, num_attention_heads: 4096, n_head: 4096, num_key_value_heads: 4096, head_dim: 1 << 14,
  max_position_embeddings: 1 << 24, n_positions: 1 << 24, sliding_window: 1 << 24,
};
const MAX_TENSOR = 2 ** 30;

function checkBounds(c: ModelConfig, raw: Raw, file: string): ModelConfig {
  for (const [k, max] of Object.entries(CONFIG_BOUNDS)) {
    const v = raw[k];
    if (typeof v === 'number' && v > max) throw new HeedError(`${file}: "${k}" is ${v}, more than ${max.toLocaleString('en-US')} (no model heed can run is that large)`, `fix "${k}" in config.json`);
  }
  const q = c.heads * c.headDim;
  const largest = Math.max(c.vocabSize * c.hidden, c.intermediate * c.hidden, q * c.hidden, c.arch === 'gpt2' ? c.maxPositions * c.hidden : 0);
  if (largest > MAX_TENSOR) throw new HeedError(`${file}: the largest weight would hold ${largest.toLocaleString('en-US')} values, more than the ${MAX_TENSOR.toLocaleString('en-US')} heed's engine can hold`, 'use a smaller model (heed runs models up to about 1B parameters on CPU)');
  return c;
}

/** Normalise a parsed config.json object. */
export function parseModelConfig(raw: Raw, file = 'config.json'): ModelConfig {
  return checkBounds(parseModelConfigUnbounded(raw, file), raw, file);
}

function parseModelConfigUnbounded(raw: Raw, file: string): ModelConfig {
  raw = { ...raw };
  const mt = raw.model_type;
  if (typeof mt !== 'string') throw new HeedError(`${file}: missing "model_type"`, `set "model_type" to one of ${SUPPORTED_MODEL_TYPES.join(', ')}`);
  if (mt === 'gpt2') {
    const hidden = field(raw, file, 'n_embd', { int: true, min: 1 });
    const heads = field(raw, file, 'n_head', { int: true, min: 1 });
    if (hidden % heads) throw new HeedError(`${file}: n_embd (${hidden}) is not divisible by n_head (${heads})`, 'fix n_embd or n_head');
    if (raw.scale_attn_by_inverse_layer_idx === true) throw new HeedError(`${file}: scale_attn_by_inverse_layer_idx=true is not supported`, 'use a standard GPT-2 checkpoint');
    const act = raw.activation_function ?? 'gelu_new';
    if (act !== 'gelu_new' && act !== 'gelu_pytorch_tanh') throw new HeedError(`${file}: activation_function ${JSON.stringify(act)} is not supported`, 'supported: gelu_new');
    return {
      arch: 'gpt2', modelType: 'gpt2',
      vocabSize: field(raw, file, 'vocab_size', { int: true, min: 1 }),
      hidden, heads, headDim: hidden / heads,
      layers: field(raw, file, 'n_layer', { int: true, min: 1 }),
      intermediate: raw.n_inner == null ? 4 * hidden : field(raw, file, 'n_inner', { int: true, min: 1 }),
      eps: field(raw, file, 'layer_norm_epsilon', { dflt: 1e-5 }),
      maxPositions: field(raw, file, 'n_positions', { int: true, min: 1 }),
      tieEmbeddings: true,
    };
  }
  if (mt !== 'llama' && mt !== 'qwen2' && mt !== 'mistral') {
    throw new HeedError(`${file}: model_type "${mt}" is not supported`, `heed supports ${SUPPORTED_MODEL_TYPES.join(', ')} (Llama family incl. SmolLM/TinyLlama, Qwen2, Mistral; GPT-2)`);
  }
  const hidden = field(raw, file, 'hidden_size', { int: true, min: 1 });
  const heads = field(raw, file, 'num_attention_heads', { int: true, min: 1 });
  const kvHeads = field(raw, file, 'num_key_value_heads', { int: true, min: 1, dflt: heads });
  if (heads % kvHeads) throw new HeedError(`${file}: num_attention_heads (${heads}) is not a multiple of num_key_value_heads (${kvHeads})`, 'fix num_key_value_heads');
  const headDim = raw.head_dim == null ? hidden / heads : field(raw, file, 'head_dim', { int: true, min: 1 });
  if (!Number.isInteger(headDim) || headDim % 2) throw new HeedError(`${file}: head dimension ${headDim} must be an even integer`, 'fix hidden_size / num_attention_heads or head_dim');
  const act = raw.hidden_act ?? 'silu';
  if (act !== 'silu') throw new HeedError(`${file}: hidden_act ${JSON.stringify(act)} is not supported`, 'supported: silu (SwiGLU)');
  const attnBias = bool(raw, file, 'attention_bias', false);
  if (mt === 'qwen2' && raw.use_sliding_window === true) throw new HeedError(`${file}: use_sliding_window=true (Qwen2 per-layer sliding windows) is not supported`, 'set use_sliding_window to false (sequences shorter than sliding_window are unaffected)');
  // Mistral: transformers' MistralConfig defaults sliding_window to 4096 when the key is absent; null disables it.
  if (mt === 'mistral' && raw.sliding_window === undefined) raw = { ...raw, sliding_window: 4096 };
  const useSw = mt === 'mistral' && raw.sliding_window != null;
  return {
    arch: 'llama', modelType: mt,
    vocabSize: field(raw, file, 'vocab_size', { int: true, min: 1 }),
    hidden, heads, kvHeads, headDim,
    layers: field(raw, file, 'num_hidden_layers', { int: true, min: 1 }),
    intermediate: field(raw, file, 'intermediate_size', { int: true, min: 1 }),
    rmsEps: field(raw, file, 'rms_norm_eps', { dflt: 1e-6 }),
    ropeTheta: field(raw, file, 'rope_theta', { dflt: 10000 }),
    ropeScaling: ropeScaling(raw, file),
    tieEmbeddings: bool(raw, file, 'tie_word_embeddings', false),
    qkvBias: mt === 'qwen2' ? true : attnBias,
    oBias: mt === 'llama' ? attnBias : false,
    mlpBias: mt === 'llama' ? bool(raw, file, 'mlp_bias', false) : false,
    maxPositions: field(raw, file, 'max_position_embeddings', { int: true, min: 1, dflt: 2048 }),
    slidingWindow: useSw ? field(raw, file, 'sliding_window', { int: true, min: 1 }) : null,
  };
}

export function readModelConfig(dir: string): { config: ModelConfig; raw: Raw } {
  const file = join(dir, 'config.json');
  const raw = readJson<Raw>(file, 'config.json');
  return { config: parseModelConfig(raw, file), raw };
}

/** Expected parameter names and shapes (HF names and layouts). */
export function expectedShapes(c: ModelConfig, prefix = ''): Map<string, number[]> {
  const m = new Map<string, number[]>();
  if (c.arch === 'gpt2') {
    const p = prefix;
    m.set(`${p}wte.weight`, [c.vocabSize, c.hidden]);
    m.set(`${p}wpe.weight`, [c.maxPositions, c.hidden]);
    for (let i = 0; i < c.layers; i++) {
      const h = `${p}h.${i}.`;
      m.set(`${h}ln_1.weight`, [c.hidden]); m.set(`${h}ln_1.bias`, [c.hidden]);
      m.set(`${h}attn.c_attn.weight`, [c.hidden, 3 * c.hidden]); m.set(`${h}attn.c_attn.bias`, [3 * c.hidden]);
      m.set(`${h}attn.c_proj.weight`, [c.hidden, c.hidden]); m.set(`${h}attn.c_proj.bias`, [c.hidden]);
      m.set(`${h}ln_2.weight`, [c.hidden]); m.set(`${h}ln_2.bias`, [c.hidden]);
      m.set(`${h}mlp.c_fc.weight`, [c.hidden, c.intermediate]); m.set(`${h}mlp.c_fc.bias`, [c.intermediate]);
      m.set(`${h}mlp.c_proj.weight`, [c.intermediate, c.hidden]); m.set(`${h}mlp.c_proj.bias`, [c.hidden]);
    }
    m.set(`${p}ln_f.weight`, [c.hidden]); m.set(`${p}ln_f.bias`, [c.hidden]);
    return m;
  }
  const q = c.heads * c.headDim, kv = c.kvHeads * c.headDim;
  m.set('model.embed_tokens.weight', [c.vocabSize, c.hidden]);
  for (let i = 0; i < c.layers; i++) {
    const l = `model.layers.${i}.`;
    m.set(`${l}input_layernorm.weight`, [c.hidden]);
    m.set(`${l}self_attn.q_proj.weight`, [q, c.hidden]);
    m.set(`${l}self_attn.k_proj.weight`, [kv, c.hidden]);
    m.set(`${l}self_attn.v_proj.weight`, [kv, c.hidden]);
    m.set(`${l}self_attn.o_proj.weight`, [c.hidden, q]);
    if (c.qkvBias) {
      m.set(`${l}self_attn.q_proj.bias`, [q]); m.set(`${l}self_attn.k_proj.bias`, [kv]); m.set(`${l}self_attn.v_proj.bias`, [kv]);
    }
    if (c.oBias) m.set(`${l}self_attn.o_proj.bias`, [c.hidden]);
    m.set(`${l}post_attention_layernorm.weight`, [c.hidden]);
    m.set(`${l}mlp.gate_proj.weight`, [c.intermediate, c.hidden]);
    m.set(`${l}mlp.up_proj.weight`, [c.intermediate, c.hidden]);
    m.set(`${l}mlp.down_proj.weight`, [c.hidden, c.intermediate]);
    if (c.mlpBias) {
      m.set(`${l}mlp.gate_proj.bias`, [c.intermediate]); m.set(`${l}mlp.up_proj.bias`, [c.intermediate]); m.set(`${l}mlp.down_proj.bias`, [c.hidden]);
    }
  }
  m.set('model.norm.weight', [c.hidden]);
  if (!c.tieEmbeddings) m.set('lm_head.weight', [c.vocabSize, c.hidden]);
  return m;
}

export function parameterCount(c: ModelConfig): number {
  let n = 0;
  for (const s of expectedShapes(c).values()) n += s.reduce((a, b) => a * b, 1);
  return n;
}

/** RoPE inverse frequencies (host, f32 as transformers computes them), with llama3 / linear scaling. */
export function ropeInvFreq(c: LlamaConfig): Float32Array {
  const half = c.headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(c.ropeTheta, (2 * i) / c.headDim);
  const rs = c.ropeScaling;
  if (rs?.type === 'linear') for (let i = 0; i < half; i++) inv[i] = inv[i] / rs.factor;
  if (rs?.type === 'llama3') {
    const lowWavelen = rs.originalMaxPositions / rs.lowFreqFactor;
    const highWavelen = rs.originalMaxPositions / rs.highFreqFactor;
    for (let i = 0; i < half; i++) {
      const wavelen = (2 * Math.PI) / inv[i];
      if (wavelen > lowWavelen) inv[i] = inv[i] / rs.factor;
      else if (wavelen >= highWavelen) {
        const smooth = (rs.originalMaxPositions / wavelen - rs.lowFreqFactor) / (rs.highFreqFactor - rs.lowFreqFactor);
        inv[i] = (1 - smooth) * (inv[i] / rs.factor) + smooth * inv[i];
      }
    }
  }
  return inv;
}
