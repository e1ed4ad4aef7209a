/**
 * `heed ui`: the dashboard in a real browser (playwright-core + Debian Chromium) follows a `heed train` on a
 * tiny model as it runs (the loss curve grows without a reload), lists its status and checkpoints, and overlays
 * a finished run with an early-stop mark and IFS rows. HEED_SCREENSHOT=path saves a screenshot (docs/ui-dashboard.png).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ROOT, TINY, tmp } from './helpers.js';
import { startUi } from '../src/web/server.js';
import { HeedError } from '../src/errors.js';

const CHROMIUM = process.env.HEED_CHROMIUM ?? '/usr/bin/chromium';
const HEED = join(ROOT, 'bin/heed.js');

/** A finished run written by hand (plain files are the whole interface): stopped early at 30, best at 20, IFS at 10/20/30. */
function finishedRun(dir: string) {
  mkdirSync(join(dir, 'ifs'), { recursive: true });
  const lines = [];
  for (let s = 1; s <= 30; s++) {
    const m: Record<string, number | string> = { step: s, loss: 5 - s * 0.05, lr: 1e-3, tokens_per_s: 100, grad_norm: 1, stage: 0, stage_name: 'main' };
    if (s % 10 === 0) Object.assign(m, { eval_loss: 5 - s * 0.03, ifs: 0.1 * (s / 10), ifs_partial: 0.05 * (s / 10), ifs_full: 0.15 * (s / 10) });
    lines.push(JSON.stringify(m));
    if (s % 10 === 0) writeFileSync(join(dir, 'ifs', `step-${s}.jsonl`), [1, 2, 3, 4].map((i) => JSON.stringify({ id: `p${i}`, kind: 'full', prompt: 'x', response: 'y', label: 1 })).join('\n') + '\n');
  }
  writeFileSync(join(dir, 'config.yaml'), 'model: x\n');
  writeFileSync(join(dir, 'metrics.jsonl'), lines.join('\n') + '\n');
  writeFileSync(join(dir, 'summary.json'), JSON.stringify({ steps: 30, best: { step: 20, metric: 'ifs', value: 0.2, checkpoint: 'step-20' }, stopped_early: { step: 30, reason: 'IFS plateaued' }, interrupted: false }));
}

test('heed ui refuses a missing folder and a busy port with one-line errors', async () => {
  await assert.rejects(startUi({ root: join(tmp(), 'nope') }), (e: unknown) => e instanceof HeedError && /no such folder/.test(e.message));
  const a = await startUi({ root: tmp(), port: 0 });
  const port = Number(new URL(a.url).port);
  await assert.rejects(startUi({ root: tmp(), port }), (e: unknown) => e instanceof HeedError && /in use/.test(e.message));
  const r = await fetch(a.url + 'api/view?runs=..%2F..%2Fetc');
  assert.equal(r.status, 404, 'only runs it found are served');
  await a.close();
});

test('the dashboard follows a live heed train: the curve grows without a reload, then finished + checkpoints; overlay with an early-stopped run', async (t) => {
  if (!existsSync(CHROMIUM)) {
    if (process.env.HEED_REQUIRE_BROWSER) assert.fail(`${CHROMIUM} not found and HEED_REQUIRE_BROWSER is set`);
    t.skip(`no Chromium at ${CHROMIUM} (apt-get install chromium, or set HEED_CHROMIUM)`);
    return;
  }
  const runs = tmp('heed-ui-');
  finishedRun(join(runs, 'earlier'));
  const cfg = join(runs, 'live.yaml');
  writeFileSync(cfg, [
    `model: ${JSON.stringify(join(TINY, 'llama-gqa'))}`, `data: ${JSON.stringify(join(ROOT, 'test/fixtures/webgpu-sft.jsonl'))}`, 'template: plain', 'max_length: 48',
    'batch_size: 2', 'steps: 150', 'lr: 0.003', 'warmup_steps: 2', 'eval_every: 25', 'save_every: 50', 'eval_max_rows: 4', 'seed: 1',
    `out: ${JSON.stringify(runs)}`, 'name: live', '',
  ].join('\n'));
  const kids: ChildProcess[] = [];
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  try {
    const ui = spawn(process.execPath, [HEED, 'ui', basename(runs), '--port', '0'], { cwd: dirname(runs), stdio: ['ignore', 'pipe', 'pipe'] });
    kids.push(ui);
    const url = await new Promise<string>((ok, bad) => {
      let out = '';
      ui.stdout!.on('data', (d) => {
        out += d;
        const m = /heed ui: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
        if (m) ok(m[1]);
      });
      ui.on('exit', (c) => bad(new Error(`heed ui exited ${c}`)));
    });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(url);
    await page.waitForSelector('tr[data-run="earlier"]');
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('response', (r) => { if (r.status() >= 400) errors.push(`${r.url()}: ${r.status()}`); });
    assert.match(await page.textContent('tr[data-run="earlier"] .st') ?? '', /stopped early/);

    const train = spawn(process.execPath, [HEED, 'train', cfg, '--quiet'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, HEED_THREADS: '1' } });
    kids.push(train);
    let trainErr = '';
    train.stderr!.on('data', (d) => (trainErr += d));
    const trained = new Promise<number | null>((ok) => train.on('exit', ok));

    const livePoints = () => page.evaluate(() => {
      const p = document.querySelector('svg[data-chart="train-loss"] path.series[data-name="live"]');
      return p ? (p.getAttribute('d')!.match(/[ML]/g) ?? []).length : 0;
    });
    // the run appears and reports "running" while it trains
    await page.waitForSelector('tr[data-run="live"] .st.running', { timeout: 60000 });
    await page.waitForFunction(() => document.querySelector('svg[data-chart="train-loss"] path.series[data-name="live"]'), null, { timeout: 60000 });
    const n1 = await livePoints();
    const steps1 = Number(await page.textContent('tr[data-run="live"] .steps'));
    // later, without a reload: more points on the curve
    await page.waitForFunction((n) => {
      const p = document.querySelector('svg[data-chart="train-loss"] path.series[data-name="live"]');
      return p && (p.getAttribute('d')!.match(/[ML]/g) ?? []).length >= n + 10;
    }, n1, { timeout: 90000 });
    const n2 = await livePoints();
    assert.ok(n2 >= n1 + 10, `curve grew ${n1} → ${n2}`);
    assert.ok(Number(await page.textContent('tr[data-run="live"] .steps')) > steps1);
    if (process.env.HEED_SCREENSHOT) {
      // mid-run, once a checkpoint and two evaluations exist
      await page.waitForFunction(() => Number(document.querySelector('tr[data-run="live"] .steps')?.textContent) >= 60 && /step-50/.test(document.querySelector('tr[data-run="live"] .ck')?.textContent ?? ''), null, { timeout: 90000 });
      await page.screenshot({ path: process.env.HEED_SCREENSHOT, fullPage: true });
    }

    assert.equal(await trained, 0, trainErr);
    await page.waitForSelector('tr[data-run="live"] .st.finished', { timeout: 30000 });
    assert.equal(await livePoints(), 150);
    const ck = await page.textContent('tr[data-run="live"] .ck');
    assert.match(ck ?? '', /step-150/);
    // overlay: both runs drawn, the early-stop and best marks of the finished run, its IFS rows
    const names = await page.$$eval('svg[data-chart="train-loss"] path.series', (ps) => ps.map((p) => p.getAttribute('data-name')));
    assert.deepEqual(names.sort(), ['earlier', 'live']);
    const marks = await page.textContent('#marks');
    assert.match(marks ?? '', /early stop/);
    assert.match(marks ?? '', /best \(ifs\)/);
    assert.equal(await page.$$eval('#ifs tbody tr', (rs) => rs.filter((r) => r.textContent!.startsWith('earlier')).length), 3);
    // un-ticking a run removes it from the overlay
    await page.click('tr[data-run="earlier"] input');
    await page.waitForFunction(() => document.querySelectorAll('svg[data-chart="train-loss"] path.series').length === 1);
    assert.deepEqual(errors, [], 'no failed request or script error while the run trained');
    assert.match(await page.textContent('#live') ?? '', /live/);
  } finally {
    await browser.close();
    for (const k of kids) if (k.exitCode === null) k.kill('SIGTERM');
  }
});
