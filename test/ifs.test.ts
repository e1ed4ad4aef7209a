import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildPrompts, cleanInstruction, cutAtWord, shiftedCut, rowRng, classifierExamples, sourceFromRecord, CUT_LO, CUT_HI } from '../src/eval/ifs/fragments.js';
import { loadIfsClassifier, cutChars } from '../src/eval/ifs/classifier.js';
import { scoreIfs, wilson, wrapPrompt, budgetSubset, summarise, formatTable } from '../src/eval/ifs/score.js';
import { loadPromptSet } from '../src/eval/ifs/prompts.js';
import { binaryMetrics } from '../src/eval/text-classifier.js';
import type { GenerateOptions, Generation, TextGenerator } from '../src/decode/generate.js';

test('cleanInstruction strips the AlpaGasus wrappers and keeps Alpaca inputs', () => {
  assert.equal(cleanInstruction('Plase answer the following request: How do I start running?\nAnswer:'), 'How do I start running?');
  assert.equal(cleanInstruction('Write a response that appropriately completes the request.\n\n### Instruction:\nWho played Billy the Kid\n\n### Response:'), 'Who played Billy the Kid');
  assert.equal(cleanInstruction('Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\nSummarise this.\n\n### Input:\nSome text.\n\n### Response:'), 'Summarise this.\n\nSome text.');
  assert.equal(cleanInstruction('Can you help with this?\n\nwhat is REST API\n'), 'what is REST API');
  assert.equal(cleanInstruction('Name three colours. Output:'), 'Name three colours.');
  assert.equal(cleanInstruction('  plain instruction  '), 'plain instruction');
});

test('cutAtWord: Ip + whitespace + Ic is the instruction, cut at the word start', () => {
  const I = 'Which episodes of  season four did she direct?';
  const f = cutAtWord(I, 3);
  assert.equal(f.partial, 'Which episodes of');
  assert.equal(f.continuation, 'season four did she direct?');
  assert.equal(f.cut, 19);
  assert.equal(I.slice(0, f.cut).trimEnd() + I.slice(f.partial.length, f.cut) + f.continuation, I);
  assert.throws(() => cutAtWord(I, 0));
  assert.throws(() => cutAtWord(I, 8));
});

test('shiftedCut stays inside [0.2, 0.8] of the words (clamped to 1..n-1) and is seeded per row', () => {
  const I = Array.from({ length: 20 }, (_, i) => `w${i}`).join(' ');
  const ks = new Set<number>();
  for (let s = 0; s < 200; s++) {
    const f = shiftedCut(I, rowRng(s, 'row'));
    assert.ok(f.k >= Math.round(CUT_LO * 20) && f.k <= Math.round(CUT_HI * 20), `k=${f.k}`);
    ks.add(f.k);
  }
  assert.ok(ks.size > 8, 'shifted: many different cut points');
  assert.deepEqual(shiftedCut(I, rowRng(7, 'a')), shiftedCut(I, rowRng(7, 'a')));
  for (let s = 0; s < 20; s++) assert.ok([1, 2].includes(shiftedCut('one two three', rowRng(s, 'x')).k)); // round(0.6..2.4) clamped to 1..2
});

test('buildPrompts on known rows: source ids, kinds, share, too-short rows skipped', () => {
  const rows = Array.from({ length: 400 }, (_, i) => ({ id: `r${i}`, instruction: `Tell me about the number ${i} and why it matters`, response: `It is ${i}.` }));
  rows.push({ id: 'short', instruction: 'Hi there', response: 'Hello' });
  const { prompts, skipped } = buildPrompts(rows, { partialShare: 0.5, seed: 3 });
  assert.equal(skipped, 1);
  assert.equal(prompts.length, 400);
  const partial = prompts.filter((p) => p.kind === 'partial');
  assert.ok(partial.length > 160 && partial.length < 240, `${partial.length}`);
  for (const p of partial) {
    assert.equal(p.id, `${p.source_id}#partial`);
    assert.ok(p.instruction.startsWith(p.prompt));
    assert.equal(p.instruction.slice(p.cut!), p.continuation);
    assert.ok(p.prompt.length < p.instruction.length);
  }
  for (const p of prompts.filter((p) => p.kind === 'full')) assert.equal(p.prompt, p.instruction);
  assert.equal(buildPrompts(rows, { partialShare: 0 }).prompts.filter((p) => p.kind === 'partial').length, 0);
  assert.equal(buildPrompts(rows, { partialShare: 1 }).prompts.filter((p) => p.kind === 'full').length, 0);
  assert.deepEqual(buildPrompts(rows, { seed: 3, partialShare: 0.5 }).prompts, prompts);
});

test('classifierExamples: one R (1) and one Ic or Ic+R (0) per row; sourceFromRecord reads messages rows', () => {
  const s = sourceFromRecord({ id: 'x', messages: [{ role: 'user', content: 'Plase answer the following request: Name three primary colours please\nAnswer:' }, { role: 'assistant', content: ' Red, yellow and blue. ' }] }, 'f:1');
  assert.ok(!('error' in s));
  if ('error' in s) return;
  assert.equal(s.instruction, 'Name three primary colours please');
  assert.equal(s.response, 'Red, yellow and blue.');
  const ex = classifierExamples([s]);
  assert.equal(ex.length, 2);
  assert.equal(ex[0].label, 1);
  assert.equal(ex[0].text, 'Red, yellow and blue.');
  assert.equal(ex[1].label, 0);
  assert.ok(s.instruction.endsWith(ex[1].text.split('\n')[0]));
  assert.ok('error' in sourceFromRecord({ messages: [{ role: 'user', content: 'hi' }] }, 'f:2'));
});

test('shipped classifier loads and separates clear answers from clear continuations', () => {
  const c = loadIfsClassifier();
  assert.deepEqual(c.meta.labels, ['continuation', 'answer']);
  const answers = [
    'The capital of France is Paris.',
    'Here are three ideas for a birthday party: a picnic in the park, a movie night at home, and a board game tournament.',
    'Sure! To start running, get comfortable shoes, begin with short walks and jogs, and increase the distance slowly each week.',
    'Red, yellow and blue are the three primary colours.',
  ];
  const continuations = ['of the following cities is the capital of France?', 'the best way to start running if I have never exercised before?', 'and explain why each one matters to the story.', 'me a list of five animals that live in the ocean'];
  for (const t of answers) assert.equal(c.classify(t).label, 1, `${t} → ${c.prob(t)}`);
  for (const t of continuations) assert.equal(c.classify(t).label, 0, `${t} → ${c.prob(t)}`);
  const m = c.meta as unknown as { train: { by_type: Record<string, number> } };
  for (const t of ['I,R', 'Ip,R', 'Ip,clarify', 'Ip,Ic', 'I,Ic', 'Ip,Ic+R', 'I,Ic+R']) assert.ok(m.train.by_type[t] > 1000, t);
  // the shapes issue 14 found rejected, and continuations that open like answers
  for (const t of ['```python\nprint("hello")\n```', '| Country | Capital |\n|---|---|\n| France | Paris |\n| Spain | Madrid |', '(Verse 1)\nI walked along the river\nThe sky was turning grey\n\n(Chorus)\nOh river, take me home']) assert.equal(c.classify(t).label, 1, `${t} → ${c.prob(t)}`);
  for (const t of ['Sure! of the following cities is the capital of France?', '- the best way to start running if I have never exercised before?']) assert.equal(c.classify(t).label, 0, `${t} → ${c.prob(t)}`);
});

test('shipped pair classifier sees the prompt: an answer after a finished instruction, a continuation after a cut one', async () => {
  const { loadIfsPairClassifier } = await import('../src/eval/ifs/classifier.js');
  const p = loadIfsPairClassifier();
  assert.ok(p.cfg.pair && p.gate);
  assert.equal(p.classify('The capital of France is Paris.', 'What is the capital of France?').label, 1);
  assert.equal(p.classify('the following cities is the capital of France?', 'Which of').label, 0);
  const { DEFAULT_CLASSIFIER_PATH } = await import('../src/eval/ifs/classifier.js');
  assert.throws(() => loadIfsPairClassifier(DEFAULT_CLASSIFIER_PATH), /not a pair classifier/);
});

test('Wilson intervals on known values', () => {
  const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 5e-5, `${a} vs ${b}`);
  let [lo, hi] = wilson(5, 10);
  close(lo, 0.236593); close(hi, 0.763407);
  [lo, hi] = wilson(0, 10);
  close(lo, 0); close(hi, 0.277532);
  [lo, hi] = wilson(10, 10);
  close(lo, 0.722468); close(hi, 1);
  [lo, hi] = wilson(81, 263);
  close(lo, 0.255289); close(hi, 0.366210);
  assert.deepEqual(wilson(0, 0), [0, 1]);
});

test('binaryMetrics counts', () => {
  const m = binaryMetrics([1, 1, 0, 0, 1], [0.9, 0.2, 0.7, 0.1, 0.6]);
  assert.deepEqual([m.tp, m.fp, m.tn, m.fn], [2, 1, 1, 1]);
  assert.equal(m.accuracy, 0.6);
  assert.equal(m.precision, 2 / 3);
  assert.equal(m.recall, 2 / 3);
});

/** A stub generator: answers prompts that end with '?' (or carry the Alpaca/Response suffix), continues the rest. */
class StubGenerator implements TextGenerator {
  readonly name = 'stub';
  calls: Array<{ prompts: string[]; opts?: GenerateOptions }> = [];
  constructor(private readonly reply: (prompt: string) => string) {}
  async generate(prompts: string[], opts?: GenerateOptions): Promise<Generation[]> {
    this.calls.push({ prompts, opts });
    return prompts.map((p) => ({ prompt: p, promptIds: [], text: this.reply(p), ids: [1, 2, 3], finishReason: 'length' as const }));
  }
}

test('IFS on a stubbed generator with known outputs gives the exact ratios', async () => {
  const c = loadIfsClassifier();
  const prompts = Array.from({ length: 10 }, (_, i) => ({ id: `p${i}`, source_id: `s${i}`, kind: (i < 4 ? 'partial' : 'full') as 'partial' | 'full', prompt: `q${i}`, instruction: `q${i}` }));
  const answer = 'The capital of France is Paris.';
  const cont = 'of the following cities is the capital of France?';
  // answers: partial p0; full p4, p5, p6 (3 of 6); with variant C the prompt is the bare text
  const answered = new Set(['q0', 'q4', 'q5', 'q6']);
  const gen = new StubGenerator((p) => (answered.has(p.replace(/\n\n### Response:\n$/, '')) ? answer : cont));
  let last = 0;
  const res = await scoreIfs(gen, c, prompts, { variants: ['C', 'B'], batchSize: 4, maxTokens: 9, onProgress: (d) => (last = d) });
  assert.equal(last, 20);
  for (const s of res.scores) {
    assert.deepEqual([s.ifs.k, s.ifs.n, s.ifs.value], [4, 10, 0.4]);
    assert.deepEqual([s.ifs_partial.k, s.ifs_partial.n, s.ifs_partial.value], [1, 4, 0.25]);
    assert.deepEqual([s.ifs_full.k, s.ifs_full.n, s.ifs_full.value], [3, 6, 0.5]);
    assert.deepEqual(s.ifs.ci, wilson(4, 10));
  }
  assert.equal(res.responses.length, 20);
  assert.equal(gen.calls.length, 6); // 3 batches per variant
  assert.equal(gen.calls[0].opts?.temperature, 0);
  assert.equal(gen.calls[0].opts?.maxTokens, 9);
  assert.equal(gen.calls[3].prompts[0], 'q0\n\n### Response:\n');
  // fits: skipped prompts are counted, not scored
  const r2 = await scoreIfs(gen, c, prompts, { variants: ['A'], fits: (w) => !w.includes('q9') });
  assert.equal(r2.scores[0].skipped, 1);
  assert.equal(r2.scores[0].ifs.n, 9);
  // an empty response is not answer-like
  const r3 = await scoreIfs(new StubGenerator(() => '   '), c, prompts.slice(0, 2), { variants: ['C'] });
  assert.equal(r3.scores[0].ifs.k, 0);
  assert.match(formatTable(res.scores), /0\.400 \[0\.168, 0\.687\] \(4\/10\)/);
  // IFS-pair beside IFS when a pair classifier is given (same responses, the prompt seen too)
  const { loadIfsPairClassifier } = await import('../src/eval/ifs/classifier.js');
  const r4 = await scoreIfs(gen, c, prompts, { variants: ['C'], pair: loadIfsPairClassifier() });
  assert.equal(r4.scores[0].ifs_pair?.n, 10);
  assert.ok(r4.responses.every((x) => x.pair_label !== undefined && typeof x.pair_prob === 'number'));
  assert.equal(r4.scores[0].ifs_pair?.k, r4.responses.filter((x) => x.pair_label === 1).length);
  assert.match(formatTable(r4.scores), /IFS-pair/);
  assert.doesNotMatch(formatTable(res.scores), /IFS-pair/);
  assert.equal(summarise('C', []).ifs.n, 0);
});

test('variants A/B/C wrap exactly; budgetSubset is balanced and fixed; the shipped prompt set loads', () => {
  assert.equal(wrapPrompt('Do X', 'C'), 'Do X');
  assert.equal(wrapPrompt('Do X', 'B'), 'Do X\n\n### Response:\n');
  assert.equal(wrapPrompt('Do X', 'A'), 'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nDo X\n\n### Response:\n');
  const { prompts, bad } = loadPromptSet();
  assert.equal(bad.length, 0);
  assert.equal(prompts.length, 1000);
  const sub = budgetSubset(prompts, 200);
  assert.equal(sub.length, 200);
  assert.equal(sub.filter((p) => p.kind === 'partial').length, 100);
  assert.deepEqual(budgetSubset(prompts, 200), sub);
  assert.equal(cutChars('alpha beta gamma delta', 12), 'alpha beta');
});

test('project-generated negatives: every kind, seeded per row, label 0', async () => {
  const { syntheticNegatives, syntheticNegative, responseVocab, SYNTHETIC_KINDS, readModelNegatives } = await import('../src/eval/ifs/negatives.js');
  const { Prng } = await import('../src/data/prng.js');
  const rows = Array.from({ length: 60 }, (_, i) => ({ id: `r${i}`, instruction: `Tell me about the number ${i} and why it matters`, response: `The number ${i} matters because it comes after ${i - 1} and it is used in many everyday counting tasks.` }));
  const vocab = responseVocab(rows);
  const a = syntheticNegatives(rows, vocab, 0);
  assert.deepEqual(syntheticNegatives(rows, vocab, 0), a);
  assert.deepEqual(syntheticNegatives(rows.slice(10), vocab, 0), a.slice(10)); // a row's noise does not depend on the others
  assert.ok(new Set(a.map((x) => x.kind)).size >= 6);
  for (const x of a) assert.equal(x.label, 0);
  for (const k of SYNTHETIC_KINDS) assert.ok(syntheticNegative(k, rows[3], vocab, new Prng(1)).trim().length > 0, k);
  const loop = syntheticNegative('loop-word', rows[0], vocab, new Prng(5));
  assert.ok(loop.length >= 4);
  const model = readModelNegatives();
  assert.ok(model.length >= 400, `${model.length} model generations`);
});

test('shipped classifier labels noise, word salad and repetition loops as not answer-like', () => {
  const c = loadIfsClassifier();
  const noise = [
    'x#9Qz@@!k ~~ 7&^%$ (( pq]] zzv \u0007\u0007 ##}{ qqq',
    '寏闄Ɖ鴻濉 ŋŢƔ �� ∆∆ 鴻濉寏',
    'the the the the the the the the the the the the the the the the',
    '- The States and a contraction and the contraction and the contr',
    'Paris is the capital. Paris is the capital. Paris is the capital. Paris is the capital. Paris is the capital.',
    'qwopz rtnmlk aeiuu bcdfg hjkl zxcvb nmqwe rtyui opasd fghjk',
  ];
  for (const t of noise) assert.equal(c.classify(t).label, 0, `${JSON.stringify(t)} → ${c.prob(t)}`);

});

test('structure features: first line vs the rest, end of the text; a gate with a second feature block', async () => {
  const { structureFeatures, featurize } = await import('../src/eval/text-classifier.js');
  const f = structureFeatures('South Park character is a kid or adult: Randy, Stan\nRandy: Adult\nStan: Kid');
  assert.ok(f.includes('x:c0:U:more'));
  assert.ok(f.some((x) => x.startsWith('x:rin:') && !x.startsWith('x:rin:0')), f.join(' '));
  assert.ok(f.includes('x:end:L'));
  assert.ok(structureFeatures('Paris.').includes('x:l0:.:1:one'));
  const c = loadIfsClassifier();
  const g = c.gate!.cfg;
  assert.ok(g.extra && g.extra.buckets === 1 << 12 && g.buckets === (1 << 17) + (1 << 12));
  const x = featurize('The capital of France is Paris.', g);
  assert.ok(x.idx.some((i) => i >= 1 << 17) && x.idx.every((i) => i < g.buckets));
  assert.equal(c.gate!.w.length, g.buckets);
});
