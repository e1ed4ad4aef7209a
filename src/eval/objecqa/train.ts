/**
 * Training of the offline ObjecQA judge on data/objecqa/labelled.jsonl (230 answers written for heed; label
 * 1 = Objective). Split: whole questions are held out — an answer is held out when FNV(seed, question_id or id)
 * mod 5 == 0 (≈ 20 %), so the judge is measured on questions it never saw. Model: the hashed-feature logistic
 * regression (2^14 buckets), 40 epochs, batch 16, lr 0.02, on the engine.
 */
import { rowRng } from '../ifs/fragments.js';
import { binaryMetrics, DEFAULT_FEATURES, type BinaryMetrics, type FeatureConfig } from '../text-classifier.js';
import { trainClassifier } from '../train-classifier.js';
import { OBJECQA_LABELS } from './judge.js';
import type { LabelledAnswer } from './score.js';
import type { TextClassifier } from '../text-classifier.js';

export const JUDGE_FEATURES: FeatureConfig = { ...DEFAULT_FEATURES, buckets: 1 << 14 };
export const JUDGE_TRAIN = { epochs: 40, batch: 16, lr: 0.02, weightDecay: 0 };

export function judgeSplit(rows: LabelledAnswer[], seed: number): { train: LabelledAnswer[]; test: LabelledAnswer[] } {
  const held = (r: LabelledAnswer) => rowRng(seed ^ 0x3c6ef372, r.question_id ?? r.id).int(0, 4) === 0;
  return { train: rows.filter((r) => !held(r)), test: rows.filter(held) };
}

export async function trainJudge(rows: LabelledAnswer[], seed = 0): Promise<{ classifier: TextClassifier; heldOut: BinaryMetrics; split: { train: number; test: number } }> {
  const { train, test } = judgeSplit(rows, seed);
  const clf = await trainClassifier(train.map((r) => ({ text: r.text, label: r.label === 'Objective' ? 1 : 0 })), JUDGE_FEATURES, { labels: OBJECQA_LABELS, task: 'objecqa-judge', model: 'hashed-feature logistic regression', seed }, { ...JUDGE_TRAIN, seed });
  const heldOut = binaryMetrics(test.map((r) => (r.label === 'Objective' ? 1 : 0)), test.map((r) => clf.prob(r.text)));
  return { classifier: clf, heldOut, split: { train: train.length, test: test.length } };
}
