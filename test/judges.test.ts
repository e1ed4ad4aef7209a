import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { openModel } from '../src/backends/spec.js';
import { parseDifficulty, difficultyPrompt } from '../src/eval/judges/difficulty.js';
import { runScoring } from '../src/phased/score.js';
import type { InstructionRow } from '../src/phased/rows.js';
import { ROOT, tmp } from './helpers.js';
import { fakeJudge } from './judges-fake.js';

const row = (id: string, instruction: string, output?: string): InstructionRow => ({ id, instruction, output, raw: { id, instruction, ...(output !== undefined ? { output } : {}) }, line: 1 });

test('difficulty parser is strict: a score alone on the first line; empty, words, two numbers, 0, 6, 4.5 and refusals are refused with their reason', () => {
  for (const [t, v] of [['3', 3], [' 5.\n', 5], ['Score: 2', 2], ['**4**', 4], ['1/5', 1], ['4\nBecause it needs reasoning.', 4]] as const) assert.deepEqual(parseDifficulty(t), { ok: true, value: v }, t);
  const reason = (t: string) => {
    const r = parseDifficulty(t);
    assert.equal(r.ok, false, t);
    return (r as { reason: string }).reason;
  };
  assert.match(reason(''), /empty/);
  assert.match(reason('   \n '), /empty/);
  assert.match(reason('It is a 3'), /malformed/);
  assert.match(reason('3 4'), /malformed/);
  assert.match(reason('6'), /out of range/);
  assert.match(reason('0'), /out of range/);
  assert.match(reason('4.5'), /out of range/);
  assert.match(reason("I'm sorry, I cannot rate this instruction."), /refusal/);
  assert.match(difficultyPrompt('Name a colour.').user, /1 = trivial[\s\S]*5 = very hard[\s\S]*Name a colour\./);
});

test('judge scorer through a fake server: good, retried-then-good, empty, malformed, out of range, refusal and timeout replies; failures recorded, never guessed; --samples averaged', async () => {
  const srv = await fakeJudge((ins, body) => {
    const retry = body.temperature !== 0; // the retries sample with a new seed
    if (ins.startsWith('GOOD')) return ins.endsWith('sampled') ? String(2 + (Number(body.seed) % 2)) : '4';
    if (ins.startsWith('FLAKY')) return retry ? '2' : 'Well, it depends.';
    if (ins.startsWith('EMPTY')) return '';
    if (ins.startsWith('MALFORMED')) return 'difficulty high';
    if (ins.startsWith('RANGE')) return '7';
    if (ins.startsWith('REFUSE')) return "I'm sorry, but I can't help with that.";
    if (ins.startsWith('SLOW')) return { delayMs: 8000, text: '3' };
    return '1';
  });
  try {
    const dir = tmp('heed-judge-');
    const b = await openModel(`openai:${srv.url}#judge?api=chat&timeout=2&retries=0&cache=${join(dir, 'cache')}`);
    const rows = ['GOOD one', 'FLAKY two', 'EMPTY three', 'MALFORMED four', 'RANGE five', 'REFUSE six', 'SLOW seven'].map((s, i) => row(`r${i}`, s));
    const res = await runScoring(rows, { kind: 'judge', model: 'x' }, 'judge:fake', { out: join(dir, 'scored.jsonl'), backend: b, retries: 2, concurrency: 4 });
    const by = new Map(res.rows.map((r) => [r.id, r]));
    assert.equal(by.get('r0')!.difficulty, 4);
    assert.equal(by.get('r1')!.difficulty, 2, 'a malformed first reply is asked again, and the valid retry counts');
    assert.equal(by.get('r1')!.judgements![0].attempts, 2);
    for (const [id, re] of [['r2', /empty reply/], ['r3', /malformed/], ['r4', /out of range: 7/], ['r5', /refusal/], ['r6', /backend: .*no reply within 2 s/]] as const) {
      const r = by.get(id)!;
      assert.equal(r.difficulty, null, id);
      assert.match(r.failed!, re, id);
    }
    assert.equal(srv.asked.get('EMPTY three'), 3, 'first try + 2 retries');
    assert.equal(srv.asked.get('SLOW seven'), 1, 'a transport failure is not re-asked by the parser loop (the client has its own retries)');
    assert.equal(res.failed, 5);
    assert.ok(existsSync(join(dir, 'scored.jsonl.partial')), 'the journal stays while rows failed');
    // --samples 3: three seeds, averaged
    const s = await runScoring([row('s', 'GOOD sampled')], { kind: 'judge', model: 'x' }, 'judge:fake', { out: join(dir, 's.jsonl'), backend: b, samples: 3 });
    assert.equal(s.rows[0].judgements!.length, 3);
    assert.equal(s.rows[0].difficulty, (2 + 3 + 2) / 3);
  } finally {
    await srv.close();
  }
});

test('heed difficulty killed midway and run again: every row scored, none asked twice (journal, cache off)', { timeout: 60_000 }, async () => {
  const dir = tmp('heed-resume-');
  const data = join(dir, 'data.jsonl');
  const N = 12;
  writeFileSync(data, Array.from({ length: N }, (_, i) => JSON.stringify({ id: `q${i}`, instruction: `Question number ${i}?`, output: 'An answer.' })).join('\n') + '\n');
  let killAt: (() => void) | undefined;
  let total = 0;
  const srv = await fakeJudge(
    (ins) => ({ delayMs: ++total === 6 ? -1 : 20, text: String((Number(/\d+/.exec(ins)![0]) % 5) + 1) }),
    (_ins, n) => {
      if (n === 6) killAt?.();
    },
  );
  try {
    const out = join(dir, 'scored.jsonl');
    const args = [join(ROOT, 'bin/heed.js'), 'difficulty', '--data', data, '--scorer', `judge:openai:${srv.url}#j?api=chat&cache=off`, '--out', out, '--concurrency', '1'];
    const first = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    killAt = () => first.kill('SIGKILL');
    const code1 = await new Promise<number | null>((ok) => first.on('exit', (c) => ok(c)));
    assert.notEqual(code1, 0, 'the first run was killed');
    assert.ok(!existsSync(out));
    const journal = readFileSync(`${out}.partial`, 'utf8').trim().split('\n');
    assert.equal(journal.length, 5, 'five rows finished before the kill');
    killAt = undefined;
    const second = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    second.stdout.on('data', (c) => (stdout += c));
    assert.equal(await new Promise<number | null>((ok) => second.on('exit', (c) => ok(c))), 0);
    assert.match(stdout, /12\/12 scored.*5 from an earlier run's journal/s);
    const rows = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(rows.map((r) => r.id), Array.from({ length: N }, (_, i) => `q${i}`), 'input order, every id');
    for (const r of rows) assert.equal(r.difficulty, (Number(r.id.slice(1)) % 5) + 1);
    for (let i = 0; i < N; i++) assert.equal(srv.answered.get(`Question number ${i}?`), 1, `q${i} answered exactly once`);
    assert.ok(!existsSync(`${out}.partial`), 'the journal is removed when every row is scored');
  } finally {
    await srv.close();
  }
});

