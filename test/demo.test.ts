import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, tmp } from './helpers.js';

// The embedded default, as a user runs it (the CLI), in its --fast form: every stage runs, the numbers land in
// summary.json, the report is written, and the story holds — instruction tuning lifts IFS above the base model's
// and early stopping fires. Deterministic (greedy decoding, seeded training), so these are exact outcomes.
test('heed demo --fast: base → rules → IT (early stop) → IM / response-only, table, summary.json and report', () => {
  const out = join(tmp('heed-demo-'), 'demo');
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/heed.js'), 'demo', '--fast', '--quiet', '--out', out], { encoding: 'utf8', timeout: 600_000 });
  const seconds = (performance.now() - t0) / 1000;
  assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr.slice(-2000)}`);
  assert.match(r.stdout, /model\s+IFS C\s+IFS_partial C\s+IFS_full C\s+IFS A\s+IFS B\s+ObjecQA/);
  const s = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  assert.equal(s.fast, true);
  const names = s.evaluations.map((e: { name: string }) => e.name);
  assert.deepEqual(names, ['base', 'base+rules', 'IT (output mask)', 'IM (instruction mask)', 'response-only']);
  for (const e of s.evaluations) {
    for (const v of ['A', 'B', 'C']) {
      const x = e.ifs[v];
      assert.ok(x.ifs >= 0 && x.ifs <= 1 && x.ifs_ci[0] <= x.ifs && x.ifs <= x.ifs_ci[1], `${e.name} ${v}`);
      assert.equal(x.n + x.skipped, s.settings.prompts, `${e.name} ${v}: every prompt scored or counted as skipped`);
    }
    assert.ok(e.objecqa >= 0 && e.objecqa <= 1);
  }
  // (a) what the base model writes on its own, next to real text of its corpus
  const bt = s.base_text;
  assert.equal(bt.samples.length, s.settings.textSamples);
  assert.ok(bt.model.words > 0 && bt.model.knownWordRate > 0.8, `known words ${bt.model.knownWordRate}`);
  assert.ok(bt.model.knownBigramRate > bt.shuffled.knownBigramRate, 'word order better than shuffled words');
  const byName = Object.fromEntries(s.evaluations.map((e: { name: string }) => [e.name, e]));
  assert.ok(byName['IT (output mask)'].ifs.C.ifs > byName.base.ifs.C.ifs, `IT IFS C ${byName['IT (output mask)'].ifs.C.ifs} vs base ${byName.base.ifs.C.ifs}`);
  assert.equal(s.early_stopping.triggered, true, 'IFS early stopping fired');
  const it = s.runs['sft-output'];
  assert.equal(s.runs['sft-instruction'].steps, it.steps, 'IM runs as many steps as IT');
  assert.equal(s.runs['sft-response-only'].steps, it.steps);
  assert.ok(existsSync(s.early_stopping.best_checkpoint), 'the best-IFS checkpoint exists');
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.ok((html.match(/<svg/g) ?? []).length >= 3, 'charts in the report');
  assert.ok(!/https?:\/\/(?!www\.w3\.org)/.test(html), 'the report needs no network');
  assert.match(html, /What the base model writes on its own/);
  console.log(`# heed demo --fast: ${seconds.toFixed(0)} s (target ≤ 120 s on 2 cores); IFS C base ${byName.base.ifs.C.ifs.toFixed(2)} → IT ${byName['IT (output mask)'].ifs.C.ifs.toFixed(2)}`);
});
