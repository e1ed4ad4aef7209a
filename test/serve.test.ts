import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { openModel, parseSpec } from '../src/backends/spec.js';
import { openOpenAI } from '../src/backends/openai.js';
import { startServer, type RunningServer } from '../src/serve/server.js';
import type { ModelBackend } from '../src/backends/types.js';
import type { GenerateOptions, Generation } from '../src/decode/generate.js';
import { HeedError } from '../src/errors.js';
import { ROOT, TINY, tmp } from './helpers.js';

const BASE = join(ROOT, 'models/base-dolly');
const env = { ...process.env, NO_COLOR: '1', HEED_THREADS: '1' };
const heed = (args: string[], extra: Record<string, string> = {}) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((ok) => {
    const p = spawn(process.execPath, [join(ROOT, 'bin/heed.js'), ...args], { env: { ...env, ...extra } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c) => (stdout += c));
    p.stderr.on('data', (c) => (stderr += c));
    const t = setTimeout(() => p.kill('SIGKILL'), 120_000);
    p.on('close', (status) => {
      clearTimeout(t);
      ok({ status, stdout, stderr });
    });
  });

let backend: ModelBackend;
let srv: RunningServer;
before(async () => {
  backend = await openModel(BASE, { threads: 1 });
  srv = await startServer(backend, { port: 0, maxTokensLimit: 64, maxPromptChars: 4000, maxBodyBytes: 8192 });
});
after(async () => {
  await srv?.close();
  await backend?.dispose();
});

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(srv.url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });

async function apiError(r: Response, status: number, code: RegExp | string | null, param?: string | null) {
  assert.equal(r.status, status);
  const j = (await r.json()) as { error: { message: string; type: string; param: string | null; code: string | null } };
  assert.equal(typeof j.error.message, 'string');
  assert.ok(j.error.message.length > 0 && !j.error.message.includes('\n'));
  assert.equal(typeof j.error.type, 'string');
  assert.ok('param' in j.error && 'code' in j.error, 'OpenAI error shape');
  if (code instanceof RegExp) assert.match(String(j.error.code), code);
  else assert.equal(j.error.code, code);
  if (param !== undefined) assert.equal(j.error.param, param);
  return j.error;
}

test('heed serve: models, completions (+ SSE streaming equal to the whole answer), 127.0.0.1 by default', async () => {
  assert.equal(srv.host, '127.0.0.1');
  const m = (await (await fetch(srv.url + '/models')).json()) as { data: Array<{ id: string }> };
  assert.deepEqual(m.data.map((x) => x.id), ['base-dolly']);
  const r = await post('/completions', { model: 'base-dolly', prompt: 'The capital of France is', max_tokens: 12, temperature: 0 });
  assert.equal(r.status, 200);
  const j = (await r.json()) as { object: string; choices: Array<{ text: string; finish_reason: string }>; usage: { prompt_tokens: number; completion_tokens: number } };
  assert.equal(j.object, 'text_completion');
  const [local] = await backend.gen.generate(['The capital of France is'], { maxTokens: 12, temperature: 0 });
  assert.equal(j.choices[0].text, local.text);
  assert.equal(j.usage.completion_tokens, local.ids.length);
  assert.equal(j.usage.prompt_tokens, local.promptIds.length);
  assert.equal(j.choices[0].finish_reason, local.finishReason === 'length' ? 'length' : 'stop');
  const s = await post('/completions', { model: 'base-dolly', prompt: 'The capital of France is', max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true } });
  assert.equal(s.headers.get('content-type'), 'text/event-stream');
  const events = (await s.text()).split('\n\n').filter(Boolean);
  assert.equal(events.at(-1), 'data: [DONE]');
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice('data: '.length)));
  assert.equal(chunks.map((c) => c.choices[0]?.text ?? '').join(''), local.text);
  assert.ok(chunks.length > 2, 'several chunks');
  assert.equal(chunks.at(-2).choices[0].finish_reason, j.choices[0].finish_reason);
  assert.equal(chunks.at(-1).usage.completion_tokens, local.ids.length);
});

test('heed serve: log-probabilities from the engine (greedy picks the top one), through the OpenAI client too', async () => {
  const r = await post('/completions', { model: 'base-dolly', prompt: 'The capital of France is', max_tokens: 6, temperature: 0, logprobs: 3 });
  assert.equal(r.status, 200);
  const j = (await r.json()) as { choices: Array<{ text: string; finish_reason: string; logprobs: { tokens: string[]; token_logprobs: number[]; top_logprobs: Array<Record<string, number>>; text_offset: number[] } }> };
  const c = j.choices[0];
  const lp = c.logprobs;
  const [local] = await backend.gen.generate(['The capital of France is'], { maxTokens: 6, temperature: 0 });
  assert.equal(lp.tokens.length, local.ids.length);
  assert.equal(lp.tokens.join(''), c.text);
  for (const [i, t] of lp.token_logprobs.entries()) {
    assert.ok(t <= 0 && t > -30);
    const tops = Object.values(lp.top_logprobs[i]);
    assert.equal(tops.length, 3);
    assert.ok(Math.abs(Math.max(...tops) - t) < 1e-6, 'greedy: the chosen token is the most likely');
    assert.ok(tops.reduce((a, x) => a + Math.exp(x), 0) <= 1 + 1e-6);
  }
  const cl = await openOpenAI(parseSpec(`openai:${srv.url}#base-dolly?logprobs=2&cache=off`) as never, {});
  const [g] = (await cl.gen.generate(['The capital of France is'], { maxTokens: 6, temperature: 0 })) as Array<Generation & { logprobs?: Array<{ logprob: number; top?: unknown[] }> }>;
  assert.equal(g.text, local.text);
  assert.deepEqual(g.logprobs!.map((x) => x.logprob), lp.token_logprobs);
  assert.equal(g.logprobs![0].top!.length, 2);
  await apiError(await post('/completions', { model: 'base-dolly', prompt: 'x', logprobs: 3, stream: true }), 400, 'unsupported_parameter', 'logprobs');
  await apiError(await post('/completions', { model: 'base-dolly', prompt: 'x', logprobs: 99 }), 400, 'invalid_value', 'logprobs');
});

test('heed serve: malformed requests get OpenAI-shaped errors (bad JSON, wrong types, too long, too many tokens, unknown model)', async () => {
  await apiError(await post('/completions', '{"model": "base-dolly", "prompt": '), 400, 'invalid_json');
  await apiError(await post('/completions', '[1, 2]'), 400, null);
  await apiError(await post('/completions', { model: 'base-dolly', prompt: 5 }), 400, 'invalid_type', 'prompt');
  await apiError(await post('/completions', { model: 'base-dolly', prompt: [1, 2, 3] }), 400, 'invalid_type', 'prompt');
  await apiError(await post('/completions', { model: 'base-dolly' }), 400, 'missing_required_parameter', 'prompt');
  await apiError(await post('/completions', { model: 'base-dolly', prompt: 'x', max_tokens: 'ten' }), 400, 'invalid_type', 'max_tokens');
  await apiError(await post('/completions', { model: 'base-dolly', prompt: 'x', max_tokens: 2.5 }), 400, 'invalid_type', 'max_tokens');
  await apiError(await post('/completions', { model: 'base-dolly', prompt: 'x', temperature: -1 }), 400, 'invalid_value', 'temperature');
  await apiError(await post('/completions', { model: 'base-dolly', prompt: 'x', stream: 'yes' }), 400, 'invalid_type', 'stream');
  await apiError(await post('/completions', { model: 'base-dolly', prompt: 'x', n: 3 }), 400, 'unsupported_parameter', 'n');
  const tooMany = await apiError(await post('/completions', { model: 'base-dolly', prompt: 'x', max_tokens: 65 }), 400, 'invalid_value', 'max_tokens');
  assert.match(tooMany.message, /at most 64/);
  await apiError(await post('/completions', { model: 'base-dolly', prompt: 'word '.repeat(900) }), 400, 'prompt_too_long', 'prompt');
  const ctx = await apiError(await post('/completions', { model: 'base-dolly', prompt: 'zq '.repeat(600), max_tokens: 64 }), 400, 'context_length_exceeded', 'prompt');
  assert.match(ctx.message, /maximum context length is 512 tokens/);
  await apiError(await post('/completions', 'x'.repeat(9000)), 413, 'body_too_large');
  const unknown = await apiError(await post('/completions', { model: 'gpt-4', prompt: 'x' }), 404, 'model_not_found', 'model');
  assert.match(unknown.message, /gpt-4.*base-dolly/);
  await apiError(await post('/chat/completions', { model: 'base-dolly', messages: [{ role: 'user', content: 'hi' }] }), 400, 'chat_not_supported');
  await apiError(await fetch(srv.url + '/completions'), 405, 'method_not_allowed');
  await apiError(await fetch(srv.url + '/embeddings', { method: 'POST', body: '{}' }), 404, 'not_found');
  // the server is still well
  assert.equal((await post('/completions', { model: 'base-dolly', prompt: 'Hi', max_tokens: 2 })).status, 200);
});

/** A backend whose generations wait for a release (to fill the queue) and that has a chat "template". */
function gatedBackend() {
  let release!: () => void;
  let gate = new Promise<void>((r) => (release = r));
  const calls: string[][] = [];
  const answer = async (prompts: string[], opts: GenerateOptions = {}): Promise<Generation[]> => {
    calls.push(prompts);
    await gate;
    return prompts.map((p, i) => {
      opts.onText?.(i, 'hel');
      opts.onText?.(i, 'lo');
      return { prompt: p, promptIds: [1, 2], text: 'hello', ids: [5, 6, 7], finishReason: 'eos' as const };
    });
  };
  const b: ModelBackend = {
    spec: 'fake',
    kind: 'engine',
    capabilities: { tokenIds: false, logits: false, logprobs: false, chat: true },
    gen: { name: 'fake', generate: answer },
    fits: () => true,
    chat: (cs, o) => answer(cs.map((m) => m.map((t) => `${t.role}:${t.content}`).join('|')), o),
    dispose() {},
  };
  return { b, calls, open: () => release(), close: () => (gate = new Promise<void>((r) => (release = r))) };
}

test('heed serve: a bounded queue (503 + Retry-After when full, nothing lost), same-parameter requests batched, chat + SSE, API key', async () => {
  const g = gatedBackend();
  const s = await startServer(g.b, { port: 0, queueSize: 2, maxBatch: 8, apiKey: 'k-123' });
  try {
    const req = (body: unknown, key = 'k-123') => fetch(s.url + '/completions', { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: JSON.stringify({ model: 'fake', max_tokens: 4, ...(body as object) }) });
    const noKey = await fetch(s.url + '/completions', { method: 'POST', body: JSON.stringify({ model: 'fake', prompt: 'x' }) });
    await apiError(noKey, 401, 'invalid_api_key');
    await apiError(await req({ prompt: 'x' }, 'wrong'), 401, 'invalid_api_key');
    const first = req({ prompt: 'a' }); // taken by the worker at once, waits on the gate
    await new Promise((r) => setTimeout(r, 100));
    const queued = [req({ prompt: 'b' }), req({ prompt: 'c' })];
    await new Promise((r) => setTimeout(r, 100));
    const full = await req({ prompt: 'd' });
    assert.equal(full.headers.get('retry-after'), '1');
    await apiError(full, 503, 'queue_full');
    g.open();
    const done = await Promise.all([first, ...queued]);
    for (const r of done) assert.equal(r.status, 200);
    const texts = await Promise.all(done.map(async (r) => ((await r.json()) as { choices: Array<{ text: string }> }).choices[0].text));
    assert.deepEqual(texts, ['hello', 'hello', 'hello']);
    assert.deepEqual(g.calls, [['a'], ['b', 'c']]); // b and c shared one batch
    assert.equal(s.stats.rejected_queue_full, 1);
    // chat, streamed
    const c = await fetch(s.url + '/chat/completions', { method: 'POST', headers: { authorization: 'Bearer k-123' }, body: JSON.stringify({ model: 'fake', stream: true, messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: [{ type: 'text', text: 'hi' }] }] }) });
    const ev = (await c.text()).split('\n\n').filter(Boolean);
    const chunks = ev.slice(0, -1).map((e) => JSON.parse(e.slice(6)));
    assert.equal(chunks[0].object, 'chat.completion.chunk');
    assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: 'hel' });
    assert.deepEqual(chunks[1].choices[0].delta, { content: 'lo' });
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
    assert.deepEqual(g.calls.at(-1), ['system:be brief|user:hi']);
    // the OpenAI client through heed serve: the key from key_env; refused without it
    const spec = parseSpec(`openai:${s.url}#fake?key_env=HEED_SERVE_KEY&cache=off&api=chat`);
    const cl = await openOpenAI(spec as never, { env: { HEED_SERVE_KEY: 'k-123' } });
    const [a] = await cl.gen.generate(['hi'], { maxTokens: 3 });
    assert.equal(a.text, 'hello');
    const nokey = await openOpenAI(parseSpec(`openai:${s.url}#fake?cache=off`) as never, { env: {} });
    await assert.rejects(() => nokey.gen.generate(['hi']), (e: unknown) => e instanceof HeedError && /refused the request \(HTTP 401\)/.test(e.message) && !e.oneLine().includes('k-123'));
  } finally {
    g.open();
    await s.close();
  }
});

test('heed ifs --model openai:<heed serve>#base-dolly gives the same IFS and responses as the folder spec (greedy); the key is never written', async () => {
  const d = tmp();
  const cache = join(d, 'cache');
  const key = 'sk-never-written-7731';
  const s = await startServer(backend, { port: 0, apiKey: key });
  try {
    const spec = `openai:${s.url}#base-dolly?key_env=HEED_IFS_KEY&concurrency=4`;
    const args = ['--limit', '6', '--variant', 'C', '--max-tokens', '24', '--json'];
    const [viaServer, folder] = [await heed(['ifs', '--model', spec, ...args, '--out', join(d, 'served.jsonl')], { HEED_IFS_KEY: key, HEED_CACHE_DIR: cache }), await heed(['ifs', '--model', BASE, ...args, '--out', join(d, 'folder.jsonl')])];
    assert.equal(viaServer.status, 0, viaServer.stderr);
    assert.equal(folder.status, 0, folder.stderr);
    const a = JSON.parse(viaServer.stdout);
    const b = JSON.parse(folder.stdout);
    assert.deepEqual(a.scores, b.scores);
    const rows = (f: string) => readFileSync(join(d, f), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const pick = (r: Record<string, unknown>) => ({ id: r.id, response: r.response, label: r.label, finish_reason: r.finish_reason, tokens: r.tokens });
    assert.deepEqual(rows('served.jsonl').map(pick), rows('folder.jsonl').map(pick));
    assert.equal(a.model, `openai:${s.url}#base-dolly?key_env=HEED_IFS_KEY&concurrency=4`);
    // the key is in no output, no responses file and no cache file
    for (const text of [viaServer.stdout, viaServer.stderr, readFileSync(join(d, 'served.jsonl'), 'utf8'), ...readdirSync(cache, { recursive: true }).map(String).filter((f) => f.endsWith('.json')).map((f) => readFileSync(join(cache, f), 'utf8'))]) assert.ok(!text.includes(key));
    // a second run asks the server nothing
    const before = s.stats.requests;
    const again = await heed(['ifs', '--model', spec, ...args], { HEED_IFS_KEY: key, HEED_CACHE_DIR: cache });
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(JSON.parse(again.stdout).scores, b.scores);
    assert.equal(s.stats.requests, before);
    // the rule adapter and rules ablate are refused on a text-only backend; a missing key is one line
    const rules = await heed(['ifs', '--model', spec, '--adapter', 'rules', '--limit', '2'], { HEED_IFS_KEY: key });
    assert.equal(rules.status, 2);
    assert.match(rules.stderr.trim(), /^error: the rule adapter needs full-vocabulary logits .*text-only backend \(fix: .*\)$/);
    const ablate = await heed(['rules', 'ablate', '--model', spec, '--limit', '2'], { HEED_IFS_KEY: key });
    assert.equal(ablate.status, 2);
    assert.match(ablate.stderr, /needs full-vocabulary logits/);
    const missing = await heed(['ifs', '--model', spec, '--limit', '2'], { HEED_IFS_KEY: '' });
    assert.equal(missing.status, 2);
    assert.match(missing.stderr.trim(), /^error: model spec .*HEED_IFS_KEY \(key_env\) is not set \(fix: export HEED_IFS_KEY=/);
    // heed objecqa and heed generate through the same server
    const oq = await heed(['objecqa', '--model', spec, '--limit', '3', '--json'], { HEED_IFS_KEY: key, HEED_CACHE_DIR: cache });
    assert.equal(oq.status, 0, oq.stderr);
    assert.equal(JSON.parse(oq.stdout).objective.n, 3);
    const gen = await heed(['generate', '--model', spec, '--prompt', 'The capital of France is', '--max-tokens', '6', '--temperature', '0', '--json'], { HEED_IFS_KEY: key, HEED_CACHE_DIR: cache });
    assert.equal(gen.status, 0, gen.stderr);
    const [local] = await backend.gen.generate(['The capital of France is'], { maxTokens: 6, temperature: 0 });
    assert.deepEqual(JSON.parse(gen.stdout).map((x: Record<string, unknown>) => [x.text, x.tokens]), [[local.text, local.ids.length]]);
    const scheme = await heed(['ifs', '--model', 'ollama:llama3', '--limit', '2']);
    assert.equal(scheme.status, 2);
    assert.match(scheme.stderr, /unknown model spec scheme "ollama:"/);
  } finally {
    await s.close();
  }
});

test('heed serve over another OpenAI-compatible server (a proxy): completions pass through, per-item failures become 502', async () => {
  const inner = await openOpenAI(parseSpec(`openai:${srv.url}#base-dolly?cache=off`) as never, {});
  const proxy = await startServer(inner, { port: 0, name: 'proxied' });
  try {
    const r = await fetch(proxy.url + '/completions', { method: 'POST', body: JSON.stringify({ model: 'proxied', prompt: 'The capital of France is', max_tokens: 6, temperature: 0 }) });
    assert.equal(r.status, 200);
    const j = (await r.json()) as { choices: Array<{ text: string }>; usage: { completion_tokens: number } };
    const [local] = await backend.gen.generate(['The capital of France is'], { maxTokens: 6, temperature: 0 });
    assert.equal(j.choices[0].text, local.text);
    assert.equal(j.usage.completion_tokens, local.ids.length);
    // the inner server refuses max_tokens 65 (its limit is 64): reported, not guessed
    const bad = await fetch(proxy.url + '/completions', { method: 'POST', body: JSON.stringify({ model: 'proxied', prompt: 'x', max_tokens: 65 }) });
    await apiError(bad, 502, 'backend_error');
  } finally {
    await proxy.close();
  }
});

test('heed generate and heed serve accept any spec (a missing gguf: file is a clear one-line error; chat on a tiny model with a template)', async () => {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/heed.js'), 'generate', '--model', 'gguf:nothing.gguf', '--prompt', 'x'], { encoding: 'utf8', env });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^error: nothing\.gguf: GGUF file not found/);
  assert.equal(r.stderr.trim().split("\n").length, 1);
  const tiny = await openModel(join(TINY, 'llama-gqa'), { threads: 1 });
  try {
    assert.ok(tiny.capabilities.chat);
    const [g] = await tiny.chat!([[{ role: 'user', content: 'hi' }]], { maxTokens: 3, temperature: 0 });
    assert.equal(typeof g.text, 'string');
    assert.ok(g.ids.length <= 3);
  } finally {
    await tiny.dispose();
  }
});

test('heed serve (the command): prints its URL, answers, stops cleanly on SIGTERM; a missing --api-key-env variable is one line', async () => {
  const bad = spawnSync(process.execPath, [join(ROOT, 'bin/heed.js'), 'serve', '--model', BASE, '--api-key-env', 'HEED_TEST_UNSET_KEY'], { encoding: 'utf8', env: { ...env, HEED_TEST_UNSET_KEY: '' } });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr.trim(), /^error: --api-key-env HEED_TEST_UNSET_KEY: the environment variable HEED_TEST_UNSET_KEY is not set \(fix: .*\)$/);
  const spec = spawnSync(process.execPath, [join(ROOT, 'bin/heed.js'), 'serve', '--model', 'hf:foo'], { encoding: 'utf8', env });
  assert.equal(spec.status, 2);
  assert.match(spec.stderr, /unknown model spec scheme "hf:"/);
  const p = spawn(process.execPath, [join(ROOT, 'bin/heed.js'), 'serve', '--model', join(TINY, 'llama-gqa'), '--port', '0', '--api-key-env', 'HEED_TEST_SERVE_KEY'], { env: { ...env, HEED_TEST_SERVE_KEY: 'serve-key-1' } });
  let stdout = '';
  let stderr = '';
  p.stderr.on('data', (c) => (stderr += c));
  const url = await new Promise<string>((ok, no) => {
    p.stdout.on('data', (c) => {
      stdout += c;
      const m = /at (http:\/\/127\.0\.0\.1:\d+\/v1)/.exec(stdout);
      if (m) ok(m[1]);
    });
    p.on('close', () => no(new Error(`heed serve exited: ${stderr}`)));
  });
  const r = await fetch(`${url}/completions`, { method: 'POST', headers: { authorization: 'Bearer serve-key-1' }, body: JSON.stringify({ model: 'llama-gqa', prompt: 'hello', max_tokens: 3, temperature: 0 }) });
  assert.equal(r.status, 200);
  assert.equal(((await r.json()) as { choices: unknown[] }).choices.length, 1);
  assert.equal((await fetch(`${url}/models`)).status, 401);
  const code = await new Promise<number | null>((ok) => {
    p.removeAllListeners('close');
    p.on('close', (c) => ok(c));
    p.kill('SIGTERM');
  });
  assert.equal(code, 0, stderr);
  assert.match(stderr, /stopped after 2 requests \(1 answered, 1 errors/);
  assert.ok(!stdout.includes('serve-key-1') && !stderr.includes('serve-key-1'));
});
