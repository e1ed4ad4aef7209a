/**
 * Loading: the three row shapes, field mapping, streaming, and every case of the broken-file corpus in
 * test/fixtures/bad-data (each gives its documented error with `fail`, or counted skips with `skip`).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, createWriteStream, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HeedError } from '../src/errors.js';
import { BadRowLog, loadConversations, type LoadInfo, type LoadOptions, type OnBadRow } from '../src/data/load.js';
import type { Conversation } from '../src/data/types.js';

const BAD = fileURLToPath(new URL('./fixtures/bad-data/', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'heed-data-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

async function load(path: string, onBadRow: OnBadRow = 'fail', opts: LoadOptions = {}) {
  const log = new BadRowLog(onBadRow, basename(path));
  const info: LoadInfo = { file: path, rows: 0, blankLines: 0, lastLine: 0 };
  const convs: Conversation[] = [];
  for await (const c of loadConversations(path, opts, log, info)) convs.push(c);
  log.check(info.lastLine);
  return { convs, log, info };
}

async function failsWith(path: string, re: RegExp) {
  await assert.rejects(load(path, 'fail'), (e: unknown) => {
    assert.ok(e instanceof HeedError, `HeedError expected, got ${e}`);
    assert.match(e.message, re);
    assert.ok(e.fix, 'a fix is given');
    return true;
  });
}

/** file → [lines listed by `fail` (with their reason), rows kept and skips counted by `skip`] */
const CORPUS: Record<string, { fail: Array<[number, string]>; kept: number; skipped: Record<string, number> }> = {
  'malformed-json.jsonl': { fail: [[2, 'malformed-json']], kept: 2, skipped: { 'malformed-json': 1 } },
  'missing-field.jsonl': { fail: [[2, 'missing-field'], [3, 'missing-field']], kept: 2, skipped: { 'missing-field': 2 } },
  'wrong-type.jsonl': { fail: [[2, 'wrong-type'], [3, 'wrong-type'], [4, 'wrong-type']], kept: 2, skipped: { 'wrong-type': 3 } },
  'empty-content.jsonl': { fail: [[2, 'empty-content'], [3, 'empty-content']], kept: 2, skipped: { 'empty-content': 2 } },
  'unknown-role.jsonl': { fail: [[2, 'unknown-role']], kept: 2, skipped: { 'unknown-role': 1 } },
  'no-assistant.jsonl': { fail: [[2, 'no-assistant'], [3, 'no-assistant']], kept: 2, skipped: { 'no-assistant': 2 } },
  'trailing-turn.jsonl': { fail: [[2, 'trailing-turn']], kept: 1, skipped: { 'trailing-turn': 1 } },
  'not-object.jsonl': { fail: [[2, 'not-object'], [3, 'not-object']], kept: 2, skipped: { 'not-object': 2 } },
  'unknown-shape.jsonl': { fail: [[1, 'unknown-shape'], [3, 'missing-field']], kept: 1, skipped: { 'unknown-shape': 1, 'missing-field': 1 } },
  'invalid-utf8.jsonl': { fail: [[2, 'invalid-utf8']], kept: 2, skipped: { 'invalid-utf8': 1 } },
  'many-bad.jsonl': { fail: [[2, 'malformed-json'], [3, 'malformed-json'], [4, 'malformed-json'], [5, 'malformed-json'], [6, 'malformed-json']], kept: 2, skipped: { 'malformed-json': 7 } },
};

describe('broken-file corpus', () => {
  for (const [file, exp] of Object.entries(CORPUS)) {
    test(`${file}: fail lists the bad rows; skip counts them`, async () => {
      const path = BAD + file;
      await assert.rejects(load(path, 'fail'), (e: unknown) => {
        assert.ok(e instanceof HeedError);
        for (const [line, reason] of exp.fail) assert.ok(e.message.includes(`${file}:${line}`) && e.message.includes(`[${reason}]`), `line ${line} [${reason}] listed in:\n${e.message}`);
        assert.match(e.fix!, /--on-bad-row skip/);
        return true;
      });
      const { convs, log } = await load(path, 'skip');
      assert.equal(convs.length, exp.kept, 'rows kept');
      assert.deepEqual(log.byReason, exp.skipped, 'skips counted by reason');
      assert.equal(log.count, Object.values(exp.skipped).reduce((a, b) => a + b, 0));
    });
  }

  test('many-bad.jsonl: fail stops after the 5th bad row and says where', async () => {
    await failsWith(BAD + 'many-bad.jsonl', /5 bad rows \(stopped reading at line 6\)/);
  });

  test('empty files are an error in both modes', async () => {
    for (const f of ['empty.jsonl', 'whitespace-only.jsonl']) {
      for (const mode of ['fail', 'skip'] as const) await assert.rejects(load(BAD + f, mode), /file is empty/);
    }
  });

  test('invalid UTF-8 names line and byte', async () => {
    await failsWith(BAD + 'invalid-utf8.jsonl', /invalid-utf8.jsonl:2.*invalid UTF-8 \(byte 0xe9/);
  });

  test('JSON array: a broken element is a file-level error naming its line', async () => {
    await failsWith(BAD + 'array-bad-element.json', /array-bad-element.json:4: malformed JSON in array element 3/);
    await failsWith(BAD + 'array-unclosed.json', /array-unclosed.json:3: the JSON array is not closed/);
  });

  test('CRLF line ends, a BOM and blank lines load (blank lines counted)', async () => {
    const { convs, info } = await load(BAD + 'crlf-bom.jsonl');
    assert.deepEqual(convs.map((c) => [c.id, c.line]), [['ok1', 1], ['ok2', 3]]);
    assert.equal(info.blankLines, 1);
    assert.equal(convs[1].messages[1].content, 'Answer 2.');
  });

  test('a missing file and a folder are clear errors', async () => {
    await assert.rejects(load(join(tmp, 'nope.jsonl')), /data file not found/);
    await assert.rejects(load(tmp), /is a folder/);
  });
});

describe('shapes and fields', () => {
  test('alpaca rows: instruction + optional input; input kept apart for the alpaca template', async () => {
    const p = join(tmp, 'alpaca.json');
    writeFileSync(
      p,
      JSON.stringify(
        [
          { instruction: 'Add.', input: '1 2', output: '3' },
          { instruction: 'Hi', input: '', output: 'Hello' },
          { instruction: 'Hi', output: 'Hello', id: 7 },
          { instruction: 'Hi', input: null, output: 'Hello' },
          { instruction: 'Hi', input: 3, output: 'Hello' },
        ],
        null,
        1,
      ),
    );
    const { convs, log, info } = await load(p, 'skip');
    assert.equal(info.shape, 'alpaca');
    assert.equal(info.kind, 'json');
    assert.deepEqual(convs[0].messages[0], { role: 'user', content: 'Add.\n\n1 2', parts: { instruction: 'Add.', input: '1 2' } });
    assert.equal(convs[1].messages[0].content, 'Hi');
    assert.equal(convs[2].id, '7');
    assert.equal(convs.length, 4);
    assert.deepEqual(log.byReason, { 'wrong-type': 1 });
    assert.equal(log.first[0].line, 22, 'JSON array elements report the line they start on');
  });

  test('prompt/completion rows and a row-level system prompt', async () => {
    const p = join(tmp, 'pc.jsonl');
    writeFileSync(p, [JSON.stringify({ prompt: 'Q: 1+1?', completion: ' 2', system: 'Be terse.' }), JSON.stringify({ prompt: 'x', completion: 'y' })].join('\n'));
    const { convs, info } = await load(p);
    assert.equal(info.shape, 'prompt-completion');
    assert.deepEqual(convs[0].messages, [
      { role: 'system', content: 'Be terse.' },
      { role: 'user', content: 'Q: 1+1?' },
      { role: 'assistant', content: ' 2' },
    ]);
    assert.equal(convs[1].id, 'pc.jsonl:2');
  });

  test('field and role mapping (ShareGPT-style), and --format override', async () => {
    const p = join(tmp, 'sharegpt.jsonl');
    writeFileSync(p, JSON.stringify({ conversations: [{ from: 'human', value: 'hi' }, { from: 'gpt', value: 'hello' }] }) + '\n');
    const { convs } = await load(p, 'fail', { fields: { messages: 'conversations', role: 'from', content: 'value' }, roles: { human: 'user', gpt: 'assistant' } });
    assert.deepEqual(convs[0].messages, [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'hello' },
    ]);
    // forcing the alpaca shape on messages rows: each row lacks "instruction"
    await assert.rejects(load(BAD + 'crlf-bom.jsonl', 'fail', { shape: 'alpaca' }), /missing field "instruction"/);
  });

  test('streams a file with a 1 MB row and many rows without reading it whole', async () => {
    const p = join(tmp, 'big.jsonl');
    const w = createWriteStream(p);
    const big = 'lorem ipsum dolor '.repeat(60000); // ~1 MB
    w.write(JSON.stringify({ id: 'big', messages: [{ role: 'user', content: big }, { role: 'assistant', content: 'ok' }] }) + '\n');
    for (let i = 0; i < 20000; i++) w.write(JSON.stringify({ id: `r${i}`, messages: [{ role: 'user', content: `q${i}` }, { role: 'assistant', content: `a${i}` }] }) + '\n');
    await new Promise<void>((res) => w.end(res));
    const log = new BadRowLog('fail', 'big.jsonl');
    const info: LoadInfo = { file: p, rows: 0, blankLines: 0, lastLine: 0 };
    let n = 0;
    let bigLen = 0;
    for await (const c of loadConversations(p, {}, log, info)) {
      if (c.id === 'big') bigLen = c.messages[0].content.length;
      n++;
    }
    assert.equal(n, 20001);
    assert.equal(bigLen, big.length);
    assert.equal(info.lastLine, 20001);
  });
});
