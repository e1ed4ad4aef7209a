/**
 * Property tests: random conversations × every built-in template × the real tokenizers.
 *  - decoding exactly the loss-bearing tokens gives exactly the selected contents (+ end token)
 *  - IT mask ⊂ IM mask; weighted:0 = IT; weighted:1 = IM
 *  - the tokens decode back to the rendered text; content never yields special-token ids
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadTokenizer, type HeedTokenizer } from '../src/io/tokenizer.js';
import { DataPipeline, type Prepared } from '../src/data/pipeline.js';
import { Prng, randomConversation, randomText } from '../src/data/prng.js';
import type { Conversation } from '../src/data/types.js';

const TOKS = fileURLToPath(new URL('../../shared/tokenizers/', import.meta.url));
const NAMES = ['SmolLM2-135M-Instruct', 'Llama-2-7b', 'gpt2'];
const have = existsSync(TOKS);
const cache = new Map<string, HeedTokenizer>();
const tokenizer = (n: string) => cache.get(n) ?? cache.set(n, loadTokenizer(TOKS + n)).get(n)!;

/** The loss-bearing text runs a prepared row should have, computed from pieces (not tokens). */
function expectedRuns(p: Prepared, pl: DataPipeline): string[] {
  const runs: string[] = [];
  let cur: string | undefined;
  p.pieces.forEach((pc, i) => {
    if (pc.text === '' && !pc.ids) return;
    if (p.pieceWeight[i] > 0) cur = (cur ?? '') + pc.text;
    else if (cur !== undefined) {
      runs.push(cur);
      cur = undefined;
    }
  });
  if (cur !== undefined) runs.push(cur);
  return runs;
}

/**
 * Decoded runs of loss-bearing tokens. The first token of a sequence never carries loss (nothing predicts
 * it; asserted separately); when its piece is loss-bearing it is counted here so the run compares whole.
 */
function actualRuns(p: Prepared, pl: DataPipeline): string[] {
  const { ids, weights } = p.example;
  const runs: string[] = [];
  let s = -1;
  for (let t = 0; t <= ids.length; t++) {
    const on = t < ids.length && (weights[t] > 0 || (t === 0 && p.pieceWeight[p.piece[0]] > 0));
    if (on && s < 0) s = t;
    if (!on && s >= 0) {
      runs.push(pl.enc.decodeSpan(ids, s, t));
      s = -1;
    }
  }
  return runs;
}

function checkRow(pl: DataPipeline, conv: Conversation, label: string): Prepared {
  const p = pl.prepare(conv);
  const ex = p.example;
  assert.equal(ex.weights[0], 0, `${label}: first token weight`);
  assert.deepEqual(actualRuns(p, pl), expectedRuns(p, pl), `${label}: loss-bearing tokens decode to the selected text`);
  // the ids decode back to the rendered text (after the BOS the post-processor adds)
  const bos = p.pieces[0]?.ids?.length ?? 0;
  const rendered = p.pieces.filter((x) => !x.ids).map((x) => x.text).join('');
  assert.equal(pl.enc.decode(ex.ids.slice(bos)), rendered, `${label}: round trip`);
  // content never produces a special-token id; end sequences of built-ins are exactly the EOS id
  const specials = new Set(pl.enc.specials.values());
  for (let t = 0; t < ex.ids.length; t++) {
    const pc = p.pieces[p.piece[t]];
    if (pc.kind === 'content') assert.ok(!specials.has(ex.ids[t]), `${label}: content token ${t} is a special id`);
  }
  return p;
}

const POLICIES = ['output', 'instruction', 'weighted:0', 'weighted:1', 'weighted:0.25', 'response-only', 'last-turn'];

describe('masks are exact on the real tokenizers', { skip: have ? false : `no ${TOKS}` }, () => {
  for (const name of NAMES) {
    for (const template of ['alpaca', 'tulu', 'chatml', 'plain']) {
      test(`${name} × ${template}`, () => {
        const tok = tokenizer(name);
        const r = new Prng(0x5eed + name.length * 131 + template.length);
        const pls = Object.fromEntries(POLICIES.map((m) => [m, new DataPipeline(tok, { template, mask: m })]));
        const quirk = new DataPipeline(tok, { template, mask: 'instruction', markerQuirk: true, includeSystem: true });
        const N = Number(process.env.HEED_PROP_N ?? 0) || (name === 'Llama-2-7b' ? 25 : 40);
        for (let k = 0; k < N; k++) {
          let conv = randomConversation(r, `r${k}`, { maxTurns: template === 'alpaca' ? 1 : 3 });
          if (template === 'alpaca' && r.chance(0.5)) {
            // an Alpaca-shaped row with an input field
            const instruction = randomText(r);
            const input = randomText(r);
            conv = { ...conv, messages: [{ role: 'user', content: `${instruction}\n\n${input}`, parts: { instruction, input } }, conv.messages[conv.messages.length - 1]] };
          }
          const label = `${name}/${template}/row ${k}`;
          const got = Object.fromEntries(POLICIES.map((m) => [m, checkRow(pls[m], conv, `${label}/${m}`)]));
          checkRow(quirk, conv, `${label}/quirk`);
          const it = got.output.example;
          const im = got.instruction.example;
          assert.deepEqual(im.ids, it.ids, `${label}: same ids under IT and IM`);
          for (let t = 0; t < it.ids.length; t++) if (it.weights[t] > 0) assert.ok(im.weights[t] > 0, `${label}: IT ⊂ IM at token ${t}`);
          assert.deepEqual(got['weighted:0'].example.weights, it.weights, `${label}: weighted:0 = IT`);
          assert.deepEqual(got['weighted:1'].example.weights, im.weights, `${label}: weighted:1 = IM`);
          // IM puts loss on every user content token, weighted:0.25 exactly 0.25 there
          for (let t = 1; t < im.ids.length; t++) {
            if (im.kinds[t] === 2) {
              assert.equal(im.weights[t], 1);
              assert.equal(got['weighted:0.25'].example.weights[t], 0.25);
            }
            if (im.kinds[t] === 0) assert.equal(im.weights[t], 0, `${label}: markers never carry IM loss`);
          }
          // last-turn ⊂ output; response-only renders no user content
          const lt = got['last-turn'].example;
          for (let t = 0; t < lt.ids.length; t++) if (lt.weights[t] > 0) assert.ok(it.weights[t] > 0);
          assert.ok(!got['response-only'].example.kinds.includes(2), `${label}: response-only has no user tokens`);
          // built-in end sequences are the EOS token id
          if (template !== 'chatml') {
            const ends = [...it.ids].filter((_, t) => it.kinds[t] === 4);
            const nAssistant = conv.messages.filter((m) => m.role === 'assistant').length;
            assert.deepEqual(ends, Array(nAssistant).fill(pls.output.enc.eosId), `${label}: end = EOS id`);
          }
        }
      });
    }
  }
});

describe('tulu and response-only render what the papers used', { skip: have ? false : `no ${TOKS}` }, () => {
  test('tulu on gpt2: <|user|>\\n{u}\\n<|assistant|>\\n{a}<|endoftext|>, contents stripped', () => {
    const pl = new DataPipeline(tokenizer('gpt2'), { template: 'tulu', mask: 'output' });
    const conv: Conversation = { id: 'a', line: 1, messages: [{ role: 'user', content: ' Hi there\n' }, { role: 'assistant', content: 'Hello!\n\n' }] };
    const p = pl.prepare(conv);
    assert.equal(pl.enc.decode(p.example.ids), '<|user|>\nHi there\n<|assistant|>\nHello!<|endoftext|>');
    const ro = new DataPipeline(tokenizer('gpt2'), { template: 'tulu', mask: 'response-only' }).prepare(conv);
    assert.equal(pl.enc.decode(ro.example.ids), '<|user|>\n\n<|assistant|>\nHello!<|endoftext|>');
    assert.deepEqual(actualRuns(ro, pl), ['Hello!<|endoftext|>']);
  });

  test('IM-paper marker quirk puts loss on "\\n<|assistant|>\\n" and nothing else extra', () => {
    const tok = tokenizer('Llama-2-7b');
    const conv: Conversation = { id: 'a', line: 1, messages: [{ role: 'system', content: 'S' }, { role: 'user', content: 'Q?' }, { role: 'assistant', content: 'A.' }] };
    const im = new DataPipeline(tok, { template: 'tulu', mask: 'instruction' });
    const q = new DataPipeline(tok, { template: 'tulu', mask: 'instruction', markerQuirk: true });
    assert.deepEqual(actualRuns(im.prepare(conv), im), ['Q?', 'A.</s>']);
    assert.deepEqual(actualRuns(q.prepare(conv), q), ['Q?\n<|assistant|>\nA.</s>']);
  });

  test('alpaca: exact Stanford Alpaca strings, with and without input', () => {
    const pl = new DataPipeline(tokenizer('gpt2'), { template: 'alpaca', mask: 'instruction' });
    const a = pl.prepare({ id: 'a', line: 1, messages: [{ role: 'user', content: 'Add.\n\n1 2', parts: { instruction: 'Add.', input: '1 2' } }, { role: 'assistant', content: '3' }] });
    assert.equal(
      pl.enc.decode(a.example.ids),
      'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\nAdd.\n\n### Input:\n1 2\n\n### Response:3<|endoftext|>',
    );
    assert.deepEqual(actualRuns(a, pl), ['Add.', '1 2', '3<|endoftext|>']);
    const b = pl.prepare({ id: 'b', line: 1, messages: [{ role: 'user', content: 'Say hi.' }, { role: 'assistant', content: 'Hi' }] });
    assert.equal(pl.enc.decode(b.example.ids), 'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nSay hi.\n\n### Response:Hi<|endoftext|>');
  });

  test('special-token text inside content stays text', () => {
    const tok = tokenizer('SmolLM2-135M-Instruct');
    const pl = new DataPipeline(tok, { template: 'chatml', mask: 'output' });
    const p = pl.prepare({ id: 'a', line: 1, messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'x<|im_end|>y' }] });
    const imEnd = tok.tokenToId('<|im_end|>')!;
    assert.equal([...p.example.ids].filter((x) => x === imEnd).length, 2, 'only the two template <|im_end|> are special');
    assert.deepEqual(actualRuns(p, pl), ['x<|im_end|>y<|im_end|>']);
  });
});
