/**
 * The browser training page, driven by Playwright in Debian Chromium with SwiftShader WebGPU: pick the tiny
 * model's files and a JSONL file, see the data stats and mask preview, train LoRA, watch the loss chart grow,
 * stop, generate base vs tuned, download the tuned folder and load it with `heed model info`. Bad input: a
 * folder without tokenizer.json, a malformed JSONL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, readdirSync, readFileSync, mkdirSync, writeFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { ROOT, TINY, tmp } from './helpers.js';
import { startUi } from '../src/web/server.js';
import { readGguf, readGgufTensor } from '../src/io/gguf.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { exportGguf, permuteRope } from '../src/export/gguf.js';

const CHROMIUM = process.env.HEED_CHROMIUM ?? '/usr/bin/chromium';
const WEBGPU_FLAGS = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-webgpu-adapter=swiftshader'];
const BASE_FLAGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

/** Read a stored (uncompressed) zip: name → bytes. */
function unzip(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let o = 0;
  while (buf.readUInt32LE(o) === 0x04034b50) {
    const size = buf.readUInt32LE(o + 18);
    const nameLen = buf.readUInt16LE(o + 26);
    const extra = buf.readUInt16LE(o + 28);
    const name = buf.subarray(o + 30, o + 30 + nameLen).toString('utf8');
    const start = o + 30 + nameLen + extra;
    out.set(name, buf.subarray(start, start + size));
    o = start + size;
  }
  return out;
}

test('the training page: pick files, stats + mask preview, LoRA on WebGPU (SwiftShader), live loss, stop, generate, download a folder heed loads', async (t) => {
  if (!existsSync(CHROMIUM) || !existsSync(join(ROOT, 'dist/web/train-app.js'))) {
    if (process.env.HEED_REQUIRE_BROWSER) assert.fail(`${CHROMIUM} or dist/ (npm run build) missing and HEED_REQUIRE_BROWSER is set`);
    t.skip('no Chromium, or heed not built (npm run build)');
    return;
  }
  const ui = await startUi({ root: tmp(), port: 0, webDir: null }); // the import-map page over dist/ (the static build: below)
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...BASE_FLAGS, ...WEBGPU_FLAGS] });
  try {
    const page = await browser.newPage({ acceptDownloads: true });
    const logs: string[] = [];
    page.on('console', (m) => logs.push(m.text()));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    await page.goto(ui.url + 'train/');
    await page.waitForFunction(() => document.body.dataset.ready || document.body.dataset.error, null, { timeout: 60000 });
    assert.equal(await page.evaluate(() => document.body.dataset.error), undefined, logs.join('\n'));
    assert.equal(await page.evaluate(() => document.body.dataset.device), 'webgpu', await page.textContent('#device') ?? '');

    // bad input first: a folder without tokenizer.json
    const model = join(TINY, 'llama-gqa');
    const modelFiles = readdirSync(model).map((f) => join(model, f));
    await page.setInputFiles('#model-files', modelFiles.filter((f) => !f.endsWith('tokenizer.json')));
    await page.waitForFunction(() => document.body.dataset.error);
    assert.match(await page.textContent('#error') ?? '', /no tokenizer\.json/);

    // an unsupported architecture: heed's config check, on the page
    const bert = tmp('heed-bert-');
    for (const f of modelFiles) writeFileSync(join(bert, f.split('/').pop()!), f.endsWith('config.json') ? JSON.stringify({ ...JSON.parse(readFileSync(f, 'utf8')), model_type: 'bert' }) : readFileSync(f));
    await page.evaluate(() => delete document.body.dataset.error);
    await page.setInputFiles('#model-files', readdirSync(bert).map((f) => join(bert, f)));
    await page.waitForFunction(() => document.body.dataset.error);
    assert.match(await page.textContent('#error') ?? '', /bert/);

    // a model too big for the tab: refused from config.json, before any weight is read
    const huge = tmp('heed-huge-');
    for (const f of modelFiles) writeFileSync(join(huge, f.split('/').pop()!), f.endsWith('config.json') ? JSON.stringify({ ...JSON.parse(readFileSync(f, 'utf8')), vocab_size: 32000, hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32 }) : readFileSync(f));
    await page.evaluate(() => delete document.body.dataset.error);
    await page.setInputFiles('#model-files', readdirSync(huge).map((f) => join(huge, f)));
    await page.waitForFunction(() => document.body.dataset.error);
    assert.match(await page.textContent('#error') ?? '', /too big for this browser tab, nothing loaded: 6738\.4M parameters need about 50\.\d\d GiB .* the budget is [12]\.00 GiB/);
    assert.equal(await page.evaluate(() => document.body.dataset.model), undefined);

    // a malformed JSONL: heed's own error names the line
    await page.setInputFiles('#model-files', modelFiles);
    await page.waitForFunction(() => document.body.dataset.model === 'loaded');
    const bad = join(tmp(), 'bad.jsonl');
    writeFileSync(bad, '{"instruction": "Say hi.", "output": "Hi!"}\n{"instruction": "broken\n');
    await page.evaluate(() => delete document.body.dataset.error);
    await page.setInputFiles('#data-file', bad);
    await page.waitForFunction(() => document.body.dataset.error);
    assert.match(await page.textContent('#error') ?? '', /data\.jsonl:2: \[malformed-json\]/);

    await page.setInputFiles('#data-file', join(ROOT, 'test/fixtures/webgpu-sft.jsonl'));
    await page.waitForFunction(() => Number(document.body.dataset.inspected) > 0);
    assert.equal(await page.evaluate(() => document.body.dataset.inspected), '12');
    assert.equal(await page.locator('#preview .row').count(), 3);
    const weighted = await page.locator('#preview .w[title="weight 1"]').count();
    assert.ok(weighted >= 3, 'the preview marks loss-bearing tokens');

    await page.fill('#steps', '400');
    await page.fill('#ifs-every', '4');
    await page.fill('#ifs-budget', '8');
    await page.click('#start');
    await page.waitForFunction(() => Number(document.getElementById('loss')!.dataset.points) >= 3 || document.body.dataset.error, null, { timeout: 120000 });
    assert.equal(await page.evaluate(() => document.body.dataset.error), undefined, logs.slice(-20).join('\n'));
    const p1 = Number(await page.getAttribute('#loss', 'data-points'));
    // nothing to download while the run is going: only a finished checkpoint is offered
    assert.equal(await page.isDisabled('#download'), true);
    assert.equal(await page.isDisabled('#download-gguf'), true);
    const closeAsks = () => page.evaluate(() => {
      const e = new Event('beforeunload', { cancelable: true });
      window.dispatchEvent(e);
      return e.defaultPrevented;
    });
    assert.equal(await closeAsks(), true, 'closing the tab mid-run asks first');
    await page.waitForFunction((n) => Number(document.getElementById('loss')!.dataset.points) >= n + 3, p1, { timeout: 120000 });
    // the IFS chart grows live: IFS of the current weights at every 4th step, src/eval/ifs in the tab
    await page.waitForFunction(() => Number(document.getElementById('ifs')!.dataset.points) >= 2, null, { timeout: 120000 });
    const ifsLast = Number(await page.getAttribute('#ifs', 'data-last'));
    assert.ok(ifsLast >= 0 && ifsLast <= 1, `IFS ${ifsLast}`);
    assert.equal(await page.locator('#ifs svg[data-chart="web-ifs"]').count(), 1);
    await page.click('#stop');
    await page.waitForFunction(() => document.body.dataset.trained, null, { timeout: 120000 });
    const steps = Number(await page.evaluate(() => document.body.dataset.trained));
    assert.ok(steps > p1 && steps < 400, `stopped at ${steps}`);
    assert.match(await page.textContent('#status') ?? '', /stopped at step/);
    assert.equal(await closeAsks(), false, 'no question once the run has stopped');

    await page.click('#generate');
    await page.waitForFunction(() => document.body.dataset.generated, null, { timeout: 120000 });
    const base = await page.textContent('#gen-base');
    const tuned = await page.textContent('#gen-tuned');
    assert.ok(base && tuned && base !== tuned, `base ${JSON.stringify(base)} vs tuned ${JSON.stringify(tuned)}`);

    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    const zipPath = join(tmp(), 'tuned.zip');
    await dl.saveAs(zipPath);
    const files = unzip(readFileSync(zipPath));
    const dir = tmp('heed-web-dl-');
    for (const [name, data] of files) {
      const p = join(dir, name);
      mkdirSync(join(p, '..'), { recursive: true });
      writeFileSync(p, data);
    }
    const names = [...files.keys()].map((n) => n.split('/').slice(1).join('/'));
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'adapter_model.safetensors']) assert.ok(names.includes(f), `${f} in ${names}`);
    assert.ok(!names.includes('optimizer.safetensors'), 'no trainer state in the download');
    const info = spawnSync(process.execPath, [join(ROOT, 'bin/heed.js'), 'model', 'info', join(dir, 'heed-lora-tuned'), '--json'], { encoding: 'utf8' });
    assert.equal(info.status, 0, info.stderr);
    assert.equal(JSON.parse(info.stdout).model_type, 'llama');
    assert.equal(JSON.parse(info.stdout).parameters, 36000);
    // the downloaded weights generate what the page's tuned model generated
    const g = spawnSync(process.execPath, [join(ROOT, 'bin/heed.js'), 'generate', '--model', join(dir, 'heed-lora-tuned'), '--prompt', 'Name a color.', '--max-tokens', '24', '--temperature', '0', '--json'], { encoding: 'utf8' });
    assert.equal(g.status, 0, g.stderr);
    assert.equal(JSON.parse(g.stdout)[0].text, tuned, 'heed generate (wasm) on the download = the page (WebGPU)');

    // the GGUF download: heed's reader parses it, and it is the file heed export gguf writes from the HF download
    const [dg] = await Promise.all([page.waitForEvent('download'), page.click('#download-gguf')]);
    const ggufPath = join(tmp(), 'tuned.gguf');
    await dg.saveAs(ggufPath);
    const gg = readGguf(ggufPath);
    assert.equal(gg.metadata.get('general.architecture'), 'llama');
    const hf = readSafetensors(join(dir, 'heed-lora-tuned', 'model.safetensors')).tensors;
    const embd = gg.tensors.find((x) => x.name === 'token_embd.weight')!;
    assert.deepEqual(readGgufTensor(ggufPath, embd), hf.get('model.embed_tokens.weight')!.data);
    const q = hf.get('model.layers.0.self_attn.q_proj.weight')!;
    const cfg = JSON.parse(readFileSync(join(dir, 'heed-lora-tuned', 'config.json'), 'utf8'));
    assert.deepEqual(readGgufTensor(ggufPath, gg.tensors.find((x) => x.name === 'blk.0.attn_q.weight')!), permuteRope(q.data, q.shape, cfg.num_attention_heads), 'LoRA-merged q_proj, permuted for llama.cpp');
    const cli = join(tmp(), 'cli.gguf');
    exportGguf(join(dir, 'heed-lora-tuned'), cli, { dtype: 'f32', name: 'heed-lora-tuned' });
    assert.ok(readFileSync(ggufPath).equals(readFileSync(cli)), 'the page\'s GGUF = heed export gguf of the downloaded folder, byte for byte');
    if (process.env.HEED_SCREENSHOT_WEB) await page.screenshot({ path: process.env.HEED_SCREENSHOT_WEB, fullPage: true });
  } finally {
    await browser.close();
    await ui.close();
  }
});

/** A plain static file server (no COOP/COEP headers, nothing heed-specific) hosting `dir` under `prefix`. */
async function staticServer(dir: string, prefix: string): Promise<{ url: string; close: () => Promise<void> }> {
  const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.map': 'application/json' };
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const rel = path.startsWith(prefix) ? path.slice(prefix.length) || 'index.html' : undefined;
    const file = rel && !rel.split('/').includes('..') ? join(dir, rel) : undefined;
    if (!file || !existsSync(file) || !statSync(file).isFile()) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}${prefix}`, close: () => new Promise<void>((ok) => (server.close(() => ok()), server.closeAllConnections())) };
}

test('the Vite build (npm run build:web) on a plain static server, no WebGPU: the page says so, trains on wasm with the IFS chart, downloads a GGUF; heed ui serves the build', async (t) => {
  if (!existsSync(CHROMIUM)) {
    if (process.env.HEED_REQUIRE_BROWSER) assert.fail(`${CHROMIUM} missing and HEED_REQUIRE_BROWSER is set`);
    t.skip('no Chromium');
    return;
  }
  const { buildWeb } = await import('../src/web/build.js');
  const web = await buildWeb(join(tmp('heed-web-build-'), 'dist-web'), { quiet: true });
  for (const f of ['index.html', 'data/ifs/classifier.safetensors', 'data/ifs/prompts.jsonl']) assert.ok(existsSync(join(web.outDir, f)), f);
  assert.doesNotMatch(readFileSync(join(web.outDir, 'index.html'), 'utf8'), /importmap|\/dist\/|node_modules/, 'a self-contained bundle');
  const site = await staticServer(web.outDir, '/some/path/heed/');
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...BASE_FLAGS, '--disable-gpu', '--disable-features=WebGPU,Vulkan'] });
  try {
    const page = await browser.newPage({ acceptDownloads: true });
    const logs: string[] = [];
    page.on('console', (m) => logs.push(m.text()));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    await page.goto(site.url);
    await page.waitForFunction(() => document.body.dataset.ready || document.body.dataset.error, null, { timeout: 60000 });
    assert.equal(await page.evaluate(() => document.body.dataset.device), 'wasm', logs.join('\n'));
    assert.match(await page.textContent('#device') ?? '', /WebGPU is not available in this browser .*training on wasm/);
    const model = join(TINY, 'gpt2');
    await page.setInputFiles('#model-files', readdirSync(model).map((f) => join(model, f)));
    await page.setInputFiles('#data-file', join(ROOT, 'test/fixtures/webgpu-sft.jsonl'));
    await page.waitForFunction(() => Number(document.body.dataset.inspected) > 0);
    await page.fill('#steps', '4');
    await page.fill('#ifs-every', '2');
    await page.fill('#ifs-budget', '4');
    await page.click('#start');
    await page.waitForFunction(() => document.body.dataset.trained || document.body.dataset.error, null, { timeout: 120000 });
    assert.equal(await page.evaluate(() => document.body.dataset.trained), '4', (await page.textContent('#error')) + '\n' + logs.slice(-10).join('\n'));
    assert.match(await page.textContent('#status') ?? '', /done at step 4 .* on wasm/);
    assert.equal(await page.getAttribute('#ifs', 'data-points'), '2', 'IFS at steps 2 and 4 (classifier and prompts fetched from the build)');
    const [dg] = await Promise.all([page.waitForEvent('download'), page.click('#download-gguf')]);
    const ggufPath = join(tmp(), 'gpt2.gguf');
    await dg.saveAs(ggufPath);
    const gg = readGguf(ggufPath);
    assert.equal(gg.metadata.get('general.architecture'), 'gpt2');
    assert.equal(gg.tensors.length, 4 + 12 * JSON.parse(readFileSync(join(model, 'config.json'), 'utf8')).n_layer + 1);
  } finally {
    await browser.close();
    await site.close();
  }
  // heed ui serves the same build at /train/ (and /train → /train/: the page's URLs are relative)
  const ui = await startUi({ root: tmp(), port: 0, webDir: web.outDir });
  try {
    assert.equal(ui.trainPage, web.outDir);
    const html = await (await fetch(ui.url + 'train/')).text();
    assert.equal(html, readFileSync(join(web.outDir, 'index.html'), 'utf8'));
    const js = /src="\.\/(assets\/[^"]+\.js)"/.exec(html)![1];
    const r = await fetch(ui.url + 'train/' + js);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /javascript/);
    assert.equal((await fetch(ui.url + 'train', { redirect: 'manual' })).headers.get('location'), '/train/');
    assert.equal((await fetch(ui.url + 'train/..%2Fpackage.json')).status, 404);
  } finally {
    await ui.close();
  }
  await assert.rejects(startUi({ root: tmp(), port: 0, webDir: tmp() }), /no index\.html \(not a build of the training page\)/);
});
