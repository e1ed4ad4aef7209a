/**
 * Hugging Face model folders ↔ heed models: config + weights (+ tokenizer), with the checks a user needs
 * (shapes against config.json, missing and unexpected tensors listed), and saving back in the same layout.
 */
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HeedError } from '../errors.js';
import { fromHost, toHost, type Tensor } from '../engine/index.js';
import { loadHfWeights, saveHfWeights } from '../io/hf-weights.js';
import type { HostTensor, StDType } from '../io/safetensors.js';
import { readJsonIfExists } from '../io/json.js';
import { loadTokenizer, type HeedTokenizer } from '../io/tokenizer.js';
import { expectedShapes, parameterCount, parseModelConfig, readModelConfig, type ModelConfig } from './config.js';
import type { Params } from './transformer.js';

export interface HostModel {
  config: ModelConfig;
  /** config.json as read (kept so that saving writes back every field the user had) */
  raw: Record<string, unknown>;
  /** parameters by internal name (HF names; GPT-2 without the "transformer." prefix) */
  tensors: Map<string, HostTensor>;
  /** on-disk dtypes by internal name */
  dtypes: Map<string, StDType>;
  /** GPT-2 checkpoints saved by transformers prefix names with "transformer."; remembered for saving */
  namePrefix: string;
  files: string[];
}

/** Buffers that some checkpoints carry and that are derived, not learned: ignored on load. */
const IGNORED = [/\.attn\.bias$/, /\.attn\.masked_bias$/, /rotary_emb\.inv_freq$/];

/** Check host tensors against config; returns internal-name map or throws listing every problem. */
export function matchTensors(config: ModelConfig, tensors: Map<string, HostTensor>, dtypes: Map<string, StDType>, where: string): { tensors: Map<string, HostTensor>; dtypes: Map<string, StDType>; prefix: string } {
  let prefix = '';
  if (config.arch === 'gpt2' && [...tensors.keys()].some((k) => k.startsWith('transformer.'))) prefix = 'transformer.';
  const expected = expectedShapes(config);
  const out = new Map<string, HostTensor>();
  const outTypes = new Map<string, StDType>();
  const unexpected: string[] = [];
  const badShape: string[] = [];
  for (const [name, t] of tensors) {
    const internal = prefix && name.startsWith(prefix) ? name.slice(prefix.length) : name;
    const shape = expected.get(internal);
    if (!shape) {
      const tiedHead = internal === 'lm_head.weight' && (config.arch === 'gpt2' || config.tieEmbeddings);
      if (tiedHead || IGNORED.some((r) => r.test(internal))) continue;
      unexpected.push(name);
      continue;
    }
    if (shape.length !== t.shape.length || shape.some((d, i) => d !== t.shape[i])) badShape.push(`${name} is [${t.shape}] but config.json implies [${shape}]`);
    out.set(internal, t);
    outTypes.set(internal, dtypes.get(name) ?? 'F32');
  }
  const missing = [...expected.keys()].filter((k) => !out.has(k)).map((k) => prefix + k);
  const list = (xs: string[]) => xs.slice(0, 8).join(', ') + (xs.length > 8 ? `, … (${xs.length} in all)` : '');
  if (badShape.length) throw new HeedError(`${where}: tensor shapes do not match config.json: ${list(badShape)}`, 'use the config.json that belongs to these weights');
  if (missing.length) throw new HeedError(`${where}: missing tensors: ${list(missing)}`, 'the weights do not match config.json (wrong model_type, layer count or tie_word_embeddings?)');
  if (unexpected.length) throw new HeedError(`${where}: unexpected tensors: ${list(unexpected)}`, 'the weights do not match config.json (wrong model_type or layer count?)');
  return { tensors: out, dtypes: outTypes, prefix };
}

export function loadHostModel(dir: string): HostModel {
  if (!existsSync(dir)) throw new HeedError(`${dir}: model folder not found`, 'pass a Hugging Face model folder (config.json, model.safetensors, tokenizer.json)');
  const { config, raw } = readModelConfig(dir);
  const w = loadHfWeights(dir);
  const m = matchTensors(config, w.tensors, w.dtypes, dir);
  return { config, raw, tensors: m.tensors, dtypes: m.dtypes, namePrefix: m.prefix, files: w.files };
}

/** Host tensors → device params (f32). */
export function toDevice(tensors: Map<string, HostTensor>): Params {
  const p: Params = {};
  for (const [k, t] of tensors) p[k] = fromHost(t.data, t.shape);
  return p;
}

/** Device params → host tensors (params are kept alive). */
export async function toHostTensors(p: Params): Promise<Map<string, HostTensor>> {
  const out = new Map<string, HostTensor>();
  for (const k of Object.keys(p).sort()) out.set(k, { shape: [...p[k].shape], data: await toHost(p[k].ref) });
  return out;
}

export interface Model {
  dir: string;
  config: ModelConfig;
  raw: Record<string, unknown>;
  params: Params;
  tokenizer: HeedTokenizer;
  namePrefix: string;
  dtypes: Map<string, StDType>;
  paramCount: number;
}

export async function loadModel(dir: string): Promise<Model> {
  const host = loadHostModel(dir);
  const tokenizer = loadTokenizer(dir);
  if (tokenizer.vocabSize > host.config.vocabSize) {
    throw new HeedError(`${dir}: tokenizer has ${tokenizer.vocabSize} tokens but config.json vocab_size is ${host.config.vocabSize}`, 'use the tokenizer that belongs to this model');
  }
  const params = toDevice(host.tensors);
  return { dir, config: host.config, raw: host.raw, params, tokenizer, namePrefix: host.namePrefix, dtypes: host.dtypes, paramCount: parameterCount(host.config) };
}

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'vocab.json', 'merges.txt', 'tokenizer.model'];

const TORCH_DTYPE = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' } as const;

/**
 * Save a model folder loadable by Hugging Face transformers: config.json (the original fields, torch_dtype
 * updated), generation_config.json and tokenizer files copied from `fromDir`, weights as safetensors.
 */
export function saveHostModel(
  outDir: string,
  m: { raw: Record<string, unknown>; tensors: Map<string, HostTensor>; namePrefix?: string },
  opts: { dtype?: 'F32' | 'F16' | 'BF16'; fromDir?: string; maxShardBytes?: number } = {},
): { files: string[] } {
  const config = parseModelConfig(m.raw);
  mkdirSync(outDir, { recursive: true });
  const dtype = opts.dtype ?? 'F32';
  const raw: Record<string, unknown> = { ...m.raw, torch_dtype: TORCH_DTYPE[dtype] };
  if (config.arch === 'llama' && !config.tieEmbeddings && raw.tie_word_embeddings === undefined) raw.tie_word_embeddings = false;
  writeFileSync(join(outDir, 'config.json'), JSON.stringify(raw, null, 2) + '\n');
  const named = new Map<string, HostTensor>();
  for (const [k, t] of m.tensors) named.set((m.namePrefix ?? '') + k, t);
  const res = saveHfWeights(outDir, named, { dtype, maxShardBytes: opts.maxShardBytes });
  if (opts.fromDir && opts.fromDir !== outDir) {
    for (const f of ['generation_config.json', ...TOKENIZER_FILES]) {
      if (existsSync(join(opts.fromDir, f))) copyFileSync(join(opts.fromDir, f), join(outDir, f));
    }
  }
  return res;
}

export async function saveModel(outDir: string, model: Model, opts: { dtype?: 'F32' | 'F16' | 'BF16'; maxShardBytes?: number } = {}): Promise<{ files: string[] }> {
  const tensors = await toHostTensors(model.params);
  return saveHostModel(outDir, { raw: model.raw, tensors, namePrefix: model.namePrefix }, { ...opts, fromDir: model.dir });
}

export function disposeParams(p: Params): void {
  for (const v of Object.values(p)) v.dispose();
}

export function generationConfig(dir: string): Record<string, unknown> {
  return readJsonIfExists<Record<string, unknown>>(join(dir, 'generation_config.json')) ?? {};
}

export type { Tensor };
