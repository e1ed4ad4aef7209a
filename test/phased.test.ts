import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { readInstructionRows } from '../src/phased/rows.js';
import { runScoring } from '../src/phased/score.js';
import { heuristicDifficulty } from '../src/phased/heuristic.js';
import { spearman, spearmanAgreement, ranks, wilson } from '../src/phased/stats.js';
import { splitStages, orderStages, parseSplit } from '../src/phased/stages.js';
import { HeedError } from '../src/errors.js';
import { loadTrainConfig } from '../src/train/config.js';
import { ROOT, TINY, tmp } from './helpers.js';

const heed = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/heed.js'), ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', HEED_THREADS: '1' }, timeout: 120_000 });

test('rows: messages / alpaca / prompt-completion shapes; a row without an output is kept; duplicate ids and rows without an instruction are one-line errors', () => {
  const dir = tmp('heed-rows-');
  const f = join(dir, 'd.jsonl');
  writeFileSync(f, [
    JSON.stringify({ id: 'm', messages: [{ role: 'user', content: 'Hi?' }, { role: 'assistant', content: 'Hello.' }] }),
    JSON.stringify({ id: 'a', instruction: 'Add', input: '2+2', output: '4' }),
    JSON.stringify({ prompt: 'Say x', completion: 'x' }),
    JSON.stringify({ id: 'n', instruction: 'No output here' }),
  ].join('\n'));
  const rows = readInstructionRows(f);
  assert.deepEqual(rows.map((r) => [r.id, r.instruction, r.output]), [['m', 'Hi?', 'Hello.'], ['a', 'Add\n2+2', '4'], ['line-3', 'Say x', 'x'], ['n', 'No output here', undefined]]);
  writeFileSync(f, [JSON.stringify({ id: 'x', instruction: 'a', output: 'b' }), JSON.stringify({ id: 'x', instruction: 'c', output: 'd' })].join('\n'));
  assert.throws(() => readInstructionRows(f), (e: unknown) => e instanceof HeedError && /:2: duplicate id "x" \(first on line 1\)/.test(e.oneLine()));
  writeFileSync(f, JSON.stringify({ id: 'y', text: 'nothing' }));
  assert.throws(() => readInstructionRows(f), (e: unknown) => e instanceof HeedError && /:1: no "messages", "instruction" or "prompt"/.test(e.oneLine()));
});

test('Spearman with ties and its intervals; Wilson', () => {
  assert.deepEqual(ranks([10, 20, 20, 5]), [2, 3.5, 3.5, 1]);
  assert.equal(spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]), 0.8207826816681233);
  assert.ok(Math.abs(spearman([1, 2, 3, 4], [4, 3, 2, 1]) + 1) < 1e-12);
  const n = 200;
  const a = Array.from({ length: n }, (_, i) => i);
  const b = a.map((x, i) => x + ((i * 7919) % 97)); // monotone trend + noise
  const g = spearmanAgreement(a, b, { resamples: 300 });
  assert.ok(g.rho > 0.8 && g.rho < 1);
  assert.ok(g.fisher[0] < g.rho && g.rho < g.fisher[1] && g.bootstrap[0] <= g.rho && g.rho <= g.bootstrap[1]);
  const w = wilson(5, 10);
  assert.ok(Math.abs(w[0] - 0.2366) < 1e-3 && Math.abs(w[1] - 0.7634) < 1e-3);
});

test('heuristic: longer, constraint-laden instructions with long answers score higher; bounded 1–5', () => {
  const easy = heuristicDifficulty('What is the capital of France?', 'Paris.');
  const hard = heuristicDifficulty('Explain step by step why the algorithm must compare each pair, and analyze its complexity; write the code of a function that does it without recursion.', 'First, '.repeat(120) + 'consequently the asymptotic complexity is quadratic.');
  assert.ok(hard.difficulty > easy.difficulty + 1, `${hard.difficulty} vs ${easy.difficulty}`);
  for (const d of [easy, hard]) assert.ok(d.difficulty >= 1 && d.difficulty <= 5);
  assert.ok(heuristicDifficulty('Name a colour.', undefined).difficulty >= 1);
});

test('loss / IFD scorers: rows without an output are counted skips; IFD = loss with ÷ without instruction; batching does not change a row\'s loss', { timeout: 60_000 }, async () => {
  const { startEngine } = await import('../src/cli/common.js');
  await startEngine('wasm', 1);
  const { NllScorer } = await import('../src/phased/nll.js');
  const nll = await NllScorer.open(join(TINY, 'llama-gqa'), { maxLen: 128 });
  const items = [
    { prompt: 'Q: colour of the sky?\nA:', response: ' blue' },
    { prompt: 'Write a long story.', response: ' Once upon a time there was a model that learned to follow instructions, one stage at a time.' },
    { prompt: '', response: ' plain text without any prompt' },
  ];
  const all = await nll.score(items, { batch: 3 });
  for (let i = 0; i < items.length; i++) {
    const one = await nll.score([items[i]], { batch: 1 });
    assert.ok(Math.abs(one[0].nll - all[i].nll) < 1e-4, `row ${i}: ${one[0].nll} vs ${all[i].nll}`);
    assert.ok(Number.isFinite(all[i].nll) && all[i].nll > 0 && all[i].tokens > 0);
  }
  const dir = tmp('heed-loss-');
  const raw = (id: string, instruction: string, output?: string) => ({ id, instruction, output, raw: { id }, line: 1 });
  const rows = [raw('a', 'Q: colour of the sky?', ' blue'), raw('b', 'No output', undefined), raw('c', 'Write a long story.', ' Once upon a time.')];
  const res = await runScoring(rows, { kind: 'ifd', model: 'x' }, 'ifd:tiny', { out: join(dir, 'ifd.jsonl'), nll, wrap: (s) => `### Instruction:\n${s}\n\n### Response:\n` });
  assert.equal(res.skipped, 1);
  // a journal left by another scorer under the same --out is not reused
  writeFileSync(join(dir, 'h.jsonl.partial'), JSON.stringify({ id: 'a', scorer: 'judge:other', difficulty: 5 }) + '\n');
  const h = await runScoring(rows, { kind: 'heuristic' }, 'heuristic', { out: join(dir, 'h.jsonl') });
  assert.equal(h.resumed, 0);
  assert.notEqual(h.rows[0].difficulty, 5);
  const b = res.rows.find((r) => r.id === 'b')!;
  assert.equal(b.difficulty, null);
  assert.match(b.skipped!, /no output/);
  for (const r of res.rows.filter((x) => x.id !== 'b')) assert.ok(Math.abs(r.difficulty! - r.loss! / r.loss_no_instruction!) < 1e-4);
  nll.dispose();
});

test('stages: quantiles keep ties together, thresholds cut by score; easy→hard, hard→easy and random hold exactly the same rows', () => {
  const rows = [1, 1, 1, 2, 2, 3, 3, 3, 4, 5, 5, 2].map((d, i) => ({ id: `r${i}`, difficulty: d, row: {} }));
  const q = splitStages(rows, 3, parseSplit('quantiles', 3));
  assert.deepEqual(q.map((s) => s.rows.length), [6, 3, 3], 'cuts at 4 and 8 move past the tied 2s and 3s');
  for (let k = 1; k < q.length; k++) assert.ok(q[k - 1].max < q[k].min, 'a score is never split over two stages');
  const t = splitStages(rows, 3, parseSplit('thresholds:2.5,3.5', 3));
  assert.deepEqual(t.map((s) => [s.rows.length, s.min, s.max]), [[6, 1, 2], [3, 3, 3], [3, 4, 5]]);
  const ids = (st: typeof q) => st.flatMap((s) => s.rows.map((r) => r.id)).sort();
  for (const o of ['easy-hard', 'hard-easy', 'random'] as const) {
    const st = orderStages(t, o, 1);
    assert.deepEqual(ids(st), ids(t), o);
    assert.deepEqual(st.map((s) => s.rows.length).sort(), t.map((s) => s.rows.length).sort());
  }
  assert.equal(orderStages(t, 'hard-easy')[0].min, 4);
  assert.throws(() => parseSplit('thresholds:3,2', 3), /increase/);
  assert.throws(() => parseSplit('thresholds:2', 3), /gives 2 stages/);
});

test('heed difficulty heuristic → heed stages → stage files and train config fragments; heed difficulty agree', { timeout: 60_000 }, () => {
  const dir = tmp('heed-stages-');
  const data = join(dir, 'd.jsonl');
  writeFileSync(data, Array.from({ length: 30 }, (_, i) => JSON.stringify({ id: `d${i}`, instruction: 'word '.repeat(1 + i * 3) + (i % 3 ? 'explain why' : ''), output: 'ans '.repeat(1 + ((i * 7) % 30)) })).join('\n') + '\n' + JSON.stringify({ id: 'noout', instruction: 'no output row' }) + '\n');
  const s1 = heed('difficulty', '--data', data, '--scorer', 'heuristic', '--out', join(dir, 'h.jsonl'), '--json');
  assert.equal(s1.status, 0, s1.stderr);
  const rep = JSON.parse(s1.stdout);
  assert.equal(rep.scored, 31);
  const scored = readFileSync(join(dir, 'h.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(scored.length, 31);
  assert.ok(scored.every((r) => typeof r.difficulty === 'number' && typeof r.id === 'string' && typeof r.instruction === 'string'), 'every row out again with its fields, id and difficulty');
  const st = heed('stages', '--scores', join(dir, 'h.jsonl'), '--out', join(dir, 'st'), '--stages', '3', '--steps-per-stage', '5', '--json');
  assert.equal(st.status, 0, st.stderr);
  const r = JSON.parse(st.stdout);
  assert.equal(r.rows, 31);
  for (const o of ['easy-hard', 'hard-easy', 'random']) {
    assert.equal(r.orders[o].reduce((a: number, s: { rows: number }) => a + s.rows, 0), 31);
    const yaml = readFileSync(join(dir, 'st', `${o}.stages.yaml`), 'utf8');
    assert.match(yaml, new RegExp(`stages:\\n  - name: ${o}-1\\n    data: ${o}-1.jsonl\\n    steps: 5`));
  }
  assert.ok(r.orders['easy-hard'][0].max <= r.orders['easy-hard'][1].min);
  assert.ok(existsSync(join(dir, 'st', 'union.jsonl')));
  // --base-config: complete train configs, same settings, same total steps; they validate as heed train configs
  writeFileSync(join(dir, 'base.yaml'), 'model: ../../models/base-dolly\nlr: 0.0003\nseed: 7\ndata: ignored.jsonl\n');
  const sc = heed('stages', '--scores', join(dir, 'h.jsonl'), '--out', join(dir, 'st3'), '--steps-per-stage', '5', '--base-config', join(dir, 'base.yaml'));
  assert.equal(sc.status, 0, sc.stderr);
  const phased = loadTrainConfig(join(dir, 'st3', 'easy-hard.yaml'));
  const oneOff = loadTrainConfig(join(dir, 'st3', 'one-off.yaml'));
  assert.deepEqual(phased.stages!.map((x) => [x.name, x.steps, x.data[0].path]), [1, 2, 3].map((k) => [`easy-hard-${k}`, 5, join(dir, 'st3', `easy-hard-${k}.jsonl`)]));
  assert.deepEqual([oneOff.steps, oneOff.data![0].path, oneOff.seed, oneOff.lr, oneOff.model], [15, join(dir, 'st3', 'union.jsonl'), 7, 0.0003, join(dir, '..', '..', 'models', 'base-dolly')]);
  const bad = heed('stages', '--scores', join(dir, 'h.jsonl'), '--out', join(dir, 'st2'), '--by', 'thresholds:0.5,0.7');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^error: stage\(s\) stage-1, stage-2 would be empty/);
  // agreement of a scorer with itself is 1; unknown scorer is one line
  const ag = heed('difficulty', 'agree', join(dir, 'h.jsonl'), join(dir, 'h.jsonl'), '--json');
  assert.equal(ag.status, 0, ag.stderr);
  assert.ok(Math.abs(JSON.parse(ag.stdout)[0].rho - 1) < 1e-9);
  const u = heed('difficulty', '--data', data, '--scorer', 'gpt4', '--out', join(dir, 'x.jsonl'));
  assert.equal(u.status, 2);
  assert.match(u.stderr, /^error: unknown scorer "gpt4" \(fix: use --scorer judge:/);
});
