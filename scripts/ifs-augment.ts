/**
 * Issue 14: formatting augmentation of the classifiers' TRAINING texts (src/eval/ifs/heldout.ts `Augment`) on the
 * shipped held-out source folds (`evaluateFold`: same training rows, seeded test sample, test examples — never
 * augmented —, F16 save/load round trip). Baseline = the committed report (data/ifs/classifier-eval.json).
 *
 *   FOLD=0|1 VARIANT=name nice -n 10 node --import tsx scripts/ifs-augment.ts [out.json]
 *
 * Prints, for both classifiers, every held-out measure before → after (accuracy, recall, each false-answer rate,
 * each shape's recall with ≥ 20 texts, each flip rate, the noise set) and writes the fold report to out.json.
 */
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { startEngine } from '../src/cli/common.js';
import type { Augment, ModelReport } from '../src/eval/ifs/heldout.js';
import { runFold } from './ifs-fold-run.js';
import type { Ratio } from '../src/eval/ifs/score.js';

const LT = ['lower', 'trunc100', 'trunc200'];
export const VARIANTS: Record<string, Augment> = {
  'aug-all-20': { share: 0.2 },
  'aug-all-40': { share: 0.4 },
  'aug-lt-20': { share: 0.2, kinds: LT },
  'aug-lower-20': { share: 0.2, kinds: ['lower'] },
  'aug-trunc-20': { share: 0.2, kinds: ['trunc100', 'trunc200'] },
  'shapes-20': { share: 0, shapes: { share: 0.2 } },
  'aug-all-20-shapes-20': { share: 0.2, shapes: { share: 0.2 } },
  'aug-lt-20-shapes-20': { share: 0.2, kinds: LT, shapes: { share: 0.2 } },
  'pair-aug-all-20': { share: 0.2, models: 'pair' },
  'pair-aug-all-20-shapes-20': { share: 0.2, shapes: { share: 0.2 }, models: 'pair' },
  'pair-aug-lt-20': { share: 0.2, kinds: LT, models: 'pair' },
  'pair-aug-lt-20-shapes-20': { share: 0.2, kinds: LT, shapes: { share: 0.2 }, models: 'pair' },
  'pair-shapes-20': { share: 0, shapes: { share: 0.2 }, models: 'pair' },
  'pair-aug-lower-20': { share: 0.2, kinds: ['lower'], models: 'pair' },
  'pair-aug-lower-trunc-30': { share: 0.3, kinds: LT, models: 'pair' },
};
const FOLD = Number(process.env.FOLD ?? 1);
const name = process.env.VARIANT ?? 'aug-all-20';
const augment = VARIANTS[name];
if (!augment) throw new Error(`unknown VARIANT ${name}; one of ${Object.keys(VARIANTS).join(', ')}`);
await startEngine('wasm');
const { rep, base, secs } = await runFold(FOLD, { seed: 0, augment });
const cells = (m: ModelReport): Record<string, Ratio> => ({
  accuracy: m.accuracy, recall: m.recall,
  ...Object.fromEntries(Object.entries(m.false_answer_by_type).map(([k, v]) => [`far ${k}`, v])),
  ...Object.fromEntries(Object.entries(m.false_answer_by_join).map(([k, v]) => [`far join ${k}`, v])),
  ...Object.fromEntries(Object.entries(m.false_answer_by_opening).map(([k, v]) => [`far opening ${k}`, v])),
  ...Object.fromEntries(Object.entries(m.recall_by_shape).filter(([, v]) => v.n >= 20).map(([k, v]) => [`recall ${k}`, v])),
  ...Object.fromEntries(Object.entries(m.flip_by_perturbation).map(([k, v]) => [`flip ${k}`, v.all])),
  noise: m.noise_accuracy,
});
for (const model of ['response', 'pair'] as const) {
  const a = cells(base[model]), b = cells(rep[model]);
  console.log(`${rep.fold} | ${name} | ${model}:`);
  for (const k of Object.keys(a)) console.log(`  ${k.padEnd(22)} ${a[k].value.toFixed(3)} → ${b[k]?.value.toFixed(3) ?? '–'}  [${b[k] ? `${b[k].ci[0].toFixed(3)}, ${b[k].ci[1].toFixed(3)}` : ''}]`);
}
console.log(`[${secs.toFixed(0)} s; ${cpus()[0].model}, load ${loadavg()[0].toFixed(1)}]`);
if (process.argv[2]) writeFileSync(process.argv[2], JSON.stringify({ variant: name, augment, fold: FOLD, seconds: secs, cpu: cpus()[0].model, load: loadavg()[0], report: rep }, null, 1) + '\n');
