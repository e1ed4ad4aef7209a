/**
 * Small experiments behind docs/ifs.md ("What was tried"): the response classifier (no gate) of the
 * Dolly+Alpaca → LIMA fold under different feature and training settings, accuracy on the LIMA test examples.
 * FOLD=0|1 node --import tsx scripts/ifs-experiments.ts [name ...]   (FOLD 0: Dolly+Alpaca → LIMA, 1: the reverse)
 */
import { startEngine } from '../src/cli/common.js';
import { readSources, DEFAULT_TRAIN_FILES, buildDict } from '../src/eval/ifs/classifier.js';
import { trainingSets, responseFeatures, FOLDS } from '../src/eval/ifs/heldout.js';
import { pairExamples } from '../src/eval/ifs/pairs.js';
import { trainClassifier, DEFAULT_TRAIN } from '../src/eval/train-classifier.js';
import type { FeatureConfig } from '../src/eval/text-classifier.js';
import { readModelNegatives } from '../src/eval/ifs/negatives.js';

await startEngine('wasm');
const { rows } = readSources(DEFAULT_TRAIN_FILES);
const fold = FOLDS[Number(process.env.FOLD ?? 0)];
const trainRows = rows.filter((r) => !fold.test(r.dataset));
const testRows = rows.filter((r) => fold.test(r.dataset)).slice(0, 1200);
const ids = new Set(trainRows.map((r) => r.id));
const { main } = trainingSets(trainRows, 0, 'train', readModelNegatives().filter((m) => ids.has(m.source_id)));
const test = pairExamples(testRows, 0, { mode: 'test', templates: 'test' });
const base: FeatureConfig = { ...responseFeatures(buildDict(trainRows)), discourse: false }; // the settings before the discourse features
const configs: Record<string, { cfg: FeatureConfig; o?: Partial<typeof DEFAULT_TRAIN> }> = {
  baseline: { cfg: base },
  '+discourse': { cfg: { ...base, discourse: true } },
  '+discourse wd 0.1': { cfg: { ...base, discourse: true }, o: { weightDecay: 0.1 } },
  '+discourse, no char 3-grams': { cfg: { ...base, discourse: true, charChars: 0 } },
  '+discourse, 2^16 buckets': { cfg: { ...base, discourse: true, buckets: 1 << 16 } },
  '+discourse, first 300 chars': { cfg: { ...base, discourse: true, maxChars: 300 } },
  'lr 0.003': { cfg: base, o: { lr: 0.003 } },
  '1 epoch': { cfg: base, o: { epochs: 1 } },
  'wd 0.1': { cfg: base, o: { weightDecay: 0.1 } },
  'no char 3-grams': { cfg: { ...base, charChars: 0 } },
  'first 200 chars': { cfg: { ...base, maxChars: 200 } },
  'no stats': { cfg: { ...base, stats: false } },
  '2^15 buckets': { cfg: { ...base, buckets: 1 << 15 } },
};
const want = process.argv.slice(2);
for (const [name, c] of Object.entries(configs)) {
  if (want.length && !want.includes(name)) continue;
  const t0 = performance.now();
  const m = await trainClassifier(main, c.cfg, { labels: ['continuation', 'answer'], task: 'x' }, { ...DEFAULT_TRAIN, ...c.o });
  let ok = 0, fa = 0, neg = 0, rec = 0, pos = 0;
  for (const e of test) {
    const p = m.prob(e.text) >= 0.5 ? 1 : 0;
    ok += p === e.label ? 1 : 0;
    if (e.label === 0) (neg++, (fa += p));
    else (pos++, (rec += p));
  }
  console.log(`${fold.name} | ${name.padEnd(16)} | accuracy ${(ok / test.length).toFixed(4)} | false-answer ${(fa / neg).toFixed(4)} | recall ${(rec / pos).toFixed(4)} | ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}
