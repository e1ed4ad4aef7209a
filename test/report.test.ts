import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { renderReport } from '../src/report/html.js';
import { HeedError } from '../src/errors.js';
import { ROOT, tmp } from './helpers.js';

/** A run folder as heed train writes it: two stages, IFS points, an early stop and a best checkpoint. */
function fakeRun(dir: string, shift = 0): void {
  mkdirSync(join(dir, 'ifs'), { recursive: true });
  const lines = [];
  for (let s = 1; s <= 30; s++) {
    const rec: Record<string, unknown> = { step: s, stage: s <= 15 ? 0 : 1, stage_name: s <= 15 ? 'easy' : 'hard', epoch: s / 10, lr: 1e-3, loss: 3 - s * 0.05 + shift, grad_norm: 1, tokens: s * 100, tokens_per_s: 1000 };
    if (s % 5 === 0) Object.assign(rec, { eval_loss: 3.1 - s * 0.04 + shift, ifs: Math.min(0.95, 0.1 + s * 0.04), ifs_partial: Math.min(0.9, s * 0.03), ifs_full: Math.min(1, 0.2 + s * 0.05), objecqa: 0.5 - s * 0.005 });
    lines.push(JSON.stringify(rec));
  }
  writeFileSync(join(dir, 'metrics.jsonl'), lines.join('\n') + '\n');
  writeFileSync(join(dir, 'summary.json'), JSON.stringify({ steps: 30, tokens: 3000, seconds: 12, final: { loss: 1.5 }, best: { metric: 'ifs', value: 0.95, step: 25, checkpoint: 'step-25' }, stopped_early: { step: 30, reason: 'IFS plateau' } }));
  for (const step of [5, 30]) writeFileSync(join(dir, 'ifs', `step-${step}.jsonl`), JSON.stringify({ id: 'x#full', kind: 'full', prompt: 'Name a fruit.', response: step === 5 ? 'Name a vegetable. Name a' : 'An apple.', label: step === 5 ? 0 : 1 }) + '\n');
}

test('report HTML: charts, marks, tables and samples from run folders; several runs overlay; bad folders are clear errors', () => {
  const a = join(tmp(), 'run-a');
  const b = join(tmp(), 'run-b');
  fakeRun(a);
  fakeRun(b, 0.3);
  const html = renderReport([a]);
  assert.match(html, /data-chart="train-loss"/);
  assert.match(html, /data-chart="eval-loss"/);
  assert.match(html, /data-chart="ifs"/);
  assert.match(html, /data-chart="objecqa"/);
  assert.match(html, /stage hard/);
  assert.match(html, /early stop/);
  assert.match(html, /best \(ifs\)/);
  assert.match(html, /An apple\./);
  assert.doesNotMatch(html, /<script|https?:\/\/(?!www\.w3\.org)/, 'self-contained: no scripts, no network');
  const both = renderReport([a, b]);
  assert.match(both, /data-chart="train-loss" data-series="2"/);
  assert.throws(() => renderReport([join(a, 'nope')]), (e: unknown) => e instanceof HeedError);
  const empty = tmp();
  assert.throws(() => renderReport([empty]), (e: unknown) => e instanceof HeedError && /no metrics\.jsonl/.test(e.message));
  const cli = spawnSync(process.execPath, [join(ROOT, 'bin/heed.js'), 'report', a, b, '--out', join(a, 'r.html')], { encoding: 'utf8' });
  assert.equal(cli.status, 0, cli.stderr);
  assert.ok(existsSync(join(a, 'r.html')));
});

const CHROMIUM = process.env.HEED_CHROMIUM ?? '/usr/bin/chromium';
test('report renders in a real browser (headless Chromium via playwright-core): every chart drawn', async (t) => {
  if (!existsSync(CHROMIUM)) {
    if (process.env.HEED_REQUIRE_BROWSER) assert.fail(`${CHROMIUM} not found and HEED_REQUIRE_BROWSER is set`);
    t.skip(`no Chromium at ${CHROMIUM} (apt-get install chromium, or set HEED_CHROMIUM)`);
    return;
  }
  const { chromium } = await import('playwright-core');
  const dir = join(tmp(), 'run');
  fakeRun(dir);
  const file = join(dir, 'report.html');
  writeFileSync(file, renderReport([dir]));
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto('file://' + file);
    const charts = page.locator('svg.chart');
    assert.equal(await charts.count(), 4);
    for (let i = 0; i < 4; i++) {
      const box = await charts.nth(i).boundingBox();
      assert.ok(box && box.width > 300 && box.height > 150, `chart ${i} has a size: ${JSON.stringify(box)}`);
    }
    // each drawn series is a real path with extent (not an empty or degenerate line)
    const lens = await page.$$eval('svg.chart path.series', (ps) => ps.map((p) => (p as SVGPathElement).getTotalLength()));
    assert.ok(lens.length >= 6 && lens.every((l) => l > 50), `series lengths ${lens}`);
    assert.ok((await page.locator('svg.chart g.mark').count()) >= 9, 'stage, early-stop and best marks on the charts');
    assert.deepEqual(errors, []);
    await page.screenshot({ path: join(dir, 'report.png'), fullPage: true });
    assert.ok(existsSync(join(dir, 'report.png')));
  } finally {
    await browser.close();
  }
});

test('axis labels keep enough decimals for a narrow range', async () => {
  const { lineChart } = await import('../src/report/svg.js');
  const svg = lineChart({ id: 'x', title: 't', xLabel: 'step', yLabel: 'loss', series: [{ name: 'a', points: [[1, 5.16], [2, 5.19], [3, 5.22]] }] });
  const labels = [...svg.matchAll(/text-anchor="end" fill="#555">([^<]+)</g)].map((m) => m[1]);
  assert.ok(labels.length >= 3);
  assert.equal(new Set(labels).size, labels.length, `distinct y labels: ${labels}`);
});
