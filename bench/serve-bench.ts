/**
 * heed serve under load (not a test): N concurrent clients × M requests each on loopback against `heed serve`
 * (a child process), greedy completions of IFS prompts. Reports requests/s, p50/p99 latency, lost requests
 * (anything but a 200 with a choice) and answers that differ from the in-process engine's; the reference,
 * measured in the same run on the same requests: the in-process engine without HTTP, one request at a time
 * and in batches of --batch (what the server's queue batches up to).
 *   npm run bench:serve -- [--model models/base-dolly] [--clients 8] [--requests 8] [--max-tokens 32] [--batch 16] [--threads N]
 * Writes bench/results/serve-bench.json.
 */
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { basename, join } from 'node:path';
import { openModel } from '../src/backends/spec.js';
import { loadPromptSet } from '../src/eval/ifs/prompts.js';
import { repoPath } from '../src/eval/jsonl.js';

const { values } = parseArgs({ options: { model: { type: 'string' }, clients: { type: 'string' }, requests: { type: 'string' }, 'max-tokens': { type: 'string' }, batch: { type: 'string' }, threads: { type: 'string' } } });
const model = values.model ?? repoPath('models', 'base-dolly');
const N = Number(values.clients ?? 8);
const M = Number(values.requests ?? 8);
const maxTokens = Number(values['max-tokens'] ?? 32);
const batch = Number(values.batch ?? 16);
const threads = values.threads ? Number(values.threads) : undefined;
const name = basename(model);

const { prompts: all } = loadPromptSet();
const prompts = Array.from({ length: N * M }, (_, i) => all[i % all.length].prompt);
const opts = { maxTokens, temperature: 0 };

// ---- reference: the in-process engine, no HTTP
const backend = await openModel(model, { threads });
await backend.gen.generate(prompts.slice(0, 2), opts); // warm-up (compiles)
let t0 = performance.now();
const direct1: string[] = [];
for (const p of prompts) direct1.push((await backend.gen.generate([p], opts))[0].text);
const direct1S = (performance.now() - t0) / 1000;
t0 = performance.now();
const directB: string[] = [];
for (let i = 0; i < prompts.length; i += batch) directB.push(...(await backend.gen.generate(prompts.slice(i, i + batch), opts)).map((g) => g.text));
const directBS = (performance.now() - t0) / 1000;
await backend.dispose();
console.error(`direct: batch 1 ${(prompts.length / direct1S).toFixed(2)} req/s, batch ${batch} ${(prompts.length / directBS).toFixed(2)} req/s`);

// ---- heed serve in a child process
const child = spawn(process.execPath, [repoPath('bin', 'heed.js'), 'serve', '--model', model, '--port', '0', '--batch', String(batch), '--queue', String(Math.max(64, N * 2))], { env: { ...process.env, ...(threads ? { HEED_THREADS: String(threads) } : {}) }, stdio: ['ignore', 'pipe', 'inherit'] });
const url = await new Promise<string>((ok, no) => {
  let out = '';
  child.stdout.on('data', (c) => {
    out += c;
    const m = /at (http:\/\/\S+\/v1)/.exec(out);
    if (m) ok(m[1]);
  });
  child.on('exit', (c) => no(new Error(`heed serve exited with ${c}`)));
});
const ask = async (p: string) => {
  const r = await fetch(`${url}/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: name, prompt: p, max_tokens: maxTokens, temperature: 0 }) });
  const j = (await r.json()) as { choices?: Array<{ text: string }> };
  return { status: r.status, text: j.choices?.[0]?.text };
};
await ask(prompts[0]); // warm-up (compiles in the child)
const lat: number[] = [];
const served: Array<string | undefined> = new Array(prompts.length);
const statuses: Record<string, number> = {};
t0 = performance.now();
await Promise.all(
  Array.from({ length: N }, async (_, c) => {
    for (let k = 0; k < M; k++) {
      const i = c * M + k;
      const s = performance.now();
      try {
        const r = await ask(prompts[i]);
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        if (r.status === 200) served[i] = r.text;
      } catch (e) {
        statuses.network = (statuses.network ?? 0) + 1;
      }
      lat.push(performance.now() - s);
    }
  }),
);
const servedS = (performance.now() - t0) / 1000;
child.kill('SIGTERM');
lat.sort((a, b) => a - b);
const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
const lost = served.filter((t) => typeof t !== 'string').length;
const differ = served.filter((t, i) => typeof t === 'string' && t !== direct1[i]).length;
const rps = prompts.length / servedS;
const out = {
  date: new Date().toISOString(),
  node: process.version,
  cpus: cpus().length,
  cpu: cpus()[0]?.model,
  model: name,
  clients: N,
  requests_per_client: M,
  requests: prompts.length,
  max_tokens: maxTokens,
  server_batch: batch,
  decoding: 'greedy',
  served: { seconds: servedS, requests_per_s: rps, p50_ms: q(0.5), p99_ms: q(0.99), max_ms: lat.at(-1), statuses, lost, differ_from_engine: differ },
  reference: { direct_batch1_requests_per_s: prompts.length / direct1S, [`direct_batch${batch}_requests_per_s`]: prompts.length / directBS, batch1_vs_batched_texts_differ: direct1.filter((t, i) => t !== directB[i]).length },
  ratios: { served_vs_direct_batch1: rps / (prompts.length / direct1S), served_vs_direct_batched: rps / (prompts.length / directBS) },
};
console.log(JSON.stringify(out, null, 2));
mkdirSync(repoPath('bench', 'results'), { recursive: true });
writeFileSync(join(repoPath('bench', 'results'), 'serve-bench.json'), JSON.stringify(out, null, 2) + '\n');
process.exit(0);
