import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './helpers.js';
import { corpusWords, fluencyStats, leadingWords, words } from '../src/eval/fluency.js';
import { samplePrompts } from '../src/pretrain/samples.js';
import { applyRepetitionPenalty, sampleToken, samplingDefaults } from '../src/decode/sampling.js';

const heed = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/heed.js'), ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 300_000 });

test('fluency statistics: known words, repeated 3-grams, sentence ends, unknown words by count', () => {
  const known = corpusWords(['The cat sat on the mat.', "It isn't here"]);
  assert.deepEqual([...known].sort(), ['cat', "isn't", 'it', 'mat', 'on', 'sat', 'the', 'here'].sort());
  assert.deepEqual(words("Don't STOP-now 3 times"), ["don't", 'stop', 'now', 'times']);
  const s = fluencyStats(['the cat sat on the mat. the cat sat', 'zorp the blarg zorp'], known);
  assert.equal(s.texts, 2);
  assert.equal(s.words, 13);
  assert.equal(s.knownWordRate, 10 / 13);
  // first text: 7 3-grams, "the cat sat" repeats once; second: 2 3-grams, none repeat
  assert.equal(s.repeated3gramRate, 1 / 9);
  assert.equal(s.sentenceEndRate, 0.5);
  assert.deepEqual(s.unknownWords, [['zorp', 2], ['blarg', 1]]);
  assert.deepEqual(fluencyStats([], known).knownWordRate, 0);
});

test('leadingWords keeps the text between the words; samplePrompts picks usable held-out openings evenly', () => {
  assert.deepEqual(leadingWords('Hello, big world! How are you', 3), { head: 'Hello, big world', rest: '! How are you' });
  assert.deepEqual(leadingWords('one two', 5), { head: 'one two', rest: '' });
  const docs = Array.from({ length: 10 }, (_, i) => (i === 3 ? 'too short' : `doc ${'abcdefghij'[i]} starts here and then goes on for a good many more words`));
  const p = samplePrompts(docs, 3, 3);
  assert.equal(p.length, 3);
  assert.deepEqual(p.map((x) => x.prompt), ['doc a starts', 'doc e starts', 'doc h starts']);
  assert.ok(p.every((x) => x.rest.startsWith(' here and then')));
});

test('repetition penalty (transformers semantics): divides positive and multiplies negative logits of seen ids, once each', () => {
  const l = Float32Array.from([2, -1, 0.5, 3]);
  applyRepetitionPenalty(l, [0, 1, 1, 7], 2);
  assert.deepEqual([...l], [1, -2, 0.5, 3]);
  assert.deepEqual([...applyRepetitionPenalty(Float32Array.from([1, 2]), [0, 1], 1)], [1, 2]);
  assert.throws(() => applyRepetitionPenalty(Float32Array.from([1]), [0], 0), /must be > 0/);
  // greedy then picks the unseen token
  assert.equal(sampleToken(applyRepetitionPenalty(Float32Array.from([3, 2]), [0], 2), {}, Math.random), 1);
});

test('heed generate sampling: flags first, then generation_config.json (do_sample), else greedy', () => {
  const gc = { do_sample: true, temperature: 0.7, top_k: 40, repetition_penalty: 1.2 };
  const a = samplingDefaults({}, gc);
  assert.deepEqual(a.options, { temperature: 0.7, topK: 40, topP: undefined, repetitionPenalty: 1.2 });
  assert.match(a.from!, /temperature 0.7, topK 40, repetitionPenalty 1.2/);
  const b = samplingDefaults({ temperature: 0, repetitionPenalty: 1 }, gc);
  assert.deepEqual(b.options, { temperature: 0, topK: 40, topP: undefined, repetitionPenalty: 1 });
  const c = samplingDefaults({}, { eos_token_id: 0 });
  assert.deepEqual(c.options, { temperature: 0, topK: undefined, topP: undefined, repetitionPenalty: undefined });
  assert.equal(c.from, undefined);
  // do_sample false: temperature in the file is not used (transformers ignores it too)
  assert.equal(samplingDefaults({}, { do_sample: false, temperature: 0.9 }).options.temperature, 0);
});
