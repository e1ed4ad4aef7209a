import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, TINY, SHARED, tmp } from './helpers.js';

const heed = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/heed.js'), ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', HEED_THREADS: '1' }, timeout: 300_000 });

test('heed ifs build: I and Ip rows with source ids, seeded', () => {
  const d = tmp();
  const data = join(d, 'conv.jsonl');
  const rows = Array.from({ length: 40 }, (_, i) => JSON.stringify({ id: `c${i}`, messages: [{ role: 'user', content: `Please list ${i} reasons why cats are better than dogs` }, { role: 'assistant', content: 'Because they purr.' }] }));
  writeFileSync(data, [...rows, '{not json', JSON.stringify({ id: 'x', messages: [{ role: 'user', content: 'only a question' }] })].join('\n'));
  const r = heed('ifs', 'build', '--data', data, '--out', join(d, 'p.jsonl'), '--partial-share', '0.5', '--seed', '1');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /40 prompts \(\d+ partial Ip, \d+ full I\) from 40 rows; .*2 bad rows/);
  const out = readFileSync(join(d, 'p.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(out.length, 40);
  assert.ok(out.every((p) => p.source_id && (p.kind === 'full' || p.kind === 'partial')));
  const again = heed('ifs', 'build', '--data', data, '--out', join(d, 'q.jsonl'), '--seed', '1');
  assert.equal(readFileSync(join(d, 'q.jsonl'), 'utf8'), readFileSync(join(d, 'p.jsonl'), 'utf8'));
  assert.equal(again.status, 0);
});

test('heed ifs classify: label + probability per row, other fields kept, bad rows reported, totals', () => {
  const d = tmp();
  const f = join(d, 't.jsonl');
  writeFileSync(f, [JSON.stringify({ id: 1, text: 'The capital of France is Paris.' }), 'oops', JSON.stringify({ id: 2, nope: 1 }), JSON.stringify({ id: 3, text: 'of the following cities is the capital of France?' })].join('\n'));
  const r = heed('ifs', 'classify', f, '--json');
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 5);
  assert.equal(lines[0].id, 1);
  assert.equal(lines[0].label, 1);
  assert.equal(lines[0].label_name, 'answer');
  assert.ok(lines[0].prob > 0.5);
  assert.match(lines[1].error, /invalid JSON/);
  assert.match(lines[2].error, /no "text"/);
  assert.equal(lines[3].label, 0);
  assert.deepEqual(lines[4].totals, { rows: 2, answer: 1, continuation: 1, answer_share: 0.5, bad: 2 });
  const t = heed('ifs', 'classify', f);
  assert.equal(t.status, 0);
  assert.match(t.stdout, /total 2: 1 answer, 1 continuation \(answer share 0\.500\); 2 bad row\(s\)/);
});

test('heed ifs on a tiny model: table per variant, responses JSONL, progress on stderr, context skips', () => {
  const d = tmp();
  const out = join(d, 'r.jsonl');
  const r = heed('ifs', '--model', join(TINY, 'llama-gqa'), '--limit', '4', '--max-tokens', '6', '--out', out);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /variant\s+IFS\s+IFS_partial\s+IFS_full/);
  assert.match(r.stdout, /\nB\s+\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\] \(\d\/4\)/);
  assert.match(r.stdout, /\nA\s+n\/a \(0\/0\)/); // the Alpaca wrapper does not fit a 128-token context
  assert.match(r.stderr, /ifs [█·]+ 12\/12 .*ETA/);
  assert.match(r.stderr, /variant A: 4 prompt\(s\) skipped/);
  const rows = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(rows.length, 8);
  for (const x of rows) {
    assert.ok(x.label === 0 || x.label === 1);
    assert.ok(x.prob >= 0 && x.prob <= 1);
    assert.ok(x.tokens <= 6);
  }
  const j = heed('ifs', '--model', join(TINY, 'llama-gqa'), '--variant', 'c', '--limit', '2', '--max-tokens', '4', '--adapter', 'rules', '--json');
  assert.equal(j.status, 0, j.stderr);
  const s = JSON.parse(j.stdout);
  assert.equal(s.scores.length, 1);
  assert.equal(s.scores[0].variant, 'C');
  assert.equal(s.scores[0].ifs.n, 2);
});

test('heed ifs errors: one line with a fix', () => {
  for (const [args, re] of [
    [['ifs', '--model', join(TINY, 'llama-gqa'), '--variant', 'D'], /--variant must be A, B, C or all/],
    [['ifs', '--limit', '3'], /missing --model/],
    [['ifs', '--model', join(TINY, 'llama-gqa'), '--adapter', 'lora'], /--adapter "lora" is not known/],
    [['ifs', 'classify'], /missing input file/],
    [['ifs', 'build', '--out', 'x.jsonl'], /missing --data/],
    [['ifs', 'train-classifier', '--data', '/nonexistent.jsonl'], /training data not found/],
  ] as Array<[string[], RegExp]>) {
    const r = heed(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.match(r.stderr.trim(), /^error: .*\(fix: .+\)$/);
  }
});

test('heed ifs train-classifier reproduces the shipped classifiers from ../shared/data byte for byte (--no-eval: the held-out report is test/ifs-heldout.test.ts)', { skip: !existsSync(join(SHARED, 'data', 'lima.jsonl')) }, () => {
  const d = tmp();
  const out = join(d, 'c.safetensors');
  const pairOut = join(d, 'p.safetensors');
  const r = heed('ifs', 'train-classifier', '--out', out, '--pair-out', pairOut, '--no-eval', '--json');
  assert.equal(r.status, 0, r.stderr);
  const rep = JSON.parse(r.stdout);
  assert.ok(rep.train.by_type['I,Ic'] > 1000);
  assert.deepEqual(readFileSync(out), readFileSync(join(ROOT, 'data/ifs/classifier.safetensors')));
  assert.deepEqual(readFileSync(pairOut), readFileSync(join(ROOT, 'data/ifs/pair-classifier.safetensors')));
});
