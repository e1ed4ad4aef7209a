/**
 * `heed export gguf` with a Llama-2-style SentencePiece tokenizer (tokenizer.json with byte_fallback →
 * tokenizer.ggml.model "llama"): the real Llama 2 tokenizer (../shared/tokenizers/Llama-2-7b) on a tiny random
 * llama made here in a temporary folder (vocab 32,000 + 3 added tokens, hidden 32; ~8 MB, not committed).
 * The metadata test needs no llama.cpp; the parity test (llama.cpp's own tokenizer = heed's on 34 prompts, greedy
 * tokens and next-token log-probs = the engine's) is skipped without node-llama-cpp unless HEED_REQUIRE_LLAMA_CPP=1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HeedError } from '../src/errors.js';
import { meta, readGguf, readGgufTensor, writeGguf, VT, type MetaValue } from '../src/io/gguf.js';
import { exportGguf, exportGgufFrom } from '../src/export/gguf.js';
import { parseModelConfig } from '../src/models/config.js';
import { disposeParams, loadHostModel, loadModel, saveHostModel } from '../src/models/load.js';
import { randomParams } from '../src/models/random.js';
import { hasNodeLlamaCpp, openLlamaCpp } from '../src/backends/llamacpp.js';
import { initEngine } from '../src/engine/index.js';
import { EngineGenerator } from '../src/decode/generate.js';
import { SHARED, tmp } from './helpers.js';
import { assertTiesOnly, compare, logprobDiff, TIE } from './gguf-compare.js';

const LLAMA2 = join(SHARED, 'tokenizers', 'Llama-2-7b');
const noTok = existsSync(join(LLAMA2, 'tokenizer.json')) ? false : `no ${LLAMA2}/tokenizer.json`;
const have = await hasNodeLlamaCpp();
const skipLlama = noTok || (have ? false : process.env.HEED_REQUIRE_LLAMA_CPP === '1' ? false : 'node-llama-cpp is not installed (npm i -E node-llama-cpp@3.21.1)');
const LOGPROB_TOL = 1e-4;

/** the added tokens of chat fine-tunes of Llama 2 (ChatML specials at 32000+, a non-special marker) */
const ADDED = [
  { id: 32000, content: '<|im_start|>', special: true },
  { id: 32001, content: '<|im_end|>', special: true },
  { id: 32002, content: '<|user|>', special: false },
];

let made: string | undefined;
/** A tiny llama with the Llama 2 tokenizer (+ ADDED) and one unused embedding row, in a temporary folder (made once). */
function makeLlama2Tiny(): string {
  if (made) return made;
  const dir = (made = join(tmp('heed-llama2-'), 'llama2-tiny'));
  mkdirSync(dir);
  const raw = { architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 32004, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 256, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false, hidden_act: 'silu', bos_token_id: 1, eos_token_id: 2 };
  saveHostModel(dir, { raw, tensors: randomParams(parseModelConfig(raw), 7, { std: 0.2 }), namePrefix: '' }, { dtype: 'F32' });
  const tj = JSON.parse(readFileSync(join(LLAMA2, 'tokenizer.json'), 'utf8'));
  for (const a of ADDED) tj.added_tokens.push({ ...a, single_word: false, lstrip: false, rstrip: false, normalized: false });
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tj));
  copyFileSync(join(LLAMA2, 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'));
  return dir;
}

/**
 * 34 prompts: leading/trailing/multiple spaces, newlines, tabs, CR, digits, accents, Cyrillic, Arabic, CJK, emoji
 * and other characters outside the vocabulary (byte fallback: <0xXX> tokens), control characters, <unk> as text,
 * the added tokens (ChatML, a user-defined marker).
 */
const PROMPTS = [
  'Hello world', ' Hello', '  two  spaces', 'trailing space ', '   ', 'a  b   c    d',
  'a\nb\n\nc', '\n\nleading newlines', 'tab\there', 'one\ttwo\n three', '\r\nwindows line end',
  '1234567 89', 'The year 2024 had 366 days.', 'Call 555-0199 at 3:30pm, room 12B.',
  'héllo wörld', 'Ünïcödé ñ ç ß', 'Привет, мир', 'مرحبا بالعالم', '日本語のテキスト', 'ẞ ǅ ﬁ',
  '🦙 emoji 😀', 'ok 👍🏽 fam', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢', '\u0001\u0007 ctrl', 'ï»¿bom', 'x'.repeat(40),
  "don't stop—ever…", 'C++ & <html> tags', '[INST] Tell me about rivers. [/INST]', '<unk>',
  '<|im_start|>user\nWhat is water?<|im_end|>\n<|im_start|>assistant\n',
  '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n',
  'a<|user|>b', 'Hello <|user|> world',
];

test('Llama 2 SentencePiece tokenizer → GGUF "llama": tokens, scores in merge order, byte/unknown/control/user-defined types, special ids, add_bos', { skip: noTok }, () => {
  const dir = makeLlama2Tiny();
  const out = join(dir, '..', 'l2.gguf');
  const r = exportGguf(dir, out);
  assert.equal(r.tokenizer, 'llama');
  assert.deepEqual(r.notes, ['1 ids of the embedding have no token in tokenizer.json: written as unused [PAD<i>] tokens']);
  const g = readGguf(out);
  const md = g.metadata;
  assert.equal(md.get('tokenizer.ggml.model'), 'llama');
  assert.equal(md.get('tokenizer.ggml.pre'), 'default');
  const tokens = md.get('tokenizer.ggml.tokens') as string[];
  const types = md.get('tokenizer.ggml.token_type') as number[];
  const scores = md.get('tokenizer.ggml.scores') as number[];
  assert.equal(tokens.length, 32004);
  assert.equal(scores.length, 32004);
  assert.deepEqual([tokens[0], tokens[1], tokens[2], tokens[3], tokens[258], tokens[259], tokens[306], tokens[32000], tokens[32002], tokens[32003]], ['<unk>', '<s>', '</s>', '<0x00>', '<0xFF>', '▁▁', '▁I', '<|im_start|>', '<|user|>', '[PAD32003]']);
  // ggml token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
  assert.deepEqual([types[0], types[1], types[2], types[3], types[258], types[306], types[32000], types[32001], types[32002], types[32003]], [2, 3, 3, 6, 6, 1, 3, 3, 4, 5]);
  assert.equal(types.filter((t) => t === 6).length, 256);
  assert.equal(md.get('tokenizer.ggml.bos_token_id'), 1);
  assert.equal(md.get('tokenizer.ggml.eos_token_id'), 2);
  assert.equal(md.get('tokenizer.ggml.unknown_token_id'), 0);
  assert.equal(md.get('tokenizer.ggml.add_bos_token'), true);
  assert.equal(md.get('tokenizer.ggml.add_eos_token'), false);
  assert.equal(md.get('tokenizer.ggml.add_space_prefix'), true);
  assert.equal(md.has('tokenizer.ggml.merges'), false);
  // scores: the earlier tokenizer.json merges a token, the higher its score ("▁t" is merge 0, "er" merge 1)
  assert.equal(scores[260], -0);
  assert.equal(scores[261], -1);
  assert.ok(scores[29871] > scores[30325], 'a merged token ("▁") scores above a token no merge makes ("日")');
  // the order of the real tokenizer.model's scores (-(id - 259) for Llama 2's merged pieces) is kept
  const tj = JSON.parse(readFileSync(join(LLAMA2, 'tokenizer.json'), 'utf8'));
  const merged = [...new Set<number>((tj.model.merges as string[]).map((m) => tj.model.vocab[m.replace(' ', '')]).filter((id: number | undefined) => id !== undefined && id > 259))];
  let inversions = 0;
  for (let i = 1; i < merged.length; i++) if (Math.sign(scores[merged[i]] - scores[merged[i - 1]]) !== Math.sign(merged[i - 1] - merged[i])) inversions++;
  assert.ok(merged.length > 29000 && inversions < merged.length * 0.001, `${inversions} order differences over ${merged.length} merged tokens`);
});

test('SentencePiece-style tokenizers llama.cpp would tokenise differently are refused with one-line errors', { skip: noTok }, () => {
  const src = makeLlama2Tiny();
  const host = loadHostModel(src);
  // the weights once, the tokenizer files edited in a folder of their own
  const dir = tmp('heed-llama2-tok-');
  for (const f of ['config.json', 'tokenizer_config.json']) copyFileSync(join(src, f), join(dir, f));
  const tjPath = join(dir, 'tokenizer.json');
  const orig = readFileSync(join(src, 'tokenizer.json'), 'utf8');
  const exp = (out: string, o: { pre?: string } = {}) => exportGgufFrom(host.config, host.tensors, dir, out, o);
  const edit = (f: (tj: Record<string, any>) => void) => {
    const tj = JSON.parse(orig);
    f(tj);
    writeFileSync(tjPath, JSON.stringify(tj));
  };
  const refused = (re: RegExp) => assert.throws(() => exp(join(dir, 'x.gguf')), (e: unknown) => e instanceof HeedError && re.test(e.message) && !e.message.includes('\n'));
  // a Metaspace pre-tokenizer splitting words (merges across "▁" never happen) instead of the legacy normalizer
  edit((tj) => { tj.normalizer = null; tj.pre_tokenizer = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true }; });
  refused(/only the layout llama\.cpp's "llama" tokenizer reproduces/);
  // byte fallback with byte tokens missing (llama.cpp looks every byte up)
  edit((tj) => { delete tj.model.vocab['<0x41>']; });
  refused(/255 of the 256 byte tokens/);
  edit(() => {});
  assert.throws(() => exp(join(dir, 'x.gguf'), { pre: 'llama-bpe' }), (e: unknown) => e instanceof HeedError && /no pre-tokenizer name/.test(e.message));
  // the legacy layout without the "▁" prefix (add_dummy_prefix false) exports with add_space_prefix false
  edit((tj) => { tj.normalizer = { type: 'Replace', pattern: { String: ' ' }, content: '▁' }; });
  exp(join(dir, 'np.gguf'));
  assert.equal(readGguf(join(dir, 'np.gguf')).metadata.get('tokenizer.ggml.add_space_prefix'), false);
});

test('Llama 2 tokenizer in llama.cpp = heed: same ids on 34 prompts (spaces, newlines, digits, unicode, byte fallback, added tokens); greedy tokens and next-token log-probs = engine', { skip: skipLlama }, async () => {
  await initEngine();
  const dir = makeLlama2Tiny();
  const out = join(dir, '..', 'l2.gguf');
  exportGguf(dir, out);
  const model = await loadModel(dir);
  const be = await openLlamaCpp(out);
  const eg = new EngineGenerator(model);
  try {
    const ids = PROMPTS.map((p) => model.tokenizer.encode(p, { addSpecialTokens: true }));
    const llamaIds = PROMPTS.map((p) => be.tokenizer!.encode(p, { addSpecialTokens: true }));
    for (let i = 0; i < PROMPTS.length; i++) assert.deepEqual(llamaIds[i], ids[i], `prompt ${JSON.stringify(PROMPTS[i])}: llama.cpp tokenizes like heed`);
    assert.ok(ids.some((x) => x.includes(243)) && ids.some((x) => x.includes(32002)) && ids.some((x) => x.includes(13)), 'byte-fallback, user-defined and newline tokens occur');
    const r = await compare(model, be, ids, eg);
    const ties = await assertTiesOnly('llama2-tiny', eg, ids, r);
    assert.ok(r.diff < LOGPROB_TOL, `max |Δ log p| ${r.diff}`);
    // llama.cpp's prefill is deterministic: the same 34 prompts again give the same log-probs, bit for bit (a prefill
    // of unequal prompts in one decode used to hand back other rows now and then: see SORTED_OUTPUTS in the backend)
    const again: Float32Array[][] = [];
    for (let k = 0; k < 3; k++) {
      const ls = await be.session!();
      again.push(await ls.prefill(ids, { maxTokens: 1 }));
      await ls.dispose();
    }
    for (let k = 1; k < again.length; k++) assert.equal(logprobDiff(again[0], again[k]), 0, `prefill ${k} = prefill 0`);
    // the text generator: llama.cpp's detokenizer gives heed's texts (byte tokens fused into UTF-8 as heed does)
    const t = await be.gen.generate(PROMPTS.slice(0, 8), { maxTokens: 8, eosIds: [] });
    const e = await eg.generate(PROMPTS.slice(0, 8), { maxTokens: 8, eosIds: [] });
    assert.deepEqual(t.map((g) => g.text), e.map((g) => g.text));
    // reported, not asserted: "<s>"/"</s>" typed inside a text. Llama 2's tokenizer.json marks them normalized, so
    // heed's tokenizer (@huggingface/tokenizers) matches them only after the "▁" normalizer; llama.cpp parses them anywhere.
    const special = ['<s>Hi', 'Hi</s>', 'Hi </s> there'];
    const same = special.filter((p) => JSON.stringify(model.tokenizer.encode(p, { addSpecialTokens: true })) === JSON.stringify(be.tokenizer!.encode(p, { addSpecialTokens: true }))).length;
    console.log(`# llama2-tiny (Llama 2 tokenizer, f32): tokenization ${PROMPTS.length}/${PROMPTS.length} identical; greedy ${r.same}/${PROMPTS.length} identical${ties ? ` (${ties} diverge at a near tie < ${TIE})` : ''}, max |Δ log p| ${r.diff.toExponential(2)}; "<s>"/"</s>" typed in text: ${same}/${special.length} tokenised alike`);
  } finally {
    eg.dispose();
    await be.dispose();
    disposeParams(model.params);
  }
  // why heed writes merge-order scores: the same file with LlamaHfVocab's -1000 for every token
  const flat = join(dir, '..', 'l2-flat.gguf');
  rewriteScores(out, flat, () => -1000);
  const fb = await openLlamaCpp(flat);
  try {
    const tok = (await import('../src/io/tokenizer.js')).loadTokenizer(dir);
    const differ = PROMPTS.filter((p) => JSON.stringify(fb.tokenizer!.encode(p, { addSpecialTokens: true })) !== JSON.stringify(tok.encode(p, { addSpecialTokens: true })));
    assert.ok(differ.length > 0, 'equal scores make llama.cpp merge left to right');
    console.log(`# with -1000 for every score (convert_hf_to_gguf.py's LlamaHfVocab) llama.cpp tokenises ${differ.length}/${PROMPTS.length} prompts differently: ${differ.slice(0, 6).map((p) => JSON.stringify(p)).join(', ')}`);
  } finally {
    await fb.dispose();
  }
});

/** a copy of a GGUF file with other tokenizer.ggml.scores */
function rewriteScores(src: string, dst: string, f: (s: number, i: number) => number): void {
  const g = readGguf(src);
  const kv: Array<[string, MetaValue]> = [];
  for (const [k, v] of g.metadata) {
    const t = g.types.get(k)!;
    if (k === 'tokenizer.ggml.scores') kv.push([k, meta.f32s((v as number[]).map(f))]);
    else if (Array.isArray(t)) kv.push([k, { type: VT.ARRAY, itemType: t[1], value: v as never } as MetaValue]);
    else kv.push([k, { type: t, value: v } as MetaValue]);
  }
  writeGguf(dst, kv, g.tensors.map((t) => ({ name: t.name, shape: t.shape, type: t.typeName!, data: () => readGgufTensor(src, t) })));
}
