import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './helpers.js';
import { corpusVocabulary, fluencyStats, leadingWords, words } from '../src/eval/fluency.js';
import { samplePrompts } from '../src/pretrain/samples.js';
import { applyRepetitionPenalty, sampleToken, samplingConfig, samplingDefaults } from '../src/decode/sampling.js';

const heed = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/heed.js'), ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 300_000 });

test('fluency statistics: known words and word pairs, repeated 3-grams, unknown words by count', () => {
  const known = corpusVocabulary(['The cat sat on the mat.', "It isn't here"]);
  assert.deepEqual([...known.words].sort(), ['cat', "isn't", 'it', 'mat', 'on', 'sat', 'the', 'here'].sort());
  assert.ok(known.bigrams.has('the cat') && known.bigrams.has("it isn't") && !known.bigrams.has('mat it'), 'pairs stay inside a document');
  assert.deepEqual(words("Don't STOP-now 3 times"), ["don't", 'stop', 'now', 'times']);
  const s = fluencyStats(['the cat sat on the mat. the cat sat', 'zorp the blarg zorp'], known);
  assert.equal(s.texts, 2);
  assert.equal(s.words, 13);
  assert.equal(s.knownWordRate, 10 / 13);
  // pairs: the cat, cat sat, sat on, on the, the mat (known), mat the (no), the cat, cat sat (known); zorp the, the blarg, blarg zorp (no)
  assert.equal(s.knownBigramRate, 7 / 11);
  // first text: 7 3-grams, "the cat sat" repeats once; second: 2 3-grams, none repeat
  assert.equal(s.repeated3gramRate, 1 / 9);
  assert.deepEqual(s.unknownWords, [['zorp', 2], ['blarg', 1]]);
  assert.equal(fluencyStats([], known).knownWordRate, 0);
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

test('min-p keeps the tokens with at least min-p × the top probability, after top-p (transformers order)', () => {
  // probabilities 0.5, 0.3, 0.15, 0.05 (temperature 1)
  const logits = Float32Array.from([0.5, 0.3, 0.15, 0.05].map(Math.log));
  const seen = (o: Parameters<typeof sampleToken>[1]) => {
    const s = new Set<number>();
    for (let i = 0; i < 200; i++) s.add(sampleToken(logits, o, () => i / 200));
    return [...s].sort();
  };
  assert.deepEqual(seen({ temperature: 1 }), [0, 1, 2, 3]);
  assert.deepEqual(seen({ temperature: 1, minP: 0.25 }), [0, 1, 2]); // 0.15 ≥ 0.25 × 0.5 > 0.05
  assert.deepEqual(seen({ temperature: 1, minP: 0.5 }), [0, 1]);
  assert.deepEqual(seen({ temperature: 1, minP: 1 }), [0]);
  assert.deepEqual(seen({ temperature: 1, topP: 0.7, minP: 0.1 }), [0, 1]); // top-p cuts first
});

test('heed generate sampling: flags first, then generation_config.json (do_sample), else greedy', () => {
  const gc = { do_sample: true, temperature: 0.7, top_k: 40, repetition_penalty: 1.2 };
  const a = samplingDefaults({}, gc);
  assert.deepEqual(a.options, { temperature: 0.7, topK: 40, topP: undefined, minP: undefined, repetitionPenalty: 1.2 });
  assert.match(a.from!, /temperature 0.7, topK 40, repetitionPenalty 1.2/);
  const b = samplingDefaults({ temperature: 0, repetitionPenalty: 1 }, gc);
  assert.deepEqual(b.options, { temperature: 0, topK: 40, topP: undefined, minP: undefined, repetitionPenalty: 1 });
  const c = samplingDefaults({}, { eos_token_id: 0 });
  assert.deepEqual(c.options, { temperature: 0, topK: undefined, topP: undefined, minP: undefined, repetitionPenalty: undefined });
  assert.equal(samplingDefaults({}, { do_sample: true, min_p: 0.2 }).options.minP, 0.2);
  assert.equal(c.from, undefined);
  // a fallback (heed pretrain samples: its defaults) stands in for greedy when the file does not ask for sampling
  const fb = { temperature: 0.7, minP: 0.2, repetitionPenalty: 1.1 };
  assert.deepEqual(samplingDefaults({ minP: 0.3 }, { repetition_penalty: 1.5 }, fb).options, { temperature: 0.7, topK: undefined, topP: undefined, minP: 0.3, repetitionPenalty: 1.1 });
  assert.deepEqual(samplingDefaults({}, gc, fb).options, a.options, 'a file that asks for sampling wins over the fallback');
  // samplingConfig writes what samplingDefaults reads back; settings that are off are left out
  assert.deepEqual(samplingConfig({ temperature: 0.7, topK: 0, minP: 0.2, repetitionPenalty: 1.1 }), { do_sample: true, temperature: 0.7, min_p: 0.2, repetition_penalty: 1.1 });
  assert.deepEqual(samplingDefaults({}, samplingConfig(fb)).options, { ...fb, topK: undefined, topP: undefined });
  assert.deepEqual(samplingConfig({ temperature: 0, topK: 40, repetitionPenalty: 1 }), {});
  // do_sample false: temperature in the file is not used (transformers ignores it too)
  assert.equal(samplingDefaults({}, { do_sample: false, temperature: 0.9 }).options.temperature, 0);
});

test('the shipped base model writes English-shaped text: real words, conventional word pairs, no loops (heed pretrain samples)', () => {
  const r = heed('pretrain', 'samples', '--model', join(ROOT, 'models/base-dolly'), '--data', join(ROOT, 'data/pretrain/dolly-plain.txt'), '--samples', '24', '--json', '--threads', '1');
  assert.equal(r.status, 0, r.stderr);
  const rep = JSON.parse(r.stdout);
  assert.equal(rep.samples.length, 24);
  assert.deepEqual(rep.settings, { samples: 24, promptWords: 4, maxTokens: 48, seed: 1, batch: 8, temperature: 0.7, minP: 0.2, repetitionPenalty: 1.1 }, 'the sampling of generation_config.json');
  const m = rep.model, ref = rep.reference, sh = rep.shuffled;
  assert.ok(m.words >= 24 * 5, `${m.words} words`);
  assert.ok(m.knownWordRate >= 0.85, `known words ${m.knownWordRate}`);
  assert.ok(m.knownBigramRate >= ref.knownBigramRate - 0.1 && m.knownBigramRate >= sh.knownBigramRate + 0.25, `word pairs ${m.knownBigramRate} (held-out ${ref.knownBigramRate}, shuffled ${sh.knownBigramRate})`);
  assert.ok(m.repeated3gramRate <= 0.05, `repeated 3-grams ${m.repeated3gramRate}`);
  const missing = heed('pretrain', 'samples', '--model', join(ROOT, 'models/base-dolly'));
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /missing --data/);
});
