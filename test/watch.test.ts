/**
 * heed watch on a running PyTorch job (torchrun x2, gloo): it evaluates the checkpoints at heed train's
 * evaluation points, applies the IFS early-stopping rule, writes STOP, and the job stops cleanly; heed report
 * reads the run; a torn metrics line, a checkpoint that disappears mid-evaluation and a job of another heed
 * version are handled. Needs python3-torch (see export-torch.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { initEngine } from '../src/engine/index.js';
import { validateTrainConfig } from '../src/train/config.js';
import { exportTorchJob } from '../src/export/torch/export.js';
import { watchRun } from '../src/export/torch/watch.js';
import { readMetrics } from '../src/train/metrics.js';
import { renderReport } from '../src/report/html.js';
import { HeedError } from '../src/errors.js';
import { ROOT, TINY, tmp } from './helpers.js';
import { launch, torchMissing } from './export-torch-helpers.js';

const skip = torchMissing();
await initEngine();

test('heed watch stops a running 2-process job through STOP (IFS early stopping), heed report reads the run', { skip }, async () => {
  const cfg = validateTrainConfig(
    {
      model: join(TINY, 'llama-gqa'),
      data: join(ROOT, 'data/demo/dolly-train.jsonl'),
      template: 'chatml',
      max_length: 96,
      batch_size: 4,
      steps: 400,
      lr: 3e-3,
      eval: { split: 0.1 },
      eval_max_rows: 8,
      eval_every: 5,
      save_every: 1000,
      keep_last: 1,
      // a rule that fires at the second evaluation: no gain of 1.0 over the last one, IFS ≥ 0
      early_stopping: { ifs: { patience: 1, min_delta: 1, min_ifs: 0, budget: 4, max_tokens: 8, batch_size: 4, variant: 'C' } },
      out: tmp(),
      name: 'watched',
    },
    'config',
  );
  const jobDir = join(tmp('heed-job-'), 'job');
  await exportTorchJob(cfg, { out: jobDir });
  const runDir = join(jobDir, 'run');
  const job = launch(jobDir);
  // wait for the run folder (train.py writes job.json there at start)
  for (let i = 0; i < 600 && !existsSync(join(runDir, 'job.json')); i++) await new Promise((r) => setTimeout(r, 100));
  const logs: string[] = [];
  const s = await watchRun(runDir, { poll: 0.2, timeout: 300, log: (l) => logs.push(l) });
  const j = await job;
  assert.equal(j.code, 0, j.out.slice(-3000));
  assert.deepEqual(s.evaluated, [5, 10], logs.join('\n'));
  assert.deepEqual(s.stopped?.step, 10);
  assert.match(s.stopped!.reason, /IFS plateau/);
  assert.ok(existsSync(join(runDir, 'STOP')));
  const sum = JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8'));
  assert.ok(sum.steps >= 10 && sum.steps < 400, `the job stopped at step ${sum.steps}`);
  assert.equal(sum.stopped_early.step, 10);
  assert.match(sum.stopped_early.reason, /IFS plateau/);
  assert.equal(sum.best.metric, 'ifs');
  assert.ok(existsSync(join(runDir, `step-${sum.steps}`)), 'a checkpoint at the stop');
  // watch's lines sit in the run's metrics; heed's held-out loss of the torch checkpoint = torch's own
  const ms = readMetrics(join(runDir, 'metrics.jsonl')).records;
  const w = ms.filter((m) => m.source === 'heed watch');
  assert.deepEqual(w.map((m) => m.step), [5, 10]);
  for (const m of w) {
    assert.ok(typeof m.ifs === 'number' && typeof m.ifs_partial === 'number' && typeof m.ifs_full === 'number');
    const own = ms.find((x) => x.step === m.step && x.source === undefined)!;
    const d = Math.abs((m.watch_eval_loss as number) - (own.eval_loss as number));
    console.log(`step ${m.step}: held-out loss, heed in-process ${m.watch_eval_loss} vs train.py ${own.eval_loss} (|Δ| ${d.toExponential(2)})`);
    assert.ok(d < 1e-4, `held-out loss differs by ${d}`);
  }
  assert.ok(existsSync(join(runDir, 'ifs', 'step-10.jsonl')));
  const html = renderReport([runDir]);
  assert.match(html, /IFS/);
  assert.match(html, /IFS plateau/);

  // a second watch on a copy: metrics cut mid-line, a checkpoint that vanishes while it is being loaded
  const copy = join(tmp('heed-watch-'), 'run');
  cpSync(runDir, copy, { recursive: true });
  rmSync(join(copy, 'STOP'));
  const own = readFileSync(join(copy, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l && !l.includes('"heed watch"'));
  writeFileSync(join(copy, 'metrics.jsonl'), own.join('\n') + '\n');
  appendFileSync(join(copy, 'metrics.jsonl'), '{"step": 99, "lo');
  assert.equal(readMetrics(join(copy, 'metrics.jsonl')).torn, true);
  cpSync(join(copy, `step-${sum.steps}`), join(copy, 'step-5'), { recursive: true });
  const s2 = await watchRun(copy, { once: true, log: (l) => logs.push(l), beforeLoad: (d) => d.endsWith('step-5') && rmSync(d, { recursive: true }) });
  assert.deepEqual(s2.skipped.map((x) => x.step), [5]);
  assert.match(s2.skipped[0].why, /disappeared while being evaluated/);
  assert.ok(s2.torn_lines >= 1);

  // a run of another heed version is refused
  const j2 = JSON.parse(readFileSync(join(copy, 'job.json'), 'utf8'));
  writeFileSync(join(copy, 'job.json'), JSON.stringify({ ...j2, heed_version: '0.0.1' }));
  await assert.rejects(watchRun(copy, { once: true }), (e: unknown) => e instanceof HeedError && /exported by heed 0\.0\.1; this is heed/.test(e.message));
});
