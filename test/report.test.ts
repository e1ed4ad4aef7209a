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

test('report: runs, evaluated model folders and heed ifs / objecqa result files in one table; what it cannot use is refused', () => {
  const root = tmp();
  const run = join(root, 'tuned');
  fakeRun(run);
  // a model folder (config.json + weights) with a cached heed ifs --json
  const model = join(root, 'base');
  mkdirSync(model);
  writeFileSync(join(model, 'config.json'), '{}');
  writeFileSync(join(model, 'model.safetensors'), '');
  const ifsJson = (v: number) => JSON.stringify({ model, prompts: 10, scores: [{ variant: 'A', ifs: { k: v * 10, n: 10, value: v, ci: [0, 1] }, ifs_partial: { k: 0, n: 0, value: 0, ci: [0, 0] }, ifs_full: { k: 0, n: 0, value: 0, ci: [0, 0] }, skipped: 0 }] });
  const bare = join(root, 'bare');
  mkdirSync(bare);
  writeFileSync(join(bare, 'config.json'), '{}');
  writeFileSync(join(bare, 'model.safetensors'), '');
  // the model folder without an evaluation: refused, naming the command that makes one (today's silent exit 0)
  assert.throws(() => renderReport([run, bare]), (e: unknown) => e instanceof HeedError && /bare: a model folder with no evaluation/.test(e.message) && /heed ifs --model .*--json >/.test(e.fix ?? ''));
  writeFileSync(join(model, 'ifs.json'), ifsJson(0.3));
  // result files: heed objecqa --json, heed ifs --out (JSONL of scored responses), heed objecqa --out
  const oq = join(root, 'base-objecqa.json');
  writeFileSync(oq, JSON.stringify({ model, variant: 'A', judge: 'x', objective: { k: 4, n: 10, value: 0.4, ci: [0.1, 0.7] } }));
  const resp = join(root, 'tuned-ifs.jsonl');
  writeFileSync(resp, [1, 1, 1, 0].map((l, i) => JSON.stringify({ id: `p${i}`, source_id: 's', kind: 'full', variant: 'A', prompt: 'q', response: 'r', label: l, prob: 0.5, finish_reason: 'eos', tokens: 3 })).join('\n') + '\n');
  const html = renderReport([run, model, oq, resp]);
  const cmp = html.slice(html.indexOf('<h3>Comparison</h3>'), html.indexOf('</table>', html.indexOf('<h3>Comparison</h3>')));
  assert.ok(cmp.length > 0, 'a comparison table');
  for (const want of ['<td>tuned</td>', '<td>base</td><td>model folder</td><td>0.300</td>', '<td>base-objecqa</td><td>heed objecqa result</td><td></td><td>0.400</td>', '<td>tuned-ifs</td><td>heed ifs result</td><td>0.750</td>']) assert.ok(cmp.includes(want), `${want} in ${cmp}`);
  assert.match(html, /data-chart="ifs" data-series="[3-9]"/, 'the model and result-file IFS drawn on the IFS chart');
  // refused: a JSON that is no result, a JSONL of training rows, a folder of nothing
  const other = join(root, 'other.json');
  writeFileSync(other, '{"a": 1}');
  assert.throws(() => renderReport([run, other]), (e: unknown) => e instanceof HeedError && /not a heed ifs or heed objecqa result/.test(e.message));
  const rows = join(root, 'train.jsonl');
  writeFileSync(rows, '{"messages": []}\n');
  assert.throws(() => renderReport([run, rows]), (e: unknown) => e instanceof HeedError && /not IFS responses/.test(e.message));
  assert.throws(() => renderReport([run, tmp()]), (e: unknown) => e instanceof HeedError && /not a model folder/.test(e.message));
  // the CLI: exit 2 with the one-line error; a report of a run and a model folder is not written into the model folder
  const heed = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', '-e', "import('./src/cli/main.ts').then(async (m) => { process.exitCode = await m.run(process.argv.slice(1)); })", '--', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60000 });
  const cliBad = heed('report', run, bare);
  assert.equal(cliBad.status, 2);
  assert.match(cliBad.stderr, /a model folder with no evaluation/);
  const ok = heed('report', model, run);
  assert.equal(ok.status, 0, ok.stderr);
  assert.ok(existsSync(join(run, 'report.html')) && !existsSync(join(model, 'report.html')));
});
