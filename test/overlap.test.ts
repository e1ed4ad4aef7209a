/**
 * Issue 16, item 4 (part): IFS prompts whose source instruction occurs in the training data — exact
 * (normalised) and near-duplicate matches, excluded by default under IFS early stopping in heed train
 * and counted in summary.json; the measured overlap of the shipped prompts with the shipped/shared data.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findOverlap, normaliseText, trainingDataOf, trainingPromptTexts, withoutOverlap } from '../src/eval/overlap.js';
import { loadPromptSet } from '../src/eval/ifs/prompts.js';
import type { PromptRow } from '../src/eval/ifs/fragments.js';
import { initEngine } from '../src/engine/index.js';
import { validateTrainConfig } from '../src/train/config.js';
import { train } from '../src/train/trainer.js';
import { ROOT, SHARED, TINY } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'heed-overlap-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
const row = (source_id: string, instruction: string, kind: 'full' | 'partial' = 'full'): PromptRow => ({ id: `${source_id}#${kind}`, source_id, kind, prompt: kind === 'full' ? instruction : instruction.slice(0, 10), instruction });

const LONG = 'Given this paragraph about the Grammy Awards, who has the most Grammys of all time and in which year did they win the last one?';

test('exact (normalised), near-duplicate, templated look-alikes and unrelated prompts', () => {
  assert.equal(normaliseText('  Why is the SKY blue?! '), 'why is the sky blue');
  const prompts = [row('a', 'Why is the sky blue?'), row('a', 'Why is the sky blue?', 'partial'), row('b', LONG), row('c', 'What are the words of House Tyrell?'), row('d', 'Write a haiku about autumn leaves.'), row('e', 'Why is the sk')];
  const train = [
    'Task: why is the sky BLUE\n\nAnswer briefly.',
    // b with two words changed and a context appended: a near-duplicate
    'Instruction: Given this paragraph about the Grammy Awards, who has the most Grammys of all time and in which year did they win the final one?\nInput: The record ...',
    'What are the words of House Beesbury?',
    'Why is the skyline of Paris so low?',
  ];
  const r = findOverlap(prompts, train);
  assert.deepEqual(
    r.matches.map((m) => [m.source_id, m.match]),
    [['a', 'exact'], ['b', 'near']],
  );
  assert.equal(r.exact_sources, 1);
  assert.equal(r.near_sources, 1);
  assert.equal(r.overlapping_prompts, 3, 'both prompts of source a, and b');
  assert.deepEqual(withoutOverlap(prompts, r).map((p) => p.source_id), ['c', 'd', 'e'], '"why is the sk" is no whole-word match; templated look-alikes stay');
  assert.equal(findOverlap(prompts, train, { nearThreshold: 0.99 }).near_sources, 0);
});

test('measured: the shipped IFS prompts against the shipped demo data and the shared Dolly 3k', async () => {
  const ps = loadPromptSet(join(ROOT, 'data/ifs/prompts.jsonl')).prompts;
  const demo = findOverlap(ps, await trainingPromptTexts([join(ROOT, 'data/demo/dolly-train.jsonl')]));
  assert.equal(demo.prompts, 1000);
  assert.equal(demo.exact_sources, 3);
  assert.equal(demo.near_sources, 0);
  const dolly = join(SHARED, 'data/dolly_3k.jsonl');
  if (existsSync(dolly)) {
    const d = findOverlap(ps, await trainingPromptTexts([dolly]));
    assert.equal(d.exact_sources, 991);
    assert.equal(d.near_sources, 9);
    assert.equal(d.overlapping_prompts, 1000, 'every shipped IFS prompt comes from the shared Dolly 3k');
  }
});

test('measured: the alpaca-eval prompt set (heed ifs default) shares no instruction with any shipped or shared training text', async () => {
  const ps = loadPromptSet('alpaca-eval').prompts;
  assert.equal(ps.length, 743);
  assert.equal(new Set(ps.map((p) => p.source_id)).size, 743);
  const texts = [...(await trainingPromptTexts([join(ROOT, 'data/demo/dolly-train.jsonl')])), ...readFileSync(join(ROOT, 'data/pretrain/dolly-plain.txt'), 'utf8').split('<|endoftext|>')];
  for (const f of ['dolly_3k', 'alpaca_5k', 'lima']) if (existsSync(join(SHARED, `data/${f}.jsonl`))) texts.push(...(await trainingPromptTexts([join(SHARED, `data/${f}.jsonl`)])));
  const r = findOverlap(ps, texts);
  assert.equal(r.overlapping_prompts, 0, JSON.stringify(r.matches.slice(0, 3)));
  // the check is not blind: the Dolly set's instructions are in the base model's pretraining corpus (all but the 200 held out)
  const dolly = findOverlap(loadPromptSet('dolly').prompts, readFileSync(join(ROOT, 'data/pretrain/dolly-plain.txt'), 'utf8').split('<|endoftext|>'));
  assert.equal(dolly.overlapping_prompts, 804);
});

test('heed train with IFS early stopping excludes overlapping prompts by default and counts them in summary.json', async () => {
  await initEngine();
  // a prompt set of short prompts (the tiny model has 128 positions), 3 of whose 6 sources are trained on
  const words = ['apples', 'rivers', 'clouds', 'stones', 'candles', 'bridges'];
  const ps = words.flatMap((w, i) => [row(`s${i}`, `Tell me about ${w}.`), row(`s${i}`, `Tell me about ${w}.`, 'partial')]);
  const promptsFile = join(tmp, 'prompts.jsonl');
  writeFileSync(promptsFile, ps.map((p) => JSON.stringify(p)).join('\n') + '\n');
  const data = join(tmp, 'own.jsonl');
  const rows = [...words.slice(0, 3).map((w) => ({ instruction: `Please: tell me about ${w.toUpperCase()}`, output: 'Sure.' })), ...Array.from({ length: 7 }, (_, i) => ({ instruction: `Count to ${i}.`, output: `${i}` }))];
  writeFileSync(data, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const logs: string[] = [];
  const cfg = ({ ifs, ...over }: Record<string, unknown>) =>
    validateTrainConfig({ model: join(TINY, 'llama-gqa'), data, template: 'chatml', max_length: 96, batch_size: 4, steps: 1, eval_every: 1, eval: null, out: join(tmp, 'runs'), ...over, early_stopping: { ifs: { prompts: promptsFile, budget: 4, max_tokens: 2, batch_size: 4, variant: 'C', measure_only: true, ...(ifs as object) } } });
  const s = await train(cfg({ name: 'excl' }), { quiet: true, log: (x: string) => logs.push(x) });
  const o = s.ifs_overlap as { excluded: number; exact_sources: number; overlapping_prompts: number; used_from: number };
  assert.equal(o.exact_sources, 3);
  assert.equal(o.overlapping_prompts, 6);
  assert.equal(o.excluded, 6);
  assert.equal(o.used_from, 6);
  assert.ok(logs.some((l) => /IFS prompts: 6 of 12 IFS prompts \(3 of 6 source instructions: 3 exact, 0 near-duplicate\) occur in the training data; excluded, 6 left/.test(l)), logs.join('\n'));
  const kept = await train(cfg({ name: 'keep', ifs: { exclude_overlap: false } }), { quiet: true, log: () => {} });
  assert.equal((kept.ifs_overlap as { excluded: number }).excluded, 0);
  // the folders that run saved name their training data (heed ifs checks it without --train-data)
  for (const sub of ['final', 'step-1']) {
    const ref = await trainingDataOf(join(tmp, 'runs', 'excl', sub));
    assert.ok(ref, sub);
    assert.deepEqual(ref.paths, [data]);
    assert.deepEqual(ref.missing, []);
  }
  assert.equal(await trainingDataOf(join(TINY, 'llama-gqa')), undefined, 'a folder heed did not train names no data');
});
