import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ablationConfigs, formatAblation, runAblation } from '../src/eval/ifs/ablate.js';
import { PRESETS, type RuleTokenizer } from '../src/decode/rules.js';
import { loadIfsClassifier } from '../src/eval/ifs/classifier.js';
import { wrapPrompt } from '../src/eval/ifs/score.js';
import type { GenerateOptions, Generation, TextGenerator } from '../src/decode/generate.js';
import { ROOT, TINY } from './helpers.js';

const heed = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/heed.js'), ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', HEED_THREADS: '1' }, timeout: 300_000 });

test('ablationConfigs: base alone, all rules, and each rule group removed', () => {
  const r = PRESETS.default;
  const c = ablationConfigs(r);
  assert.deepEqual(c.map((x) => x.key), ['base', 'all', '-eos', '-repetition', '-uniform']);
  assert.equal(c[0].rules, null);
  assert.deepEqual(c[1].rules, r);
  assert.equal(c[2].rules!.eos, null);
  assert.deepEqual(c[2].rules!.tokens, r.tokens);
  assert.equal(c[3].rules!.repetition, null);
  assert.deepEqual(c[3].rules!.eos, r.eos);
  assert.deepEqual(c[4].rules!.tokens, []);
  assert.deepEqual(c[4].rules!.repetition, r.repetition);
  assert.equal(wrapPrompt('Do X', 'H'), '<|user|>\nDo X\n<|assistant|>\n');
});

/** A stub that answers only when a logits processor is given (i.e. with rules), so the rows differ. */
class Stub implements TextGenerator {
  readonly name = 'stub';
  seen: number[] = [];
  async generate(prompts: string[], opts?: GenerateOptions): Promise<Generation[]> {
    const n = opts?.logitsProcessors?.length ?? 0;
    this.seen.push(n);
    return prompts.map((p) => ({ prompt: p, promptIds: [], text: n ? 'The capital of France is Paris.' : 'of the following cities is the capital of France?', ids: [1, 2], finishReason: n ? ('eos' as const) : ('length' as const) }));
  }
}

test('runAblation passes compileRules(...).processor for every configuration but the base model', async () => {
  const tok: RuleTokenizer = { tokenToId: () => undefined, idToToken: () => undefined, tokens: (t) => [...t], eosIds: [0], vocabSize: 8 };
  const prompts = Array.from({ length: 4 }, (_, i) => ({ id: `p${i}`, source_id: `s${i}`, kind: (i % 2 ? 'full' : 'partial') as 'full' | 'partial', prompt: `q${i}`, instruction: `q${i}` }));
  const gen = new Stub();
  const rows = await runAblation(gen, tok, loadIfsClassifier(), prompts, PRESETS.default, { variants: ['H'], maxTokens: 8 });
  assert.equal(rows.length, 5);
  assert.deepEqual(rows.map((r) => r.scores[0].ifs.value), [0, 1, 1, 1, 1]);
  assert.deepEqual(rows.map((r) => r.eos_share), [0, 1, 1, 1, 1]);
  assert.deepEqual(gen.seen, [0, 1, 1, 1, 1]);
  assert.match(formatAblation(rows), /without uniform token changes\s+1\.000/);
});

test('heed rules ablate on a tiny model: 5 rows, IFS in [0, 1], deterministic', () => {
  const args = ['rules', 'ablate', '--model', join(TINY, 'llama-gqa'), '--variant', 'C', '--limit', '4', '--max-tokens', '6', '--json'];
  const a = heed(...args);
  assert.equal(a.status, 0, a.stderr);
  const j = JSON.parse(a.stdout);
  assert.equal(j.rows.length, 5);
  assert.deepEqual(j.rows.map((r: { key: string }) => r.key), ['base', 'all', '-eos', '-repetition', '-uniform']);
  for (const r of j.rows) {
    assert.equal(r.scores.length, 1);
    assert.equal(r.scores[0].variant, 'C');
    assert.equal(r.scores[0].ifs.n, 4);
    assert.ok(r.scores[0].ifs.value >= 0 && r.scores[0].ifs.value <= 1);
  }
  const b = heed(...args);
  assert.equal(b.status, 0, b.stderr);
  assert.deepEqual(JSON.parse(b.stdout).rows, j.rows);
  const t = heed('rules', 'ablate', '--model', join(TINY, 'llama-gqa'), '--variant', 'H', '--limit', '2', '--max-tokens', '4');
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stdout, /configuration\s+IFS H\s+mean tokens\s+EOS share/);
  for (const name of ['base model alone', 'all rules', 'without EOS ramp', 'without repetition', 'without uniform token changes']) assert.match(t.stdout, new RegExp(`\\n${name}\\s+\\d\\.\\d{3}`));
  const e = heed('rules', 'ablate', '--model', join(TINY, 'llama-gqa'), '--variant', 'D');
  assert.equal(e.status, 2);
  assert.match(e.stderr, /--variant must be A, B, C, H or all/);
});

test('a batch that fails on an empty generation is retried row by row; the empty row scores 0', async () => {
  const { scoreIfs } = await import('../src/eval/ifs/score.js');
  class Flaky implements TextGenerator {
    readonly name = 'flaky';
    async generate(prompts: string[]): Promise<Generation[]> {
      if (prompts.some((p) => p.includes('q1'))) throw new Error('token_ids must be a non-empty array of integers.');
      return prompts.map((p) => ({ prompt: p, promptIds: [], text: 'The capital of France is Paris.', ids: [1], finishReason: 'eos' as const }));
    }
  }
  const prompts = Array.from({ length: 3 }, (_, i) => ({ id: `p${i}`, source_id: `s${i}`, kind: 'full' as const, prompt: `q${i}`, instruction: `q${i}` }));
  const res = await scoreIfs(new Flaky(), loadIfsClassifier(), prompts, { variants: ['C'] });
  assert.deepEqual(res.responses.map((r) => r.label), [1, 0, 1]);
  assert.equal(res.responses[1].response, '');
  assert.equal(res.responses[1].finish_reason, 'eos');
});
