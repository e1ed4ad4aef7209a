import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ClassifierJudge } from '../src/eval/objecqa/judge.js';
import { loadLabelled, loadQuestions, scoreObjecqa } from '../src/eval/objecqa/score.js';
import { judgeSplit } from '../src/eval/objecqa/train.js';
import type { GenerateOptions, Generation, TextGenerator } from '../src/decode/generate.js';
import { ROOT, TINY } from './helpers.js';

test('shipped ObjecQA data: 100 questions, ≥ 200 labelled answers of both labels, held-out split by question', () => {
  const qs = loadQuestions();
  assert.equal(qs.length, 100);
  assert.equal(new Set(qs.map((q) => q.question)).size, 100);
  const rows = loadLabelled();
  assert.ok(rows.length >= 200);
  assert.ok(rows.filter((r) => r.label === 'Objective').length >= 100);
  assert.ok(rows.filter((r) => r.label === 'Subjective').length >= 100);
  const { train, test: held } = judgeSplit(rows, 0);
  const trainQ = new Set(train.map((r) => r.question_id).filter(Boolean));
  for (const r of held) if (r.question_id) assert.ok(!trainQ.has(r.question_id), 'held-out questions are never trained on');
  assert.ok(held.length >= 30);
});

test('the offline judge labels clear answers and reports held-out accuracy', async () => {
  const j = ClassifierJudge.load();
  const v = await j.judge([
    { question: 'Which city is the best?', answer: 'Tokyo is the best city in the world, nothing else compares.' },
    { question: 'Which city is the best?', answer: 'There is no single best city; it depends on what you value, such as culture, cost or climate.' },
    { question: 'x', answer: '   ' },
  ]);
  assert.deepEqual(v.map((x) => x.label), ['Subjective', 'Objective', 'Subjective']);
  const meta = j.classifier.meta as unknown as { held_out: { accuracy: number; n: number } };
  assert.ok(meta.held_out.accuracy >= 0.9 && meta.held_out.n >= 30);
});

class Echo implements TextGenerator {
  readonly name = 'echo';
  prompts: string[] = [];
  constructor(private readonly f: (p: string) => string) {}
  async generate(prompts: string[], _o?: GenerateOptions): Promise<Generation[]> {
    this.prompts.push(...prompts);
    return prompts.map((p) => ({ prompt: p, promptIds: [], text: this.f(p), ids: [], finishReason: 'eos' as const }));
  }
}

test('scoreObjecqa gives the exact share of objective answers', async () => {
  const qs = loadQuestions().slice(0, 10);
  const gen = new Echo((p) => (/season|programming|cats/.test(p) ? 'It depends on personal preference; different people enjoy different options.' : 'The answer is obviously the first one, it is the best.'));
  const r = await scoreObjecqa(gen, ClassifierJudge.load(), qs, { batchSize: 4 });
  assert.equal(r.objective.n, 10);
  assert.equal(r.objective.k, 3);
  assert.equal(r.answers.length, 10);
  assert.ok(gen.prompts[0].includes('### Instruction:\nWhich season is the best?'));
});

test('heed objecqa on a tiny model prints the objective share', () => {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/heed.js'), 'objecqa', '--model', join(TINY, 'llama-gqa'), '--variant', 'C', '--limit', '3', '--max-tokens', '4', '--batch', '1', '--json'], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, HEED_THREADS: '1' } });
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout); // --json: stdout holds the result only
  // what will happen, said before it happens: the plan, an estimate after the first batch, n/N with an ETA (stderr)
  assert.match(r.stderr, /\[objecqa: 3 generation\(s\) to run: 3 question\(s\) \(--limit 3\), variant C, up to 4 new tokens each/);
  assert.match(r.stderr, /\[objecqa: first 1 in [\d.]+s: about [\dms.]+ for the other 2\]/);
  assert.match(r.stderr, /objecqa [█·]+ 3\/3 .*ETA/);
  assert.equal(s.objective.n, 3);
  assert.ok(s.objective.value >= 0 && s.objective.value <= 1);
  const e = spawnSync(process.execPath, [join(ROOT, 'bin/heed.js'), 'objecqa', '--model', join(TINY, 'llama-gqa'), '--variant', 'Z'], { encoding: 'utf8' });
  assert.equal(e.status, 2);
  assert.match(e.stderr, /--variant must be A, B or C/);
});
