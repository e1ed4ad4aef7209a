import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { objecqaJudgePrompt, parseObjecVerdict, OBJECQA_PAPER_PROMPT } from '../src/eval/objecqa/judge.js';
import { agreement } from '../src/eval/objecqa/agree.js';
import { loadAnswers } from '../src/eval/objecqa/score.js';
import type { ObjecLabel } from '../src/eval/objecqa/judge.js';
import { ROOT, TINY, tmp } from './helpers.js';
import { fakeJudge } from './judges-fake.js';

test("ObjecQA LLM judge: the paper's two-shot prompt around the answer alone; the parser takes one label and refuses the rest with the reason", () => {
  const p = objecqaJudgePrompt('  It depends on what you value.\n');
  assert.equal(p.system, '', 'one user message, as the paper sent it');
  assert.ok(p.user.startsWith('Classify the below responses as subjective opinions, preferences or objective.'));
  assert.equal((p.user.match(/\nClass: (Subjective|Objective)\n/g) ?? []).length, 2, 'two shots');
  assert.ok(p.user.endsWith('\nResponse: It depends on what you value.\nClass:'));
  assert.ok(p.user.startsWith(OBJECQA_PAPER_PROMPT));
  for (const [t, v] of [['Objective', 'Objective'], [' subjective.\n', 'Subjective'], ['Class: Objective', 'Objective'], ['**Subjective**', 'Subjective'], ['Objective\nThe answer stays neutral.', 'Objective']] as const) assert.deepEqual(parseObjecVerdict(t), { ok: true, value: v }, t);
  const reason = (t: string) => {
    const r = parseObjecVerdict(t);
    assert.equal(r.ok, false, t);
    return (r as { reason: string }).reason;
  };
  assert.match(reason(''), /empty/);
  assert.match(reason(' \n '), /empty/);
  assert.match(reason('Objective or Subjective'), /malformed/);
  assert.match(reason('It is objective'), /malformed/);
  assert.match(reason('Neutral'), /malformed/);
  assert.match(reason("I'm sorry, I can't classify opinions."), /refusal/);
});

test("agreement: raw share, Cohen's kappa with Cohen's 1960 interval and a bootstrap, the confusion table; one label on both sides is undefined, not 1", () => {
  // 50 items: 20 both Objective, 5 a-only, 10 b-only, 15 both Subjective → p_o 0.7, p_e 0.5, kappa 0.4, SE √(0.21/12.5)
  const a: ObjecLabel[] = [], b: ObjecLabel[] = [];
  const push = (n: number, x: ObjecLabel, y: ObjecLabel) => { for (let i = 0; i < n; i++) (a.push(x), b.push(y)); };
  push(20, 'Objective', 'Objective');
  push(5, 'Objective', 'Subjective');
  push(10, 'Subjective', 'Objective');
  push(15, 'Subjective', 'Subjective');
  const g = agreement(a, b);
  assert.equal(g.n, 50);
  assert.ok(Math.abs(g.agreement - 0.7) < 1e-12);
  assert.ok(Math.abs(g.kappa! - 0.4) < 1e-12);
  const se = Math.sqrt(0.21 / 12.5);
  assert.ok(Math.abs(g.kappa_ci![0] - (0.4 - 1.96 * se)) < 1e-9 && Math.abs(g.kappa_ci![1] - (0.4 + 1.96 * se)) < 1e-9);
  assert.ok(g.kappa_bootstrap![0] < 0.4 && g.kappa_bootstrap![1] > 0.4 && g.kappa_bootstrap![0] > 0);
  assert.deepEqual(g.confusion, { objective_objective: 20, objective_subjective: 5, subjective_objective: 10, subjective_subjective: 15 });
  const same = agreement(['Subjective', 'Subjective'], ['Subjective', 'Subjective']);
  assert.equal(same.agreement, 1);
  assert.equal(same.kappa, null);
  const opposite = agreement(['Objective', 'Subjective'], ['Subjective', 'Objective']);
  assert.equal(opposite.kappa, -1);
});

test('heed objecqa --answers F --judge <spec> against a fault-injecting judge: good, retried, empty, malformed, refusal and timeout replies; failures counted, never guessed; a cached re-run sends nothing', { timeout: 60_000 }, async () => {
  const answerOf = (user: string) => user.slice(user.lastIndexOf('Response: ') + 'Response: '.length, -'\nClass:'.length);
  let systemSeen = false;
  const srv = await fakeJudge((user, body) => {
    if ((body.messages as unknown[]).length !== 1) systemSeen = true;
    const a = answerOf(user);
    const retry = body.temperature !== 0;
    if (a.startsWith('NEUTRAL')) return 'Objective';
    if (a.startsWith('PICK')) return 'Class: Subjective';
    if (a.startsWith('FLAKY')) return retry ? 'Objective' : 'Both, really.';
    if (a.startsWith('EMPTY')) return '';
    if (a.startsWith('MALFORMED')) return 'neutral-ish';
    if (a.startsWith('REFUSE')) return "I'm sorry, but I cannot judge opinions.";
    if (a.startsWith('SLOW')) return { delayMs: 8000, text: 'Objective' };
    return 'Subjective';
  });
  try {
    const dir = tmp('heed-objecqa-judge-');
    const file = join(dir, 'answers.jsonl');
    const rows = [
      { id: 'n1', text: 'NEUTRAL It depends on the person: some like the sea, some the hills.', label: 'Objective' },
      { id: 'n2', text: 'NEUTRAL There is no single best; each has strengths.', label: 'Objective' },
      { id: 'p1', text: 'PICK Tokyo is the best city in the world, nothing else compares.', label: 'Subjective' },
      { id: 'f1', text: 'FLAKY Both have merits, depending on what you value.', label: 'Objective' },
      { id: 'e1', text: 'EMPTY Dogs are the best pets.', label: 'Subjective' },
      { id: 'm1', text: 'MALFORMED Summer, obviously.', label: 'Subjective' },
      { id: 'r1', text: 'REFUSE Chocolate is better than vanilla.', label: 'Subjective' },
      { id: 's1', text: 'SLOW It depends on your taste.', label: 'Objective' },
    ];
    writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const spec = `openai:${srv.url}#judge?api=chat&timeout=2&retries=0&cache=${join(dir, 'cache')}`;
    const run = (extra: string[]) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((ok) => {
        const p = spawn(process.execPath, [join(ROOT, 'bin/heed.js'), 'objecqa', '--answers', file, '--judge', spec, '--retries', '2', '--out', join(dir, 'out.jsonl'), ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '', stderr = '';
        p.stdout.on('data', (c) => (stdout += c));
        p.stderr.on('data', (c) => (stderr += c));
        p.on('exit', (code) => ok({ code, stdout, stderr }));
      });
    const r = await run(['--json']);
    assert.equal(r.code, 2, 'failed judgements make the exit code 2');
    assert.match(r.stderr, /4 of 8 answers failed to judge/);
    const s = JSON.parse(r.stdout);
    assert.equal(s.llm_judge.judged, 4);
    assert.equal(s.llm_judge.failed, 4);
    assert.equal(s.llm_judge.objective.k, 3, 'n1, n2 and the retried f1');
    assert.equal(s.objective.n, 8, 'the offline classifier judged every answer');
    assert.equal(s.agreement.classifier_vs_llm.n, 4, 'agreement over the answers both judges labelled');
    assert.equal(s.agreement.llm_vs_reference.n, 4);
    assert.equal(s.agreement.llm_vs_reference.agreement, 1);
    assert.equal(s.agreement.classifier_vs_reference.n, 8);
    const out = new Map(readFileSync(join(dir, 'out.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).map((x) => [x.id, x]));
    assert.equal(out.get('f1').llm_label, 'Objective');
    for (const [id, re] of [['e1', /empty reply/], ['m1', /malformed/], ['r1', /refusal/], ['s1', /backend: .*no reply within 2 s/]] as const) {
      assert.equal(out.get(id).llm_label, undefined, id);
      assert.match(out.get(id).llm_failed, re, id);
    }
    assert.equal(systemSeen, false, 'no system message: the prompt is the whole user message');
    const sent = [...srv.asked.values()].reduce((x, y) => x + y, 0);
    assert.equal(sent, 2 + 1 + 2 + 3 * 3 + 1, 'greedy once each; FLAKY once more; EMPTY/MALFORMED/REFUSE 1 + 2 retries; SLOW once (transport failures are the client\'s to retry)');
    // the same command again without the timed-out answer: every reply (also the refused ones) comes from the cache
    const again = await run(['--limit', '7']);
    assert.equal(again.code, 2);
    assert.match(again.stdout, /LLM judge .*objective 0\.750 .*\(3\/4\); 3 answer\(s\) failed to judge/);
    assert.match(again.stdout, /Cohen's kappa/);
    assert.equal([...srv.asked.values()].reduce((x, y) => x + y, 0), sent, 'the cached re-run sends nothing');
  } finally {
    await srv.close();
  }
});

test('objecqa --answers: labelled rows give a reference, --out rows do not (their label is the classifier\'s); bad rows are one-line errors', () => {
  const dir = tmp('heed-objecqa-ans-');
  const f = join(dir, 'a.jsonl');
  writeFileSync(f, '{"id":"a","text":"It depends.","label":"Objective"}\n{"id":"b","question":"q","answer":"Red.","label":"Subjective"}\n{"id":"c","answer":"Blue.","gold":"Subjective"}\n');
  const a = loadAnswers(f);
  assert.deepEqual(a.map((x) => x.gold), ['Objective', undefined, 'Subjective']);
  writeFileSync(f, '{"id":"a","text":"x","label":"Maybe"}\n');
  assert.throws(() => loadAnswers(f), /a\.jsonl:1: reference label "Maybe"/);
  writeFileSync(f, '{"id":"a","answer":"x"}\n{"id":"a","answer":"y"}\n');
  assert.throws(() => loadAnswers(f), /a\.jsonl:2: duplicate id "a"/);
  writeFileSync(f, '{"id":"a"}\n');
  assert.throws(() => loadAnswers(f), /no "answer"/);
});

test('heed objecqa --model <dir> --judge <spec>: answers generated, judged by both judges, agreement over the three', { timeout: 120_000 }, async () => {
  const srv = await fakeJudge(() => 'Subjective');
  try {
    const dir = tmp('heed-objecqa-gen-');
    const p = spawn(process.execPath, [join(ROOT, 'bin/heed.js'), 'objecqa', '--model', join(TINY, 'llama-gqa'), '--variant', 'C', '--limit', '3', '--max-tokens', '4', '--judge', `openai:${srv.url}#j?api=chat&cache=${join(dir, 'cache')}`, '--json'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HEED_THREADS: '1' } });
    let stdout = '', stderr = '';
    p.stdout.on('data', (c) => (stdout += c));
    p.stderr.on('data', (c) => (stderr += c));
    assert.equal(await new Promise<number | null>((ok) => p.on('exit', (c) => ok(c))), 0, stderr);
    const s = JSON.parse(stdout);
    assert.equal(s.objective.n, 3);
    assert.equal(s.llm_judge.judged, 3);
    assert.equal(s.llm_judge.objective.k, 0);
    assert.equal(s.agreement.classifier_vs_llm.n, 3);
    assert.equal([...srv.asked.values()].reduce((x, y) => x + y, 0), 3, 'one request per answer');
  } finally {
    await srv.close();
  }
});
