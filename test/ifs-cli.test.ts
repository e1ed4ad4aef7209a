import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, TINY, SHARED, tmp } from './helpers.js';

const heed = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/heed.js'), ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', HEED_THREADS: '1' }, timeout: 300_000 });

test('heed ifs build: I and Ip rows with source ids, seeded', () => {
  const d = tmp();
  const data = join(d, 'conv.jsonl');
  const rows = Array.from({ length: 40 }, (_, i) => JSON.stringify({ id: `c${i}`, messages: [{ role: 'user', content: `Please list ${i} reasons why cats are better than dogs` }, { role: 'assistant', content: 'Because they purr.' }] }));
  // a row with a question and no answer is a prompt source too (AlpacaEval's instructions have no outputs)
  writeFileSync(data, [...rows, '{not json', JSON.stringify({ id: 'x', messages: [{ role: 'user', content: 'only a question' }] })].join('\n'));
  const r = heed('ifs', 'build', '--data', data, '--out', join(d, 'p.jsonl'), '--partial-share', '0.5', '--seed', '1');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /41 prompts \(\d+ partial Ip, \d+ full I\) from 41 rows; .*1 bad rows/);
  const out = readFileSync(join(d, 'p.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(out.length, 41);
  assert.equal(out[40].instruction, 'only a question');
  assert.ok(out.every((p) => p.source_id && (p.kind === 'full' || p.kind === 'partial')));
  const again = heed('ifs', 'build', '--data', data, '--out', join(d, 'q.jsonl'), '--seed', '1');
  assert.equal(readFileSync(join(d, 'q.jsonl'), 'utf8'), readFileSync(join(d, 'p.jsonl'), 'utf8'));
  assert.equal(again.status, 0);
  // --shuffle: the same rows in a seeded order (the first N of the set mix all of its sources)
  const sh = heed('ifs', 'build', '--data', data, '--out', join(d, 's.jsonl'), '--seed', '1', '--shuffle');
  assert.equal(sh.status, 0, sh.stderr);
  const shuffled = readFileSync(join(d, 's.jsonl'), 'utf8').trim().split('\n');
  assert.notDeepEqual(shuffled, readFileSync(join(d, 'q.jsonl'), 'utf8').trim().split('\n'));
  assert.deepEqual([...shuffled].sort(), readFileSync(join(d, 'q.jsonl'), 'utf8').trim().split('\n').sort());
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
  // the plan before the first generation (4 prompts × 3 variants, less the 4 A prompts that do not fit), then n/N with an ETA
  assert.match(r.stderr, /\[ifs: 8 generation\(s\) to run: 4 prompts of alpaca-eval × 3 variant\(s\), less 4 of variant A too long for the context, up to 6 new tokens each/);
  assert.match(r.stderr, /ifs [█·]+ 8\/8 .*ETA/);
  assert.ok(r.stderr.indexOf('[ifs: 8 generation') < r.stderr.indexOf(' 8/8 '));
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
  assert.equal(s.prompt_set, 'alpaca-eval', 'the default set');
  assert.equal(s.overlap, null, 'a folder heed did not train, no --train-data: nothing to check');
  assert.match(j.stderr, /\[ifs: 2 generation\(s\) to run/);
  assert.match(readFileSync(out.replace(/\.jsonl$/, '.summary.json'), 'utf8'), /"prompt_set": "alpaca-eval"/);
});

test('heed ifs excludes prompts whose source instruction the model was trained on (its run, or --train-data), --keep-overlap keeps them', () => {
  const d = tmp();
  // 6 short sources (the tiny model has 128 positions), 3 of them trained on (Alpaca rows, another case and wording)
  const words = ['apples', 'rivers', 'clouds', 'stones', 'candles', 'bridges'];
  const ps = words.flatMap((w, i) => [{ id: `s${i}#full`, source_id: `s${i}`, kind: 'full', prompt: `Tell me about ${w}.`, instruction: `Tell me about ${w}.` }, { id: `s${i}#partial`, source_id: `s${i}`, kind: 'partial', prompt: 'Tell me', instruction: `Tell me about ${w}.` }]);
  const promptsFile = join(d, 'prompts.jsonl');
  writeFileSync(promptsFile, ps.map((p) => JSON.stringify(p)).join('\n') + '\n');
  const own = join(d, 'own.jsonl');
  writeFileSync(own, [...words.slice(0, 3).map((w) => ({ instruction: `Please: tell me about ${w.toUpperCase()}`, output: 'Sure.' })), { instruction: 'Count to 3.', output: '1 2 3' }].map((r) => JSON.stringify(r)).join('\n') + '\n');
  // a run folder as heed train leaves it: runs/<name>/config.yaml naming the data, runs/<name>/final/heed_training.json
  const run = join(d, 'runs', 'mine');
  const final = join(run, 'final');
  mkdirSync(final, { recursive: true });
  for (const f of readdirSync(join(TINY, 'llama-gqa'))) copyFileSync(join(TINY, 'llama-gqa', f), join(final, f));
  writeFileSync(join(final, 'heed_training.json'), JSON.stringify({ base_model: { name: 'llama-gqa', path: '../../x' }, template: 'plain', mask: 'output', format: null }));
  writeFileSync(join(run, 'config.yaml'), `model: ${join(TINY, 'llama-gqa')}\ndata:\n  - path: ${own}\n    weight: 1\nsteps: 1\n`);
  const args = ['--prompts', promptsFile, '--variant', 'C', '--max-tokens', '2', '--json'];
  const r = heed('ifs', '--model', final, ...args);
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout); // stdout holds the JSON only: the notes and the progress are on stderr
  assert.equal(s.prompts, 6);
  assert.equal(s.scores[0].ifs.n, 6);
  assert.equal(s.overlap.overlapping_prompts, 6);
  assert.equal(s.overlap.exact_sources, 3);
  assert.equal(s.overlap.excluded, 6);
  assert.equal(s.overlap.named_by, join(run, 'config.yaml'));
  assert.match(r.stderr, /\[overlap: 6 of 12 IFS prompts \(3 of 6 source instructions: 3 exact, 0 near-duplicate\) occur in the training data \(.*own\.jsonl, from .*config\.yaml\); excluded, 6 left \(--keep-overlap keeps them\)\]/);
  assert.match(r.stderr, /\[ifs: 6 generation\(s\) to run: 6 prompts of .* × 1 variant\(s\) \(6 overlapping prompts excluded\)/);
  // --limit picks from the prompts that are kept
  const lim = JSON.parse(heed('ifs', '--model', final, ...args, '--limit', '2').stdout);
  assert.equal(lim.prompts, 2);
  assert.equal(lim.overlap.excluded, 6);
  const k = heed('ifs', '--model', final, ...args, '--keep-overlap');
  assert.equal(k.status, 0, k.stderr);
  const ks = JSON.parse(k.stdout);
  assert.equal(ks.prompts, 12);
  assert.equal(ks.overlap.kept, true);
  assert.equal(ks.overlap.excluded, 0);
  assert.match(k.stderr, /warning: 6 of 12 IFS prompts .* kept \(--keep-overlap\): on them IFS partly measures memorisation/);
  // any folder with --train-data (any format heed train reads)
  const t = heed('ifs', '--model', join(TINY, 'llama-gqa'), ...args, '--train-data', own);
  assert.equal(t.status, 0, t.stderr);
  assert.equal(JSON.parse(t.stdout).overlap.named_by, '--train-data');
  assert.equal(JSON.parse(t.stdout).prompts, 6);
  // the run's data is gone: said, not silently unchecked
  rmSync(own);
  const g = heed('ifs', '--model', final, ...args);
  assert.equal(g.status, 0, g.stderr);
  assert.equal(JSON.parse(g.stdout).overlap, null);
  assert.match(g.stderr, /\[overlap: .*own\.jsonl \(named by .*config\.yaml\) not found: not checked; pass --train-data F/);
  const e = heed('ifs', '--model', final, ...args, '--train-data', own);
  assert.equal(e.status, 2);
  assert.match(e.stderr, /^error: --train-data .*own\.jsonl: file not found \(fix: /);
});

test('heed ifs --prompts: shipped sets by name (alpaca-eval default, dolly), a file, or a clear error', () => {
  const r = heed('ifs', '--model', join(TINY, 'llama-gqa'), '--prompts', 'dolly', '--variant', 'C', '--limit', '2', '--max-tokens', '2', '--json');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).prompt_set, 'dolly');
  const e = heed('ifs', '--model', join(TINY, 'llama-gqa'), '--prompts', 'dolly-15k');
  assert.equal(e.status, 2);
  assert.match(e.stderr, /IFS prompts "dolly-15k": no such set or file \(fix: name a shipped set \(dolly, alpaca-eval\)/);
});

test('running out of the engine heap in a batched evaluation is one line naming a smaller --batch; other errors pass through', async () => {
  const { batchOom } = await import('../src/cli/ifs-common.js');
  const { HeedError } = await import('../src/errors.js');
  let done = 0;
  await assert.rejects(
    batchOom(async () => {
      done = 216;
      throw new RangeError('Allocation exceeds the 4 GiB memory32 limit');
    }, undefined, () => `after ${done} of 600 generations`),
    (e: unknown) => e instanceof HeedError && e.message === 'out of memory after 216 of 600 generations at --batch 16 (Allocation exceeds the 4 GiB memory32 limit)' && e.fix === 'rerun with --batch 8 (or fewer --max-tokens)',
  );
  await assert.rejects(batchOom(async () => { throw new Error('boom'); }, 4, () => ''), /^Error: boom$/);
  assert.equal(await batchOom(async () => 7, 4, () => ''), 7);
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
