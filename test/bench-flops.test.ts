// bench/flops.ts: the model-FLOP formula of bench:train's GFLOP/s and %-of-peak columns (pure functions, no engine).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { flopRate, matmulParamsOf, trainFlopsPerToken } from '../bench/flops.js';
import { linearGemms } from '../bench/common.js';
import { expectedShapes, parseModelConfig } from '../src/models/config.js';
import { LLAMA_30M, PROBE, QWEN25_05B } from '../bench/shapes.js';

test('full fine-tuning: 6N per token, plus 12·L·T·d_attn for attention', () => {
  const f = trainFlopsPerToken({ matmulParams: 1000 });
  assert.equal(f.perToken, 6000);
  assert.deepEqual([f.forward, f.backwardActs, f.weightGrads, f.attention], [2000, 2000, 2000, 0]);
  const a = trainFlopsPerToken({ matmulParams: 1000, attention: { layers: 2, seqLen: 8, attnDim: 4 } });
  assert.equal(a.attention, 12 * 2 * 8 * 4);
  assert.equal(a.perToken, 6000 + 12 * 2 * 8 * 4);
  assert.match(a.formula, /6N \+ 12·L·T·d_attn/);
});

test('LoRA: 4N + 6N_lora per token (frozen weights get no weight gradient)', () => {
  const f = trainFlopsPerToken({ matmulParams: 1000, loraParams: 10 });
  assert.deepEqual([f.forward, f.backwardActs, f.weightGrads], [2020, 2020, 20]);
  assert.equal(f.perToken, 4 * 1000 + 6 * 10);
  assert.match(f.formula, /^LoRA: 4N \+ 6N_lora/);
  assert.throws(() => trainFlopsPerToken({ matmulParams: 0 }), /matmulParams/);
});

test('N counts the tied head once, skips lookups (untied input embedding, GPT-2 positions)', () => {
  // llama-30M: tied; every 2-D weight of expectedShapes, the embedding as the head
  const llama = parseModelConfig(LLAMA_30M.config);
  const shapes = expectedShapes(llama);
  const twoD = [...shapes.values()].filter((s) => s.length === 2).reduce((a, s) => a + s[0] * s[1], 0);
  assert.equal(matmulParamsOf(shapes), twoD);
  // untied: the input embedding is a lookup
  const untied = parseModelConfig({ ...LLAMA_30M.config, tie_word_embeddings: false });
  const us = expectedShapes(untied);
  assert.equal(matmulParamsOf(us), twoD, 'lm_head replaces the embedding as the head: same N');
  // GPT-2: wpe is not a matrix product
  const gpt = parseModelConfig(PROBE.config);
  const gs = expectedShapes(gpt);
  const wpe = gs.get('wpe.weight')!;
  const gTwoD = [...gs.values()].filter((s) => s.length === 2).reduce((a, s) => a + s[0] * s[1], 0);
  assert.equal(matmulParamsOf(gs), gTwoD - wpe[0] * wpe[1]);
  // Qwen2.5-0.5B shape: N close to its 494M parameters (1-D biases and norms left out)
  const q = matmulParamsOf(expectedShapes(parseModelConfig(QWEN25_05B.config)));
  assert.ok(q > 490e6 && q < 494.1e6, String(q));
});

test('flopRate: GFLOP/s and share of a peak; linearGemms: the three products of a layer', () => {
  assert.deepEqual(flopRate(2e9, 1000, 4), { gflops: 2, peakShare: 0.5 });
  assert.equal(flopRate(2e9, 500).peakShare, undefined);
  const [fwd, dX, dW] = linearGemms(576, 1536, 1024);
  assert.deepEqual([fwd.M, fwd.N, fwd.K, fwd.tb], [1024, 1536, 576, true]);
  assert.deepEqual([dX.M, dX.N, dX.K], [1024, 576, 1536]);
  assert.deepEqual([dW.M, dW.N, dW.K, dW.ta], [1536, 576, 1024, true]);
});
