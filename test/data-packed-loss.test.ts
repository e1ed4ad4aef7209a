// Packed loss equals unpacked loss on the same rows, with a tiny random model (issue 3).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { initEngine, toHost } from '../src/engine/index.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { DataPipeline } from '../src/data/pipeline.js';
import { loadExamples } from '../src/data/dataset.js';
import { makeBatch, packExamples, single } from '../src/data/pack.js';
import { parseModelConfig } from '../src/models/config.js';
import { randomParams } from '../src/models/random.js';
import { toDevice } from '../src/models/load.js';
import { weightedLoss } from '../src/train/loss.js';
import { toDeviceBatch } from '../src/train/step.js';
import { invFreqFor } from '../src/models/run.js';
import { TINY_CONFIGS } from '../src/models/tiny.js';
import { SHARED, TINY } from './helpers.js';

await initEngine();

for (const arch of ['llama-gqa', 'gpt2']) {
  test(`packed loss equals unpacked loss (${arch}, dolly rows, masks output and instruction)`, async () => {
    const raw = { ...TINY_CONFIGS[arch], max_position_embeddings: 1024, n_positions: 1024 };
    const c = parseModelConfig(raw);
    const p = toDevice(randomParams(c, 5, { std: 0.2 }));
    const tok = loadTokenizer(join(TINY, arch));
    for (const mask of ['output', 'instruction']) {
      const pipe = new DataPipeline(tok, { template: 'chatml', mask });
      const { examples } = await loadExamples(join(SHARED, 'data/dolly_3k.jsonl'), pipe, { maxLength: 400, truncation: 'drop', onBadRow: 'skip' });
      const rows = examples.slice(0, 12);
      assert.equal(rows.length, 12);
      const packed = packExamples(rows, { seqLen: 1024, padId: 0 });
      assert.ok(packed.length < rows.length, 'rows were packed together');
      const loss = async (seqs: ReturnType<typeof single>[]) => {
        const b = makeBatch(seqs, 0);
        return (await toHost(weightedLoss(c, p, toDeviceBatch(b), invFreqFor(c))))[0];
      };
      const unpacked = await loss(rows.map(single));
      const pk = await loss(packed);
      assert.ok(Number.isFinite(unpacked) && unpacked > 1, `loss ${unpacked}`);
      assert.ok(Math.abs(pk - unpacked) <= 1e-5 * Math.abs(unpacked), `${arch} ${mask}: packed ${pk} vs unpacked ${unpacked}`);
      // and packing without segment isolation would differ (the mask is doing real work)
      const leaky = makeBatch(packed, 0);
      leaky.segments = leaky.segments.map((s) => (s >= 0 ? 0 : s));
      leaky.positions = Int32Array.from(leaky.positions, (_, i) => i % leaky.T);
      const lk = (await toHost(weightedLoss(c, p, toDeviceBatch(leaky), invFreqFor(c))))[0];
      assert.ok(Math.abs(lk - unpacked) > 1e-3, `cross-row attention changes the loss (${lk} vs ${unpacked})`);
    }
  });
}
