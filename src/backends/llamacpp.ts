/**
 * The llama.cpp backend: a GGUF file through node-llama-cpp (an optional dependency, pinned at 3.21.1, installed
 * by the user: `npm i -E node-llama-cpp@3.21.1`). Its prebuilt binaries are used (build: 'never'): CPU, or
 * CUDA/Vulkan/Metal with `gpu: true` where present; nothing is compiled.
 *
 * It gives a logits session (layer 1): one context with one sequence per batch row; prefill and each step
 * evaluate the rows together (node-llama-cpp batches concurrent sequences into one llama_decode) and read
 * llama.cpp's full-vocabulary next-token probabilities (greedy sampler, no truncation: the softmax of the raw
 * logits), returned as log-probabilities. The host decode loop (src/decode/generate.ts) runs on top, so logits
 * processors — the rule adapter's product of experts — sampling, stop strings and streaming are heed's own.
 */
import { existsSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { HeedError } from '../errors.js';
import { SessionGenerator } from '../decode/generate.js';
import { readGguf } from '../io/gguf.js';
import type { LogitsSession, ModelBackend } from './types.js';

export const NODE_LLAMA_CPP_VERSION = '3.21.1';
const INSTALL = `npm i -E node-llama-cpp@${NODE_LLAMA_CPP_VERSION}`;

// ------------------------------------------------ minimal local types of node-llama-cpp 3.21.1 (what heed uses)
type Token = number;
interface NlcSequence {
  controlledEvaluate(input: Array<Token | [Token, { generateNext?: { probabilities?: boolean; token?: boolean; options?: { temperature?: number } } }]>): Promise<Array<undefined | { next: { token?: Token | null; probabilities?: Map<Token, number> } }>>;
  clearHistory(): Promise<void>;
  dispose(): void;
}
interface NlcContext {
  getSequence(): NlcSequence;
  readonly sequencesLeft: number;
  dispose(): Promise<void>;
}
interface NlcModel {
  tokenize(text: string, specialTokens?: boolean): Token[];
  detokenize(tokens: readonly Token[], specialTokens?: boolean): string;
  readonly tokens: { bos: Token | null; eos: Token | null; eot: Token | null; shouldPrependBosToken?: boolean };
  readonly trainContextSize: number;
  createContext(o: { sequences?: number; contextSize?: number; batchSize?: number; threads?: number; flashAttention?: boolean; experimentalKvCacheKeyType?: string; experimentalKvCacheValueType?: string }): Promise<NlcContext>;
  dispose(): Promise<void>;
}
interface NlcLlama {
  loadModel(o: { modelPath: string; gpuLayers?: number | 'auto' }): Promise<NlcModel>;
  readonly gpu: string | false;
}
interface NlcModule {
  getLlama(o: { gpu?: false | 'auto'; build?: 'never'; logLevel?: string; progressLogs?: boolean; logger?: (level: string, message: string) => void }): Promise<NlcLlama>;
}

let modPromise: Promise<NlcModule> | undefined;
/** node-llama-cpp, imported on first use; a clear error (with the install command) when it is not installed. */
export async function loadNodeLlamaCpp(): Promise<NlcModule> {
  const name = 'node-llama-cpp';
  modPromise ??= (import(name) as Promise<NlcModule>).catch((e: unknown) => {
    modPromise = undefined;
    const code = (e as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || /Cannot find (package|module)/.test(String((e as Error).message)))
      throw new HeedError('gguf: models run through node-llama-cpp, which is not installed (it is optional: ~730 MB with every platform\'s prebuilt binaries)', `run \`${INSTALL}\` in heed's folder`);
    throw new HeedError(`node-llama-cpp failed to load: ${(e as Error).message}`, `reinstall it: ${INSTALL}`);
  });
  return modPromise;
}

/** whether node-llama-cpp can be imported (tests skip, with a reason, when it cannot) */
export async function hasNodeLlamaCpp(): Promise<boolean> {
  try {
    await loadNodeLlamaCpp();
    return true;
  } catch {
    return false;
  }
}

/** llama.cpp's last log lines (errors only): quoted in load errors instead of printed */
const recentLog: string[] = [];
const llamas = new Map<string, Promise<NlcLlama>>();
function getLlama(gpu: boolean): Promise<NlcLlama> {
  const key = gpu ? 'gpu' : 'cpu';
  let p = llamas.get(key);
  if (!p) {
    p = loadNodeLlamaCpp().then((m) => m.getLlama({ gpu: gpu ? 'auto' : false, build: 'never', logLevel: 'error', progressLogs: false, logger: (_level, message) => { recentLog.push(message.trim()); if (recentLog.length > 8) recentLog.shift(); } }));
    p.catch(() => llamas.delete(key));
    llamas.set(key, p);
  }
  return p;
}

/** llama.cpp's probabilities (a Map, most likely first) → log-probabilities over the whole vocabulary */
function logProbs(p: Map<Token, number> | undefined, V: number): Float32Array {
  const out = new Float32Array(V).fill(-Infinity);
  if (!p) throw new HeedError('llama.cpp returned no probabilities for a step', 'this model may not support token generation');
  for (const [t, q] of p) if (t < V) out[t] = Math.log(q);
  return out;
}

const NEXT = { generateNext: { probabilities: true, options: { temperature: 0 } } } as const;
const NEXT_TOKEN = { generateNext: { token: true, options: { temperature: 0 } } } as const;

/** llama.cpp's greedy choice as a row whose only finite entry is that token (log p = 0) */
function oneHot(t: Token | null | undefined, V: number): Float32Array {
  if (t == null || !(t >= 0 && t < V)) throw new HeedError('llama.cpp returned no token for a step', 'this model may not support token generation');
  const out = new Float32Array(V).fill(-Infinity);
  out[t] = 0;
  return out;
}

export interface LlamaCppOptions {
  /** use a GPU (CUDA, Vulkan, Metal) when one is present; default false (CPU) */
  gpu?: boolean;
  /** context per sequence in tokens; default the model's training context, at most 4096 */
  context?: number;
  /**
   * CPU threads; default HEED_LLAMA_THREADS, else one less than the cores (at least 1). llama.cpp's threads spin
   * while they wait: on a busy machine more threads than free cores make each step 100× slower (measured here:
   * 2.6 ms vs 2 s per token for models/tiny-dolly with a load average of 10 on 2 cores).
   */
  threads?: number;
  /**
   * KV cache precision; default f32 for an all-f32 file, else f16 (llama.cpp's default). With f32 flash attention is
   * off too: on the CPU it rounds to f16 inside (next-token log-probs of test/fixtures/tiny/llama-gqa differ from the
   * engine's by 3.5e-3 with it, 2.4e-6 without).
   */
  kvCache?: 'f32' | 'f16';
}

/** Open a GGUF file with llama.cpp (node-llama-cpp). */
export async function openLlamaCpp(path: string, o: LlamaCppOptions = {}): Promise<ModelBackend> {
  if (!existsSync(path) || !statSync(path).isFile()) throw new HeedError(`${path}: GGUF file not found`, 'check the path of the gguf: spec (export a model folder with `heed export gguf <model-dir> <out.gguf>`)');
  const file = readGguf(path);
  const arch = String(file.metadata.get('general.architecture') ?? '');
  if (!arch) throw new HeedError(`${path}: the GGUF has no general.architecture`, 'export the model again with `heed export gguf`');
  const vocabTokens = file.metadata.get('tokenizer.ggml.tokens') as unknown[] | undefined;
  if (!vocabTokens) throw new HeedError(`${path}: the GGUF has no tokenizer (tokenizer.ggml.tokens)`, 'export a model folder with its tokenizer.json');
  const V = vocabTokens.length;
  const eosIds = [...new Set([file.metadata.get('tokenizer.ggml.eos_token_id'), ...((file.metadata.get('tokenizer.ggml.eos_token_ids') as number[] | undefined) ?? []), file.metadata.get('tokenizer.ggml.eot_token_id')].filter((x): x is number => typeof x === 'number'))];
  const addBos = file.metadata.get('tokenizer.ggml.add_bos_token') === true;
  const bosId = file.metadata.get('tokenizer.ggml.bos_token_id') as number | undefined;
  const chat = typeof file.metadata.get('tokenizer.chat_template') === 'string';

  const llama = await getLlama(o.gpu ?? false);
  let model: NlcModel;
  recentLog.length = 0;
  try {
    model = await llama.loadModel({ modelPath: path, gpuLayers: o.gpu ? 'auto' : 0 });
  } catch (e) {
    const why = recentLog.find((l) => /error loading model/.test(l))?.replace(/^.*error loading model:\s*/, '') ?? (e as Error).message.split('\n')[0];
    throw new HeedError(`${path}: llama.cpp cannot load this GGUF (architecture "${arch}"): ${why}`, 'use a GGUF of an architecture this llama.cpp (node-llama-cpp 3.21.1) supports, e.g. one written by `heed export gguf`');
  }
  const context = o.context ?? Math.min(model.trainContextSize || 4096, 4096);
  // a Mistral exported by heed within its sliding window: llama.cpp attends over the whole context (no window)
  const window = file.metadata.get('heed.sliding_window');
  if (typeof window === 'number' && context > window) {
    await model.dispose();
    throw new HeedError(`${path}: a context of ${context} exceeds the model's sliding window of ${window}; llama.cpp has no sliding window for this architecture, so outputs would differ from the model's`, `open it with a context of at most ${window}`);
  }
  const kv = (o.kvCache ?? (file.metadata.get('general.file_type') === 0 ? 'f32' : 'f16')).toUpperCase();
  const threads = o.threads ?? (Number(process.env.HEED_LLAMA_THREADS) || Math.max(1, availableParallelism() - 1));
  const tokenizer = {
    vocabSize: V,
    eosIds,
    encode(text: string, t: { addSpecialTokens?: boolean } = {}): number[] {
      const ids = model.tokenize(text, true);
      return (t.addSpecialTokens ?? false) && addBos && bosId !== undefined ? [bosId, ...ids] : ids;
    },
    decode(ids: number[], t: { skipSpecialTokens?: boolean } = {}): string {
      return model.detokenize(ids, !(t.skipSpecialTokens ?? false));
    },
  };

  /*
   * SORTED_OUTPUTS. Prefill evaluates the prompts' tokens without outputs first, then the last token of every
   * sequence with outputs, one token per sequence in sequence order (like each step). Evaluated in one go, the
   * prompts of unequal lengths made llama.cpp (one KV stream per sequence: split_equal ubatches) produce their
   * outputs out of batch order; it then reorders the logits rows lazily, on the first llama_get_logits_ith after
   * the decode, and node-llama-cpp reads every sequence's row at once on libuv worker threads: concurrent
   * reorders swapped rows twice or halfway, so a prefill now and then returned other positions' or sequences'
   * log-probs (1 run in ~6 for 34 prompts on a 32k vocabulary: max |Δ log p| 7.5 against the engine; none with
   * UV_THREADPOOL_SIZE=1). With one output per sequence in increasing sequence order the outputs are already
   * sorted, so there is nothing to reorder and nothing to race on.
   */
  // one context, grown when a batch needs more sequences than it has; its sequences are kept and cleared per batch
  let ctx: { c: NlcContext; seqs: NlcSequence[] } | undefined;
  let busy = false;
  const sequencesFor = async (n: number): Promise<NlcSequence[]> => {
    if (!ctx || ctx.seqs.length < n) {
      const size = Math.max(n, ctx ? ctx.seqs.length * 2 : 1);
      if (ctx) await ctx.c.dispose();
      ctx = undefined;
      const c = await model.createContext({ sequences: size, contextSize: context, threads, experimentalKvCacheKeyType: kv, experimentalKvCacheValueType: kv, ...(kv === 'F32' ? { flashAttention: false } : {}) });
      ctx = { c, seqs: Array.from({ length: size }, () => c.getSequence()) };
    }
    const seqs = ctx.seqs.slice(0, n);
    await Promise.all(seqs.map((s) => s.clearHistory()));
    return seqs;
  };

  const session = async (): Promise<LogitsSession> => {
    if (busy) throw new HeedError('this llama.cpp backend is already running a batch', 'run one generate() at a time per backend');
    busy = true;
    let seqs: NlcSequence[] = [];
    let argmaxOnly = false;
    const row = (r: { next: { token?: Token | null; probabilities?: Map<Token, number> } } | undefined) => (argmaxOnly ? oneHot(r?.next.token, V) : logProbs(r?.next.probabilities, V));
    const release = () => {
      seqs = [];
      busy = false;
    };
    return {
      vocabSize: V,
      async prefill(prompts: number[][], p: { maxTokens?: number; argmaxOnly?: boolean } = {}): Promise<Float32Array[]> {
        argmaxOnly = p.argmaxOnly ?? false;
        const next = argmaxOnly ? NEXT_TOKEN : NEXT;
        const longest = Math.max(...prompts.map((x) => x.length));
        if (longest + (p.maxTokens ?? 0) > context) throw new HeedError(`prompt (${longest} tokens) + max tokens (${p.maxTokens ?? 0}) exceeds the llama.cpp context of ${context}`, 'lower --max-tokens, shorten the prompt or open the model with a larger context');
        for (const [i, ids] of prompts.entries()) {
          if (ids.length === 0) throw new HeedError(`prompt ${i} is empty after tokenisation`, 'give a non-empty prompt');
          for (const id of ids) if (!(id >= 0 && id < V)) throw new HeedError(`prompt ${i}: token id ${id} is outside the vocabulary (0..${V - 1})`, 'use the tokenizer that belongs to this model');
        }
        try {
          seqs = await sequencesFor(prompts.length);
          // two phases, so that no llama_decode has outputs out of batch order (see SORTED_OUTPUTS)
          await Promise.all(seqs.map((s, b) => (prompts[b].length > 1 ? s.controlledEvaluate(prompts[b].slice(0, -1)) : undefined)));
          const out = await Promise.all(seqs.map((s, b) => s.controlledEvaluate([[prompts[b][prompts[b].length - 1], next]])));
          return out.map((r) => row(r[0]));
        } catch (e) {
          release();
          throw e;
        }
      },
      async step(tokens: number[], active: readonly boolean[]): Promise<Float32Array[]> {
        const empty = new Float32Array(0);
        const next = argmaxOnly ? NEXT_TOKEN : NEXT;
        return Promise.all(seqs.map(async (s, b) => (active[b] ? row((await s.controlledEvaluate([[tokens[b], next]]))[0]) : empty)));
      },
      dispose: release,
    };
  };

  const gen = new SessionGenerator(`gguf:${path}`, tokenizer, session);
  return {
    spec: `gguf:${path}`,
    kind: 'llama.cpp',
    capabilities: { tokenIds: true, logits: true, logprobs: true, chat },
    gen,
    context,
    fits: (prompt: string, maxTokens: number) => tokenizer.encode(prompt, { addSpecialTokens: true }).length + maxTokens <= context,
    session,
    tokenizer,
    async dispose() {
      if (ctx) await ctx.c.dispose();
      ctx = undefined;
      await model.dispose();
    },
  };
}
