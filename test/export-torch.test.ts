/**
 * heed export torch: the exported job under `torchrun --nproc_per_node 2` (gloo, CPU) reproduces heed train's
 * loss curve (same data order, same global batch) for the output, instruction and weighted:0.5 masks and a
 * 2-stage run; a resumed job continues exactly; refusals. Needs Debian's python3-torch (.ci/run installs it);
 * without it the tests are skipped with the reason, unless HEED_REQUIRE_TORCH=1 (CI), where they fail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initEngine } from '../src/engine/index.js';
import { validateTrainConfig } from '../src/train/config.js';
import { train } from '../src/train/trainer.js';
import { exportTorchJob } from '../src/export/torch/export.js';
import { HeedError } from '../src/errors.js';
import { ROOT, TINY, tmp } from './helpers.js';
import { PYTHON, launch, torchMissing } from './export-torch-helpers.js';

const skip = torchMissing();

await initEngine();

const DATA = join(ROOT, 'data/demo/dolly-train.jsonl');
const base = (over: Record<string, unknown> = {}) => ({
  model: join(TINY, 'llama-gqa'),
  data: DATA,
  template: 'chatml',
  mask: 'output',
  max_length: 96,
  truncation: 'truncate-right',
  batch_size: 4,
  grad_accum: 2,
  steps: 20,
  lr: 3e-3,
  warmup_steps: 3,
  eval: { split: 0.1 },
  eval_max_rows: 8,
  eval_every: 10,
  save_every: 10,
  seed: 3,
  out: tmp('heed-eq-runs-'),
  name: 'r',
  ...over,
});

type Rec = Record<string, number | string>;
const metrics = (dir: string): Rec[] => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

/** heed train (in-process) and the exported job (torchrun, 2 processes) on the same config, side by side. */
async function both(over: Record<string, unknown>, name: string) {
  const cfg = validateTrainConfig(base({ ...over, name }), 'config');
  const jobDir = join(tmp('heed-job-'), 'job');
  const { job } = await exportTorchJob(cfg, { out: jobDir });
  const torch = launch(jobDir);
  const heed = await train(cfg, { quiet: true });
  const t = await torch;
  assert.equal(t.code, 0, t.out.slice(-3000));
  return { job, jobDir, heed: metrics(heed.run_dir), torch: metrics(join(jobDir, 'run')), heedRun: heed.run_dir };
}

/** max |Δ| over steps of loss and eval_loss; lr, tokens, epoch and stage must agree exactly. */
function compare(a: Rec[], b: Rec[], label: string) {
  assert.equal(a.length, b.length, `${label}: ${a.length} vs ${b.length} steps`);
  let dLoss = 0;
  let dEval = 0;
  let dGn = 0;
  for (const [i, x] of a.entries()) {
    const y = b[i];
    assert.equal(y.step, x.step);
    assert.equal(y.stage, x.stage, `${label} step ${x.step}: stage`);
    assert.equal(y.tokens, x.tokens, `${label} step ${x.step}: tokens`);
    assert.ok(Math.abs((y.lr as number) - (x.lr as number)) <= 1e-12 * (x.lr as number), `${label} step ${x.step}: lr ${x.lr} vs ${y.lr}`);
    assert.ok(Math.abs((y.epoch as number) - (x.epoch as number)) <= 1e-4, `${label} step ${x.step}: epoch ${x.epoch} vs ${y.epoch}`);
    dLoss = Math.max(dLoss, Math.abs((x.loss as number) - (y.loss as number)));
    dGn = Math.max(dGn, Math.abs((x.grad_norm as number) - (y.grad_norm as number)) / (x.grad_norm as number));
    assert.equal(x.eval_loss === undefined, y.eval_loss === undefined, `${label} step ${x.step}: eval points`);
    if (x.eval_loss !== undefined) dEval = Math.max(dEval, Math.abs((x.eval_loss as number) - (y.eval_loss as number)));
  }
  console.log(`${label}: ${a.length} steps, max |Δloss| ${dLoss.toExponential(2)}, max |Δeval_loss| ${dEval.toExponential(2)}, max rel Δgrad_norm ${dGn.toExponential(2)} (loss ${a[0].loss} → ${a[a.length - 1].loss})`);
  // the stated tolerance (docs/scale-out.md): float32 on both sides, different summation orders
  assert.ok(dLoss <= 2e-3, `${label}: max |Δloss| ${dLoss}`);
  assert.ok(dEval <= 2e-3, `${label}: max |Δeval_loss| ${dEval}`);
  assert.ok(dGn <= 5e-3, `${label}: max relative Δgrad_norm ${dGn}`);
  // and the curve moves: a constant curve would match trivially
  assert.ok(Math.abs((a[0].loss as number) - (a[a.length - 1].loss as number)) > 0.05, `${label}: the loss did not move`);
}

// heed_model.py (the job's torch implementation) against the parity fixtures of reference/hf_reference.py, every
// architecture, the cases packed and padded into one batch (positions restart, segments keep rows apart)
const PARITY = `import json, sys, os
sys.path.insert(0, sys.argv[1])
import torch
from heed_model import load_heed_model
root = sys.argv[2]
worst = {}
for name in sys.argv[3:]:
    m = load_heed_model(os.path.join(root, "test/fixtures/tiny", name))
    exp = json.load(open(os.path.join(root, "test/fixtures/parity", name + ".json")))
    err = 0.0
    with torch.no_grad():
        # all cases in one padded, packed batch: row 0 = cases 0 and 2 packed (positions restart), row 1 = case 1
        c = exp["cases"]
        a, b, s = c[0]["ids"], c[1]["ids"], c[2]["ids"]
        T = max(len(a) + len(s), len(b))
        ids = torch.zeros(2, T, dtype=torch.long); pos = torch.zeros(2, T, dtype=torch.long); seg = torch.full((2, T), -1, dtype=torch.long)
        ids[0, :len(a)] = torch.tensor(a); pos[0, :len(a)] = torch.arange(len(a)); seg[0, :len(a)] = 0
        ids[0, len(a):len(a) + len(s)] = torch.tensor(s); pos[0, len(a):len(a) + len(s)] = torch.arange(len(s)); seg[0, len(a):len(a) + len(s)] = 1
        ids[1, :len(b)] = torch.tensor(b); pos[1, :len(b)] = torch.arange(len(b)); seg[1, :len(b)] = 0
        lg = m(ids, pos, seg)
        got = [lg[0, :len(a)], lg[1, :len(b)], lg[0, len(a):len(a) + len(s)]]
        for g, case in zip(got, c):
            err = max(err, float((g.double() - torch.tensor(case["logits"], dtype=torch.float64)).abs().max()))
    worst[name] = err
print(json.dumps(worst))
`;

test('heed_model.py matches the reference logits for every architecture, packed and padded', { skip }, () => {
  const names = ['llama-gqa', 'llama-tied-llama3rope', 'qwen2', 'mistral-window', 'gpt2'];
  const r = spawnSync(PYTHON, ['-c', PARITY, join(ROOT, 'src/export/torch'), ROOT, ...names], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const worst = JSON.parse(r.stdout) as Record<string, number>;
  console.log(`heed_model.py vs reference logits, max |Δ|: ${JSON.stringify(worst)}`);
  for (const n of names) assert.ok(worst[n] < 1e-4, `${n}: ${worst[n]}`);
});

test('export refuses what it cannot carry, by name, and a non-empty --out', { skip }, async () => {
  const cfg = validateTrainConfig(base({ lora: { r: 4 } }), 'config');
  await assert.rejects(exportTorchJob(cfg, { out: join(tmp(), 'job') }), (e: unknown) => e instanceof HeedError && /"lora"/.test(e.message) && /full fine-tuning/.test(e.message));
  const dir = tmp();
  writeFileSync(join(dir, 'x'), '');
  await assert.rejects(exportTorchJob(validateTrainConfig(base(), 'config'), { out: dir }), /not empty/);
});

test('torchrun x2 (gloo) matches heed train: output mask, and the resumed job continues exactly', { skip }, async () => {
  const r = await both({ mask: 'output' }, 'output');
  compare(r.heed, r.torch, 'output');
  // the checkpoint is a Hugging Face folder heed loads; heed evaluates it to the job's own held-out loss
  const ck = join(r.jobDir, 'run', 'step-20');
  assert.ok(existsSync(join(ck, 'model.safetensors')) && existsSync(join(ck, 'tokenizer.json')));
  const sum = JSON.parse(readFileSync(join(r.jobDir, 'run', 'summary.json'), 'utf8'));
  assert.equal(sum.steps, 20);
  assert.equal(sum.world_size, 2);
  assert.equal(sum.best.metric, 'eval_loss');

  // resume: as if killed after step 13 — checkpoint step-10 is the last complete one, metrics ran on to a
  // torn line at step 14, a half-written .tmp-step-20 lies around
  const run2 = join(tmp('heed-resume-'), 'run');
  cpSync(join(r.jobDir, 'run'), run2, { recursive: true });
  rmSync(join(run2, 'step-20'), { recursive: true });
  rmSync(join(run2, 'summary.json'));
  const lines = readFileSync(join(run2, 'metrics.jsonl'), 'utf8').split('\n').slice(0, 13);
  writeFileSync(join(run2, 'metrics.jsonl'), lines.join('\n') + '\n{"step":14,"lo');
  cpSync(join(r.jobDir, 'run', 'step-10'), join(run2, '.tmp-step-20'), { recursive: true });
  const one = (args: string[]) => spawnSync(PYTHON, [join(r.jobDir, 'train.py'), '--job', r.jobDir, '--quiet', ...args], { encoding: 'utf8' });
  const again = one(['--run-dir', run2]);
  assert.equal(again.status, 2, 'a run folder with a run in it needs --resume');
  assert.match(again.stderr, /already holds a run.*--resume/);
  const res = await launch(r.jobDir, ['--run-dir', run2, '--resume']);
  assert.equal(res.code, 0, res.out.slice(-3000));
  const resumed = metrics(run2);
  assert.deepEqual(resumed.map((m) => m.step), r.torch.map((m) => m.step));
  let d = 0;
  for (const [i, m] of resumed.entries()) d = Math.max(d, Math.abs((m.loss as number) - (r.torch[i].loss as number)));
  console.log(`resume from step-10: max |Δloss| vs the uninterrupted job ${d.toExponential(2)}`);
  assert.ok(d <= 1e-6, `resumed curve differs by ${d}`);
  assert.ok(!existsSync(join(run2, '.tmp-step-20')), 'stale temp checkpoint removed');
  const done = one(['--run-dir', run2, '--resume']);
  assert.equal(done.status, 2);
  assert.match(done.stderr, /already finished at step 20/);
});

test('torchrun x2 matches heed train: instruction mask (activation checkpointing on both sides)', { skip }, async () => {
  const r = await both({ mask: 'instruction', checkpointing: 'layers' }, 'instruction');
  compare(r.heed, r.torch, 'instruction');
});

test('torchrun x2 matches heed train: weighted:0.5 mask, packed rows', { skip }, async () => {
  const r = await both({ mask: 'weighted:0.5', packing: true, max_length: 128, batch_size: 2 }, 'weighted');
  const idx = JSON.parse(readFileSync(join(r.jobDir, 'data/stage-0/index.json'), 'utf8'));
  assert.ok(idx.loss_weight > 0);
  // λ is in the exported weights (0, 0.5 and 1), and the TRL file says it cannot carry it as labels
  const sft = readFileSync(join(r.jobDir, 'data/sft-stage-0.jsonl'), 'utf8').split('\n')[0];
  assert.ok(JSON.parse(sft).loss_weights.includes(0.5));
  compare(r.heed, r.torch, 'weighted:0.5 packed');
});

test('torchrun x2 matches heed train: 2 stages (epoch wrap-around, sequence loss norm, weight decay)', { skip }, async () => {
  const r = await both(
    {
      data: undefined,
      stages: [
        { name: 'first', data: { path: DATA, weight: 0.1 }, steps: 12, lr: 3e-3 },
        { name: 'second', data: DATA, steps: 10, lr: 1e-3, schedule: 'linear', warmup_steps: 0 },
      ],
      steps: undefined,
      loss_norm: 'sequence',
      adamw: { weight_decay: 0.1 },
      eval_every: 5,
    },
    'stages',
  );
  assert.ok(r.job.stages[0].epochs_exported >= 2, `stage 1 spans ${r.job.stages[0].epochs_exported} epochs`);
  assert.deepEqual([...new Set(r.torch.map((m) => m.stage_name))], ['first', 'second']);
  compare(r.heed, r.torch, '2 stages');
});

test('train.py refuses a job folder from another heed version', { skip }, async () => {
  const jobDir = join(tmp('heed-job-'), 'job');
  await exportTorchJob(validateTrainConfig(base({ steps: 2 }), 'config'), { out: jobDir });
  const j = JSON.parse(readFileSync(join(jobDir, 'job.json'), 'utf8'));
  writeFileSync(join(jobDir, 'job.json'), JSON.stringify({ ...j, heed_version: '0.0.1' }));
  const r = spawnSync(PYTHON, [join(jobDir, 'train.py'), '--job', jobDir], { encoding: 'utf8' });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /written by heed 0\.0\.1, this train\.py belongs to heed \d/);
});
