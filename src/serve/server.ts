/**
 * heed serve: an OpenAI-compatible HTTP server over any ModelBackend (node:http, no framework).
 *
 *   GET  /v1/models, /v1/models/<id>     the one model served
 *   POST /v1/completions                 prompt (string or list of strings) → text
 *   POST /v1/chat/completions            messages → the assistant's message (the model's chat template)
 *   GET  /health                         {"status":"ok"}
 *
 * `stream: true` answers as server-sent events (data: {chunk}\n\n … data: [DONE]). Requests wait in one
 * bounded queue; a worker takes the oldest and every queued request with the same parameters (up to maxBatch
 * prompts) and generates them as one batch. A full queue answers 503 with Retry-After. Limits: body size,
 * prompt length (characters, and tokens against the model's context), max_tokens. Every error has OpenAI's
 * shape: {"error": {"message", "type", "param", "code"}}. Optional API key (Authorization: Bearer <key>).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { HeedError } from '../errors.js';
import type { GenerateOptions, Generation } from '../decode/generate.js';
import { stableJson } from '../backends/cache.js';
import { LogprobRecorder } from './logprobs.js';
import { generationError, generationTokens, type BackendGeneration, type ChatTurn, type ModelBackend } from '../backends/types.js';

export interface ServeOptions {
  host?: string;
  port?: number;
  /** the model id clients name (default: the folder's name) */
  name?: string;
  /** require `Authorization: Bearer <apiKey>` */
  apiKey?: string;
  maxBodyBytes?: number;
  maxPromptChars?: number;
  /** the largest max_tokens a request may ask for */
  maxTokensLimit?: number;
  /** requests waiting (beyond the batch being generated) before 503 */
  queueSize?: number;
  /** prompts generated together */
  maxBatch?: number;
  /** how long an idle worker waits for more requests to batch with the first (ms) */
  batchWindowMs?: number;
  log?: (line: string) => void;
  /** log every batch (size, seconds) */
  verbose?: boolean;
}

export const SERVE_DEFAULTS = { host: '127.0.0.1', port: 8000, maxBodyBytes: 1 << 20, maxPromptChars: 100_000, maxTokensLimit: 1024, queueSize: 64, maxBatch: 16, batchWindowMs: 5 };

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string = 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const bad = (message: string, param: string | null = null, code: string | null = null) => new ApiError(400, message, 'invalid_request_error', param, code);

interface Job {
  kind: 'text' | 'chat';
  logprobs?: number;
  inputs: string[] | ChatTurn[][];
  opts: GenerateOptions;
  key: string;
  onDelta?: (index: number, delta: string) => void;
  cancelled: boolean;
  resolve: (g: Generation[]) => void;
  reject: (e: unknown) => void;
}

export interface ServerStats {
  requests: number;
  completed: number;
  rejected_queue_full: number;
  errors: number;
  batches: number;
  prompts: number;
}

export interface RunningServer {
  url: string;
  host: string;
  port: number;
  name: string;
  stats: ServerStats;
  close(): Promise<void>;
}

// ------------------------------------------------------------------ request validation

function isObj(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

function optNumber(b: Record<string, unknown>, k: string, o: { min?: number; max?: number; int?: boolean; gt?: number } = {}): number | undefined {
  const v = b[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`${k} must be a number, got ${JSON.stringify(v)}`, k, 'invalid_type');
  if (o.int && !Number.isInteger(v)) throw bad(`${k} must be an integer, got ${v}`, k, 'invalid_type');
  if ((o.min !== undefined && v < o.min) || (o.max !== undefined && v > o.max) || (o.gt !== undefined && v <= o.gt)) {
    throw bad(`${k} must be ${o.gt !== undefined ? `> ${o.gt}` : `>= ${o.min}`}${o.max !== undefined ? ` and <= ${o.max}` : ''}, got ${v}`, k, 'invalid_value');
  }
  return v;
}

function textContent(content: unknown, i: number): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content) && content.every((p) => isObj(p) && p.type === 'text' && typeof p.text === 'string')) return content.map((p) => (p as { text: string }).text).join('');
  throw bad(`messages[${i}].content must be a string (or a list of {"type": "text", "text": "..."} parts)`, `messages[${i}].content`, 'invalid_type');
}

interface Parsed {
  kind: 'text' | 'chat';
  /** top alternatives per token when log-probabilities are asked for */
  logprobs?: number;
  inputs: string[] | ChatTurn[][];
  opts: GenerateOptions;
  stream: boolean;
  includeUsage: boolean;
}

function parseRequest(b: unknown, kind: 'text' | 'chat', backend: ModelBackend, name: string, o: { maxBatch: number; maxTokensLimit: number; maxPromptChars: number }): Parsed {
  if (!isObj(b)) throw bad('the body must be a JSON object');
  if (typeof b.model !== 'string') throw bad('model must be a string (GET /v1/models lists the one served)', 'model', b.model === undefined ? 'missing_required_parameter' : 'invalid_type');
  if (b.model !== name) throw new ApiError(404, `The model \`${b.model}\` does not exist (this server serves \`${name}\`)`, 'invalid_request_error', 'model', 'model_not_found');
  let inputs: string[] | ChatTurn[][];
  if (kind === 'text') {
    const p = b.prompt;
    if (p === undefined) throw bad('prompt is required', 'prompt', 'missing_required_parameter');
    if (typeof p === 'string') inputs = [p];
    else if (Array.isArray(p) && p.length > 0 && p.every((x) => typeof x === 'string')) inputs = p as string[];
    else if (Array.isArray(p) && p.length > 0 && p.every((x) => typeof x === 'number' || Array.isArray(x))) throw bad('prompts as token ids are not supported here: send text', 'prompt', 'invalid_type');
    else throw bad('prompt must be a string or a non-empty list of strings', 'prompt', 'invalid_type');
    if (inputs.length > o.maxBatch) throw bad(`at most ${o.maxBatch} prompts per request, got ${inputs.length}`, 'prompt', 'invalid_value');
    if (b.echo === true) throw bad('echo is not supported', 'echo', 'unsupported_parameter');
    if (b.suffix !== undefined && b.suffix !== null) throw bad('suffix is not supported', 'suffix', 'unsupported_parameter');
  } else {
    if (!backend.chat || !backend.capabilities.chat) throw bad(`the model \`${name}\` has no chat template: use /v1/completions`, 'messages', 'chat_not_supported');
    const m = b.messages;
    if (!Array.isArray(m) || m.length === 0) throw bad('messages must be a non-empty list', 'messages', m === undefined ? 'missing_required_parameter' : 'invalid_type');
    inputs = [
      m.map((x, i) => {
        if (!isObj(x) || typeof x.role !== 'string') throw bad(`messages[${i}] must be an object with a "role" string`, `messages[${i}]`, 'invalid_type');
        if (!['system', 'user', 'assistant', 'developer'].includes(x.role)) throw bad(`messages[${i}].role must be system, user or assistant, got ${JSON.stringify(x.role)}`, `messages[${i}].role`, 'invalid_value');
        return { role: x.role === 'developer' ? 'system' : x.role, content: textContent(x.content, i) };
      }),
    ];
  }
  const n = optNumber(b, 'n', { int: true, min: 1 });
  if (n !== undefined && n !== 1) throw bad('n must be 1 here', 'n', 'unsupported_parameter');
  let logprobs: number | undefined;
  if (kind === 'text') logprobs = optNumber(b, 'logprobs', { int: true, min: 0, max: 20 });
  else {
    if (b.logprobs !== undefined && b.logprobs !== null && typeof b.logprobs !== 'boolean') throw bad('logprobs must be true or false', 'logprobs', 'invalid_type');
    const top = optNumber(b, 'top_logprobs', { int: true, min: 0, max: 20 });
    if (top !== undefined && b.logprobs !== true) throw bad('top_logprobs needs logprobs: true', 'top_logprobs', 'invalid_value');
    logprobs = b.logprobs === true ? (top ?? 0) : undefined;
  }
  if (logprobs !== undefined && !(backend.capabilities.logits && backend.tokenizer)) throw bad(`log-probabilities need a backend with logits; ${backend.kind} has none`, 'logprobs', 'unsupported_parameter');
  for (const k of ['presence_penalty', 'frequency_penalty']) if (optNumber(b, k, { min: -2, max: 2 })) throw bad(`${k} is not supported (use repetition_penalty)`, k, 'unsupported_parameter');
  const mtKey = b.max_completion_tokens !== undefined && b.max_completion_tokens !== null ? 'max_completion_tokens' : 'max_tokens';
  const maxTokens = optNumber(b, mtKey, { int: true, min: 1 }) ?? (kind === 'text' ? 16 : Math.min(o.maxTokensLimit, 256));
  if (maxTokens > o.maxTokensLimit) throw bad(`${mtKey} is ${maxTokens}; this server allows at most ${o.maxTokensLimit}`, mtKey, 'invalid_value');
  let stop: string[] | undefined;
  if (typeof b.stop === 'string') stop = [b.stop];
  else if (Array.isArray(b.stop) && b.stop.every((s) => typeof s === 'string')) stop = b.stop as string[];
  else if (b.stop !== undefined && b.stop !== null) throw bad('stop must be a string or a list of strings', 'stop', 'invalid_type');
  if (stop && stop.length > 16) throw bad('at most 16 stop strings', 'stop', 'invalid_value');
  if (b.stream !== undefined && b.stream !== null && typeof b.stream !== 'boolean') throw bad('stream must be true or false', 'stream', 'invalid_type');
  const opts: GenerateOptions = {
    maxTokens,
    temperature: optNumber(b, 'temperature', { min: 0, max: 2 }) ?? 1,
    topP: optNumber(b, 'top_p', { gt: 0, max: 1 }),
    topK: optNumber(b, 'top_k', { int: true, min: -1 }),
    minP: optNumber(b, 'min_p', { min: 0, max: 1 }),
    repetitionPenalty: optNumber(b, 'repetition_penalty', { gt: 0 }),
    seed: optNumber(b, 'seed', { int: true, min: 0 }),
    stop,
  };
  if (opts.topK === -1 || opts.topK === 0) opts.topK = undefined; // vLLM's "off"
  for (const k of Object.keys(opts) as Array<keyof GenerateOptions>) if (opts[k] === undefined) delete opts[k];
  // prompt length: characters first (cheap), then tokens against the context
  const texts = kind === 'text' ? (inputs as string[]) : (inputs as ChatTurn[][]).map((m) => m.map((t) => t.content).join('\n'));
  for (const [i, t] of texts.entries()) {
    if (t.length > o.maxPromptChars) throw bad(`the prompt${texts.length > 1 ? ` ${i}` : ''} has ${t.length} characters; this server allows at most ${o.maxPromptChars}`, kind === 'text' ? 'prompt' : 'messages', 'prompt_too_long');
    if (kind === 'text' && !backend.fits(t, maxTokens)) {
      const have = backend.tokenizer?.encode(t, { addSpecialTokens: true }).length;
      throw bad(`This model's maximum context length is ${backend.context} tokens; the prompt${have !== undefined ? ` (${have} tokens)` : ''} plus ${mtKey} ${maxTokens} do not fit`, 'prompt', 'context_length_exceeded');
    }
  }
  if (logprobs !== undefined && b.stream === true) throw bad('logprobs are given in non-streamed answers only', 'logprobs', 'unsupported_parameter');
  const so = b.stream_options;
  return { kind, inputs, opts, logprobs, stream: b.stream === true, includeUsage: isObj(so) && so.include_usage === true };
}

// ------------------------------------------------------------------ the server

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendError(res: ServerResponse, e: ApiError): void {
  if (res.headersSent) {
    // mid-stream: an error event, then the end
    res.write(`data: ${JSON.stringify({ error: { message: e.message, type: e.type, param: e.param, code: e.code } })}\n\n`);
    res.end();
    return;
  }
  sendJson(res, e.status, { error: { message: e.message, type: e.type, param: e.param, code: e.code } }, e.headers);
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((ok, no) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      no(new ApiError(413, `the request body is ${declared} bytes; this server accepts at most ${limit}`, 'invalid_request_error', null, 'body_too_large'));
      req.resume();
      return;
    }
    const parts: Buffer[] = [];
    let n = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      n += c.length;
      if (n > limit) {
        over = true;
        no(new ApiError(413, `the request body is over ${limit} bytes, the most this server accepts`, 'invalid_request_error', null, 'body_too_large'));
        return;
      }
      parts.push(c);
    });
    req.on('end', () => {
      if (!over) ok(Buffer.concat(parts).toString('utf8'));
    });
    req.on('error', (e) => no(e));
  });
}

const finishName = (g: Generation) => (g.finishReason === 'length' ? 'length' : 'stop');

export async function startServer(backend: ModelBackend, opts: ServeOptions = {}): Promise<RunningServer> {
  const o = {
    host: opts.host ?? SERVE_DEFAULTS.host,
    port: opts.port ?? SERVE_DEFAULTS.port,
    maxBodyBytes: opts.maxBodyBytes ?? SERVE_DEFAULTS.maxBodyBytes,
    maxPromptChars: opts.maxPromptChars ?? SERVE_DEFAULTS.maxPromptChars,
    maxTokensLimit: opts.maxTokensLimit ?? SERVE_DEFAULTS.maxTokensLimit,
    queueSize: opts.queueSize ?? SERVE_DEFAULTS.queueSize,
    maxBatch: opts.maxBatch ?? SERVE_DEFAULTS.maxBatch,
    batchWindowMs: opts.batchWindowMs ?? SERVE_DEFAULTS.batchWindowMs,
  };
  const name = opts.name ?? backend.gen.name;
  const log = opts.log ?? (() => {});
  const keyBuf = opts.apiKey ? Buffer.from(opts.apiKey) : undefined;
  const created = Math.floor(Date.now() / 1000);
  const stats: ServerStats = { requests: 0, completed: 0, rejected_queue_full: 0, errors: 0, batches: 0, prompts: 0 };

  const queue: Job[] = [];
  let busy = false;
  const pump = async () => {
    if (busy) return;
    busy = true;
    try {
      // clients that send together arrive a few ms apart: wait that long, then batch them
      if (o.batchWindowMs > 0 && o.maxBatch > 1) await new Promise((r) => setTimeout(r, o.batchWindowMs));
      while (queue.length) {
        const first = queue.shift()!;
        if (first.cancelled) continue;
        const group = [first];
        let count = first.inputs.length;
        for (let i = 0; i < queue.length && count < o.maxBatch; ) {
          const j = queue[i];
          if (!j.cancelled && j.key === first.key && count + j.inputs.length <= o.maxBatch) {
            group.push(j);
            count += j.inputs.length;
            queue.splice(i, 1);
          } else i++;
        }
        const owner: Array<[Job, number]> = group.flatMap((j) => j.inputs.map((_, k) => [j, k] as [Job, number]));
        const onText = (row: number, delta: string) => {
          const [j, k] = owner[row];
          if (!j.cancelled) j.onDelta?.(k, delta);
        };
        stats.batches++;
        stats.prompts += owner.length;
        const tb = performance.now();
        const run = async (js: Job[]) => {
          const rec = first.logprobs !== undefined ? new LogprobRecorder(first.logprobs) : undefined;
          const o2: GenerateOptions = { ...first.opts, onText, ...(rec ? { logitsProcessors: [rec.processor] } : {}) };
          const gens = first.kind === 'text' ? await backend.gen.generate(js.flatMap((j) => j.inputs as string[]), o2) : await backend.chat!(js.flatMap((j) => j.inputs as ChatTurn[][]), o2);
          if (!rec) return gens;
          const tok = backend.tokenizer!;
          const piece = (id: number) => tok.decode([id]);
          return gens.map((g, r): BackendGeneration => ({ ...g, logprobs: rec.finish(r, g).map((t) => ({ token: piece(t.id), logprob: t.logprob, top: t.top.map((x) => ({ token: piece(x.id), logprob: x.logprob })) })) }));
        };
        try {
          const gens = await run(group);
          let at = 0;
          for (const j of group) {
            j.resolve(gens.slice(at, at + j.inputs.length));
            at += j.inputs.length;
          }
          if (opts.verbose) log(`[serve: batch of ${owner.length} prompt(s) from ${group.length} request(s) in ${((performance.now() - tb) / 1000).toFixed(2)} s; ${queue.length} waiting]`);
        } catch (e) {
          if (group.length === 1 || !(e instanceof HeedError)) for (const j of group) j.reject(e);
          else {
            // one request's input is at fault (e.g. a chat too long for the context): the others still get answers
            for (const j of group) {
              owner.splice(0, owner.length, ...j.inputs.map((_, k) => [j, k] as [Job, number]));
              try {
                j.resolve(await run([j]));
              } catch (e2) {
                j.reject(e2);
              }
            }
          }
        }
      }
    } finally {
      busy = false;
    }
  };

  const enqueue = (p: Parsed, onDelta?: Job['onDelta']): { job: Job; done: Promise<Generation[]> } => {
    if (queue.length >= o.queueSize) {
      stats.rejected_queue_full++;
      throw new ApiError(503, `the request queue is full (${o.queueSize} waiting); try again shortly`, 'server_error', null, 'queue_full', { 'retry-after': '1' });
    }
    let job!: Job;
    const done = new Promise<Generation[]>((resolve, reject) => {
      job = { kind: p.kind, logprobs: p.logprobs, inputs: p.inputs, opts: p.opts, key: stableJson({ kind: p.kind, opts: p.opts, logprobs: p.logprobs }), onDelta, cancelled: false, resolve, reject };
    });
    queue.push(job);
    void pump();
    return { job, done };
  };

  const stopReason = (g: Generation, stop: string[] | undefined): string | null => {
    if (g.finishReason !== 'stop') return null;
    const full = backend.tokenizer && g.ids.length ? backend.tokenizer.decode(g.ids) : undefined;
    const hit = full !== undefined ? stop?.find((s) => full.startsWith(s, g.text.length)) : undefined;
    return hit ?? stop?.[0] ?? 'stop';
  };
  const usage = (gs: Generation[]) => {
    const prompt = gs.reduce((a, g) => a + ((g as BackendGeneration).promptTokens ?? g.promptIds.length), 0);
    const completion = gs.reduce((a, g) => a + generationTokens(g), 0);
    return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
  };

  async function handleGenerate(req: IncomingMessage, res: ServerResponse, kind: 'text' | 'chat') {
    const raw = await readBody(req, o.maxBodyBytes);
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch (e) {
      throw bad(`the body is not valid JSON: ${(e as Error).message.split('\n')[0]}`, null, 'invalid_json');
    }
    const p = parseRequest(body, kind, backend, name, o);
    const id = `${kind === 'text' ? 'cmpl' : 'chatcmpl'}-${randomBytes(12).toString('hex')}`;
    const object = kind === 'text' ? 'text_completion' : 'chat.completion';
    const now = Math.floor(Date.now() / 1000);
    const failed = (gs: Generation[]) => {
      const err = gs.map(generationError).find((x) => x);
      if (err) throw new ApiError(502, `the backend failed on this request: ${err}`, 'server_error', null, 'backend_error');
    };
    if (!p.stream) {
      const { job, done } = enqueue(p);
      res.on('close', () => {
        if (!res.writableFinished) job.cancelled = true;
      });
      const gs = await done;
      failed(gs);
      const lpText = (g: Generation) => {
        const lp = (g as BackendGeneration).logprobs;
        if (!lp) return null;
        const offsets: number[] = [];
        let at = 0;
        for (const t of lp) {
          offsets.push(at);
          at += t.token.length;
        }
        return { tokens: lp.map((t) => t.token), token_logprobs: lp.map((t) => t.logprob), top_logprobs: lp.map((t) => Object.fromEntries((t.top ?? []).map((x) => [x.token, x.logprob]))), text_offset: offsets };
      };
      const lpChat = (g: Generation) => {
        const lp = (g as BackendGeneration).logprobs;
        const bytes = (t: string) => [...Buffer.from(t)];
        return lp ? { content: lp.map((t) => ({ token: t.token, logprob: t.logprob, bytes: bytes(t.token), top_logprobs: (t.top ?? []).map((x) => ({ token: x.token, logprob: x.logprob, bytes: bytes(x.token) })) })) } : null;
      };
      const choices = gs.map((g, index) =>
        kind === 'text'
          ? { index, text: g.text, logprobs: lpText(g), finish_reason: finishName(g), stop_reason: stopReason(g, p.opts.stop) }
          : { index, message: { role: 'assistant', content: g.text }, logprobs: lpChat(g), finish_reason: finishName(g), stop_reason: stopReason(g, p.opts.stop) },
      );
      sendJson(res, 200, { id, object, created: now, model: name, choices, usage: usage(gs) });
      return;
    }
    // streaming: headers go out once the request is queued (a full queue still answers 503 as JSON)
    const chunkObject = kind === 'text' ? 'text_completion' : 'chat.completion.chunk';
    const write = (data: unknown) => {
      if (!res.writableEnded) res.write(`data: ${JSON.stringify(data)}\n\n`);
    };
    const started = new Set<number>();
    const chunk = (index: number, delta: string | null, finish: string | null, stop: string | null = null) =>
      kind === 'text'
        ? { id, object: chunkObject, created: now, model: name, choices: [{ index, text: delta ?? '', logprobs: null, finish_reason: finish, ...(finish ? { stop_reason: stop } : {}) }] }
        : { id, object: chunkObject, created: now, model: name, choices: [{ index, delta: delta === null ? {} : started.has(index) ? { content: delta } : { role: 'assistant', content: delta }, logprobs: null, finish_reason: finish, ...(finish ? { stop_reason: stop } : {}) }] };
    const { job, done } = enqueue(p, (index, delta) => {
      write(chunk(index, delta, null));
      started.add(index);
    });
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.on('close', () => {
      if (!res.writableFinished) job.cancelled = true;
    });
    const gs = await done;
    failed(gs);
    gs.forEach((g, index) => {
      // what streaming could not show yet (a held-back partial character) goes out with the last chunk
      write(chunk(index, null, finishName(g), stopReason(g, p.opts.stop)));
    });
    if (p.includeUsage) write({ id, object: chunkObject, created: now, model: name, choices: [], usage: usage(gs) });
    res.write('data: [DONE]\n\n');
    res.end();
  }

  const server = createServer(async (req, res) => {
    stats.requests++;
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    try {
      if (keyBuf) {
        const h = req.headers.authorization ?? '';
        const given = Buffer.from(h.startsWith('Bearer ') ? h.slice(7) : '');
        if (given.length !== keyBuf.length || !timingSafeEqual(given, keyBuf)) throw new ApiError(401, 'Incorrect or missing API key (send Authorization: Bearer <key>)', 'invalid_request_error', null, 'invalid_api_key');
      }
      if (path === '/health' && req.method === 'GET') return sendJson(res, 200, { status: 'ok' });
      if (path === '/v1/models' && req.method === 'GET') return sendJson(res, 200, { object: 'list', data: [{ id: name, object: 'model', created, owned_by: 'heed' }] });
      if (path.startsWith('/v1/models/') && req.method === 'GET') {
        const m = decodeURIComponent(path.slice('/v1/models/'.length));
        if (m !== name) throw new ApiError(404, `The model \`${m}\` does not exist`, 'invalid_request_error', 'model', 'model_not_found');
        return sendJson(res, 200, { id: name, object: 'model', created, owned_by: 'heed' });
      }
      const kind = path === '/v1/completions' ? 'text' : path === '/v1/chat/completions' ? 'chat' : undefined;
      if (!kind) throw new ApiError(404, `no route ${req.method} ${path} (this server has /v1/models, /v1/completions, /v1/chat/completions)`, 'invalid_request_error', null, 'not_found');
      if (req.method !== 'POST') throw new ApiError(405, `${path} takes POST`, 'invalid_request_error', null, 'method_not_allowed', { allow: 'POST' });
      await handleGenerate(req, res, kind);
      stats.completed++;
    } catch (e) {
      const err = e instanceof ApiError ? e : e instanceof HeedError ? new ApiError(400, e.oneLine(), 'invalid_request_error') : new ApiError(500, `internal error: ${(e as Error)?.message ?? String(e)}`, 'server_error');
      if (err.status >= 500 && err.code !== 'queue_full') log(`[serve: ${err.status} ${err.message}]`);
      stats.errors++;
      sendError(res, err);
      if (err.status === 413) req.destroy();
    }
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((ok, no) => {
    server.once('error', (e: NodeJS.ErrnoException) => no(e.code === 'EADDRINUSE' ? new HeedError(`port ${o.port} on ${o.host} is in use`, 'pick another --port (or --port 0 for a free one)') : e));
    server.listen(o.port, o.host, () => ok());
  });
  const port = (server.address() as AddressInfo).port;
  const hostShown = o.host.includes(':') ? `[${o.host}]` : o.host;
  return {
    url: `http://${hostShown}:${port}/v1`,
    host: o.host,
    port,
    name,
    stats,
    close: () =>
      new Promise<void>((ok) => {
        for (const j of queue.splice(0)) j.reject(new ApiError(503, 'the server is shutting down', 'server_error', null, 'shutting_down'));
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}
