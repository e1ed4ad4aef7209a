/**
 * Issue 14 item 3: a nonlinear (one-hidden-layer) head beside the linear pair / response classifiers, on the
 * shipped held-out source folds (src/eval/ifs/heldout.ts `evaluateFold`: same rows, test sample, examples,
 * F16 save/load round trip). Baseline = the committed report (data/ifs/classifier-eval.json).
 *
 *   FOLD=0|1 VARIANT=name nice -n 10 node --import tsx scripts/ifs-mlp.ts [out.json]
 *
 * Variants: see VARIANTS below. Prints accuracy and the worst cells of both models against the baseline; writes
 * the fold report (JSON) to out.json when given.
 */
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { startEngine } from '../src/cli/common.js';
import type { ModelReport, TrainIfsOptions } from '../src/eval/ifs/heldout.js';
import { runFold } from './ifs-fold-run.js';

const VARIANTS: Record<string, Partial<TrainIfsOptions>> = {
  'pair-mlp-14x32': { pairMlp: { buckets: 1 << 14, hidden: 32 } },
  'pair-mlp-14x64': { pairMlp: { buckets: 1 << 14, hidden: 64 } },
  'pair-mlp-12x32': { pairMlp: { buckets: 1 << 12, hidden: 32 } },
  'both-mlp-14x32': { pairMlp: { buckets: 1 << 14, hidden: 32 }, responseMlp: { buckets: 1 << 14, hidden: 32 } },
  'pair-eng-14x32': { pairMlp: { buckets: 1 << 14, hidden: 32, input: 'engineered' } },
  'pair-eng-14x64': { pairMlp: { buckets: 1 << 14, hidden: 64, input: 'engineered' } },
  'pair-eng-12x32': { pairMlp: { buckets: 1 << 12, hidden: 32, input: 'engineered' } },
  'pair-eng-14x32-wd1': { pairMlp: { buckets: 1 << 14, hidden: 32, input: 'engineered', weightDecay: 1 } },
  'pair-mlp-14x32-wd1': { pairMlp: { buckets: 1 << 14, hidden: 32, weightDecay: 1 } },
  'pair-eng-14x32-s03': { pairMlp: { buckets: 1 << 14, hidden: 32, input: 'engineered', initScale: 0.03 } },
  style: { pairStyle: true },
  'pair-eng-14x32-k03': { pairMlp: { buckets: 1 << 14, hidden: 32, input: 'engineered', scale: 0.3 } },
  'pair-eng-14x32-k01': { pairMlp: { buckets: 1 << 14, hidden: 32, input: 'engineered', scale: 0.1 } },
  'style-eng-14x32-k03': { pairStyle: true, pairMlp: { buckets: 1 << 14, hidden: 32, input: 'engineered', scale: 0.3 } },
  'style-eng-14x32-k01': { pairStyle: true, pairMlp: { buckets: 1 << 14, hidden: 32, input: 'engineered', scale: 0.1 } },
  'style-eng-14x32': { pairStyle: true, pairMlp: { buckets: 1 << 14, hidden: 32, input: 'engineered' } },
  'style-eng-14x32-wd1': { pairStyle: true, pairMlp: { buckets: 1 << 14, hidden: 32, input: 'engineered', weightDecay: 1 } },
  'both-eng-14x32': { pairMlp: { buckets: 1 << 14, hidden: 32, input: 'engineered' }, responseMlp: { buckets: 1 << 14, hidden: 32, input: 'engineered' } },
};
const FOLD = Number(process.env.FOLD ?? 1);
const name = process.env.VARIANT ?? 'pair-mlp-14x32';
// every variant names its pair options in full (the defaults of trainIfsModels are the shipped ones)
const v = name === 'shipped' ? {} : { pairStyle: false, pairMlp: null, ...VARIANTS[name] };
if (name !== 'shipped' && !VARIANTS[name]) throw new Error(`unknown VARIANT ${name}; one of ${Object.keys(VARIANTS).join(', ')}`);
await startEngine('wasm');
const { rep, base, secs } = await runFold(FOLD, { seed: 0, ...v });
const cells = (m: ModelReport) => ({
  acc: m.accuracy.value, recall: m.recall.value,
  'I,Ic': m.false_answer_by_type['I,Ic'].value, 'I,Ic+R': m.false_answer_by_type['I,Ic+R'].value,
  'Ip,Ic': m.false_answer_by_type['Ip,Ic'].value, 'Ip,Ic+R': m.false_answer_by_type['Ip,Ic+R'].value,
  space: m.false_answer_by_join.space.value, lower: m.recall_by_shape['synth:lower'].value, clarify: m.recall_by_shape.clarify.value, prose: m.recall_by_shape.prose.value,
  'flip lower': m.flip_by_perturbation.lower.all.value, noise: m.noise_accuracy.value,
});
for (const model of ['response', 'pair'] as const) {
  const a = cells(base[model]), b = cells(rep[model]);
  console.log(`${rep.fold} | ${name} | ${model}: ` + Object.keys(a).map((k) => `${k} ${a[k as keyof typeof a].toFixed(3)}→${b[k as keyof typeof b].toFixed(3)}`).join(', '));
}
console.log(`[${secs.toFixed(0)} s; ${cpus()[0].model}, load ${loadavg()[0].toFixed(1)}]`);
if (process.argv[2]) writeFileSync(process.argv[2], JSON.stringify({ variant: name, fold: FOLD, seconds: secs, report: rep }, null, 1) + '\n');
