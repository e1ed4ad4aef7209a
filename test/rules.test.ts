import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initEngine } from '../src/engine/index.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { loadModel, disposeParams } from '../src/models/load.js';
import { EngineGenerator } from '../src/decode/generate.js';
import { argmax } from '../src/decode/sampling.js';
import { HeedError } from '../src/errors.js';
import { PRESETS, HEWITT_2024_LLAMA2_IDS, compileRules, eosBonus, loadRules, parseRules, repetitionIds, textIds, pieceStyle, type RuleTokenizer } from '../src/decode/rules.js';
import { ROOT, SHARED, TINY, tmp } from './helpers.js';

const LLAMA2 = join(SHARED, 'tokenizers/Llama-2-7b');
const heed = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/heed.js'), ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 120_000 });

/** a 3-token vocabulary for hand-computed arithmetic; id 2 is EOS */
const fakeTok = (V = 3, eos = [2]): RuleTokenizer => ({
  tokenToId: () => undefined,
  idToToken: (i) => `t${i}`,
  tokens: (s) => [...s],
  eosIds: eos,
  vocabSize: V,
});
const ctx = (promptLength: number, step: number, row = 0) => ({ row, promptLength, step });

test('hewitt-2024 string form maps to exactly the paper ids with the real Llama-2 tokenizer', { skip: !existsSync(join(LLAMA2, 'tokenizer.json')) && 'no Llama-2 tokenizer in ../shared' }, () => {
  const tok = loadTokenizer(LLAMA2);
  assert.equal(pieceStyle(tok), 'sentencepiece');
  for (const preset of ['hewitt-2024', 'default']) {
    const c = compileRules(PRESETS[preset], tok);
    assert.deepEqual(c.tokens.map((t) => [t.ids, t.delta]), HEWITT_2024_LLAMA2_IDS.map(([id, d]) => [[id], d]), preset);
    assert.deepEqual(c.eosIds, [2]);
  }
  const c = compileRules(PRESETS['hewitt-2024'], tok);
  assert.deepEqual(c.tokens.map((t) => t.pieces[0]), ['<', '▁<', '|', '▁I', 'I', '▁We', 'What', '▁should', '▁*', '▁-', '▁▁▁', '▁#', '▁##', '<0x0A>', '!']);
  // the raw-id preset gives the same rule scores
  const ids = [1, 306, 29902, 13];
  const a = compileRules(PRESETS['hewitt-2024'], tok).scores(ids, ctx(2, 2), 32000);
  const b = compileRules(PRESETS['hewitt-2024-ids'], tok).scores(ids, ctx(2, 2), 32000);
  assert.deepEqual(a, b);
  // withSpace and piece forms
  const w = compileRules(parseRules({ tokens: [{ text: 'I', withSpace: true, delta: -5 }, { piece: '▁should', delta: -6 }, { text: 'no such single token', delta: 1 }] }), tok);
  assert.deepEqual(w.tokens.map((t) => t.ids), [[29902, 306], [881], []]);
});

test('text → ids on a byte-level tokenizer uses the GPT-2 byte alphabet', () => {
  const tok = loadTokenizer(join(TINY, 'llama-gqa'));
  assert.equal(pieceStyle(tok), 'byte-level');
  assert.deepEqual(textIds(tok, '\n'), [tok.tokenToId('Ċ')]);
  assert.deepEqual(textIds(tok, '!'), [tok.tokenToId('!')]);
  assert.deepEqual(textIds(tok, ' '), [tok.tokenToId('Ġ')]);
  assert.deepEqual(textIds(tok, ' should'), []); // no single token in a 259-piece vocabulary
});

test('PoE arithmetic on hand-computed logits: log_softmax(base) + w·log_softmax(rules)', () => {
  const rules = parseRules({ tokens: [{ ids: [0], delta: 3 }, { ids: [2], delta: -1 }] });
  const expect = { 1: [-3.2357299233137145, -5.2357299233137145, -4.2357299233137145], 0.5: [-3.202787971435, -3.702787971435, -2.202787971435] };
  for (const w of [1, 0.5] as const) {
    const p = compileRules({ ...rules, weight: w }, fakeTok()).processor;
    const out = p([7], Float32Array.of(1, 2, 4), ctx(1, 0));
    for (let i = 0; i < 3; i++) assert.ok(Math.abs(out[i] - expect[w][i]) < 1e-5, `w=${w} i=${i}: ${out[i]} vs ${expect[w][i]}`);
  }
  // weight 0 = the base model alone (log-probs, same argmax)
  const p0 = compileRules({ ...rules, weight: 0 }, fakeTok()).processor;
  assert.equal(argmax(p0([7], Float32Array.of(1, 2, 4), ctx(1, 0))), 2);
});

test('EOS ramp at n = 1, 125, 249, 250 for both presets (hewitt-2024 drops to 0, default holds)', () => {
  const h = PRESETS['hewitt-2024'].eos!;
  const d = PRESETS.default.eos!;
  const near = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);
  for (const e of [h, d]) {
    near(eosBonus(e, 0), 0);
    near(eosBonus(e, 1), 15 / 250);
    near(eosBonus(e, 125), 7.5);
    near(eosBonus(e, 249), (15 * 249) / 250);
  }
  near(eosBonus(h, 250), 0);
  near(eosBonus(h, 400), 0);
  near(eosBonus(d, 250), 15);
  near(eosBonus(d, 400), 15);
  // through the processor: n = ids.length − promptLength (tokens generated so far)
  const tok = fakeTok(4, [3]);
  for (const [preset, at250] of [['hewitt-2024', 0], ['default', 15]] as const) {
    const c = compileRules({ ...PRESETS[preset], tokens: [], repetition: null }, tok);
    for (const [n, want] of [[1, 0.06], [125, 7.5], [249, 14.94], [250, at250]] as const) {
      const ids = [0, ...new Array(n).fill(1)];
      const s = c.scores(ids, ctx(1, n), 4);
      near(Math.fround(s[3]), Math.fround(want));
      assert.equal(s[1], 0);
    }
  }
});

test('repetition: distinct ids once, scope from-user-turn (with offset) vs response', () => {
  // prompt: BOS 1, system 5, user turn 7 7 8; generated: 9 7
  const ids = [1, 5, 7, 7, 8, 9, 7];
  const c = ctx(5, 2);
  assert.deepEqual([...repetitionIds(ids, c, 'from-user-turn')].sort(), [1, 5, 7, 8, 9]);
  assert.deepEqual([...repetitionIds(ids, c, 'from-user-turn', 2)].sort(), [7, 8, 9]);
  assert.deepEqual([...repetitionIds(ids, c, 'response', 2)].sort(), [7, 9]);
  const tok = fakeTok(10, [0]);
  const base = { weight: 1, eos: null, tokens: [] };
  const fromUser = compileRules({ ...base, repetition: { penalty: 1.5, scope: 'from-user-turn' } }, tok, { userTurnOffset: 2 }).scores(ids, c, 10);
  assert.deepEqual([...fromUser], [0, 0, 0, 0, 0, 0, 0, -1.5, -1.5, -1.5]);
  const resp = compileRules({ ...base, repetition: { penalty: 1.5, scope: 'response' } }, tok).scores(ids, c, 10);
  assert.deepEqual([...resp], [0, 0, 0, 0, 0, 0, 0, -1.5, 0, -1.5]);
  // per-row offsets for batches
  const perRow = compileRules({ ...base, repetition: { penalty: 1, scope: 'from-user-turn' } }, tok, { userTurnOffset: (r) => (r === 0 ? 0 : 4) }).scores(ids, ctx(5, 2, 1), 10);
  assert.deepEqual([...perRow], [0, 0, 0, 0, 0, 0, 0, -1, -1, -1]);
});

test('schema errors name the field; unknown presets and files are user errors', () => {
  const bad: Array<[unknown, RegExp]> = [
    [{ tokens: [{ text: 'I' }] }, /field "tokens\[0\]\.delta"/],
    [{ tokens: [{ text: 'I', ids: [3], delta: 1 }] }, /field "tokens\[0\]".*exactly one of/],
    [{ eos: { slope: 15, cap: 0, afterCap: 'hold' } }, /field "eos\.cap"/],
    [{ eos: { slope: 15, cap: 250, afterCap: 'keep' } }, /field "eos\.afterCap"/],
    [{ repetition: { penalty: 1.5, scope: 'all' } }, /field "repetition\.scope"/],
    [{ weight: -1 }, /field "weight"/],
    [{ wieght: 1 }, /wieght/],
  ];
  for (const [raw, re] of bad) assert.throws(() => parseRules(raw, 'x.json'), (e: unknown) => e instanceof HeedError && re.test(e.oneLine()) && /fix:/.test(e.oneLine()), JSON.stringify(raw));
  assert.throws(() => loadRules('no-such-preset'), /neither a preset nor a file/);
  const dir = tmp();
  writeFileSync(join(dir, 'r.json'), '{ "tokens": [ {"text": "I", "delta": "big"} ] }');
  assert.throws(() => loadRules(join(dir, 'r.json')), /r\.json: field "tokens\[0\]\.delta"/);
  writeFileSync(join(dir, 'ok.json'), JSON.stringify({ eos: { slope: 5, cap: 10, afterCap: 'hold' } }));
  assert.deepEqual(loadRules(join(dir, 'ok.json')), { weight: 1, eos: { slope: 5, cap: 10, afterCap: 'hold' }, tokens: [], repetition: null });
  assert.throws(() => compileRules(parseRules({ tokens: [{ ids: [999999], delta: 1 }] }), fakeTok()), /tokens\[0\]\.ids\[0\]/);
});

test('greedy decoding with the adapter on a tiny model is deterministic and ends earlier when EOS is likely', async () => {
  await initEngine();
  const model = await loadModel(join(TINY, 'llama-gqa'));
  const gen = new EngineGenerator(model);
  const prompt = [[40, 41, 42]]; // the base model runs to max tokens on this prompt
  const plain = await gen.generateIds(prompt, { maxTokens: 12, eosIds: [0] });
  assert.equal(plain[0].finishReason, 'length');
  // a steep EOS ramp: the bonus at n = 3 is 60, far above the base model's preference
  const steep = compileRules(parseRules({ eos: { slope: 200, cap: 10, afterCap: 'hold' } }), model.tokenizer);
  const a = await gen.generateIds(prompt, { maxTokens: 12, eosIds: [0], logitsProcessors: [steep.processor] });
  const b = await gen.generateIds(prompt, { maxTokens: 12, eosIds: [0], logitsProcessors: [steep.processor] });
  assert.deepEqual(a[0].ids, b[0].ids);
  assert.equal(a[0].finishReason, 'eos');
  assert.ok(a[0].ids.length < plain[0].ids.length, `${a[0].ids.length} vs ${plain[0].ids.length}`);
  // the default preset is deterministic too and never longer than the base here
  const def = compileRules(PRESETS.default, model.tokenizer);
  const d1 = await gen.generateIds(prompt, { maxTokens: 12, eosIds: [0], logitsProcessors: [def.processor] });
  const d2 = await gen.generateIds(prompt, { maxTokens: 12, eosIds: [0], logitsProcessors: [def.processor] });
  assert.deepEqual(d1[0].ids, d2[0].ids);
  disposeParams(model.params);
});

test('the paper ramp turns a second-best EOS into the choice: 7.5 at n = 125 (hand logits)', () => {
  const tok = fakeTok(4, [3]);
  const logits = Float32Array.of(0, 5, 0, 4); // token 1 best, EOS (3) second by 1 nat
  const c = compileRules({ ...PRESETS['hewitt-2024'], tokens: [], repetition: null }, tok);
  const at = (n: number) => argmax(c.processor([0, ...new Array(n).fill(2)], Float32Array.from(logits), ctx(1, n)));
  assert.equal(at(0), 1);
  assert.equal(at(10), 1); // bonus 0.6 < 1
  assert.equal(at(125), 3);
  assert.equal(at(250), 1); // the paper's bug: the bonus is gone
  const d = compileRules({ ...PRESETS.default, tokens: [], repetition: null }, tok);
  assert.equal(argmax(d.processor([0, ...new Array(250).fill(2)], Float32Array.from(logits), ctx(1, 250))), 3);
});

test('heed generate --adapter rules end to end; heed rules explain (text and --json)', () => {
  const m = join(TINY, 'llama-gqa');
  const base = heed('generate', '--model', m, '--prompt', 'hello', '--max-tokens', '6', '--json');
  assert.equal(base.status, 0, base.stderr);
  const r1 = heed('generate', '--model', m, '--prompt', 'hello', '--max-tokens', '6', '--adapter', 'rules', '--json');
  assert.equal(r1.status, 0, r1.stderr);
  const r2 = heed('generate', '--model', m, '--prompt', 'hello', '--max-tokens', '6', '--adapter', 'rules:hewitt-2024', '--json');
  assert.equal(r2.status, 0, r2.stderr);
  assert.equal(JSON.parse(r1.stdout).length, 1);
  const dir = tmp();
  const f = join(dir, 'steep.json');
  writeFileSync(f, JSON.stringify({ eos: { slope: 200, cap: 10, afterCap: 'hold' } }));
  const r3 = heed('generate', '--model', m, '--prompt', 'hello', '--max-tokens', '6', '--adapter', `rules:${f}`, '--json');
  assert.equal(r3.status, 0, r3.stderr);
  assert.equal(JSON.parse(r3.stdout)[0].finish_reason, 'eos');
  const bad = heed('generate', '--model', m, '--prompt', 'hello', '--adapter', 'lora');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--adapter/);
  const badFile = join(dir, 'bad.json');
  writeFileSync(badFile, JSON.stringify({ repetition: { penalty: 1, scope: 'everything' } }));
  const r4 = heed('generate', '--model', m, '--prompt', 'hello', '--adapter', `rules:${badFile}`);
  assert.equal(r4.status, 2);
  assert.match(r4.stderr, /repetition\.scope/);

  if (existsSync(join(LLAMA2, 'tokenizer.json'))) {
    const j = heed('rules', 'explain', '--model', LLAMA2, '--rules', 'hewitt-2024', '--json');
    assert.equal(j.status, 0, j.stderr);
    const rows = JSON.parse(j.stdout) as Array<{ rule: string; string: string; ids: number[]; delta: number }>;
    const uniform = rows.filter((r) => r.rule === 'uniform');
    assert.deepEqual(uniform.map((r) => [r.ids, r.delta]), HEWITT_2024_LLAMA2_IDS.map(([id, d]) => [[id], d]));
    assert.deepEqual(rows.find((r) => r.rule === 'eos')?.ids, [2]);
    const t = heed('rules', 'explain', '--model', LLAMA2);
    assert.equal(t.status, 0, t.stderr);
    assert.match(t.stdout, /"\\n".*13 <0x0A>/);
    assert.match(t.stdout, /" I".*306 ▁I/);
  }
  const g = heed('rules', 'explain', '--model', m, '--json');
  assert.equal(g.status, 0, g.stderr);
  assert.ok(JSON.parse(g.stdout).some((r: { string: string; ids: number[] }) => r.string === ' should' && r.ids.length === 0));
});
