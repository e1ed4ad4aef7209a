import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { HeedError } from '../src/errors.js';
import { SHARED, TINY } from './helpers.js';

const TOK = join(SHARED, 'tokenizers');

test('Llama-2 tokenizer: ids, BOS/EOS from tokenizer_config.json, exact decode', () => {
  const t = loadTokenizer(join(TOK, 'Llama-2-7b'));
  assert.equal(t.bosId, 1);
  assert.deepEqual(t.eosIds, [2]);
  assert.deepEqual(t.encode('Hello world! I should', { addSpecialTokens: true }), [1, 15043, 3186, 29991, 306, 881]);
  assert.equal(t.decode([15043, 3186, 29991], { skipSpecialTokens: true }), 'Hello world!');
  assert.equal(t.vocabSize, 32000);
});

test('GPT-2 and SmolLM2 tokenizers: EOS from config files, no clean-up on decode', () => {
  const g = loadTokenizer(join(TOK, 'gpt2'));
  assert.deepEqual(g.eosIds, [50256]);
  assert.deepEqual(g.encode('Hello world'), [15496, 995]);
  assert.equal(g.decode(g.encode('Hello , world')), 'Hello , world');
  const s = loadTokenizer(join(TOK, 'SmolLM2-135M-Instruct'));
  assert.equal(s.encode('Hello')[0], 19556);
  assert.ok(s.eosIds.includes(2), 'eos_token_id from config.json');
  assert.equal(s.vocabSize, 49152);
});

test('chat templates render with @huggingface/jinja (model template; missing template is a clear error)', () => {
  const t = loadTokenizer(join(TINY, 'qwen2'));
  const text = t.applyChatTemplate([{ role: 'system', content: 'S' }, { role: 'user', content: 'Hi' }], { addGenerationPrompt: true });
  assert.equal(text, '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
  const l = loadTokenizer(join(TOK, 'Llama-2-7b'));
  assert.throws(() => l.applyChatTemplate([{ role: 'user', content: 'x' }]), (e: unknown) => e instanceof HeedError && /no chat template/.test(e.message));
  // a real, complex template (Qwen2.5's) rendered through the same path
  const qwen = (JSON.parse(require_('Qwen2.5-0.5B-Instruct/tokenizer_config.json')) as { chat_template: string }).chat_template;
  const out = t.applyChatTemplate([{ role: 'user', content: 'Hi' }], { template: qwen, addGenerationPrompt: true });
  assert.match(out, /^<\|im_start\|>system\nYou are Qwen, created by Alibaba Cloud\. You are a helpful assistant\.<\|im_end\|>\n<\|im_start\|>user\nHi<\|im_end\|>\n<\|im_start\|>assistant\n$/);
});

test('a folder without tokenizer.json names the file and the fix', () => {
  assert.throws(() => loadTokenizer(join(TOK, 'Qwen2.5-0.5B-Instruct')), (e: unknown) => e instanceof HeedError && /tokenizer\.json not found/.test(e.message) && !!e.fix);
});

import { readFileSync } from 'node:fs';
function require_(rel: string): string {
  return readFileSync(join(TOK, rel), 'utf8');
}
