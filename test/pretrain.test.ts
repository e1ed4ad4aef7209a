import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, tmp } from './helpers.js';
import { trainBpe, bpeTokenizerJson, preTokenize } from '../src/pretrain/bpe.js';
import { readCorpus, splitHeldOut } from '../src/pretrain/corpus.js';
import { pretrainSchedule } from '../src/pretrain/pretrain.js';
import { lrAt } from '../src/train/schedule.js';
import { loadTokenizer } from '../src/io/tokenizer.js';

const heed = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/heed.js'), ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 300_000 });

const CORPUS = join(ROOT, 'data/pretrain/dolly-responses.txt');
const docs = readCorpus(CORPUS);
const sample = docs.slice(0, 300);

function tokenizerDir(merges: Array<[string, string]>, specials: string[]): string {
  const dir = tmp('heed-bpe-');
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(bpeTokenizerJson({ merges, specials })));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ eos_token: '<|endoftext|>' }));
  return dir;
}

test('the shipped corpus: Dolly response texts, separated by <|endoftext|> lines, with its licence', () => {
  assert.ok(docs.length > 2900, `${docs.length} documents`);
  assert.ok(docs.every((d) => !d.includes('<|endoftext|>')));
  const readme = readFileSync(join(ROOT, 'data/pretrain/README.md'), 'utf8');
  assert.match(readme, /CC BY-SA 3\.0/);
  assert.match(readme, /databricks-dolly-15k/);
  const { train, heldOut } = splitHeldOut(docs, 0.05);
  assert.equal(train.length + heldOut.length, docs.length);
  assert.ok(Math.abs(heldOut.length / docs.length - 0.05) < 0.01);
});

test('BPE: exact round trip through @huggingface/tokenizers, fewer tokens than bytes, deterministic', () => {
  const r = trainBpe(sample, { vocabSize: 700 });
  assert.equal(r.vocabSize, 700);
  assert.equal(r.merges.length, 700 - 3 - 256);
  const dir = tokenizerDir(r.merges, r.specials);
  const tok = loadTokenizer(dir);
  assert.equal(tok.vocabSize, 700);
  assert.equal(tok.tokenToId('<|endoftext|>'), 0);
  assert.equal(tok.tokenToId('<|im_end|>'), 2);
  const texts = [
    'The quick brown fox jumps over the lazy dog.',
    "It's a 12-year-old's café — naïve résumé, ÅNGSTRÖM; 日本語のテキスト, emoji 🦙🚀 and math ∑x² ≤ 3.",
    '  leading spaces,\ttabs\n\nand blank lines\r\n  trailing   ',
    'ZERO\u200bWIDTH\u00a0nbsp and combining e\u0301 and lone symbols ~`^|{}[]\\',
    docs[5],
  ];
  for (const t of texts) {
    const ids = tok.encode(t);
    assert.equal(tok.decode(ids), t, `round trip of ${JSON.stringify(t.slice(0, 40))}`);
  }
  // merges compress: fewer tokens than bytes on held-out-like prose
  const prose = docs.slice(1000, 1050).join('\n');
  const n = tok.encode(prose).length;
  const bytes = Buffer.byteLength(prose);
  assert.ok(n < bytes * 0.5, `${n} tokens for ${bytes} bytes`);
  // the special tokens stay single tokens
  assert.deepEqual(tok.encode('<|im_start|>user'), [1, ...tok.encode('user')]);
  // deterministic, and independent of document order
  const again = trainBpe([...sample].reverse(), { vocabSize: 700 });
  assert.deepEqual(again.merges, r.merges);
  // a bigger vocabulary compresses more
  const big = trainBpe(sample, { vocabSize: 1200 });
  assert.deepEqual(big.merges.slice(0, r.merges.length), r.merges);
  const tokBig = loadTokenizer(tokenizerDir(big.merges, big.specials));
  assert.ok(tokBig.encode(prose).length < n);
});

test('BPE: GPT-2 pre-tokenisation and errors', () => {
  assert.deepEqual(preTokenize("I'll go  now, ok?"), ['I', "'ll", ' go', ' ', ' now', ',', ' ok', '?']);
  assert.throws(() => trainBpe(sample, { vocabSize: 100 }), /below 259/);
  const tiny = trainBpe(['ab ab ab'], { vocabSize: 1000 });
  assert.ok(tiny.stats.stoppedEarly && tiny.vocabSize < 1000);
});

test('corpus reader: text with blank lines, jsonl text and messages; schedule', () => {
  const d = tmp('heed-corpus-');
  writeFileSync(join(d, 'a.txt'), 'first doc\nline two\n\nsecond doc\n\n\nthird\n');
  assert.deepEqual(readCorpus(join(d, 'a.txt')), ['first doc\nline two', 'second doc', 'third']);
  writeFileSync(join(d, 'b.jsonl'), '{"text":"one"}\n{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"two"}]}\n');
  assert.deepEqual(readCorpus(join(d, 'b.jsonl')), ['one', 'two']);
  writeFileSync(join(d, 'c.txt'), 'only one');
  assert.throws(() => readCorpus(join(d, 'c.txt')), /at least 2/);
  // heed's one schedule (src/train/schedule.ts) at the 0-based update index: update 5 of 10 warmup updates, the
  // peak, then cosine to 10% reached one step past the last update
  const o = pretrainSchedule({ lr: 1, warmup: 10, steps: 110 });
  assert.equal(lrAt(o, 4), 0.5);
  assert.equal(lrAt(o, 9), 1);
  assert.equal(lrAt(o, 10), 1);
  assert.ok(lrAt(o, 109) > 0.1 && lrAt(o, 109) < 0.1005);
  assert.ok(Math.abs(lrAt(o, 110) - 0.1) < 1e-12);
});

test('heed pretrain: a tiny run writes a model folder that generate and model info accept, held-out loss drops', () => {
  const d = tmp('heed-pretrain-');
  const data = join(d, 'corpus.txt');
  writeFileSync(data, docs.slice(0, 400).join('\n<|endoftext|>\n'));
  const out = join(d, 'model');
  mkdirSync(out);
  const r = heed('pretrain', '--data', data, '--out', out, '--vocab', '400', '--hidden', '32', '--layers', '2', '--heads', '2', '--kv-heads', '1', '--intermediate', '64', '--context', '64', '--batch', '4', '--seq', '32', '--steps', '60', '--lr', '1e-2', '--warmup', '5', '--eval-every', '20', '--eval-batches', '4', '--threads', '1', '--samples', '4');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /samples: 4 continuations of held-out document openings/);
  assert.match(r.stderr, /known words +[\d.]+% +[\d.]+%/);
  assert.match(r.stdout, /held-out loss [\d.]+ -> [\d.]+/);
  assert.match(r.stderr, /BPE: 400 tokens/);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'training.json']) assert.ok(existsSync(join(out, f)), f);
  const tj = JSON.parse(readFileSync(join(out, 'training.json'), 'utf8'));
  assert.equal(tj.finished, true);
  const held = tj.curve.filter((p: { heldOut?: number }) => p.heldOut !== undefined).map((p: { heldOut: number }) => p.heldOut);
  assert.ok(held.length >= 4, JSON.stringify(held));
  assert.ok(held[held.length - 1] < held[0] - 0.5, `held-out ${held[0]} -> ${held[held.length - 1]}`);
  // the end-of-run samples: 4 continuations with their statistics next to the held-out text's
  assert.equal(tj.samples.samples.length, 4);
  for (const k of ['model', 'reference']) assert.ok(tj.samples[k].knownWordRate >= 0 && tj.samples[k].knownWordRate <= 1 && tj.samples[k].words > 0, k);
  assert.ok(tj.samples.reference.knownWordRate > 0.6, `held-out text is mostly words of the training text: ${tj.samples.reference.knownWordRate}`);
  // their sampling settings become generation_config.json's defaults, which heed generate uses unless flags say otherwise
  const gc = JSON.parse(readFileSync(join(out, 'generation_config.json'), 'utf8'));
  assert.deepEqual(gc, { bos_token_id: 0, eos_token_id: 0, pad_token_id: 0, do_sample: true, temperature: tj.samples.settings.temperature, min_p: tj.samples.settings.minP, repetition_penalty: tj.samples.settings.repetitionPenalty });
  const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.equal(cfg.model_type, 'llama');
  assert.equal(cfg.tie_word_embeddings, true);
  assert.equal(cfg.vocab_size, 400);
  const info = heed('model', 'info', out, '--json');
  assert.equal(info.status, 0, info.stderr);
  const g = heed('generate', '--model', out, '--prompt', 'The', '--max-tokens', '8', '--json');
  assert.equal(g.status, 0, g.stderr);
  const res = JSON.parse(g.stdout);
  assert.ok(res[0].tokens > 0);
  assert.match(g.stderr, /\[generation_config.json: temperature [\d.]+, minP [\d.]+, repetitionPenalty [\d.]+/);
  // with the same seed sampling repeats itself; --temperature 0 is greedy (no notice about the file's temperature)
  const g2 = heed('generate', '--model', out, '--prompt', 'The', '--max-tokens', '8', '--json');
  assert.equal(JSON.parse(g2.stdout)[0].text, res[0].text);
  const greedy = heed('generate', '--model', out, '--prompt', 'The', '--max-tokens', '8', '--json', '--temperature', '0');
  assert.equal(greedy.status, 0, greedy.stderr);
  assert.doesNotMatch(greedy.stderr, /generation_config.json: temperature/);
  // --init continues from the folder (its weights, shape and tokenizer); global step numbers; phase 1 kept
  const out2 = join(d, 'model2');
  const c = heed('pretrain', '--data', data, '--out', out2, '--init', out, '--steps', '20', '--batch', '4', '--seq', '32', '--lr', '5e-3', '--warmup', '2', '--eval-every', '10', '--eval-batches', '4', '--threads', '1', '--seed', '7');
  assert.equal(c.status, 0, c.stderr);
  const tj2 = JSON.parse(readFileSync(join(out2, 'training.json'), 'utf8'));
  assert.equal(tj2.stepOffset, 60);
  assert.equal(tj2.curve[0].step, 60);
  assert.equal(tj2.curve[tj2.curve.length - 1].step, 80);
  assert.equal(tj2.previous.curve.length, tj.curve.length);
  assert.ok(Math.abs(tj2.curve[0].heldOut - held[held.length - 1]) < 1e-3, `${tj2.curve[0].heldOut} vs ${held[held.length - 1]}`);
  assert.equal(readFileSync(join(out2, 'tokenizer.json'), 'utf8'), readFileSync(join(out, 'tokenizer.json'), 'utf8'));
  // bad shapes are one-line errors
  const bad = heed('pretrain', '--data', data, '--out', join(d, 'x'), '--hidden', '30', '--heads', '4');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /not divisible/);
});
