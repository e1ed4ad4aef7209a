/**
 * The classifiers' nonlinear head (text-classifier.ts `MlpHead`, trained by train-classifier.ts `mlp`): it
 * learns an interaction a linear model cannot (XOR of two words), it is deterministic, and the file round trip
 * keeps its scores (F16 weights: the stored model scores as the loaded one).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { initEngine } from '../src/engine/index.js';
import { trainClassifier, DEFAULT_TRAIN } from '../src/eval/train-classifier.js';
import { featurize, mlpLogit, TextClassifier, type FeatureConfig } from '../src/eval/text-classifier.js';
import { Prng } from '../src/data/prng.js';

const cfg: FeatureConfig = { buckets: 1 << 10, maxChars: 200, charChars: 0, maxFeatures: 48 };
const FILL = ['one', 'two', 'three', 'four', 'five', 'six'];

function xorSet(n: number, seed: number) {
  const r = new Prng(seed);
  return Array.from({ length: n }, (_, i) => {
    const a = i % 2 === 1, b = (i >> 1) % 2 === 1;
    return { text: `${a ? 'red' : 'blue'} ${r.pick(FILL)} ${r.pick(FILL)} ${r.pick(FILL)} ${b ? 'big' : 'small'} ${r.pick(FILL)} ${r.pick(FILL)} ${r.pick(FILL)}`, label: a !== b ? 1 : 0 };
  });
}

const acc = (c: TextClassifier, xs: Array<{ text: string; label: number }>) => xs.filter((e) => (c.prob(e.text) >= 0.5 ? 1 : 0) === e.label).length / xs.length;

test('the MLP head learns XOR of two words, the linear model cannot; deterministic; survives the file round trip', async () => {
  await initEngine();
  const train = xorSet(256, 1), held = xorSet(200, 2);
  const o = { ...DEFAULT_TRAIN, epochs: 12, batch: 32, lr: 0.03 };
  const meta = { labels: ['no', 'yes'] as [string, string], task: 'xor' };
  const lin = await trainClassifier(train, cfg, meta, o);
  const mlp = await trainClassifier(train, cfg, meta, { ...o, mlp: { buckets: 1 << 8, hidden: 16, initScale: 0.3 } });
  const again = await trainClassifier(train, cfg, meta, { ...o, mlp: { buckets: 1 << 8, hidden: 16, initScale: 0.3 } });
  const la = acc(lin, held), ma = acc(mlp, held);
  assert.ok(la <= 0.8, `linear ${la}`);
  assert.ok(ma >= 0.97, `mlp ${ma}`);
  assert.deepEqual(again.mlp!.e, mlp.mlp!.e);
  assert.deepEqual(again.w, mlp.w);
  assert.ok(mlp.mlp && Math.abs(mlpLogit(mlp.mlp, featurize(held[1].text, cfg))) > 0);
  const dir = mkdtempSync(join(tmpdir(), 'heed-mlp-'));
  try {
    const p = join(dir, 'c.safetensors');
    mlp.save(p);
    const back = TextClassifier.load(p);
    assert.equal(back.mlp?.hidden, 16);
    assert.equal(back.mlp?.buckets, 1 << 8);
    assert.equal(acc(back, held), ma);
    for (const e of held.slice(0, 20)) assert.ok(Math.abs(back.prob(e.text) - mlp.prob(e.text)) < 0.02);
    back.save(p);
    assert.deepEqual(TextClassifier.load(p).mlp!.e, back.mlp!.e);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
