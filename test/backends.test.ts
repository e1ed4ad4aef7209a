import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseSpec, openModel } from '../src/backends/spec.js';
import { openOpenAI } from '../src/backends/openai.js';
import { AnswerCache, cacheKey, stableJson } from '../src/backends/cache.js';
import { generationError, generationTokens, type BackendGeneration } from '../src/backends/types.js';
import { HeedError } from '../src/errors.js';
import { spawn } from 'node:child_process';
import { ROOT, tmp } from './helpers.js';

const throwsHeed = async (f: () => unknown, re: RegExp) => {
  await assert.rejects(async () => f(), (e: unknown) => {
    assert.ok(e instanceof HeedError, `not a HeedError: ${String(e)}`);
    assert.match(e.oneLine(), re);
    assert.ok(!e.oneLine().includes('\n'), 'one line');
    return true;
  });
};

test('model specs: folder, gguf:, openai: with options; one-line errors for unknown schemes and bad options', async () => {
  assert.deepEqual(parseSpec('models/base-dolly'), { kind: 'engine', display: 'models/base-dolly', dir: 'models/base-dolly' });
  assert.equal(parseSpec('C:\\models\\x').kind, 'engine');
  assert.deepEqual(parseSpec('gguf:out/m.gguf'), { kind: 'gguf', display: 'gguf:out/m.gguf', path: 'out/m.gguf' });
  const o = parseSpec('openai:http://127.0.0.1:8000/v1/#llama3:8b?key_env=MY_KEY&api=chat&concurrency=2&timeout=5&retries=1&logprobs=3&cache=off');
  assert.equal(o.kind, 'openai');
  if (o.kind !== 'openai') return;
  assert.equal(o.baseURL, 'http://127.0.0.1:8000/v1');
  assert.equal(o.model, 'llama3:8b');
  assert.equal(o.keyEnv, 'MY_KEY');
  assert.equal(o.api, 'chat');
  assert.equal(o.concurrency, 2);
  assert.equal(o.timeoutS, 5);
  assert.equal(o.retries, 1);
  assert.equal(o.logprobs, 3);
  assert.equal(o.cache, false);
  const d = parseSpec('openai:https://api.example.com/v1#m');
  assert.ok(d.kind === 'openai' && d.api === 'completions' && d.concurrency === 4 && d.keyEnv === undefined && d.cache === undefined);
  // config form
  const c = parseSpec({ model: 'openai:http://h/v1#m', key_env: 'K', api: 'chat' });
  assert.ok(c.kind === 'openai' && c.keyEnv === 'K' && c.api === 'chat');
  await throwsHeed(() => parseSpec('hf:some/model'), /unknown model spec scheme "hf:".*fix: use a model folder/);
  await throwsHeed(() => parseSpec('http://127.0.0.1:8000/v1'), /write openai:http/);
  await throwsHeed(() => parseSpec('openai:http://h/v1'), /names no model/);
  await throwsHeed(() => parseSpec('openai:http://h/v1#'), /names no model/);
  await throwsHeed(() => parseSpec('openai:ftp://h/v1#m'), /must be http/);
  await throwsHeed(() => parseSpec('openai:http://h/v1#m?colour=red'), /unknown option "colour"/);
  await throwsHeed(() => parseSpec('openai:http://h/v1#m?api_key=sk-123'), /may not be written in the spec/);
  await throwsHeed(() => parseSpec('openai:http://user:sk-123@h/v1#m'), /holds credentials/);
  await throwsHeed(() => parseSpec('openai:http://h/v1#m?concurrency=0'), /concurrency must be an integer in 1\.\.256/);
  await throwsHeed(() => parseSpec('openai:http://h/v1#m?api=embeddings'), /api must be completions or chat/);
  await throwsHeed(() => parseSpec('openai:http://h/v1#m?key_env=sk-abc-123'), /not an environment variable name/);
  await throwsHeed(() => parseSpec(''), /empty/);
  await throwsHeed(() => parseSpec({ model: 'models/x', api: 'chat' }), /apply to openai: specs only/);
  // the credentials never show in an error
  try {
    parseSpec('openai:http://user:sk-secret-999@h/v1#m');
  } catch (e) {
    assert.ok(!(e as HeedError).oneLine().includes('sk-secret-999'));
  }
  await throwsHeed(() => openModel('gguf:nothing.gguf'), /nothing\.gguf: GGUF file not found/);
  await throwsHeed(() => openModel('openai:http://127.0.0.1:9/v1#m', { rules: '' }), /rule adapter needs full-vocabulary logits.*text-only/);
});

test('missing API key: key_env names an unset variable → one-line error before any request', async () => {
  await throwsHeed(() => openOpenAI(parseSpec('openai:http://127.0.0.1:9/v1#m?key_env=HEED_TEST_NO_SUCH_KEY') as never, { env: {} }), /environment variable HEED_TEST_NO_SUCH_KEY \(key_env\) is not set.*fix: export HEED_TEST_NO_SUCH_KEY=/);
});

test('answer cache: stable keys whatever the field order; corrupt files are misses; atomic writes', () => {
  assert.equal(stableJson({ b: 1, a: [1, { d: 2, c: 3 }], u: undefined }), '{"a":[1,{"c":3,"d":2}],"b":1}');
  assert.equal(cacheKey({ x: 1, y: 2 }), cacheKey({ y: 2, x: 1 }));
  assert.notEqual(cacheKey({ x: 1 }), cacheKey({ x: 2 }));
  const dir = tmp();
  const c = new AnswerCache(dir);
  const k = cacheKey('a');
  assert.equal(c.get(k), undefined);
  c.put(k, { text: 'hi' });
  assert.deepEqual(c.get(k), { text: 'hi' });
  writeFileSync(join(dir, k.slice(0, 2), `${k}.json`), '{"key": "' + k + '", "value": {"te'); // a torn file
  assert.equal(c.get(k), undefined);
  assert.equal(c.corrupt, 1);
  assert.deepEqual(readdirSync(join(dir, k.slice(0, 2))), [`${k}.json`]); // no temporary files left
});

// ---------------------------------------------------------------------------- the fault-injecting server

interface FaultServer {
  url: string;
  counts: Map<string, number>;
  bodies: unknown[];
  auth: string[];
  /** the most requests in flight at once */
  peak: () => number;
  close(): Promise<void>;
}

/** An OpenAI-compatible server that misbehaves by prompt: each prompt names its fault. */
async function faultServer(): Promise<FaultServer> {
  const counts = new Map<string, number>();
  const bodies: unknown[] = [];
  const auth: string[] = [];
  const ok = (res: ServerResponse, text: string, extra: Record<string, unknown> = {}) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id: 'x', object: 'text_completion', model: 'm', choices: [{ index: 0, text, finish_reason: 'stop', stop_reason: null, ...extra }], usage: { prompt_tokens: 3, completion_tokens: 7, total_tokens: 10 } }));
  };
  let inflight = 0;
  let peak = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    inflight++;
    peak = Math.max(peak, inflight);
    res.on('close', () => inflight--);
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      auth.push(String(req.headers.authorization ?? ''));
      const body = JSON.parse(raw) as { prompt?: string; messages?: Array<{ content: string }> };
      bodies.push(body);
      const p = body.prompt ?? body.messages!.at(-1)!.content;
      const n = (counts.get(p) ?? 0) + 1;
      counts.set(p, n);
      const json = (status: number, v: unknown, h: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...h });
        res.end(JSON.stringify(v));
      };
      if (p === 'chat?') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: 'c', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'chatted' }, finish_reason: 'length', logprobs: { content: [{ token: 'chat', logprob: -0.5, top_logprobs: [{ token: 'chat', logprob: -0.5 }] }] } }], usage: { prompt_tokens: 2, completion_tokens: 1 } }));
      } else if (p === 'ok') ok(res, ' fine', { logprobs: { tokens: [' fine'], token_logprobs: [-0.25], top_logprobs: [{ ' fine': -0.25, ' good': -1.5 }] } });
      else if (p === 'fail500' && n <= 2) json(500, { error: { message: 'boom' } });
      else if (p === 'rate429' && n === 1) json(429, { error: { message: 'slow down' } }, { 'retry-after': '1' });
      else if (p === 'slow' && n === 1) setTimeout(() => ok(res, ' late'), 1500);
      else if (p === 'truncated' && n === 1) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"id": "x", "choices": [{"text": " par');
      } else if (p === 'reset' && n === 1) req.socket.destroy();
      else if (p === 'garbage') {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html>oops</html>');
      } else if (p === 'empty') json(200, { id: 'x', choices: [] });
      else if (p === 'nofinish') json(200, { id: 'x', choices: [{ index: 0, text: 'hm' }] });
      else if (p === 'hang' && n === 1) {
        /* never answers: the run is interrupted while it waits */
      } else if (p === 'bad400') json(400, { error: { message: 'prompt is too long for this model' } });
      else ok(res, ` answer to ${p}`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    counts,
    bodies,
    auth,
    peak: () => peak,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

test('OpenAI client against a fault-injecting server: retried or reported per item, nothing lost, the cache reused on re-run', async () => {
  const fs = await faultServer();
  try {
    const cacheDir = tmp();
    const secret = 'sk-test-SECRET-4711';
    const spec = parseSpec(`openai:${fs.url}#m?key_env=HEED_TEST_KEY&retries=3&backoff=0.01&timeout=0.5&logprobs=2&cache=${encodeURIComponent(cacheDir)}&concurrency=3`);
    const b = await openOpenAI(spec as never, { env: { HEED_TEST_KEY: secret } });
    assert.deepEqual(b.capabilities, { tokenIds: false, logits: false, logprobs: true, chat: true });
    const prompts = ['ok', 'fail500', 'rate429', 'slow', 'truncated', 'reset', 'garbage', 'empty', 'nofinish', 'bad400', 'plain'];
    const t0 = Date.now();
    const gens = (await b.gen.generate(prompts, { maxTokens: 8, temperature: 0 })) as BackendGeneration[];
    assert.equal(gens.length, prompts.length);
    assert.ok(fs.peak() <= 3 && fs.peak() >= 2, `concurrency=3 kept (peak ${fs.peak()})`);
    const by = Object.fromEntries(prompts.map((p, i) => [p, gens[i]]));
    // retried and answered
    assert.equal(by.ok.text, ' fine');
    assert.equal(by.ok.finishReason, 'eos'); // stop_reason null: the model ended
    assert.equal(by.ok.rawFinishReason, 'stop');
    assert.equal(generationTokens(by.ok), 7); // from the server's usage
    assert.equal(by.ok.promptTokens, 3);
    assert.deepEqual(by.ok.logprobs, [{ token: ' fine', logprob: -0.25, top: [{ token: ' fine', logprob: -0.25 }, { token: ' good', logprob: -1.5 }] }]);
    assert.equal(by.fail500.text, ' answer to fail500');
    assert.equal(fs.counts.get('fail500'), 3);
    assert.equal(by.rate429.text, ' answer to rate429');
    assert.equal(fs.counts.get('rate429'), 2);
    assert.ok(Date.now() - t0 >= 900, 'Retry-After: 1 was honoured');
    assert.equal(by.slow.text, ' answer to slow'); // the first attempt timed out
    assert.equal(by.truncated.text, ' answer to truncated');
    assert.equal(by.reset.text, ' answer to reset');
    assert.equal(by.plain.text, ' answer to plain');
    for (const p of ['ok', 'fail500', 'rate429', 'slow', 'truncated', 'reset', 'plain']) assert.equal(generationError(by[p]), undefined, p);
    // reported per item, never guessed
    assert.match(generationError(by.garbage)!, /malformed reply.*after 4 attempts/);
    assert.equal(by.garbage.text, '');
    assert.equal(fs.counts.get('garbage'), 4);
    assert.match(generationError(by.empty)!, /no choices.*after 4 attempts/);
    assert.match(generationError(by.nofinish)!, /no finish_reason/);
    assert.match(generationError(by.bad400)!, /^HTTP 400: .*too long/);
    assert.equal(fs.counts.get('bad400'), 1); // a request at fault is not asked again
    // the key went to the server as a bearer token, and nowhere else
    assert.ok(fs.auth.every((a) => a === `Bearer ${secret}`));
    const files = readdirSync(cacheDir, { recursive: true }).map(String).filter((f) => f.endsWith('.json'));
    assert.equal(files.length, 7); // finished answers only
    for (const f of files) assert.ok(!readFileSync(join(cacheDir, f), 'utf8').includes(secret));
    assert.ok(!b.spec.includes(secret));

    // re-run: every finished answer comes from the cache; only the failed items are asked again
    const before = new Map(fs.counts);
    const again = (await b.gen.generate(prompts, { maxTokens: 8, temperature: 0 })) as BackendGeneration[];
    for (const p of ['ok', 'fail500', 'rate429', 'slow', 'truncated', 'reset', 'plain']) assert.equal(fs.counts.get(p), before.get(p), `${p} not asked again`);
    assert.ok(again.filter((g) => g.cached).length === 7);
    assert.deepEqual(again.map((g) => g.text), gens.map((g) => g.text));
    assert.equal(fs.counts.get('bad400'), 2);
    // another parameter is another question
    await b.gen.generate(['plain'], { maxTokens: 9, temperature: 0 });
    assert.equal(fs.counts.get('plain'), 2);

    // chat endpoint: messages, log-probs and the finish reason from the server
    const chat = parseSpec(`openai:${fs.url}#m?api=chat&logprobs=1&cache=off`);
    const cb = await openOpenAI(chat as never, {});
    const [g] = (await cb.gen.generate(['chat?'], { maxTokens: 1 })) as BackendGeneration[];
    assert.equal(g.text, 'chatted');
    assert.equal(g.finishReason, 'length');
    assert.equal(g.logprobs?.[0].logprob, -0.5);
    const last = fs.bodies.at(-1) as Record<string, unknown>;
    assert.deepEqual(last.messages, [{ role: 'user', content: 'chat?' }]);
    assert.equal(last.logprobs, true);
    assert.equal(last.top_logprobs, 1);
    assert.equal(fs.auth.at(-1), 'Bearer none'); // no key_env: never $OPENAI_API_KEY
    // logits processors are refused on a text-only backend
    await throwsHeed(() => cb.gen.generate(['x'], { logitsProcessors: [(_i, l) => l] }), /text-only backend/);
  } finally {
    await fs.close();
  }
});

test('an interrupted run (killed mid-way) reuses every finished answer when run again', async () => {
  const fs = await faultServer();
  try {
    const cache = tmp();
    const spec = `openai:${fs.url}#m?timeout=60&cache=${encodeURIComponent(cache)}`;
    const args = ['generate', '--model', spec, '--prompt', 'first', '--prompt', 'hang', '--prompt', 'second', '--max-tokens', '4', '--temperature', '0', '--json'];
    const child = spawn(process.execPath, [join(ROOT, 'bin/heed.js'), ...args], { stdio: 'ignore' });
    const t0 = Date.now();
    while (!(fs.counts.get('first') && fs.counts.get('second') && fs.counts.get('hang')) && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    assert.deepEqual([fs.counts.get('first'), fs.counts.get('second'), fs.counts.get('hang')], [1, 1, 1]);
    // async: the fault server runs in this process
    const again = await new Promise<{ status: number | null; stdout: string; stderr: string }>((ok) => {
      const c = spawn(process.execPath, [join(ROOT, 'bin/heed.js'), ...args]);
      let stdout = '';
      let stderr = '';
      c.stdout.on('data', (x) => (stdout += x));
      c.stderr.on('data', (x) => (stderr += x));
      c.on('close', (status) => ok({ status, stdout, stderr }));
    });
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(JSON.parse(again.stdout).map((x: { text: string }) => x.text), [' answer to first', ' answer to hang', ' answer to second']);
    assert.deepEqual([fs.counts.get('first'), fs.counts.get('second'), fs.counts.get('hang')], [1, 1, 2]); // only the unfinished one was asked again
  } finally {
    await fs.close();
  }
});

test('heed ifs through a faulty server: failed items are counted and reported (exit 2), the rest scored; the re-run asks only for those', async () => {
  const fs = await faultServer();
  try {
    const d = tmp();
    const prompts = join(d, 'p.jsonl');
    writeFileSync(prompts, ['ok', 'garbage', 'fail500', 'plain'].map((p) => JSON.stringify({ id: p, prompt: p })).join('\n'));
    const spec = `openai:${fs.url}#m?retries=1&backoff=0.01&cache=${encodeURIComponent(join(d, 'cache'))}`;
    const run = () =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((ok) => {
        const c = spawn(process.execPath, [join(ROOT, 'bin/heed.js'), 'ifs', '--model', spec, '--prompts', prompts, '--variant', 'C', '--json', '--out', join(d, 'r.jsonl')]);
        let stdout = '';
        let stderr = '';
        c.stdout.on('data', (x) => (stdout += x));
        c.stderr.on('data', (x) => (stderr += x));
        c.on('close', (status) => ok({ status, stdout, stderr }));
      });
    const r = await run();
    assert.equal(r.status, 2, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.scores[0].ifs.n, 2); // ok, plain; fail500 failed twice (retries=1), garbage twice
    assert.equal(out.scores[0].failed, 2);
    assert.match(r.stderr, /\[2 prompt\(s\) failed on the backend after every retry and were not scored; first: garbage \(variant C\): malformed reply/);
    assert.match(r.stderr, /error: 2 of 4 generations failed on the backend .*fix: run the same command again/);
    assert.deepEqual(readFileSync(join(d, 'r.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).id), ['ok', 'plain']);
    const again = await run(); // fail500 now answers (its third request); garbage still fails
    assert.equal(again.status, 2);
    assert.equal(JSON.parse(again.stdout).scores[0].ifs.n, 3);
    assert.deepEqual([fs.counts.get('ok'), fs.counts.get('plain'), fs.counts.get('fail500'), fs.counts.get('garbage')], [1, 1, 3, 4]);
  } finally {
    await fs.close();
  }
});

test('config directories are not touched: the default cache folder follows HEED_CACHE_DIR', async () => {
  const d = tmp();
  mkdirSync(join(d, 'c'));
  const { defaultCacheDir } = await import('../src/backends/cache.js');
  assert.equal(defaultCacheDir({ HEED_CACHE_DIR: join(d, 'c') }), join(d, 'c'));
  assert.equal(defaultCacheDir({ XDG_CACHE_HOME: d }), join(d, 'heed', 'answers'));
});

test('a folder backend gives its layer-1 logits session: the host loop over it writes what its text generator writes', async () => {
  const { decodeLoop } = await import('../src/decode/generate.js');
  const b = await openModel('models/tiny-dolly', { maxTokens: 8, threads: 1 });
  try {
    assert.ok(b.capabilities.logits && b.session && b.tokenizer);
    const prompts = ['The capital of', 'Write a poem about'];
    const viaGen = await b.gen.generate(prompts, { maxTokens: 8 });
    const tok = (b as unknown as { tokenizer: { encode(t: string, o?: object): number[]; decode(ids: number[], o?: object): string; eosIds: number[] } }).tokenizer;
    const ids = prompts.map((p) => tok.encode(p, { addSpecialTokens: true }));
    const viaSession = await decodeLoop(await b.session(), ids, tok, { maxTokens: 8 });
    assert.deepEqual(viaSession.map((g) => g.ids), viaGen.map((g) => g.ids));
    assert.ok(viaGen.every((g) => g.ids.length > 0));
  } finally {
    await b.dispose();
  }
});
