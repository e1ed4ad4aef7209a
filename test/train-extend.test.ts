/**
 * The trainer's progress events, resume accounting and run extension (`heed train --resume runs/x --set
 * steps=N`), and the one metrics.jsonl reader.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initEngine } from '../src/engine/index.js';
import { validateTrainConfig } from '../src/train/config.js';
import { train, type TrainEvent } from '../src/train/trainer.js';
import { lrAt } from '../src/train/schedule.js';
import { readMetrics, describeSkips } from '../src/train/metrics.js';
import { trainProgress } from '../src/cli/progress.js';
import { HeedError } from '../src/errors.js';
import type { TrainerCallback } from '../src/train/callbacks.js';
import { ROOT, TINY, tmp } from './helpers.js';

await initEngine();

const SMALL = join(ROOT, 'test/fixtures/bad-input/small.jsonl');
const cfgOf = (over: Record<string, unknown> = {}) => validateTrainConfig({ model: join(TINY, 'llama-gqa'), data: SMALL, template: 'chatml', max_length: 96, batch_size: 2, steps: 6, lr: 3e-3, schedule: 'constant', warmup_steps: 2, eval_every: 4, save_every: 4, eval_max_rows: 2, eval: { split: 0.1 }, seed: 5, out: tmp('heed-extend-'), name: 'r', ...over });
const records = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
/** what training did at each step (evaluation points differ between a 6-then-10 and a 10-step run) */
const trajectory = (dir: string) => records(dir).map((r) => [r.step, r.epoch, r.lr, r.loss, r.grad_norm, r.tokens]);
const weights = (ck: string) => readdirSync(ck).filter((f) => f.endsWith('.safetensors')).sort().map((f) => readFileSync(join(ck, f)));

test('metrics.jsonl reader: a torn last line is left out and said, a complete one without newline kept, bad lines counted', () => {
  const f = join(tmp('heed-metrics-'), 'metrics.jsonl');
  writeFileSync(f, '{"step":1,"loss":2}\nnot json\n\n[1,2]\n{"step":2,"loss":1.5}\n');
  appendFileSync(f, '{"step":3,"lo');
  const m = readMetrics(f);
  assert.deepEqual(m.records.map((r) => r.step), [1, 2]);
  assert.equal(m.torn, true);
  assert.deepEqual(m.bad, [2, 4]);
  assert.match(describeSkips(f, m)!, /2 unreadable line\(s\) skipped \(lines 2, 4\); an incomplete last line/);
  writeFileSync(f, '{"step":1}\n{"step":2}');
  const c = readMetrics(f);
  assert.deepEqual([c.records.length, c.torn, c.bad.length], [2, false, 0]);
  assert.equal(describeSkips(f, c), undefined);
  assert.deepEqual(readMetrics(join(f, '..', 'none.jsonl')), { records: [], torn: false, bad: [] });
});

test('extend a finished run (--set steps=N): bit-identical to an uninterrupted N-step run on a constant schedule; totals and this session in the summary', async () => {
  const ref = await train(cfgOf({ steps: 10 }), { quiet: true });
  const short = await train(cfgOf({ steps: 6 }), { quiet: true });
  assert.equal(short.steps, 6);
  // refused: not larger, other keys, a finished run without --set
  await assert.rejects(train({ resume: short.run_dir, steps: 6 }, { quiet: true }), (e) => e instanceof HeedError && /already plans 6 steps/.test(e.message));
  await assert.rejects(train({ resume: short.run_dir }, { quiet: true }), (e) => e instanceof HeedError && /already finished at step 6/.test(e.message) && /--set steps=N/.test(e.fix ?? ''));
  await assert.rejects(train({ resume: short.run_dir, patience: 2 }, { quiet: true }), (e) => e instanceof HeedError && /only together with steps/.test(e.message));
  const events: TrainEvent[] = [];
  const logs: string[] = [];
  const ext = await train({ resume: short.run_dir, steps: 10 }, { log: (l) => logs.push(l), onEvent: (e) => events.push(e) });
  assert.equal(ext.steps, 10);
  assert.deepEqual(ext.extended, { from: 6, to: 10 });
  assert.ok(logs.some((l) => /extending .*steps 6 → 10/.test(l)), logs.join('\n'));
  assert.deepEqual(trajectory(ext.run_dir), trajectory(ref.run_dir), 'same steps, lr, losses, tokens');
  const a = weights(join(ext.run_dir, 'step-10'));
  const b = weights(join(ref.run_dir, 'step-10'));
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(a[i].equals(b[i]), 'final weights and optimizer state bit-identical');
  assert.match(readFileSync(join(ext.run_dir, 'config.yaml'), 'utf8'), /steps: 10/);
  assert.match(readFileSync(join(ext.run_dir, 'config.steps-6.yaml'), 'utf8'), /steps: 6/);
  // events: the session starts at step 6 of 10 and its ETA inputs count only its own steps
  const start = events.find((e) => e.type === 'start')!;
  assert.deepEqual([start.type === 'start' && start.startStep, start.type === 'start' && start.totalSteps, start.type === 'start' && start.resumed], [6, 10, true]);
  const steps = events.filter((e): e is Extract<TrainEvent, { type: 'step' }> => e.type === 'step');
  assert.deepEqual(steps.map((e) => [e.step, e.sessionSteps]), [[7, 1], [8, 2], [9, 3], [10, 4]]);
  assert.ok(steps.every((e, i) => e.sessionSeconds > 0 && (i === 0 || e.sessionSeconds >= steps[i - 1].sessionSeconds)));
  // summary: totals over both sessions, and this session apart
  assert.equal(ext.tokens, ref.tokens);
  assert.equal(ext.session.from_step, 6);
  assert.equal(ext.session.steps, 4);
  assert.equal(ext.session.tokens, ref.tokens - short.tokens);
  assert.ok(ext.seconds > ext.session.seconds && ext.seconds >= short.seconds, `${ext.seconds} vs ${ext.session.seconds} + ${short.seconds}`);
  assert.ok(Math.abs(ext.tokens_per_s - ext.tokens / ext.seconds) < 1e-6);
  const sum = JSON.parse(readFileSync(join(ext.run_dir, 'summary.json'), 'utf8'));
  assert.equal(sum.session.steps, 4);
  assert.ok(existsSync(join(ext.run_dir, 'final', 'model.safetensors')));
});

test('extend on a cosine schedule: from the resumed step on, lr follows the N-step schedule', async () => {
  const over = { schedule: 'cosine', warmup_steps: 1, steps: 4, eval_every: 100, save_every: 100 };
  const short = await train(cfgOf(over), { quiet: true });
  const ext = await train({ resume: short.run_dir, steps: 8 }, { quiet: true });
  const lrs = records(ext.run_dir).map((r) => r.lr);
  const sched = (total: number) => (t: number) => lrAt({ kind: 'cosine', lr: 3e-3, warmupSteps: 1, totalSteps: total, minLrRatio: 0 }, t);
  assert.deepEqual(lrs.slice(0, 4), [0, 1, 2, 3].map(sched(4)), 'the first session on the 4-step schedule');
  assert.deepEqual(lrs.slice(4), [4, 5, 6, 7].map(sched(8)), 'the extension on the 8-step schedule');
});

test('progress events: evaluations inside callbacks get their own progress, early stopping names its rule; the CLI renderer draws them', async () => {
  const cb: TrainerCallback = {
    name: 'probe',
    async onEval(ctx) {
      for (let i = 0; i <= 3; i++) ctx.progress?.({ name: 'IFS', done: i, total: 3, unit: 'responses' });
      const ifs = ctx.step / 10;
      return ctx.step >= 8 ? { metrics: { ifs }, stop: true, reason: 'probe plateau', rule: { name: 'probe', values: { patience: 1, ifs } } } : { metrics: { ifs } };
    },
  };
  const events: TrainEvent[] = [];
  const lines: string[] = [];
  const draw = trainProgress({ stream: { write: (l: string) => lines.push(...l.split('\n').filter(Boolean)) } });
  const s = await train(cfgOf({ steps: 12 }), { quiet: true, callbacks: [cb], onEvent: (e) => (events.push(e), draw(e)) });
  assert.equal(s.steps, 8);
  assert.deepEqual(s.stopped_early, { reason: 'probe plateau', step: 8 });
  assert.deepEqual(s.stop_rule, { callback: 'probe', rule: { name: 'probe', values: { patience: 1, ifs: 0.8 } } });
  const kinds = events.map((e) => e.type);
  assert.equal(kinds[0], 'start');
  assert.equal(kinds.at(-1), 'end');
  assert.equal(kinds.filter((k) => k === 'eval-start').length, 2);
  assert.equal(kinds.filter((k) => k === 'eval-progress').length, 8);
  const stop = events.find((e) => e.type === 'early-stop');
  assert.ok(stop && stop.type === 'early-stop' && stop.step === 8 && stop.rule?.name === 'probe');
  const st = events.filter((e): e is Extract<TrainEvent, { type: 'step' }> => e.type === 'step');
  assert.deepEqual(st.map((e) => e.ifs?.value), [undefined, undefined, undefined, 0.4, 0.4, 0.4, 0.4, 0.8], 'the latest IFS rides on every step line after it was measured');
  assert.ok(st[3].evalLoss !== undefined && st[4].evalLoss === undefined);
  assert.ok(lines.some((l) => /^early stopping at step 8 \(probe\): probe plateau/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /^ {2}probe at step 4: ifs 0\.400/.test(l)), lines.join('\n'));
});

test('the progress renderer: after a resume the ETA counts the steps left at this session\'s speed; IFS beside eval loss', () => {
  const lines: string[] = [];
  const draw = trainProgress({ stream: { write: (l: string) => lines.push(...l.split('\n').filter(Boolean)) } });
  draw({ type: 'start', runDir: 'runs/x', totalSteps: 100, startStep: 60, resumed: true, priorSeconds: 600, priorTokens: 5000 });
  const step = { type: 'step', totalSteps: 100, stage: 0, stageName: 'main', loss: 2, lr: 1e-3, gradNorm: 1, tokens: 6000, tokensPerS: 50, stageEnd: false } as const;
  draw({ ...step, step: 70, sessionSteps: 10, sessionSeconds: 20, evalLoss: 2.5, ifs: { value: 0.42, step: 70 } });
  assert.match(lines[0], /resumed at step 60 of 100: 40 steps left \(earlier sessions: 10m00s, 5000 tokens\)/);
  // 2 s per step in this session, 30 steps left: 60 s (the 60 s/10 steps of the first session do not count)
  assert.match(lines[1], /70\/100 {2}loss 2\.000 {2}eval 2\.500 {2}ifs 0\.42@70 {2}tok\/s 50 {2}elapsed 20\.0s {2}ETA 1m00s/);
  draw({ type: 'early-stop', step: 80, callback: 'ifs-early-stopping', reason: 'IFS plateau: ...' });
  draw({ ...step, step: 80, sessionSteps: 20, sessionSeconds: 40 });
  assert.match(lines.at(-2)!, /80\/100 .*eval 2\.500 {2}ifs 0\.42@70/, 'the latest eval loss and IFS stay on the line');
  assert.match(lines.at(-1)!, /^early stopping at step 80 \(ifs-early-stopping\): IFS plateau/);
  const q: string[] = [];
  const quiet = trainProgress({ quiet: true, stream: { write: (l: string) => q.push(l) } });
  quiet({ type: 'start', runDir: 'r', totalSteps: 1, startStep: 0, resumed: false, priorSeconds: 0, priorTokens: 0 });
  assert.deepEqual(q, []);
});

test('layering: src/train imports nothing from src/cli, src/models nothing from src/train', () => {
  const scan = (dir: string, forbidden: RegExp) => readdirSync(join(ROOT, dir)).filter((f) => f.endsWith('.ts')).filter((f) => forbidden.test(readFileSync(join(ROOT, dir, f), 'utf8'))).map((f) => `${dir}/${f}`);
  assert.deepEqual(scan('src/train', /(from |import\()'\.\.\/cli\//), []);
  assert.deepEqual(scan('src/models', /(from |import\()'\.\.\/train\//), []);
});

test('heed train --resume --set: only steps (and patience) may change, said in one line', () => {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/heed.js'), 'train', '--resume', tmp('heed-x-'), '--set', 'lr=1'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /only steps=N \(extend the run\) and early_stopping\.ifs\.patience=N may change/);
  const n = spawnSync(process.execPath, [join(ROOT, 'bin/heed.js'), 'train', '--resume', tmp('heed-x-'), '--set', 'steps=abc'], { encoding: 'utf8' });
  assert.equal(n.status, 2);
  assert.match(n.stderr, /steps must be a positive whole number/);
});

test('loggers: [tensorboard, csv] in a train config: metrics.csv and one event file, every step once after a resume', async () => {
  const cfg = cfgOf({ steps: 4, save_every: 2, eval_every: 2, loggers: ['tensorboard', 'csv'] });
  const interrupt = { stop: false };
  const first = await train(cfg, { quiet: true, interrupt, callbacks: [{ name: 'stopper', onEval: (c) => void (c.step === 2 && (interrupt.stop = true)) }] });
  assert.equal(first.interrupted, true);
  const s = await train({ resume: first.run_dir }, { quiet: true });
  const csv = readFileSync(join(s.run_dir, 'metrics.csv'), 'utf8').trim().split('\n');
  assert.match(csv[0], /^step,.*loss/);
  assert.deepEqual(csv.slice(1).map((l) => Number(l.split(',')[0])), [1, 2, 3, 4]);
  assert.equal(readdirSync(s.run_dir).filter((f) => f.startsWith('events.out.tfevents.')).length, 1);
});
