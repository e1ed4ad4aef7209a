/**
 * A Hugging Face model folder → one GGUF file that llama.cpp (and Ollama, LM Studio, node-llama-cpp) loads.
 *
 * Architectures, as llama.cpp's convert_hf_to_gguf.py maps them:
 *  - llama (SmolLM/SmolLM2, TinyLlama, Llama 3 with llama3 RoPE scaling): GGUF arch "llama"; q_proj/k_proj rows
 *    (weights and biases) permuted from Hugging Face's half-split RoPE layout back to the interleaved layout that
 *    llama.cpp's "llama" rope expects; llama3 scaling as a rope_freqs tensor; linear scaling as metadata.
 *  - mistral: as llama (llama.cpp's converter maps MistralForCausalLM to "llama" and drops sliding_window), when the
 *    window cannot matter: sliding_window null or ≥ the exported context (`context`); otherwise refused.
 *  - qwen2: GGUF arch "qwen2" (NeoX rope: no permutation), q/k/v biases.
 *  - gpt2: GGUF arch "gpt2"; Conv1D weights transposed; fused qkv kept.
 * Tokenizer: byte-level BPE tokenizer.json (tokenizer.ggml.model "gpt2") with a pre-tokenizer name that llama.cpp
 * knows, chosen from the pre_tokenizer of tokenizer.json (see `preTokenizerName`), or a byte-fallback BPE
 * tokenizer.json of Llama 2 style (tokenizer.ggml.model "llama": tokens, scores, types; see `llamaVocab`); special
 * ids, add_bos_token, chat template. 1-D tensors (norms, biases) stay f32 whatever the dtype, as convert_hf_to_gguf.py does.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { HeedError } from '../errors.js';
import { encodeGguf, meta, writeGguf, type GgmlTypeName, type GgufSink, type GgufTensorIn, type MetaValue } from '../io/gguf.js';
import { readJson } from '../io/json.js';
import type { HostTensor } from '../io/safetensors.js';
import { loadTokenizer, type HeedTokenizer } from '../io/tokenizer.js';
import { ropeInvFreq, type LlamaConfig, type ModelConfig } from '../models/config.js';
import { loadHostModel } from '../models/load.js';

export type GgufDtype = 'f32' | 'f16' | 'q8_0';
export const GGUF_DTYPES: readonly GgufDtype[] = ['f32', 'f16', 'q8_0'];
/** general.file_type (llama_ftype): ALL_F32 = 0, MOSTLY_F16 = 1, MOSTLY_Q8_0 = 7 */
const FILE_TYPE: Record<GgufDtype, number> = { f32: 0, f16: 1, q8_0: 7 };

/** ggml token types */
const TOKEN_NORMAL = 1, TOKEN_UNKNOWN = 2, TOKEN_CONTROL = 3, TOKEN_USER_DEFINED = 4, TOKEN_UNUSED = 5, TOKEN_BYTE = 6;

export interface ExportResult {
  /** the file written, or "(sink)" when the bytes went to a sink */
  path: string;
  bytes: number;
  arch: string;
  tensors: number;
  dtype: GgufDtype;
  /** tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (SentencePiece-style, byte fallback) */
  tokenizer: 'gpt2' | 'llama';
  pre: string;
  /** what the file leaves out or approximates (printed by the CLI) */
  notes: string[];
}

const GPT2_REGEX_PRE = 'gpt-2';

/**
 * The tokenizer.ggml.pre name for a tokenizer.json pre_tokenizer. llama.cpp refuses unknown names and applies its
 * own regex for each name, so only layouts whose regex is known are accepted:
 *  - ByteLevel with use_regex (GPT-2's regex; heed's own BPE, GPT-2, tiny fixtures) → "gpt-2"
 *  - Sequence [Digits(individual), ByteLevel(use_regex)] (SmolLM/SmolLM2) → "smollm"
 *  - Sequence [Split(Llama 3 regex), ByteLevel(no regex)] → "llama-bpe"; Qwen2's regex → "qwen2"
 */
export function preTokenizerName(pre: unknown, where: string): string {
  const p = pre as Record<string, unknown> | null;
  const unsupported = () => new HeedError(`${where}: pre_tokenizer ${JSON.stringify(pre).slice(0, 160)} has no llama.cpp pre-tokenizer name heed knows`, 'pass --pre <name> (a tokenizer.ggml.pre value llama.cpp accepts, e.g. gpt-2, llama-bpe, qwen2, smollm) if you know the right one');
  if (!p) throw unsupported();
  if (p.type === 'ByteLevel' && p.use_regex !== false) return GPT2_REGEX_PRE;
  if (p.type === 'Sequence' && Array.isArray(p.pretokenizers)) {
    const parts = p.pretokenizers as Array<Record<string, unknown>>;
    if (parts.length === 2 && parts[0].type === 'Digits' && parts[0].individual_digits === true && parts[1].type === 'ByteLevel' && parts[1].use_regex !== false) return 'smollm';
    if (parts.length === 2 && parts[0].type === 'Split' && parts[1].type === 'ByteLevel' && parts[1].use_regex === false) {
      const rx = String((parts[0].pattern as Record<string, unknown> | undefined)?.Regex ?? '');
      if (rx.includes('\\p{N}{1,3}') && rx.startsWith('(?i:')) return 'llama-bpe';
      if (rx.includes('\\p{N}|') && rx.startsWith('(?i:')) return 'qwen2';
    }
  }
  throw unsupported();
}

/** HF half-split RoPE rows → llama.cpp's interleaved rows (convert_hf_to_gguf.py's LlamaModel.permute). */
export function permuteRope(x: Float32Array, shape: number[], heads: number): Float32Array {
  const rows = shape[0];
  const cols = shape.length > 1 ? shape[1] : 1;
  const hd = rows / heads;
  const half = hd / 2;
  const out = new Float32Array(x.length);
  // reshape(heads, 2, half, cols).swapaxes(1, 2): new row (h, i, j) = old row (h, j, i)
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < half; i++)
      for (let j = 0; j < 2; j++) {
        const src = h * hd + j * half + i;
        const dst = h * hd + i * 2 + j;
        out.set(x.subarray(src * cols, (src + 1) * cols), dst * cols);
      }
  return out;
}

function transpose(t: HostTensor): HostTensor {
  const [r, c] = t.shape;
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = t.data[i * c + j];
  return { shape: [c, r], data: out };
}

/** the merges of a tokenizer.json BPE model as [left, right] pairs ("a b" strings or, since transformers 4.45, pairs) */
function mergePairs(model: Record<string, unknown>, vocab: Record<string, number>): Array<[string, string]> {
  return ((model.merges as Array<string | [string, string]>) ?? []).map((m): [string, string] => {
    if (typeof m !== 'string') return [m[0], m[1]];
    const i = m.indexOf(' ');
    if (m.indexOf(' ', i + 1) < 0) return [m.slice(0, i), m.slice(i + 1)];
    // a piece with a literal space (Llama 2 has a few, unreachable after its normalizer): the split whose halves are tokens
    for (let k = 1; k < m.length - 1; k++) if (m[k] === ' ' && m.slice(0, k) in vocab && m.slice(k + 1) in vocab) return [m.slice(0, k), m.slice(k + 1)];
    return [m.slice(0, i), m.slice(i + 1)];
  });
}

/**
 * How a SentencePiece-style tokenizer.json (BPE with byte_fallback, Llama 2 / TinyLlama) adds its
 * "▁" prefix, when its layout is one llama.cpp's "llama" (SPM) tokenizer reproduces: the legacy normalizer
 * [Prepend "▁", Replace " " → "▁"] with no pre-tokenizer (add_space_prefix true), or [Replace " " → "▁"] alone (false).
 */
function spmSpacePrefix(tj: Record<string, unknown>, where: string): boolean {
  const n = tj.normalizer as Record<string, unknown> | null;
  const parts = (n?.type === 'Sequence' ? (n.normalizers as Array<Record<string, unknown>>) : n ? [n] : []) ?? [];
  const isReplace = (x: Record<string, unknown> | undefined) => x?.type === 'Replace' && (x.pattern as Record<string, unknown> | undefined)?.String === ' ' && x.content === '\u2581';
  const isPrepend = (x: Record<string, unknown> | undefined) => x?.type === 'Prepend' && x.prepend === '\u2581';
  if (!tj.pre_tokenizer && parts.length === 2 && isPrepend(parts[0]) && isReplace(parts[1])) return true;
  if (!tj.pre_tokenizer && parts.length === 1 && isReplace(parts[0])) return false;
  throw new HeedError(`${where}: a byte-fallback BPE (SentencePiece-style) tokenizer with normalizer ${JSON.stringify(tj.normalizer ?? null).slice(0, 120)} and pre_tokenizer ${JSON.stringify(tj.pre_tokenizer ?? null).slice(0, 120)}: heed exports only the layout llama.cpp's "llama" tokenizer reproduces (normalizer Prepend "▁" + Replace " " → "▁", no pre_tokenizer, as Llama 2 and TinyLlama ship it)`, 'save the tokenizer with legacy=True in transformers, or convert with llama.cpp\'s convert_hf_to_gguf.py from tokenizer.model');
}

/**
 * tokenizer.ggml.model "llama" (llama.cpp's SentencePiece BPE) from a tokenizer.json with byte_fallback, with the
 * tokens and types that llama.cpp's convert_hf_to_gguf.py (LlamaHfVocab) writes: pieces as they are ("▁the"),
 * <0x00>…<0xFF> BYTE, the unk token UNKNOWN, other special added tokens CONTROL, non-special added tokens
 * USER_DEFINED. The scores differ on purpose: LlamaHfVocab writes -1000 for every token, and llama.cpp's SPM
 * tokenizer merges the adjacent pair whose merged token has the highest score — with all scores equal it merges
 * left to right and tokenises unlike the model. heed writes score = −(rank of the first merge that makes the token),
 * so llama.cpp merges in the order of tokenizer.json's merges (the order of the real tokenizer.model's scores: 0
 * inversions over Llama 2's 29,612 merged tokens); tokens no merge makes score below every merged one.
 */
function llamaVocab(tj: Record<string, unknown>, tjPath: string, vocabSize: number, notes: string[]): { kv: Array<[string, MetaValue]>; unkId: number | undefined } {
  const model = tj.model as Record<string, unknown>;
  const decoder = tj.decoder as Record<string, unknown> | null;
  if (decoder?.type !== 'Sequence') throw new HeedError(`${tjPath}: a byte-fallback BPE tokenizer whose decoder is ${JSON.stringify(decoder?.type ?? null)}, not the Sequence [Replace "▁", ByteFallback, Fuse, Strip] of Llama-style tokenizers`, 'export a Llama 2 / TinyLlama-style tokenizer.json, or convert with llama.cpp\'s convert_hf_to_gguf.py');
  const addSpacePrefix = spmSpacePrefix(tj, tjPath);
  const vocab = model.vocab as Record<string, number>;
  const tokens: string[] = new Array(vocabSize);
  const types: number[] = new Array(vocabSize).fill(TOKEN_NORMAL);
  const scores: number[] = new Array(vocabSize).fill(0);
  for (const [piece, id] of Object.entries(vocab)) {
    if (id >= vocabSize) throw new HeedError(`${tjPath}: token ${JSON.stringify(piece)} has id ${id}, outside the model's vocabulary (${vocabSize})`, 'use the tokenizer that belongs to this model');
    tokens[id] = piece;
  }
  const merges = mergePairs(model, vocab);
  const first = new Map<string, number>();
  merges.forEach(([a, b], r) => {
    const t = a + b;
    if (!first.has(t)) first.set(t, r);
  });
  let bytes = 0;
  for (let id = 0; id < vocabSize; id++) {
    const p = tokens[id];
    if (p === undefined) continue;
    if (/^<0x[0-9A-Fa-f]{2}>$/.test(p)) {
      types[id] = TOKEN_BYTE;
      bytes++;
    } else {
      const r = first.get(p);
      scores[id] = r !== undefined ? -r : -(merges.length + id);
    }
  }
  if (bytes !== 256) throw new HeedError(`${tjPath}: byte_fallback is on but the vocabulary has ${bytes} of the 256 byte tokens <0x00>…<0xFF>`, 'use the complete tokenizer.json of the model (llama.cpp needs every byte token)');
  const unkToken = typeof model.unk_token === 'string' ? model.unk_token : undefined;
  let unkId: number | undefined;
  for (const a of (tj.added_tokens as Array<{ id: number; content: string; special: boolean }>) ?? []) {
    if (a.id >= vocabSize) throw new HeedError(`${tjPath}: added token ${JSON.stringify(a.content)} has id ${a.id}, outside the model's vocabulary (${vocabSize})`, 'use the tokenizer that belongs to this model');
    tokens[a.id] = a.content;
    scores[a.id] = a.content === unkToken ? 0 : a.special ? 0 : -1000;
    types[a.id] = a.content === unkToken ? TOKEN_UNKNOWN : a.special ? TOKEN_CONTROL : TOKEN_USER_DEFINED;
    if (a.content === unkToken) unkId = a.id;
  }
  if (unkId === undefined && unkToken !== undefined && vocab[unkToken] !== undefined) {
    unkId = vocab[unkToken];
    types[unkId] = TOKEN_UNKNOWN;
  }
  let padded = 0;
  for (let i = 0; i < vocabSize; i++) if (tokens[i] === undefined) {
    tokens[i] = `[PAD${i}]`;
    types[i] = TOKEN_UNUSED;
    scores[i] = -1000;
    padded++;
  }
  if (padded) notes.push(`${padded} ids of the embedding have no token in tokenizer.json: written as unused [PAD<i>] tokens`);
  const kv: Array<[string, MetaValue]> = [
    ['tokenizer.ggml.model', meta.str('llama')],
    ['tokenizer.ggml.pre', meta.str('default')],
    ['tokenizer.ggml.tokens', meta.strs(tokens)],
    ['tokenizer.ggml.scores', meta.f32s(scores)],
    ['tokenizer.ggml.token_type', meta.i32s(types)],
    ['tokenizer.ggml.add_space_prefix', meta.bool(addSpacePrefix)],
  ];
  if (unkId !== undefined) kv.push(['tokenizer.ggml.unknown_token_id', meta.u32(unkId)]);
  return { kv, unkId };
}

function gpt2Vocab(tj: Record<string, unknown>, tjPath: string, vocabSize: number, pre: string, notes: string[]): Array<[string, MetaValue]> {
  const model = tj.model as Record<string, unknown>;
  const vocab = model.vocab as Record<string, number>;
  const tokens: string[] = new Array(vocabSize);
  const types: number[] = new Array(vocabSize).fill(TOKEN_NORMAL);
  for (const [piece, id] of Object.entries(vocab)) if (id < vocabSize) tokens[id] = piece;
  for (const a of (tj.added_tokens as Array<{ id: number; content: string; special: boolean }>) ?? []) {
    if (a.id >= vocabSize) throw new HeedError(`${tjPath}: added token ${JSON.stringify(a.content)} has id ${a.id}, outside the model's vocabulary (${vocabSize})`, 'use the tokenizer that belongs to this model');
    tokens[a.id] = a.content;
    types[a.id] = a.special ? TOKEN_CONTROL : TOKEN_USER_DEFINED;
  }
  let padded = 0;
  for (let i = 0; i < vocabSize; i++) if (tokens[i] === undefined) {
    tokens[i] = `[PAD${i}]`;
    types[i] = TOKEN_UNUSED;
    padded++;
  }
  if (padded) notes.push(`${padded} ids of the embedding have no token in tokenizer.json: written as unused [PAD<i>] tokens`);
  const merges = ((model.merges as Array<string | [string, string]>) ?? []).map((m) => (typeof m === 'string' ? m : m.join(' ')));
  return [
    ['tokenizer.ggml.model', meta.str('gpt2')],
    ['tokenizer.ggml.pre', meta.str(pre)],
    ['tokenizer.ggml.tokens', meta.strs(tokens)],
    ['tokenizer.ggml.token_type', meta.i32s(types)],
    ['tokenizer.ggml.merges', meta.strs(merges)],
  ];
}

function tokenizerMetadata(dir: string, tok: HeedTokenizer, vocabSize: number, preOverride: string | undefined): { kv: Array<[string, MetaValue]>; model: 'gpt2' | 'llama'; pre: string; notes: string[] } {
  const tjPath = join(dir, 'tokenizer.json');
  const tj = readJson<Record<string, unknown>>(tjPath, 'tokenizer.json');
  const model = tj.model as Record<string, unknown>;
  const notes: string[] = [];
  let kv: Array<[string, MetaValue]>;
  let kind: 'gpt2' | 'llama';
  let pre: string;
  if (model?.type === 'BPE' && model.byte_fallback === true) {
    if (preOverride !== undefined && preOverride !== 'default') throw new HeedError(`--pre ${preOverride}: a SentencePiece-style ("llama") tokenizer has no pre-tokenizer name in llama.cpp`, 'omit --pre (it is written as "default")');
    kind = 'llama';
    pre = 'default';
    kv = llamaVocab(tj, tjPath, vocabSize, notes).kv;
  } else if (model?.type === 'BPE' && (tj.pre_tokenizer || preOverride)) {
    kind = 'gpt2';
    pre = preOverride ?? preTokenizerName(tj.pre_tokenizer, tjPath);
    kv = gpt2Vocab(tj, tjPath, vocabSize, pre, notes);
  } else {
    throw new HeedError(`${tjPath}: a ${model?.type ?? 'unknown'} tokenizer${model?.type === 'BPE' ? ' without a pre_tokenizer' : ''} is not exported: heed writes byte-level BPE (tokenizer.ggml.model "gpt2") and byte-fallback BPE of Llama 2 style (SentencePiece, "llama")`, model?.type === 'BPE' ? 'pass --pre <name> if you know llama.cpp\'s pre-tokenizer for it' : 'convert with llama.cpp\'s convert_hf_to_gguf.py');
  }
  if (tok.bosId !== undefined) kv.push(['tokenizer.ggml.bos_token_id', meta.u32(tok.bosId)]);
  if (tok.eosIds.length) kv.push(['tokenizer.ggml.eos_token_id', meta.u32(tok.eosIds[0])]);
  if (tok.eosIds.length > 1) notes.push(`EOS ids ${tok.eosIds.join(', ')}: GGUF holds one (${tok.eosIds[0]}); heed's llama.cpp backend reads the rest from tokenizer.ggml.eos_token_ids`);
  if (tok.eosIds.length > 1) kv.push(['tokenizer.ggml.eos_token_ids', meta.i32s(tok.eosIds)]);
  if (tok.padId !== undefined) kv.push(['tokenizer.ggml.padding_token_id', meta.u32(tok.padId)]);
  // what the tokenizer's post-processor adds around a text: read off an encoding, as llama.cpp needs it as flags
  const plain = tok.encode('a', { addSpecialTokens: false });
  const withSpecial = tok.encode('a', { addSpecialTokens: true });
  const addBos = withSpecial.length > plain.length && tok.bosId !== undefined && withSpecial[0] === tok.bosId;
  const addEos = withSpecial.length > plain.length && tok.eosIds.includes(withSpecial[withSpecial.length - 1]);
  kv.push(['tokenizer.ggml.add_bos_token', meta.bool(addBos)]);
  kv.push(['tokenizer.ggml.add_eos_token', meta.bool(addEos)]);
  if (tok.chatTemplate) kv.push(['tokenizer.chat_template', meta.str(tok.chatTemplate)]);
  return { kv, model: kind, pre, notes };
}

/** tensor type for a weight: 1-D stays f32; q8_0 needs rows of a multiple of 32 (else f16) */
function typeFor(shape: number[], dtype: GgufDtype): GgmlTypeName {
  if (shape.length < 2 || dtype === 'f32') return 'F32';
  if (dtype === 'q8_0' && shape[shape.length - 1] % 32 === 0) return 'Q8_0';
  return 'F16';
}

function llamaTensors(c: LlamaConfig, w: Map<string, HostTensor>, dtype: GgufDtype, permute: boolean): GgufTensorIn[] {
  const out: GgufTensorIn[] = [];
  const add = (name: string, t: HostTensor, f?: (x: Float32Array) => Float32Array) => out.push({ name, shape: t.shape, type: typeFor(t.shape, dtype), data: () => (f ? f(t.data) : t.data) });
  const get = (k: string) => {
    const t = w.get(k);
    if (!t) throw new HeedError(`missing tensor ${k}`, 'the weights do not match config.json');
    return t;
  };
  add('token_embd.weight', get('model.embed_tokens.weight'));
  for (let i = 0; i < c.layers; i++) {
    const l = `model.layers.${i}.`;
    const b = `blk.${i}.`;
    add(`${b}attn_norm.weight`, get(`${l}input_layernorm.weight`));
    for (const [hf, gg, heads] of [['q_proj', 'attn_q', c.heads], ['k_proj', 'attn_k', c.kvHeads], ['v_proj', 'attn_v', 0], ['o_proj', 'attn_output', 0]] as const) {
      for (const kind of ['weight', 'bias'] as const) {
        const t = w.get(`${l}self_attn.${hf}.${kind}`);
        if (!t) continue;
        add(`${b}${gg}.${kind}`, t, permute && heads ? (x) => permuteRope(x, t.shape, heads) : undefined);
      }
    }
    add(`${b}ffn_norm.weight`, get(`${l}post_attention_layernorm.weight`));
    for (const [hf, gg] of [['gate_proj', 'ffn_gate'], ['up_proj', 'ffn_up'], ['down_proj', 'ffn_down']] as const) {
      for (const kind of ['weight', 'bias'] as const) {
        const t = w.get(`${l}mlp.${hf}.${kind}`);
        if (t) add(`${b}${gg}.${kind}`, t);
      }
    }
  }
  add('output_norm.weight', get('model.norm.weight'));
  if (!c.tieEmbeddings) add('output.weight', get('lm_head.weight'));
  return out;
}

function gpt2Tensors(w: Map<string, HostTensor>, layers: number, dtype: GgufDtype): GgufTensorIn[] {
  const out: GgufTensorIn[] = [];
  const add = (name: string, t: HostTensor) => out.push({ name, shape: t.shape, type: typeFor(t.shape, dtype), data: () => t.data });
  const get = (k: string) => w.get(k)!;
  add('token_embd.weight', get('wte.weight'));
  add('position_embd.weight', get('wpe.weight'));
  for (let i = 0; i < layers; i++) {
    const h = `h.${i}.`;
    const b = `blk.${i}.`;
    add(`${b}attn_norm.weight`, get(`${h}ln_1.weight`));
    add(`${b}attn_norm.bias`, get(`${h}ln_1.bias`));
    add(`${b}attn_qkv.weight`, transpose(get(`${h}attn.c_attn.weight`)));
    add(`${b}attn_qkv.bias`, get(`${h}attn.c_attn.bias`));
    add(`${b}attn_output.weight`, transpose(get(`${h}attn.c_proj.weight`)));
    add(`${b}attn_output.bias`, get(`${h}attn.c_proj.bias`));
    add(`${b}ffn_norm.weight`, get(`${h}ln_2.weight`));
    add(`${b}ffn_norm.bias`, get(`${h}ln_2.bias`));
    add(`${b}ffn_up.weight`, transpose(get(`${h}mlp.c_fc.weight`)));
    add(`${b}ffn_up.bias`, get(`${h}mlp.c_fc.bias`));
    add(`${b}ffn_down.weight`, transpose(get(`${h}mlp.c_proj.weight`)));
    add(`${b}ffn_down.bias`, get(`${h}mlp.c_proj.bias`));
  }
  add('output_norm.weight', get('ln_f.weight'));
  add('output_norm.bias', get('ln_f.bias'));
  add('output.weight', get('wte.weight'));
  return out;
}

/** the heed-only metadata key (llama.cpp ignores it) that holds a Mistral sliding window the export's context fits in */
export const HEED_SLIDING_WINDOW_KEY = 'heed.sliding_window';

function archMetadata(c: ModelConfig, name: string, dtype: GgufDtype, context: number | undefined): { arch: string; kv: Array<[string, MetaValue]>; extra: GgufTensorIn[]; notes: string[] } {
  const notes: string[] = [];
  const extra: GgufTensorIn[] = [];
  if (context !== undefined && !(Number.isInteger(context) && context >= 1 && context <= c.maxPositions)) throw new HeedError(`--context ${context}: must be a whole number from 1 to the model's ${c.maxPositions} positions`, `pass --context between 1 and ${c.maxPositions}, or leave it out (the model's context)`);
  const ctx = context ?? c.maxPositions;
  if (ctx < c.maxPositions) notes.push(`context_length ${ctx} (the model has ${c.maxPositions} positions)`);
  if (c.arch === 'gpt2') {
    const a = 'gpt2';
    return {
      arch: a, extra, notes,
      kv: [
        ['general.architecture', meta.str(a)], ['general.name', meta.str(name)], ['general.file_type', meta.u32(FILE_TYPE[dtype])],
        [`${a}.context_length`, meta.u32(ctx)], [`${a}.embedding_length`, meta.u32(c.hidden)], [`${a}.feed_forward_length`, meta.u32(c.intermediate)],
        [`${a}.block_count`, meta.u32(c.layers)], [`${a}.attention.head_count`, meta.u32(c.heads)], [`${a}.attention.layer_norm_epsilon`, meta.f32(c.eps)],
      ],
    };
  }
  // llama.cpp's convert_hf_to_gguf.py maps MistralForCausalLM to the "llama" architecture and drops sliding_window:
  // llama.cpp then attends over the whole context. That is the same as the window only while a sequence fits in it.
  if (c.slidingWindow !== null && c.slidingWindow < ctx) {
    throw new HeedError(`${c.modelType} with sliding_window ${c.slidingWindow} (< context ${ctx}) cannot be exported: llama.cpp runs Mistral as its "llama" architecture, which has no sliding window, so outputs would differ beyond ${c.slidingWindow} tokens`, `export with --context ${c.slidingWindow} (or less): within the window full attention is sliding-window attention`);
  }
  const a = c.modelType === 'qwen2' ? 'qwen2' : 'llama';
  if (c.oBias && a === 'qwen2') throw new HeedError('qwen2 with an o_proj bias is not supported by llama.cpp', 'export a standard Qwen2 checkpoint');
  const kv: Array<[string, MetaValue]> = [
    ['general.architecture', meta.str(a)], ['general.name', meta.str(name)], ['general.file_type', meta.u32(FILE_TYPE[dtype])],
    [`${a}.context_length`, meta.u32(ctx)], [`${a}.embedding_length`, meta.u32(c.hidden)], [`${a}.feed_forward_length`, meta.u32(c.intermediate)],
    [`${a}.block_count`, meta.u32(c.layers)], [`${a}.attention.head_count`, meta.u32(c.heads)], [`${a}.attention.head_count_kv`, meta.u32(c.kvHeads)],
    [`${a}.attention.layer_norm_rms_epsilon`, meta.f32(c.rmsEps)], [`${a}.rope.freq_base`, meta.f32(c.ropeTheta)], [`${a}.rope.dimension_count`, meta.u32(c.headDim)],
    [`${a}.attention.key_length`, meta.u32(c.headDim)], [`${a}.attention.value_length`, meta.u32(c.headDim)], [`${a}.vocab_size`, meta.u32(c.vocabSize)],
  ];
  if (c.slidingWindow !== null) {
    kv.push([HEED_SLIDING_WINDOW_KEY, meta.u32(c.slidingWindow)]);
    notes.push(`sliding_window ${c.slidingWindow} ≥ context ${ctx}: exported as llama (full attention within the context is the window's); heed's llama.cpp backend refuses a larger context for this file`);
  }
  const rs = c.ropeScaling;
  if (rs?.type === 'linear') {
    kv.push([`${a}.rope.scaling.type`, meta.str('linear')], [`${a}.rope.scaling.factor`, meta.f32(rs.factor)]);
  } else if (rs?.type === 'llama3') {
    // llama.cpp divides each frequency by rope_freqs[i]: the factors are the unscaled / scaled inverse frequencies
    const scaled = ropeInvFreq(c);
    const plain = ropeInvFreq({ ...c, ropeScaling: null });
    const f = Float32Array.from(plain, (p, i) => p / scaled[i]);
    extra.push({ name: 'rope_freqs.weight', shape: [f.length], type: 'F32', data: () => f });
  }
  return { arch: a, kv, extra, notes };
}

/** Export options (GGUF v3). */
export interface ExportOptions {
  dtype?: GgufDtype;
  /** tokenizer.ggml.pre for a byte-level BPE tokenizer whose pre_tokenizer heed does not map */
  pre?: string;
  name?: string;
  /** <arch>.context_length (default: the model's positions); a Mistral sliding window must cover it */
  context?: number;
}

/** Export a model folder to `out`: a file path, or a sink that takes the bytes in order (a browser's Blob parts). */
export function exportGguf(dir: string, out: string | GgufSink, o: ExportOptions = {}): ExportResult {
  if (!existsSync(join(dir, 'config.json'))) throw new HeedError(`${dir}: no config.json (not a model folder)`, 'pass a Hugging Face model folder (config.json, model.safetensors, tokenizer.json)');
  const m = loadHostModel(dir);
  return exportGgufFrom(m.config, m.tensors, dir, out, { ...o, name: o.name ?? (dir.replace(/\/+$/, '').split('/').pop() || 'model') });
}

/**
 * Export weights held in memory (internal names as loadHostModel gives them: HF names, GPT-2 without "transformer.")
 * with the tokenizer files of `tokenizerDir` — e.g. a training run's current weights.
 */
export function exportGgufFrom(c: ModelConfig, weights: Map<string, HostTensor>, tokenizerDir: string, out: string | GgufSink, o: ExportOptions = {}): ExportResult {
  const dtype = o.dtype ?? 'f32';
  if (!GGUF_DTYPES.includes(dtype)) throw new HeedError(`--dtype ${dtype} is not supported`, `use one of ${GGUF_DTYPES.join(', ')}`);
  const tok = loadTokenizer(tokenizerDir);
  const am = archMetadata(c, o.name ?? 'model', dtype, o.context);
  const tm = tokenizerMetadata(tokenizerDir, tok, c.vocabSize, o.pre);
  const tensors = c.arch === 'gpt2' ? gpt2Tensors(weights, c.layers, dtype) : [...llamaTensors(c, weights, dtype, am.arch === 'llama'), ...am.extra];
  const kv: Array<[string, MetaValue]> = [...am.kv, ['general.alignment', meta.u32(32)], ...tm.kv];
  const bytes = typeof out === 'string' ? writeGguf(out, kv, tensors) : encodeGguf(kv, tensors, out);
  return { path: typeof out === 'string' ? out : '(sink)', bytes, arch: am.arch, tensors: tensors.length, dtype, tokenizer: tm.model, pre: tm.pre, notes: [...am.notes, ...tm.notes] };
}
