/**
 * One model spec wherever a model is named (--model, configs, judges):
 *
 *   <folder>                                  a Hugging Face folder run by the in-process engine
 *   gguf:<path.gguf>                          a GGUF file run by llama.cpp (node-llama-cpp)
 *   openai:<base-url>#<model>[?k=v&k=v…]      any OpenAI-compatible server (vLLM, llama.cpp's server, Ollama,
 *                                             hosted APIs, heed serve) through the official `openai` package
 *
 * openai options: key_env (the environment variable that holds the API key; the key itself never appears in a
 * spec), api=completions|chat (default completions: base models), concurrency (requests in flight, 4),
 * timeout (seconds per request, 120), retries (on 429/5xx/network errors/malformed replies, 4), backoff
 * (seconds, first retry delay, 0.5), logprobs (top alternatives per token, 0–20), cache (a folder, or off).
 * In a config the same options may be given as fields: { model: "openai:…#m", key_env: "X", api: "chat" }.
 */
import { HeedError } from '../errors.js';
import type { ModelBackend } from './types.js';

export interface OpenAISpec {
  kind: 'openai';
  /** the spec with any secret removed (safe to log) */
  display: string;
  baseURL: string;
  model: string;
  keyEnv?: string;
  api: 'completions' | 'chat';
  concurrency: number;
  timeoutS: number;
  retries: number;
  backoffS: number;
  logprobs?: number;
  /** a cache folder, false = no cache, undefined = the default folder */
  cache?: string | false;
}
export type ModelSpec = { kind: 'engine'; display: string; dir: string } | { kind: 'gguf'; display: string; path: string } | OpenAISpec;

export const SPEC_FIX = 'use a model folder (models/base-dolly), gguf:<file.gguf> or openai:<base-url>#<model> (e.g. openai:http://127.0.0.1:8000/v1#base-dolly)';

const OPENAI_OPTIONS = ['key_env', 'api', 'concurrency', 'timeout', 'retries', 'backoff', 'logprobs', 'cache'] as const;

function numberOption(spec: string, key: string, v: unknown, o: { int?: boolean; min: number; max: number }): number {
  const n = typeof v === 'number' ? v : Number(v);
  if (typeof v === 'boolean' || v === '' || !Number.isFinite(n) || (o.int && !Number.isInteger(n)) || n < o.min || n > o.max) {
    throw new HeedError(`model spec ${spec}: ${key} must be ${o.int ? 'an integer' : 'a number'} in ${o.min}..${o.max}, got ${JSON.stringify(v)}`, `e.g. ${key}=${o.min === 0 ? 1 : o.min}`);
  }
  return n;
}

/** A URL without user:password@ (safe to print). */
function redactUrl(u: URL): string {
  const c = new URL(u.href);
  c.username = '';
  c.password = '';
  return c.href.replace(/\/$/, '');
}

function parseOpenAI(raw: string, rest: string, extra: Record<string, unknown>): OpenAISpec {
  const hash = rest.indexOf('#');
  if (hash < 0) throw new HeedError(`model spec ${JSON.stringify(raw)} names no model`, 'write openai:<base-url>#<model>, e.g. openai:http://127.0.0.1:8000/v1#base-dolly');
  const base = rest.slice(0, hash);
  let frag = rest.slice(hash + 1);
  let query = '';
  const q = frag.indexOf('?');
  if (q >= 0) {
    query = frag.slice(q + 1);
    frag = frag.slice(0, q);
  }
  const model = decodeURIComponent(frag);
  if (!model) throw new HeedError(`model spec ${JSON.stringify(raw)} names no model after "#"`, 'write openai:<base-url>#<model>');
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new HeedError(`model spec: base URL ${JSON.stringify(base)} is not a URL`, 'write openai:http(s)://host:port/v1#<model>');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new HeedError(`model spec: base URL ${JSON.stringify(base)} must be http:// or https://`, 'write openai:http(s)://host:port/v1#<model>');
  const display0 = `openai:${redactUrl(url)}#${model}`;
  if (url.username || url.password) throw new HeedError(`model spec ${display0}: the base URL holds credentials (user:password@)`, 'put the API key in an environment variable and name it with ?key_env=VAR');
  const opts: Record<string, unknown> = {};
  for (const part of query.split('&').filter(Boolean)) {
    const eq = part.indexOf('=');
    const k = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
    opts[k] = eq < 0 ? 'true' : decodeURIComponent(part.slice(eq + 1));
  }
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) opts[k] = v;
  for (const k of Object.keys(opts)) {
    if (['key', 'api_key', 'apikey', 'token'].includes(k.toLowerCase())) throw new HeedError(`model spec ${display0}: an API key may not be written in the spec ("${k}")`, 'put it in an environment variable and name it with key_env=VAR');
    if (!(OPENAI_OPTIONS as readonly string[]).includes(k)) throw new HeedError(`model spec ${display0}: unknown option "${k}"`, `options are ${OPENAI_OPTIONS.join(', ')}`);
  }
  const keyEnv = opts.key_env === undefined ? undefined : String(opts.key_env);
  if (keyEnv !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(keyEnv)) throw new HeedError(`model spec ${display0}: key_env ${JSON.stringify(keyEnv)} is not an environment variable name`, 'key_env names the variable (e.g. key_env=OPENAI_API_KEY), not the key');
  const api = opts.api === undefined ? 'completions' : String(opts.api);
  if (api !== 'completions' && api !== 'chat') throw new HeedError(`model spec ${display0}: api must be completions or chat, got ${JSON.stringify(api)}`, 'api=completions for base models (default), api=chat for chat models');
  const cacheOpt = opts.cache === undefined ? undefined : String(opts.cache);
  const spec: OpenAISpec = {
    kind: 'openai',
    display: '',
    baseURL: redactUrl(url),
    model,
    keyEnv,
    api,
    concurrency: opts.concurrency === undefined ? 4 : numberOption(display0, 'concurrency', opts.concurrency, { int: true, min: 1, max: 256 }),
    timeoutS: opts.timeout === undefined ? 120 : numberOption(display0, 'timeout', opts.timeout, { min: 0.01, max: 3600 }),
    retries: opts.retries === undefined ? 4 : numberOption(display0, 'retries', opts.retries, { int: true, min: 0, max: 20 }),
    backoffS: opts.backoff === undefined ? 0.5 : numberOption(display0, 'backoff', opts.backoff, { min: 0, max: 60 }),
    logprobs: opts.logprobs === undefined ? undefined : numberOption(display0, 'logprobs', opts.logprobs, { int: true, min: 0, max: 20 }),
    cache: cacheOpt === undefined ? undefined : cacheOpt === 'off' || cacheOpt === 'false' ? false : cacheOpt,
  };
  const shown = Object.entries(opts).map(([k, v]) => `${k}=${String(v)}`);
  spec.display = display0 + (shown.length ? `?${shown.join('&')}` : '');
  return spec;
}

/**
 * Parse a model spec: a string as above, or a config object { model: <spec string>, ...openai options }.
 * Errors are one line (HeedError) naming the spec and the fix.
 */
export function parseSpec(input: string | Record<string, unknown>): ModelSpec {
  let raw: string;
  let extra: Record<string, unknown> = {};
  if (typeof input === 'string') raw = input;
  else if (input && typeof input === 'object' && typeof input.model === 'string') {
    const { model, ...rest } = input;
    raw = model as string;
    extra = rest;
  } else throw new HeedError(`a model spec must be a string or an object with a "model" string, got ${JSON.stringify(input)}`, SPEC_FIX);
  if (!raw.trim()) throw new HeedError('the model spec is empty', SPEC_FIX);
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/s.exec(raw);
  // a scheme has two letters at least (C:\models is a Windows path) and no path separator before the colon
  const scheme = m && m[1].length > 1 ? m[1].toLowerCase() : undefined;
  const onlyEngine = () => {
    if (Object.keys(extra).length) throw new HeedError(`model spec ${raw}: options ${Object.keys(extra).join(', ')} apply to openai: specs only`, 'remove them');
  };
  if (scheme === undefined || scheme === 'file') {
    onlyEngine();
    const dir = scheme === 'file' ? m![2] : raw;
    return { kind: 'engine', display: raw, dir };
  }
  if (scheme === 'gguf') {
    onlyEngine();
    const path = m![2];
    if (!path) throw new HeedError(`model spec ${JSON.stringify(raw)} names no file`, 'write gguf:<path/to/model.gguf>');
    return { kind: 'gguf', display: raw, path };
  }
  if (scheme === 'openai') return parseOpenAI(raw, m![2], extra);
  if (scheme === 'http' || scheme === 'https') throw new HeedError(`model spec ${JSON.stringify(raw)} is a URL without a scheme for heed`, `write openai:${raw}#<model> for an OpenAI-compatible server`);
  throw new HeedError(`unknown model spec scheme "${m![1]}:" in ${JSON.stringify(raw)}`, SPEC_FIX);
}

export interface OpenModelOptions {
  /** the rule adapter: '' or a preset name or a rules file (refused on backends without logits) */
  rules?: string;
  /** the largest max-tokens the caller will ask for (checked against the context where known) */
  maxTokens?: number;
  /** engine device and threads (folder specs) */
  device?: string;
  threads?: number;
  /** warnings (unmapped rule tokens, cache notes); default stderr */
  warn?: (s: string) => void;
  /** the environment the API key is read from (default process.env) */
  env?: Record<string, string | undefined>;
}

/** Refuse the rule adapter on a backend that cannot run logits processors. */
export function refuseRulesWithoutLogits(display: string, kind: string): never {
  throw new HeedError(`the rule adapter needs full-vocabulary logits at every step, and ${display} (${kind}) is a text-only backend`, 'drop --adapter, or run the model as a folder or gguf: spec (the rule adapter runs there)');
}

/** Open any model spec as a ModelBackend. */
export async function openModel(input: string | Record<string, unknown> | ModelSpec, opts: OpenModelOptions = {}): Promise<ModelBackend> {
  const spec = typeof input === 'object' && 'kind' in input && 'display' in input ? (input as ModelSpec) : parseSpec(input as string | Record<string, unknown>);
  switch (spec.kind) {
    case 'engine':
      return (await import('./engine.js')).openEngine(spec.dir, opts);
    case 'gguf':
      return (await import('./llamacpp.js')).openLlamaCpp(spec.path, opts);
    case 'openai':
      if (opts.rules !== undefined) refuseRulesWithoutLogits(spec.display, 'OpenAI-compatible server');
      return (await import('./openai.js')).openOpenAI(spec, opts);
  }
}
