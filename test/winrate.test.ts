import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { combineOrders, parsePairScores, pairPrompt, winRate, PAIR_SYSTEM } from '../src/eval/judges/pairwise.js';
import { fakeJudge } from './judges-fake.js';
import { ROOT, tmp } from './helpers.js';

const heed = (...args: string[]) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((ok) => {
    const p = spawn(process.execPath, [join(ROOT, 'bin/heed.js'), ...args], { env: { ...process.env, NO_COLOR: '1', HEED_THREADS: '1' } });
    let stdout = '', stderr = '';
    p.stdout.on('data', (c) => (stdout += c));
    p.stderr.on('data', (c) => (stderr += c));
    p.on('exit', (status) => ok({ status, stdout, stderr }));
  });

test('pairwise prompt, strict two-score parser and the Phased IFT win/tie rules', () => {
  const p = pairPrompt('Q?', 'first', 'second');
  assert.equal(p.system, 'You are a helpful and precise assistant for checking the quality of the answer.');
  assert.match(p.user, /^\[Question\]\nQ\?\n\n\[The Start of Assistant 1's Answer\]\nfirst\n\n\[The End of Assistant 1's Answer\]\n\n\[The Start of Assistant 2's Answer\]\nsecond\n\n\[The End of Assistant 2's Answer\]\n\n\[System\]\nWe would like/);
  assert.deepEqual(parsePairScores('8 6\nAssistant 1 is better.'), { ok: true, value: [8, 6] });
  assert.deepEqual(parsePairScores('7.5, 9'), { ok: true, value: [7.5, 9] });
  for (const [t, re] of [['', /empty/], ['8', /malformed/], ['Assistant 1: 8, Assistant 2: 6', /malformed/], ['11 3', /out of range/], ['0 5', /out of range/], ["I'm sorry, I can't compare these.", /refusal/]] as const) {
    const r = parsePairScores(t);
    assert.equal(r.ok, false, t);
    assert.match((r as { reason: string }).reason, re, t);
  }
  // order 1: a is Assistant 1; order 2: b is Assistant 1
  assert.equal(combineOrders([8, 6], [6, 8]).outcome, 'win'); // a preferred in both
  assert.equal(combineOrders([8, 6], [7, 7]).outcome, 'win'); // preferred once, tie once
  assert.equal(combineOrders([7, 7], [7, 7]).outcome, 'tie');
  assert.equal(combineOrders([8, 6], [8, 6]).outcome, 'tie'); // the orders disagree (position bias)
  assert.equal(combineOrders([6, 8], [8, 6]).outcome, 'loss');
  assert.equal(combineOrders([5, 5], [9, 2]).outcome, 'loss');
  const w = winRate(['win', 'win', 'tie', 'loss'], { resamples: 500 });
  assert.deepEqual([w.wins, w.ties, w.losses, w.winRate, w.paperScore], [2, 1, 1, 0.625, 12.5]);
  assert.ok(w.ci[0] <= 0.625 && 0.625 <= w.ci[1] && w.ci[0] >= 0 && w.ci[1] <= 1);
});

test('heed winrate: responses files judged in both orders by a fake LLM judge; failures counted; prompts that differ refused; the offline proxy labelled', { timeout: 60_000 }, async () => {
  const dir = tmp('heed-wr-');
  const prompts = join(dir, 'prompts.jsonl');
  const N = 6;
  writeFileSync(prompts, Array.from({ length: N }, (_, i) => JSON.stringify({ id: `p${i}`, instruction: `Prompt ${i}` })).join('\n') + '\n');
  const side = (file: string, f: (i: number) => string, instr = (i: number) => `Prompt ${i}`) => writeFileSync(file, Array.from({ length: N }, (_, i) => JSON.stringify({ id: `p${i}`, instruction: instr(i), response: f(i) })).join('\n') + '\n');
  const A = join(dir, 'a.jsonl'), B = join(dir, 'b.jsonl');
  side(A, (i) => (i < 4 ? 'A long and careful answer with detail.' : 'Short.'));
  side(B, (i) => (i < 4 ? 'Short.' : i === 4 ? 'Short.' : 'A long and careful answer with detail.'));
  const systems: string[] = [];
  // the judge scores the longer answer 8 and the shorter 4, equal lengths 5 5; prompt 3's judgement is malformed
  const srv = await fakeJudge((q, body) => {
    systems.push((body.messages as Array<{ role: string; content: string }>)[0].content);
    if (q === 'Prompt 3') return 'Both are fine.';
    const u = (body.messages as Array<{ content: string }>).at(-1)!.content;
    const a1 = /Assistant 1's Answer\]\n([\s\S]*?)\n\n\[The End/.exec(u)![1];
    const a2 = /Assistant 2's Answer\]\n([\s\S]*?)\n\n\[The End/.exec(u)![1];
    return a1.length === a2.length ? '5 5\nequal' : a1.length > a2.length ? '8 4\nmore detail' : '4 8\nmore detail';
  });
  try {
    const out = join(dir, 'wr');
    const r = await heed('winrate', '--a', A, '--b', B, '--prompts', prompts, '--judge', `openai:${srv.url}#judge?api=chat&cache=${join(dir, 'cache')}`, '--out', out, '--retries', '1', '--json');
    assert.equal(r.status, 2, 'a pair that could not be judged makes the exit code 2');
    assert.match(r.stderr, /1 of 6 pairs could not be judged \(first p3: order 1: 2 replies refused by the parser: malformed/);
    const rep = JSON.parse(r.stdout);
    assert.deepEqual([rep.n, rep.failed, rep.wins, rep.ties, rep.losses], [5, 1, 3, 1, 1]);
    assert.equal(rep.proxy, false);
    assert.equal(rep.paper_score, 100 * (3 + 0.5) / 5 - 50);
    assert.ok(systems.every((s) => s === PAIR_SYSTEM));
    const js = readFileSync(join(out, 'judgements.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(js.length, 6, 'every judgement saved');
    const p0 = js.find((j) => j.id === 'p0');
    assert.deepEqual([p0.order1.scores, p0.order2.scores, p0.outcome], [[8, 4], [4, 8], 'win']);
    assert.equal(rep.lengths_words.longer_wins, 4);
    // again: every reply comes from the cache (the refused ones too: the same verdict); with --retries 2 only
    // the one new attempt per order of prompt 3 is asked
    const before = srv.asked.get('Prompt 0');
    assert.equal(srv.asked.get('Prompt 3'), 4, '2 orders × 2 attempts');
    const again = await heed('winrate', '--a', A, '--b', B, '--prompts', prompts, '--judge', `openai:${srv.url}#judge?api=chat&cache=${join(dir, 'cache')}`, '--out', out, '--retries', '2');
    assert.equal(again.status, 2);
    assert.equal(srv.asked.get('Prompt 0'), before, 'cached');
    assert.equal(srv.asked.get('Prompt 3'), 6, 'only the new attempt of each order is asked');
  } finally {
    await srv.close();
  }
  // a responses file whose prompts differ from --prompts
  const C = join(dir, 'c.jsonl');
  side(C, () => 'x', (i) => (i === 2 ? 'Another prompt' : `Prompt ${i}`));
  const d = await heed('winrate', '--a', A, '--b', C, '--prompts', prompts, '--judge', 'proxy:ifs', '--out', join(dir, 'wr2'));
  assert.equal(d.status, 2);
  assert.match(d.stderr, /^error: .*c\.jsonl:3: id "p2" answers a different prompt than --prompts/);
  // the offline proxy: labelled in the text, the JSON and every judgement
  const p = await heed('winrate', '--a', A, '--b', B, '--prompts', prompts, '--judge', 'proxy:ifs', '--out', join(dir, 'wr3'));
  assert.equal(p.status, 0, p.stderr);
  assert.match(p.stdout, /^PROXY win rate of a over b, judged by proxy:ifs \(OFFLINE PROXY/);
  assert.equal(JSON.parse(readFileSync(join(dir, 'wr3', 'winrate.json'), 'utf8')).proxy, true);
  assert.ok(readFileSync(join(dir, 'wr3', 'judgements.jsonl'), 'utf8').trim().split('\n').every((l) => JSON.parse(l).proxy === true));
});

test('heed winrate with a model spec side: missing responses generated greedily and recorded, reused on the next run', { timeout: 90_000 }, async () => {
  const dir = tmp('heed-wr-gen-');
  const prompts = join(dir, 'prompts.jsonl');
  writeFileSync(prompts, [JSON.stringify({ id: 'x', instruction: 'Name a colour.' }), JSON.stringify({ id: 'y', instruction: 'Count to three.' })].join('\n') + '\n');
  const B = join(dir, 'b.jsonl');
  writeFileSync(B, [JSON.stringify({ id: 'x', instruction: 'Name a colour.', response: 'Blue.' }), JSON.stringify({ id: 'y', instruction: 'Count to three.', response: 'One, two, three.' })].join('\n') + '\n');
  const model = join(ROOT, 'test/fixtures/tiny/llama-gqa');
  const args = ['winrate', '--a', model, '--b', B, '--prompts', prompts, '--judge', 'proxy:ifs', '--out', join(dir, 'wr'), '--max-tokens', '4', '--variant', 'C'];
  const r1 = await heed(...args);
  assert.equal(r1.status, 0, r1.stderr);
  assert.match(r1.stdout, /a: .*llama-gqa \(model spec, 2 generated now, 0 reused; greedy, variant C, max 4 tokens\)/);
  const gen = readFileSync(join(dir, 'wr', 'a.responses.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(gen.map((g) => [g.id, g.greedy, g.max_tokens, g.model]), [['x', true, 4, model], ['y', true, 4, model]]);
  const r2 = await heed(...args);
  assert.equal(r2.status, 0, r2.stderr);
  assert.match(r2.stdout, /0 generated now, 2 reused/);
});
