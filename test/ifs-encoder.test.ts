/**
 * src/models/hidden.ts (pooled hidden states, the encoder of the transformer classifier experiments in
 * scripts/ifs-transformer.ts): its last-layer last-token vector is the final-normed state the LM head reads,
 * so times the output matrix it gives forward()'s logits at that position; its mean pooling ignores padding;
 * and gradients flow through it (valueAndGrad, as fine-tuning uses it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { initEngine, jit, np, toHost, tree, valueAndGrad, type Tensor } from '../src/engine/index.js';
import { loadModel } from '../src/models/load.js';
import { pooledHidden, poolInputs } from '../src/models/hidden.js';
import { invFreqFor, sequenceLogits } from '../src/models/run.js';
import { outputMatrix } from '../src/models/transformer.js';
import { TINY } from './helpers.js';

await initEngine({ device: 'wasm' });

for (const name of ['llama-gqa', 'gpt2']) {
  test(`pooledHidden (${name}): last token · output matrix = forward's logits; mean pooling ignores padding`, async () => {
    const m = await loadModel(join(TINY, name));
    const c = m.config;
    const seqs = [[5, 9, 17, 33, 2], [7, 4], [11, 12, 13]];
    const T = 6;
    const i = poolInputs(seqs, T);
    const h = await toHost(pooledHidden(c, m.params, i, [c.layers], invFreqFor(c))); // [B, 2 * D]
    const D = c.hidden;
    const W = await toHost(outputMatrix(c, m.params).ref); // [V, D]
    const logits = await sequenceLogits(c, m.params, seqs);
    for (let b = 0; b < seqs.length; b++) {
      const last = h.subarray(b * 2 * D + D, b * 2 * D + 2 * D);
      const want = logits[b].subarray((seqs[b].length - 1) * c.vocabSize, seqs[b].length * c.vocabSize);
      let maxErr = 0;
      for (let v = 0; v < c.vocabSize; v++) {
        let z = 0;
        for (let d = 0; d < D; d++) z += W[v * D + d] * last[d];
        maxErr = Math.max(maxErr, Math.abs(z - want[v]));
      }
      assert.ok(maxErr < 1e-3, `sequence ${b}: max |logit difference| ${maxErr}`);
    }
    // the same sequence alone, with more padding, gives the same mean-pooled vector (padding ignored)
    const alone = await toHost(pooledHidden(c, m.params, poolInputs([seqs[1]], 9), [c.layers], invFreqFor(c)));
    for (let d = 0; d < D; d++) assert.ok(Math.abs(alone[d] - h[2 * D + d]) < 1e-4, `mean pooling differs at ${d}: ${alone[d]} vs ${h[2 * D + d]}`);
    // several layers: [layers × (mean, last) × D]
    const two = await toHost(pooledHidden(c, m.params, poolInputs(seqs, T), [0, c.layers], invFreqFor(c)));
    assert.equal(two.length, seqs.length * 2 * 2 * D);
    for (let d = 0; d < 2 * D; d++) assert.ok(Math.abs(two[2 * D + d] - h[d]) < 1e-5);
  });
}

test('pooledHidden: gradients of a head on the pooled output reach the layers (valueAndGrad in jit)', async () => {
  const m = await loadModel(join(TINY, 'llama-gqa'));
  const c = m.config;
  const i = poolInputs([[1, 2, 3], [4, 5]], 4);
  const f = jit((p: Record<string, Tensor>, w: Tensor, ids: Tensor, pos: Tensor, seg: Tensor, sl: Tensor, pool: Tensor, inv: Tensor) =>
    valueAndGrad((pp: Record<string, Tensor>) => np.matmul(pooledHidden(c, pp, { ids, positions: pos, seg, slots: sl, pool }, [c.layers], inv), w).sum())(p));
  const [v, g] = f(tree.ref(m.params), np.ones([2 * c.hidden, 1]), i.ids, i.positions, i.seg, i.slots, i.pool, invFreqFor(c)) as [Tensor, Record<string, Tensor>];
  assert.ok(Number.isFinite((await toHost(v))[0]));
  const gq = await toHost(g[`model.layers.0.self_attn.q_proj.weight`]);
  assert.ok(gq.some((x) => x !== 0), 'no gradient reached layer 0');
});
