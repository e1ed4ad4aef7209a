/**
 * Where a model runs, behind one interface (the contract between the backends, the model-spec parser and
 * everything that evaluates: IFS, ObjecQA, judges, heed serve).
 *
 * Generation has three layers:
 *  1. a LogitsSession (prefill / step → logits), where the backend has one (in-process engine, llama.cpp);
 *  2. one host decode loop over a session (src/decode/: logits processors, sampling, stop strings, streaming);
 *  3. a TextGenerator on top (src/decode/generate.ts), which is all that IFS, ObjecQA and judges see.
 * A text-only backend (an OpenAI-compatible server) implements layer 3 directly.
 */
import type { GenerateOptions, Generation, TextGenerator } from '../decode/generate.js';

/** What a backend can do; callers refuse features a backend lacks with a clear error (never emulate silently). */
export interface BackendCapabilities {
  /** prompts and outputs as token ids of a known tokenizer (token counts are exact) */
  tokenIds: boolean;
  /** full-vocabulary logits at every step (logits processors such as the rule adapter can run) */
  logits: boolean;
  /** log-probabilities of the chosen tokens (and top alternatives) are returned */
  logprobs: boolean;
  /** a chat endpoint / chat template is available */
  chat: boolean;
}

/**
 * One decoding session over a batch: prefill the prompts, then one step at a time. Logits are the model's raw
 * next-token scores (log-probabilities are acceptable: sampling and processors are shift-invariant per row).
 */
export interface LogitsSession {
  readonly vocabSize: number;
  /**
   * prefill one row per prompt (token ids, specials included); returns each row's next-token logits.
   * `maxTokens`: how many step() calls may follow at most (a backend with a fixed-size cache sizes it from this).
   * `argmaxOnly`: the caller only takes each row's argmax for the whole session (greedy, no processors, no
   * penalty): a backend may then return rows whose only finite entry is its own greedy choice (llama.cpp: no
   * full-vocabulary probabilities cross into JavaScript).
   */
  prefill(prompts: number[][], o?: { maxTokens?: number; argmaxOnly?: boolean }): Promise<Float32Array[]>;
  /** append one token to each row still active (`tokens[i]` for row i; inactive rows are ignored) and return their next logits */
  step(tokens: number[], active: readonly boolean[]): Promise<Float32Array[]>;
  /** free the cache/contexts */
  dispose(): void | Promise<void>;
}

/** A model opened from a spec (folder | gguf:<path> | openai:<base-url>#<model>). */
export interface ModelBackend {
  /** the spec as the user wrote it, with any secret removed (safe to log and to write to run folders) */
  readonly spec: string;
  readonly kind: 'engine' | 'llama.cpp' | 'openai';
  readonly capabilities: BackendCapabilities;
  /** the text generator (layer 3); logits processors in GenerateOptions are honoured only when capabilities.logits */
  readonly gen: TextGenerator;
  /** the model's context in tokens, when known */
  readonly context?: number;
  /** whether a prompt plus maxTokens new tokens fits the context (true when unknown) */
  fits(prompt: string, maxTokens: number): boolean;
  /** open a logits session (layer 1) when capabilities.logits */
  session?(): Promise<LogitsSession>;
  /**
   * answer chat conversations (one generation per conversation) when capabilities.chat: the engine renders the
   * model's chat template, an OpenAI-compatible backend calls its chat endpoint
   */
  chat?(conversations: ChatTurn[][], opts?: GenerateOptions): Promise<Generation[]>;
  /** tokenizer when capabilities.tokenIds (the rule adapter maps its strings through it) */
  readonly tokenizer?: { encode(text: string, o?: { addSpecialTokens?: boolean }): number[]; decode(ids: number[]): string; vocabSize?: number };
  dispose(): void | Promise<void>;
}

/**
 * What a backend may add to a Generation (the engine's Generation type stays as it is). Read these with the
 * helpers below, never by guessing: a text-only backend has no ids, so its token counts come from the server.
 */
export interface GenerationExtras {
  /** generated tokens as the backend counted them (the server's usage.completion_tokens); ids.length when ids are known */
  tokens?: number;
  /** prompt tokens as the backend counted them */
  promptTokens?: number;
  /** the backend's own finish reason, verbatim ('stop', 'length', 'content_filter', …) */
  rawFinishReason?: string;
  /** log-probabilities of the chosen tokens (with top alternatives) when the backend returns them */
  logprobs?: Array<{ token: string; logprob: number; top?: Array<{ token: string; logprob: number }> }>;
  /** this item failed after every retry (the reason, one line): its text is '' and must not be scored */
  error?: string;
  /** the answer came from the on-disk cache */
  cached?: boolean;
}
export type BackendGeneration = Generation & GenerationExtras;

/** Generated token count: the backend's own count when it gave one, else the ids. */
export const generationTokens = (g: Generation): number => (g as BackendGeneration).tokens ?? g.ids.length;
/** The per-item failure of a generation, if any (undefined for a good one). */
export const generationError = (g: Generation): string | undefined => (g as BackendGeneration).error;

/** One chat message (OpenAI's shape). */
export interface ChatTurn {
  role: string;
  content: string;
}
