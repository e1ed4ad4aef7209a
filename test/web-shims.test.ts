import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash as nodeHash } from 'node:crypto';
import { createHash } from '../src/web/browser/crypto.js';
import { NODE_SHIMS } from '../src/web/train-page.js';

test('the browser page\'s node:crypto shim: SHA-256 equal to node:crypto at every padding boundary, fed in pieces', () => {
  for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 70000]) {
    const b = new Uint8Array(n).map((_, i) => (i * 31 + 7) & 255);
    const h = createHash('sha256');
    h.update(b.subarray(0, n >> 1));
    h.update(b.subarray(n >> 1));
    assert.equal(h.digest('hex'), nodeHash('sha256').update(b).digest('hex'), `length ${n}`);
  }
  assert.equal(createHash('sha256').update('abc').digest('hex'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.throws(() => createHash('md5'), /only sha256/);
  assert.ok(NODE_SHIMS.includes('crypto'));
});

test('the browser page\'s Buffer: latin1/ascii decoding (file-type sniffing), base64 (the IFS classifier) and allocUnsafe (checkpoint hashing)', async () => {
  const { BrowserBuffer } = await import('../src/web/browser/globals.js');
  const b = BrowserBuffer.from(new Uint8Array([0x50, 0x41, 0x52, 0x31, 0xe9]));
  assert.equal(b.subarray(0, 4).toString('latin1'), 'PAR1');
  assert.equal(b.toString('latin1'), 'PAR1\u00e9');
  assert.equal(BrowserBuffer.allocUnsafe(16).length, 16);
  // base64: the IFS classifier's bigram bitset (src/eval/text-classifier.ts), same bytes as Node's Buffer
  const bytes = new Uint8Array(70001).map((_, i) => (i * 131 + 17) & 255);
  const b64 = Buffer.from(bytes).toString('base64');
  assert.equal(BrowserBuffer.from(bytes).toString('base64'), b64);
  assert.deepEqual(new Uint8Array(BrowserBuffer.from(b64, 'base64')), bytes);
  assert.throws(() => b.toString('hex'), /not supported in the browser/);
});

test('the training page\'s memory check: estimated from config.json (weights, files, merged checkpoint, LoRA state) against the tab budget', async () => {
  const { estimateTabMemory, tabBudget, TAB_BUDGET_BYTES } = await import('../src/web/memory.js');
  const { parseModelConfig, readModelConfig } = await import('../src/models/config.js');
  const { loraModules, initLora } = await import('../src/train/lora.js');
  const { TINY } = await import('./helpers.js');
  const { join } = await import('node:path');
  const tiny = readModelConfig(join(TINY, 'llama-gqa')).config;
  const e = estimateTabMemory(tiny, { fileBytes: 144000 });
  assert.equal(e.params, 36000);
  // the LoRA parameters the trainer creates for r 8 on q/k/v/o
  const shapes = (await import('../src/models/config.js')).expectedShapes(tiny);
  const lora = [...initLora(loraModules(tiny, ['q', 'k', 'v', 'o'], (n) => shapes.get(n)!), 8, 1).values()].reduce((s, t) => s + t.data.length, 0);
  assert.equal(e.loraParams, lora);
  assert.equal(e.bytes, 36000 * 8 + 144000 + lora * 16);
  assert.ok(e.fits);
  // a Llama-2-7B-shaped config: refused, with the sum in words
  const big = parseModelConfig({ model_type: 'llama', vocab_size: 32000, hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32, max_position_embeddings: 4096, rms_norm_eps: 1e-5 });
  const b = estimateTabMemory(big, { fileBytes: 13.5 * 2 ** 30 });
  assert.equal(b.fits, false);
  assert.match(b.text, /^6738\.4M parameters need about 63\.\d\d GiB in this tab .* the budget is 2\.00 GiB$/);
  // weights that fit once but not three times over (engine, files, merged checkpoint): refused
  const mid = parseModelConfig({ model_type: 'llama', vocab_size: 32000, hidden_size: 1024, intermediate_size: 4096, num_hidden_layers: 12, num_attention_heads: 16, num_key_value_heads: 16, max_position_embeddings: 2048, rms_norm_eps: 1e-5 });
  const m = estimateTabMemory(mid, { fileBytes: estimateTabMemory(mid, { fileBytes: 0 }).params * 4 });
  assert.ok(m.params * 4 < TAB_BUDGET_BYTES && !m.fits, m.text);
  assert.equal(tabBudget(undefined), 2 * 2 ** 30);
  assert.equal(tabBudget(2), 2 ** 30, 'navigator.deviceMemory 2 GiB: half of it');
  assert.equal(tabBudget(8), 2 * 2 ** 30);
});
