/**
 * Mistral to GGUF. llama.cpp's convert_hf_to_gguf.py registers MistralForCausalLM as its LlamaModel ("llama"
 * architecture) and writes nothing for sliding_window, so llama.cpp attends over the whole context. heed exports a
 * Mistral when the window cannot matter (sliding_window null, or ≥ the exported context, `--context`) and refuses it
 * otherwise. The llama.cpp parts are skipped without node-llama-cpp unless HEED_REQUIRE_LLAMA_CPP=1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HeedError } from '../src/errors.js';
import { readGguf } from '../src/io/gguf.js';
import { exportGguf, HEED_SLIDING_WINDOW_KEY } from '../src/export/gguf.js';
import { hasNodeLlamaCpp, openLlamaCpp } from '../src/backends/llamacpp.js';
import { initEngine } from '../src/engine/index.js';
import { disposeParams, loadModel } from '../src/models/load.js';
import { ROOT, TINY, tmp } from './helpers.js';
import { compare, logprobDiff } from './gguf-compare.js';

const have = await hasNodeLlamaCpp();
const skipLlama = have ? false : process.env.HEED_REQUIRE_LLAMA_CPP === '1' ? false : 'node-llama-cpp is not installed (npm i -E node-llama-cpp@3.21.1)';
const heed = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/heed.js'), ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 120_000 });

/** test/fixtures/tiny/mistral-window (window 6, 128 positions) with another sliding_window, in a temporary folder */
function mistralWith(window: number | null): string {
  const dir = tmp('heed-mistral-');
  for (const f of ['model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) copyFileSync(join(TINY, 'mistral-window', f), join(dir, f));
  const cfg = JSON.parse(readFileSync(join(TINY, 'mistral-window', 'config.json'), 'utf8'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, sliding_window: window }));
  return dir;
}

test('Mistral export: refused while the window is shorter than the context; exported as llama with --context ≤ window or without a window', () => {
  const dir = tmp('heed-gguf-m-');
  const src = join(TINY, 'mistral-window');
  assert.throws(() => exportGguf(src, join(dir, 'm.gguf')), (e: unknown) => e instanceof HeedError && /sliding_window 6 \(< context 128\)/.test(e.message) && /--context 6/.test(e.fix ?? '') && !e.message.includes('\n'));
  assert.throws(() => exportGguf(src, join(dir, 'm.gguf'), { context: 7 }), (e: unknown) => e instanceof HeedError && /sliding_window 6 \(< context 7\)/.test(e.message));
  assert.throws(() => exportGguf(src, join(dir, 'm.gguf'), { context: 129 }), (e: unknown) => e instanceof HeedError && /from 1 to the model's 128 positions/.test(e.message));
  const r = exportGguf(src, join(dir, 'm6.gguf'), { context: 6 });
  assert.equal(r.arch, 'llama');
  assert.ok(r.notes.some((n) => /sliding_window 6 ≥ context 6/.test(n)), r.notes.join('; '));
  const g = readGguf(join(dir, 'm6.gguf'));
  assert.equal(g.metadata.get('general.architecture'), 'llama');
  assert.equal(g.metadata.get('llama.context_length'), 6);
  assert.equal(g.metadata.get(HEED_SLIDING_WINDOW_KEY), 6);
  assert.equal(g.metadata.get('llama.rope.dimension_count'), 16, 'head_dim 16 (not hidden / heads = 8)');
  // no window (Mistral v0.2+): the whole context, no heed key
  const none = exportGguf(mistralWith(null), join(dir, 'mn.gguf'));
  assert.equal(none.arch, 'llama');
  const gn = readGguf(join(dir, 'mn.gguf'));
  assert.equal(gn.metadata.get('llama.context_length'), 128);
  assert.equal(gn.metadata.has(HEED_SLIDING_WINDOW_KEY), false);
  // a window as long as the context cannot matter either
  assert.equal(readGguf((exportGguf(mistralWith(128), join(dir, 'm128.gguf')), join(dir, 'm128.gguf'))).metadata.get('llama.context_length'), 128);
  if (!existsSync(join(ROOT, 'dist/cli/main.js'))) return;
  const bad = heed('export', 'gguf', src, join(dir, 'c.gguf'));
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^error: mistral with sliding_window 6 \(< context 128\) cannot be exported.*\(fix: export with --context 6 \(or less\).*\)\n$/);
  const ok = heed('export', 'gguf', src, join(dir, 'c.gguf'), '--context', '6');
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /wrote .*c\.gguf: llama/);
  assert.match(ok.stdout, /note: context_length 6 \(the model has 128 positions\)/);
  const nan = heed('export', 'gguf', src, join(dir, 'c.gguf'), '--context', 'six');
  assert.equal(nan.status, 2);
  assert.match(nan.stderr, /--context six is not a positive whole number/);
});

test('Mistral in llama.cpp: within the window (--context = window 32) and without a window = engine; a larger context is refused; the window would matter beyond it', { skip: skipLlama }, async () => {
  await initEngine();
  const dir = tmp('heed-mistral-l-');
  // prompts of ≤ 20 byte tokens + 12 generated ≤ 32
  const P = ['The river', 'A small city', 'history of music', 'What is water?', 'how light moves', 'People first.', 'school time', 'a year and a day', '<|im_start|>user\nhi', 'world music is'];
  const rows: string[] = [];
  for (const [name, window, context] of [['window 32, --context 32', 32, 32], ['no window', null, undefined]] as const) {
    const src = mistralWith(window);
    const out = join(dir, `${window}.gguf`);
    exportGguf(src, out, { context });
    const model = await loadModel(src);
    const be = await openLlamaCpp(out);
    try {
      const ids = P.map((p) => model.tokenizer.encode(p, { addSpecialTokens: true }));
      assert.ok(Math.max(...ids.map((x) => x.length)) + 12 <= 32);
      const r = await compare(model, be, ids);
      assert.equal(r.same, P.length, `${name}: greedy tokens identical`);
      assert.ok(r.diff < 1e-4, `${name}: max |Δ log p| ${r.diff}`);
      rows.push(`mistral ${name}: greedy ${r.same}/${P.length} identical, max |Δ log p| ${r.diff.toExponential(2)}`);
    } finally {
      await be.dispose();
      disposeParams(model.params);
    }
    if (window !== null) await assert.rejects(openLlamaCpp(out, { context: 64 }), (e: unknown) => e instanceof HeedError && /context of 64 exceeds the model's sliding window of 32/.test(e.message));
  }
  // why the refusal: the window-6 model in the engine vs its weights without a window in llama.cpp on a 33-token prompt
  const model = await loadModel(join(TINY, 'mistral-window'));
  const out = join(dir, 'nowindow.gguf');
  exportGguf(mistralWith(null), out);
  const be = await openLlamaCpp(out);
  try {
    const long = [model.tokenizer.encode('The river runs past a small city.')];
    const es = (await import('../src/decode/generate.js')).EngineGenerator;
    const s = new es(model).session();
    const a = await s.prefill(long, { maxTokens: 1 });
    s.dispose();
    const ls = await be.session!();
    const b = await ls.prefill(long, { maxTokens: 1 });
    await ls.dispose();
    const d = logprobDiff(a, b);
    assert.ok(d > 1e-2, `beyond the window full attention differs (${d})`);
    rows.push(`window 6 (engine) vs the same weights without a window (llama.cpp), ${long[0].length}-token prompt: max |Δ log p| ${d.toFixed(3)}`);
  } finally {
    await be.dispose();
    disposeParams(model.params);
  }
  console.log(`# ${rows.join('\n# ')}`);
});
