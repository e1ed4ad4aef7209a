/**
 * An OpenAI-compatible server as a ModelBackend (text only), through the official `openai` package: the
 * completions endpoint for base models (default), the chat endpoint with api=chat. It loses nothing:
 *  - one request per prompt, at most `concurrency` in flight;
 *  - a timeout per request; retries with exponential backoff and full jitter on 429 (honouring Retry-After),
 *    5xx, network errors, timeouts and malformed or empty replies;
 *  - a reply that is still malformed or empty after every retry is reported on its item (`error`), never
 *    guessed; configuration errors the server states (401/403/404) stop the run with a one-line error;
 *  - finish reasons, token counts (usage) and log-probabilities come from the server;
 *  - finished answers are cached on disk (cache.ts), so a repeated or interrupted run asks only for the rest.
 * The API key comes from the environment variable named by key_env; it is never logged, cached or written.
 */
import OpenAI, { APIConnectionError, APIError } from 'openai';
import { semaphore } from './semaphore.js';
import { HeedError } from '../errors.js';
import type { FinishReason, GenerateOptions, Generation, TextGenerator } from '../decode/generate.js';
import { AnswerCache, cacheKey, defaultCacheDir } from './cache.js';
import type { OpenAISpec, OpenModelOptions } from './spec.js';
import type { BackendGeneration, ChatTurn, GenerationExtras, ModelBackend } from './types.js';

/** What one finished answer is (also what the cache stores). */
interface Answer {
  text: string;
  finishReason: FinishReason;
  rawFinishReason: string;
  tokens?: number;
  promptTokens?: number;
  logprobs?: GenerationExtras['logprobs'];
}

/** A reply that is not a usable answer (retried, then reported on its item). */
class BadReply extends Error {}
/** An error that ends the whole run (the server refused the key, the model is unknown, …). */
class Fatal extends Error {}

const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

/** Seconds from a Retry-After (delta-seconds or HTTP date) / retry-after-ms header, if any. */
function retryAfterMs(e: unknown): number | undefined {
  const h = (e as { headers?: { get?(k: string): string | null } })?.headers;
  const ms = h?.get?.('retry-after-ms');
  if (ms && Number.isFinite(Number(ms))) return Number(ms);
  const v = h?.get?.('retry-after');
  if (!v) return undefined;
  if (Number.isFinite(Number(v))) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isFinite(t) ? Math.max(0, t - Date.now()) : undefined;
}

const oneLine = (s: string) => s.replace(/\s+/g, ' ').trim().slice(0, 300);

function finishOf(choice: Record<string, unknown>, stopAsked: boolean): { finishReason: FinishReason; raw: string } {
  const raw = choice.finish_reason;
  if (typeof raw !== 'string' || !raw) throw new BadReply(`the reply has no finish_reason (${JSON.stringify(raw ?? null)})`);
  if (raw === 'length') return { finishReason: 'length', raw };
  if (raw === 'stop') {
    // vLLM and heed serve say why: stop_reason is the stop string, or null / a token id for EOS
    const sr = choice.stop_reason;
    if (typeof sr === 'string') return { finishReason: 'stop', raw };
    if ('stop_reason' in choice) return { finishReason: 'eos', raw };
    return { finishReason: stopAsked ? 'stop' : 'eos', raw };
  }
  return { finishReason: 'stop', raw }; // content_filter, tool_calls, …: kept verbatim in rawFinishReason
}

function usageOf(res: Record<string, unknown>): { tokens?: number; promptTokens?: number } {
  const u = res.usage as Record<string, unknown> | undefined | null;
  const n = (x: unknown) => (typeof x === 'number' && Number.isInteger(x) && x >= 0 ? x : undefined);
  return { tokens: n(u?.completion_tokens), promptTokens: n(u?.prompt_tokens) };
}

/** The reply as an object and its first choice, or a BadReply saying what is missing. */
function firstChoice(res: unknown): { r: Record<string, unknown>; c: Record<string, unknown> } {
  if (!res || typeof res !== 'object' || Array.isArray(res)) throw new BadReply(`the reply is not a JSON object (${oneLine(String(res)).slice(0, 80)})`);
  const r = res as Record<string, unknown>;
  const choices = r.choices;
  if (!Array.isArray(choices) || choices.length === 0) throw new BadReply('the reply has no choices');
  const c = choices[0] as Record<string, unknown>;
  return { r, c };
}

/** Parse a completions reply strictly. */
function parseCompletion(res: unknown, stopAsked: boolean): Answer {
  const { r, c } = firstChoice(res);
  if (!c || typeof c.text !== 'string') throw new BadReply('the reply\'s choice has no "text" string');
  const f = finishOf(c, stopAsked);
  const lp = c.logprobs as { tokens?: unknown; token_logprobs?: unknown; top_logprobs?: unknown } | null | undefined;
  let logprobs: Answer['logprobs'];
  if (lp && Array.isArray(lp.tokens) && Array.isArray(lp.token_logprobs)) {
    const tops = Array.isArray(lp.top_logprobs) ? lp.top_logprobs : [];
    logprobs = lp.tokens.map((t, i) => ({
      token: String(t),
      logprob: Number((lp.token_logprobs as unknown[])[i]),
      ...(tops[i] && typeof tops[i] === 'object' ? { top: Object.entries(tops[i] as Record<string, number>).map(([token, logprob]) => ({ token, logprob: Number(logprob) })) } : {}),
    }));
  }
  return { text: c.text, finishReason: f.finishReason, rawFinishReason: f.raw, ...usageOf(r), ...(logprobs ? { logprobs } : {}) };
}

/** Parse a chat reply strictly. */
function parseChat(res: unknown, stopAsked: boolean): Answer {
  const { r, c } = firstChoice(res);
  const msg = c?.message as Record<string, unknown> | undefined;
  if (!msg || typeof msg.content !== 'string') throw new BadReply('the reply\'s choice has no message.content string');
  const f = finishOf(c, stopAsked);
  const lp = (c.logprobs as { content?: unknown } | null | undefined)?.content;
  const logprobs = Array.isArray(lp)
    ? lp.map((x: Record<string, unknown>) => ({
        token: String(x.token),
        logprob: Number(x.logprob),
        ...(Array.isArray(x.top_logprobs) ? { top: (x.top_logprobs as Array<Record<string, unknown>>).map((t) => ({ token: String(t.token), logprob: Number(t.logprob) })) } : {}),
      }))
    : undefined;
  return { text: msg.content, finishReason: f.finishReason, rawFinishReason: f.raw, ...usageOf(r), ...(logprobs ? { logprobs } : {}) };
}

export interface OpenAIStats {
  requests: number;
  retries: number;
  failures: number;
  cacheHits: number;
}

export class OpenAIGenerator implements TextGenerator {
  readonly name: string;
  readonly stats: OpenAIStats = { requests: 0, retries: 0, failures: 0, cacheHits: 0 };
  private readonly limit: ReturnType<typeof semaphore>;

  constructor(
    readonly spec: OpenAISpec,
    private readonly client: OpenAI,
    readonly cache: AnswerCache | undefined,
  ) {
    this.name = spec.display;
    this.limit = semaphore(spec.concurrency);
  }

  private body(opts: GenerateOptions, input: { prompt: string } | { messages: ChatTurn[] }): Record<string, unknown> {
    if (opts.logitsProcessors?.length) throw new HeedError(`${this.spec.display} is a text-only backend: logits processors (the rule adapter) cannot run there`, 'drop --adapter, or run the model as a folder or gguf: spec');
    if (opts.eosIds) throw new HeedError(`${this.spec.display}: custom EOS token ids cannot be sent to an OpenAI-compatible server`, 'use stop strings instead');
    const lp = this.spec.logprobs;
    const b: Record<string, unknown> = {
      model: this.spec.model,
      ...input,
      max_tokens: opts.maxTokens ?? 128,
      temperature: opts.temperature,
      top_p: opts.topP,
      stop: opts.stop?.length ? opts.stop : undefined,
      seed: opts.seed,
      // not in OpenAI's API, but vLLM, llama.cpp's server and heed serve take them; sent only when set
      top_k: opts.topK,
      min_p: opts.minP,
      repetition_penalty: opts.repetitionPenalty,
    };
    if (lp !== undefined) {
      if ('messages' in input) Object.assign(b, { logprobs: true, top_logprobs: lp });
      else b.logprobs = lp;
    }
    for (const k of Object.keys(b)) if (b[k] === undefined) delete b[k];
    return b;
  }

  /** One item: from the cache, or asked (with retries); failures come back as { error }. */
  private async one(body: Record<string, unknown>, endpoint: 'completions' | 'chat'): Promise<Answer | { error: string } | (Answer & { cached: true })> {
    const key = cacheKey({ baseURL: this.spec.baseURL, endpoint, body });
    const hit = this.cache?.get<Answer>(key);
    if (hit) {
      this.stats.cacheHits++;
      return { ...hit, cached: true as const };
    }
    const stopAsked = Array.isArray(body.stop) && body.stop.length > 0;
    const s = this.spec;
    let last = '';
    for (let attempt = 0; ; attempt++) {
      let wait: number | undefined;
      try {
        this.stats.requests++;
        const o = { timeout: s.timeoutS * 1000, maxRetries: 0 };
        const res =
          endpoint === 'completions'
            ? await this.client.completions.create(body as unknown as OpenAI.CompletionCreateParamsNonStreaming, o)
            : await this.client.chat.completions.create(body as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming, o);
        const a = endpoint === 'completions' ? parseCompletion(res, stopAsked) : parseChat(res, stopAsked);
        this.cache?.put(key, a);
        return a;
      } catch (e) {
        if (e instanceof HeedError) throw e;
        if (e instanceof APIError && e.status !== undefined && !(e instanceof APIConnectionError)) {
          const st = e.status;
          const msg = oneLine(e.message);
          if (st === 401 || st === 403) throw new Fatal(`${s.display}: the server refused the request (HTTP ${st}): ${msg}`);
          if (st === 404) throw new Fatal(`${s.display}: not found (HTTP 404): ${msg}`);
          if (st !== 429 && st < 500 && st !== 408) return { error: `HTTP ${st}: ${msg}` }; // the request itself is at fault: asking again would not help
          last = `HTTP ${st}: ${msg}`;
          wait = retryAfterMs(e);
        } else if (e instanceof APIConnectionError) {
          last = oneLine(`${e.constructor.name === 'APIConnectionTimeoutError' ? `no reply within ${s.timeoutS} s` : 'connection failed'}: ${e.message}${(e as { cause?: { message?: string } }).cause?.message ? ` (${(e as { cause?: { message?: string } }).cause!.message})` : ''}`);
        } else if (e instanceof BadReply) {
          last = `malformed reply: ${e.message}`;
        } else if (e instanceof SyntaxError || (e instanceof Error && /JSON|Unexpected|parse/i.test(e.message))) {
          last = `malformed reply: ${oneLine(e.message)}`;
        } else if (e instanceof Fatal) throw e;
        else last = oneLine(`${(e as Error)?.name ?? 'error'}: ${(e as Error)?.message ?? String(e)}`);
      }
      if (attempt >= s.retries) {
        this.stats.failures++;
        return { error: `${last} (after ${attempt + 1} attempt${attempt ? 's' : ''})` };
      }
      this.stats.retries++;
      const backoff = s.backoffS * 1000 * 2 ** attempt;
      const jittered = Math.random() * Math.min(backoff, 30_000); // full jitter
      await sleep(wait !== undefined ? Math.min(wait, 60_000) + Math.random() * 50 : jittered + backoff / 2);
    }
  }

  private async run(items: Array<{ prompt: string; body: Record<string, unknown> }>, endpoint: 'completions' | 'chat', opts: GenerateOptions): Promise<BackendGeneration[]> {
    try {
      return await Promise.all(
        items.map((it, i) =>
          this.limit(async () => {
            const a = await this.one(it.body, endpoint);
            if ('error' in a) return { prompt: it.prompt, promptIds: [], text: '', ids: [], finishReason: 'stop' as const, error: a.error };
            if (a.text) opts.onText?.(i, a.text);
            return { prompt: it.prompt, promptIds: [], ids: [], ...a };
          }),
        ),
      );
    } catch (e) {
      if (e instanceof Fatal) throw new HeedError(e.message, this.spec.keyEnv ? `check the key in $${this.spec.keyEnv}, the base URL and the model name (GET ${this.spec.baseURL}/models lists them)` : `give the server's API key with ?key_env=VAR, and check the base URL and the model name (GET ${this.spec.baseURL}/models lists them)`);
      throw e;
    }
  }

  async generate(prompts: string[], opts: GenerateOptions = {}): Promise<Generation[]> {
    if (this.spec.api === 'chat') return this.chat(prompts.map((p) => [{ role: 'user', content: p }]), opts, prompts);
    return this.run(prompts.map((p) => ({ prompt: p, body: this.body(opts, { prompt: p }) })), 'completions', opts);
  }

  async chat(conversations: ChatTurn[][], opts: GenerateOptions = {}, shown?: string[]): Promise<Generation[]> {
    return this.run(conversations.map((m, i) => ({ prompt: shown?.[i] ?? m.map((t) => t.content).join('\n'), body: this.body(opts, { messages: m }) })), 'chat', opts);
  }
}

export async function openOpenAI(spec: OpenAISpec, o: OpenModelOptions = {}): Promise<ModelBackend & { gen: OpenAIGenerator }> {
  const env = o.env ?? process.env;
  let apiKey = 'none'; // never fall back to $OPENAI_API_KEY: a key goes only where key_env sends it
  if (spec.keyEnv) {
    const k = env[spec.keyEnv];
    if (!k) throw new HeedError(`model spec ${spec.display}: the environment variable ${spec.keyEnv} (key_env) is not set`, `export ${spec.keyEnv}=<the API key>, or drop key_env for a server without a key`);
    apiKey = k;
  }
  const client = new OpenAI({ apiKey, baseURL: spec.baseURL, maxRetries: 0, timeout: spec.timeoutS * 1000 });
  const cache = spec.cache === false ? undefined : new AnswerCache(spec.cache ?? defaultCacheDir(env));
  const gen = new OpenAIGenerator(spec, client, cache);
  return {
    spec: spec.display,
    kind: 'openai',
    capabilities: { tokenIds: false, logits: false, logprobs: spec.logprobs !== undefined, chat: true },
    gen,
    fits: () => true, // the server's context is not known here: a prompt too long fails on its item (HTTP 400)
    chat: (conversations, opts) => gen.chat(conversations, opts),
    dispose() {},
  };
}
