import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateTrainConfig, metricsOf } from '../src/train/config.js';
import { HeedError } from '../src/errors.js';
import { DOCS, withTable } from '../scripts/docs-config.js';
import { TINY } from './helpers.js';

const problemsOf = (raw: Record<string, unknown>, opts = {}): string => {
  try {
    validateTrainConfig(raw, 'cfg.yaml', tmpdir(), opts);
  } catch (e) {
    assert.ok(e instanceof HeedError, String(e));
    assert.ok(e.fix, 'a fix');
    assert.ok(!e.oneLine().includes('\n'), 'one line');
    return e.message;
  }
  assert.fail(`no error for ${JSON.stringify(raw)}`);
};

test('every problem of a config is reported at once, each in the user\'s terms', () => {
  const m = problemsOf({
    model: join(TINY, 'gpt2'),
    data: 'd.jsonl',
    eval: 0.1, // a number where a mapping or null belongs
    lr: 0, // out of range
    schedul: 'linear', // unknown key, near "schedule"
    mask: 'outptu', // unknown mask name
    template: 'chatlm', // unknown template name
    best_metric: 'ifs', // no early stopping: no ifs metric
    epochs: 1,
    steps: 10, // both epochs and steps
    include_system: true, // only with instruction / weighted masks
    lora: { targets: ['q', 'gate'] }, // GPT-2 has no gate projection (read from config.json)
    early_stopping: null,
  });
  assert.match(m, /^cfg\.yaml: 9 problems: \(1\) /);
  for (const re of [
    /"eval": got 0\.1; accepts \{split: a number more than 0 and less than 1\}, \{file: a non-empty string\} or null/,
    /"lr": got 0; accepts a number more than 0/,
    /unknown key "schedul" \(did you mean "schedule"\?\)/,
    /"mask": got "outptu" \(did you mean output\?\); accepts output, instruction, weighted:λ/,
    /"template": got "chatlm" \(did you mean chatml\?\)/,
    /"best_metric": got "ifs", a metric this run will not write \(it needs early_stopping\.ifs\); this config writes loss, eval_loss/,
    /"steps": both "epochs" and "steps" are set/,
    /"include_system": applies to mask instruction or weighted:λ/,
    /"lora\.targets": "gate" does not exist in GPT-2 models/,
  ]) assert.match(m, re);
});

test('cross-field rules: stages, best_metric against the metrics that will exist, early stopping with LoRA', () => {
  const base = { model: 'm', data: 'd.jsonl' };
  assert.match(problemsOf({ model: 'm' }), /neither "data" nor "stages" is set/);
  assert.match(problemsOf({ ...base, stages: [{ data: 'a' }] }), /both "data" and "stages" are set/);
  const st = problemsOf({ model: 'm', lr_reset_per_stage: false, stages: [{ name: 'a', data: 'x', lr: 1e-3 }, { name: 'a', data: 'y', epochs: 1, steps: 2 }] });
  assert.match(st, /3 problems/);
  assert.match(st, /"stages\.0\.lr": ignored with lr_reset_per_stage: false/);
  assert.match(st, /"stages\.1\.name": "a" is also the name of stage 0/);
  assert.match(st, /"stages\.1\.steps": both epochs and steps are set/);
  assert.match(problemsOf({ ...base, eval: null, best_metric: 'eval_loss' }), /"best_metric": got "eval_loss".*\(eval is null: no held-out rows\)/);
  assert.match(problemsOf({ ...base, best_metric: 'objecqa', early_stopping: { ifs: {} } }), /needs early_stopping\.ifs\.objecqa/);
  assert.match(problemsOf({ ...base, best_metric: 'eval_los' }), /did you mean eval_loss\?/);
  // LoRA with llama.cpp early stopping is valid (the adapters are merged into the temporary GGUF)
  assert.doesNotThrow(() => validateTrainConfig({ ...base, lora: {}, early_stopping: { ifs: { engine: 'llama.cpp' } } }, 'cfg.yaml', tmpdir()));
  assert.match(problemsOf({ ...base, early_stopping: { ifs: { patiense: 2 } } }), /unknown key "early_stopping\.ifs\.patiense" \(did you mean "early_stopping\.ifs\.patience"\?\)/);
  assert.match(problemsOf({ ...base, mask: 'weighted:2' }), /the λ of weighted:λ is a number from 0 to 1/);
  assert.match(problemsOf({ ...base, schedule: 'cosin' }), /"schedule": got "cosin" \(did you mean cosine\?\); accepts one of constant, linear, cosine/);
  // what is valid stays valid: metrics of the config, a library callback's own metric, defaults
  assert.deepEqual(metricsOf({ eval: null, early_stopping: { ifs: { objecqa: 20 } } }), ['loss', 'ifs', 'ifs_partial', 'ifs_full', 'objecqa']);
  assert.equal(validateTrainConfig({ ...base, best_metric: 'probe' }, 'c', tmpdir(), { metrics: ['probe'] }).best_metric, 'probe');
  assert.equal(validateTrainConfig({ ...base, best_metric: 'ifs_full', early_stopping: { ifs: {} } }, 'c', tmpdir()).best_mode, 'max');
  assert.equal(validateTrainConfig({ ...base, eval: null }, 'c', tmpdir()).best_metric, 'eval_loss');
  assert.equal(validateTrainConfig({ ...base, mask: 'weighted:0.3', include_system: true, template: 'plain', lora: { targets: ['q', 'gate'] } }, 'c', tmpdir()).mask, 'weighted:0.3');
});

test('heed train with a bad config: one error listing every problem, nothing created on disk', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'heed-cfg-'));
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, 'model: m\ndata: d.jsonl\nout: runs\nlr: -1\nbatch_sise: 4\n');
  const { run } = await import('../src/cli/main.js');
  const err: string[] = [];
  const e0 = console.error;
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try {
    assert.equal(await run(['train', file]), 2);
  } finally {
    console.error = e0;
  }
  assert.equal(err.length, 1);
  assert.match(err[0], /bad\.yaml: 2 problems: \(1\) "lr": got -1; accepts a number more than 0; \(2\) unknown key "batch_sise" \(did you mean "batch_size"\?\)/);
  assert.ok(!existsSync(join(dir, 'runs')), 'no run folder');
});

test('docs/train.md key table is generated from the schema (npm run docs:config) and has not drifted', () => {
  const doc = readFileSync(DOCS, 'utf8');
  assert.equal(withTable(doc), doc, 'docs/train.md differs from the schema: run npm run docs:config');
  for (const key of ['model', 'lora.targets', 'early_stopping.ifs.patience', 'adamw.beta2', 'best_metric']) assert.match(doc, new RegExp(`^\\| \`${key.replace(/\./g, '\\.')}\` \\| [^|]+ \\| [^|]+ \\| [^|]{8,} \\|$`, 'm'), key);
});
