/**
 * Model chat templates (jinja) and custom template files: content spans are found exactly, the end
 * sequence carries loss, templates that cannot be mapped give bad rows, not guesses.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { DataPipeline, type Prepared } from '../src/data/pipeline.js';
import { Prng, randomConversation } from '../src/data/prng.js';
import { loadExamples } from '../src/data/dataset.js';
import type { Conversation } from '../src/data/types.js';

const TOKS = fileURLToPath(new URL('../../shared/tokenizers/', import.meta.url));
const have = existsSync(TOKS);
const tmp = mkdtempSync(join(tmpdir(), 'heed-tpl-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

const SMOL_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

const LLAMA2_CHAT_TEMPLATE =
  "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

/** A model folder: the tokenizer files of `from` plus a tokenizer_config.json. */
function folder(name: string, from: string, config: Record<string, unknown>): string {
  const d = join(tmp, name);
  mkdirSync(d, { recursive: true });
  copyFileSync(join(TOKS, from, 'tokenizer.json'), join(d, 'tokenizer.json'));
  if (existsSync(join(TOKS, from, 'config.json'))) copyFileSync(join(TOKS, from, 'config.json'), join(d, 'config.json'));
  writeFileSync(join(d, 'tokenizer_config.json'), JSON.stringify(config));
  return d;
}

function runs(p: Prepared, pl: DataPipeline): string[] {
  const { ids, weights } = p.example;
  const out: string[] = [];
  let s = -1;
  for (let t = 0; t <= ids.length; t++) {
    const on = t < ids.length && weights[t] > 0;
    if (on && s < 0) s = t;
    if (!on && s >= 0) {
      out.push(pl.enc.decodeSpan(ids, s, t));
      s = -1;
    }
  }
  return out;
}

const conv = (...ms: Array<[string, string]>): Conversation => ({ id: 'c', line: 1, messages: ms.map(([role, content]) => ({ role: role as 'user', content })) });

describe('model chat templates', { skip: have ? false : `no ${TOKS}` }, () => {
  test('SmolLM2 ChatML template = built-in chatml (after its default system prompt), on random rows', () => {
    const dir = folder('smol', 'SmolLM2-135M-Instruct', { bos_token: '<|im_start|>', eos_token: '<|im_end|>', pad_token: '<|im_end|>', chat_template: SMOL_TEMPLATE });
    const tok = loadTokenizer(dir);
    const r = new Prng(11);
    for (const mask of ['output', 'instruction']) {
      const model = new DataPipeline(tok, { template: 'model', mask, includeSystem: mask === 'instruction' });
      const chatml = new DataPipeline(tok, { template: 'chatml', mask, includeSystem: mask === 'instruction' });
      assert.equal(new DataPipeline(tok).template.name, 'model (auto)');
      for (let k = 0; k < 30; k++) {
        const c = randomConversation(r, `r${k}`);
        const a = model.prepare(c);
        const withSys = c.messages[0].role === 'system' ? c : { ...c, messages: [{ role: 'system' as const, content: 'You are a helpful AI assistant named SmolLM, trained by Hugging Face' }, ...c.messages] };
        const b = chatml.prepare(withSys);
        assert.deepEqual(a.example.ids, b.example.ids, `row ${k}: same ids`);
        // the default system prompt is template text for the model template: never loss-bearing
        if (withSys !== c) b.example.weights.fill(0, 0, b.example.ids.indexOf(tok.tokenToId('<|im_end|>')!) + 1);
        assert.deepEqual(a.example.weights, b.example.weights, `row ${k}: same weights`);
      }
    }
  });

  test('Qwen2.5 template (real tokenizer_config.json) with the SmolLM2 vocabulary', () => {
    const qcfg = JSON.parse(readFileSync(join(TOKS, 'Qwen2.5-0.5B-Instruct', 'tokenizer_config.json'), 'utf8'));
    delete qcfg.added_tokens_decoder;
    const tok = loadTokenizer(folder('qwen', 'SmolLM2-135M-Instruct', qcfg));
    const pl = new DataPipeline(tok, { template: 'model', mask: 'instruction', markerQuirk: true });
    const p = pl.prepare(conv(['user', 'What is 2+2?'], ['assistant', '4'], ['user', 'And 3+3?'], ['assistant', '6']));
    assert.equal(pl.enc.decode(p.example.ids), '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n6<|im_end|>\n');
    assert.deepEqual(runs(p, pl), ['What is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>', 'And 3+3?<|im_end|>\n<|im_start|>assistant\n6<|im_end|>']);
  });

  test('Llama-2 chat template: content.strip() handled, system folded into the first turn, end = " </s>"', () => {
    // the template strips the folded "<<SYS>>…" + user string as a whole: the user's leading spaces stay
    const cfg = JSON.parse(readFileSync(join(TOKS, 'Llama-2-7b', 'tokenizer_config.json'), 'utf8'));
    const tok = loadTokenizer(folder('llama2chat', 'Llama-2-7b', { ...cfg, chat_template: LLAMA2_CHAT_TEMPLATE }));
    const c = conv(['system', 'Be kind. '], ['user', '  Hi there\n'], ['assistant', ' Hello! '], ['user', 'Bye'], ['assistant', 'Bye.']);
    const it = new DataPipeline(tok, { template: 'model', mask: 'output' });
    const p = it.prepare(c);
    assert.equal(it.enc.decode(p.example.ids), '<s> [INST] <<SYS>>\nBe kind. \n<</SYS>>\n\n  Hi there [/INST] Hello! </s><s>[INST] Bye [/INST] Bye. </s>');
    assert.deepEqual(runs(p, it), ['Hello! </s>', 'Bye. </s>']);
    assert.equal(p.example.ids.filter((x) => x === 2).length, 2, '</s> is the EOS id, not text');
    const im = new DataPipeline(tok, { template: 'model', mask: 'instruction', includeSystem: true });
    assert.deepEqual(runs(im.prepare(c), im), ['Be kind. ', '  Hi there', 'Hello! </s>', 'Bye', 'Bye. </s>']);
  });

  test('a template that raises, or that alters content, gives a bad row (skip counts it)', async () => {
    const cfg = JSON.parse(readFileSync(join(TOKS, 'Llama-2-7b', 'tokenizer_config.json'), 'utf8'));
    const tok = loadTokenizer(folder('llama2chat', 'Llama-2-7b', { ...cfg, chat_template: LLAMA2_CHAT_TEMPLATE }));
    const data = join(tmp, 'two-users.jsonl');
    writeFileSync(data, [JSON.stringify({ id: 'good', messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }] }), JSON.stringify({ id: 'twice', messages: [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }, { role: 'assistant', content: 'c' }] })].join('\n'));
    const pl = new DataPipeline(tok, { template: 'model' });
    await assert.rejects(loadExamples(data, pl), /two-users.jsonl:2 \(id twice\): \[template\] chat template raised: Conversation roles must alternate/);
    const { examples, report } = await loadExamples(data, pl, { onBadRow: 'skip' });
    assert.equal(examples.length, 1);
    assert.deepEqual(report.bad.byReason, { template: 1 });
    const upper = new DataPipeline(tok, { template: join(tmp, 'upper.jinja') === '' ? '' : writeJinja('upper.jinja', "{% for m in messages %}{{ m['role'] + ': ' + m['content'] | upper }}\n{% endfor %}") });
    assert.throws(() => upper.prepare(conv(['user', 'hi'], ['assistant', 'yo'])), /changes the content of message 0/);
  });

  test('no chat template: model is an error, auto falls back to chatml', () => {
    const tok = loadTokenizer(join(TOKS, 'SmolLM2-135M-Instruct'));
    assert.throws(() => new DataPipeline(tok, { template: 'model' }), /has no chat template/);
    assert.match(new DataPipeline(tok).template.name, /^chatml \(auto/);
  });
});

function writeJinja(name: string, src: string): string {
  const p = join(tmp, name);
  writeFileSync(p, src);
  return p;
}

describe('custom template files', { skip: have ? false : `no ${TOKS}` }, () => {
  test('a JSON role-wrapper template (vicuna-like) with {eos}', () => {
    const p = join(tmp, 'vicuna.json');
    writeFileSync(p, JSON.stringify({ system: { prefix: '', suffix: '\n\n' }, user: { prefix: 'USER: ', suffix: '\n' }, assistant: { prefix: 'ASSISTANT: ', end: '{eos}', suffix: '\n' } }));
    const tok = loadTokenizer(join(TOKS, 'gpt2'));
    const pl = new DataPipeline(tok, { template: p, mask: 'instruction' });
    const pr = pl.prepare(conv(['system', 'Sys.'], ['user', 'Hi'], ['assistant', 'Yo']));
    assert.equal(pl.enc.decode(pr.example.ids), 'Sys.\n\nUSER: Hi\nASSISTANT: Yo<|endoftext|>\n');
    assert.deepEqual(runs(pr, pl), ['Hi', 'Yo<|endoftext|>']);
  });

  test('a .jinja template file is rendered like a model template', () => {
    const p = writeJinja('simple.jinja', "{% for m in messages %}{{ '### ' + m['role'] + '\\n' + m['content'] + '\\n' }}{% if m['role'] == 'assistant' %}{{ eos_token }}{% endif %}{% endfor %}");
    const tok = loadTokenizer(join(TOKS, 'gpt2'));
    const pl = new DataPipeline(tok, { template: p, mask: 'output' });
    const pr = pl.prepare(conv(['user', 'Hi'], ['assistant', 'Yo']));
    assert.deepEqual(runs(pr, pl), ['Yo\n<|endoftext|>']);
  });

  test('bad template files and names name the field and the fix', () => {
    const tok = loadTokenizer(join(TOKS, 'gpt2'));
    const p = join(tmp, 'bad.json');
    writeFileSync(p, JSON.stringify({ user: { prefix: 1, suffix: '' }, assistant: { prefix: '', suffix: '' } }));
    assert.throws(() => new DataPipeline(tok, { template: p }), /bad.json: field "user.prefix"/);
    writeFileSync(p, '{');
    assert.throws(() => new DataPipeline(tok, { template: p }), /bad.json: invalid JSON/);
    assert.throws(() => new DataPipeline(tok, { template: 'vicuna' }), /unknown template "vicuna"/);
  });
});
