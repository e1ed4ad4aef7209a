/** `heed data stats` and `heed data inspect`, through the CLI dispatcher (in process, plus one spawned run). */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../src/cli/main.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SHARED = fileURLToPath(new URL('../../shared/', import.meta.url));
const SMOL = join(SHARED, 'tokenizers', 'SmolLM2-135M-Instruct');
const GPT2 = join(SHARED, 'tokenizers', 'gpt2');
const BAD = join(ROOT, 'test', 'fixtures', 'bad-data');
const have = existsSync(SMOL) && existsSync(join(SHARED, 'data', 'dolly_3k.jsonl'));
const tmp = mkdtempSync(join(tmpdir(), 'heed-cli-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

/** Run the CLI in process; capture stdout/stderr. */
async function cli(args: string[], env: Record<string, string | undefined> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  console.log = (...a: unknown[]) => out.push(a.join(' '));
  console.error = (...a: unknown[]) => err.push(a.join(' '));
  try {
    const code = await run(args);
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

// 40 real rows (Dolly subset, CC BY-SA 3.0) copied to a temp file
const dolly = join(tmp, 'dolly40.jsonl');
if (have) writeFileSync(dolly, readFileSync(join(SHARED, 'data', 'dolly_3k.jsonl'), 'utf8').split('\n').slice(0, 40).join('\n') + '\n');

describe('heed data stats', { skip: have ? false : `no ${SHARED}` }, () => {
  test('text report: rows, tokens per role, loss, ratio with its reading, longest rows', async () => {
    const r = await cli(['data', 'stats', '--data', dolly, '--model', SMOL, '--template', 'tulu']);
    assert.equal(r.code, 0, r.stderr);
    for (const k of ['rows       40 read · 40 good · 0 bad', 'tokens', 'loss', 'instruction/output =', 'reading: ', 'longest', 'template   tulu   mask: output']) assert.ok(r.stdout.includes(k), `"${k}" in\n${r.stdout}`);
  });

  test('--json numbers add up; the output mask trains assistant + end, IM adds user', async () => {
    const it = JSON.parse((await cli(['data', 'stats', '--data', dolly, '--model', SMOL, '--template', 'tulu', '--json'])).stdout);
    const im = JSON.parse((await cli(['data', 'stats', '--data', dolly, '--model', SMOL, '--template', 'tulu', '--mask', 'instruction', '--json'])).stdout);
    const t = it.tokens;
    assert.equal(t.total, t.marker + t.system + t.user + t.assistant + t.end);
    assert.equal(it.loss.tokens, t.assistant + t.end);
    assert.equal(im.loss.tokens, t.user + t.assistant + t.end);
    assert.equal(it.rows.good, 40);
    assert.ok(Math.abs(it.ratio.ratio - t.user / t.assistant) < 1e-9, 'ratio = mean instruction ÷ mean output tokens');
    assert.equal(it.longest.length, 5);
    assert.equal(im.mask, 'instruction');
  });

  test('a 1 MB row: dropped, or truncated until its loss vanishes, and listed by id', async () => {
    const p = join(tmp, 'big.jsonl');
    const big = 'lorem ipsum dolor sit amet '.repeat(40000);
    writeFileSync(p, [JSON.stringify({ id: 'small', messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] }), JSON.stringify({ id: 'big', messages: [{ role: 'user', content: big }, { role: 'assistant', content: 'ok' }] })].join('\n'));
    const drop = JSON.parse((await cli(['data', 'stats', '--data', p, '--model', GPT2, '--template', 'chatml', '--max-length', '256', '--truncation', 'drop', '--json'])).stdout);
    assert.deepEqual(drop.droppedIds, ['big']);
    assert.equal(drop.rows.kept, 1);
    const right = await cli(['data', 'stats', '--data', p, '--model', GPT2, '--template', 'chatml', '--max-length', '256']);
    assert.match(right.stdout, /1 lost all loss-bearing tokens/);
    assert.match(right.stdout, /rows with no loss-bearing token left \(excluded\): big/);
    const left = JSON.parse((await cli(['data', 'stats', '--data', p, '--model', GPT2, '--template', 'chatml', '--max-length', '256', '--truncation', 'truncate-left', '--json'])).stdout);
    assert.equal(left.rows.truncated, 1);
    assert.equal(left.rows.kept, 2);
  });

  test('bad rows: fail (exit 2, first 5 listed with lines) or skip (counted)', async () => {
    const f = await cli(['data', 'stats', '--data', join(BAD, 'many-bad.jsonl'), '--model', GPT2]);
    assert.equal(f.code, 2);
    assert.match(f.stderr, /many-bad.jsonl: 5 bad rows[^]*many-bad.jsonl:2: \[malformed-json\][^]*many-bad.jsonl:6:[^]*--on-bad-row skip/);
    const s = JSON.parse((await cli(['data', 'stats', '--data', join(BAD, 'many-bad.jsonl'), '--model', GPT2, '--on-bad-row', 'skip', '--json'])).stdout);
    assert.equal(s.badRows.count, 7);
    assert.equal(s.rows.good, 2);
    const txt = await cli(['data', 'stats', '--data', join(BAD, 'wrong-type.jsonl'), '--model', GPT2, '--on-bad-row', 'skip']);
    assert.match(txt.stdout, /3 bad \(skipped\)/);
    assert.match(txt.stdout, /skipped by reason: wrong-type 3/);
  });

  test('usage errors name the flag and the fix', async () => {
    const a = await cli(['data', 'stats', '--model', GPT2]);
    assert.equal(a.code, 2);
    assert.match(a.stderr, /missing --data FILE \(fix: usage: heed data stats/);
    const b = await cli(['data', 'stats', '--data', dolly, '--model', GPT2, '--mask', 'weighted:2']);
    assert.match(b.stderr, /λ must be a number in \[0, 1\]/);
    const c = await cli(['data', 'stats', '--data', dolly, '--model', GPT2, '--mask', 'output', '--im-marker-quirk']);
    assert.match(c.stderr, /--im-marker-quirk applies to --mask instruction/);
    const d = await cli(['data', 'stats', '--data', dolly, '--model', tmp]);
    assert.match(d.stderr, /tokenizer.json not found/);
    const e = await cli(['data', 'stats', '--data', dolly, '--model', GPT2, '--on-bad-row', 'ignore']);
    assert.match(e.stderr, /--on-bad-row must be fail or skip/);
  });
});

describe('heed data inspect', { skip: have ? false : `no ${SHARED}` }, () => {
  test('NO_COLOR: loss-bearing text in [[…]], partial weights marked, per-row counts', async () => {
    const r = await cli(['data', 'inspect', '--data', dolly, '--model', SMOL, '--template', 'tulu', '--mask', 'weighted:0.25', '--n', '2'], { NO_COLOR: '1' });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes('\x1b['), 'no ANSI codes');
    assert.equal((r.stdout.match(/── row /g) ?? []).length, 2);
    assert.match(r.stdout, /<\|user\|>\n\[\[~0\.25:Plase answer the following request: How do I start running\?\nAnswer:\]\]\n<\|assistant\|>\n\[\[Make sure you get comfortable/);
    assert.match(r.stdout, /injury\.<\|im_end\|>\]\]/);
    assert.match(r.stdout, /── row alpagasus_3k_0 \(line 1\) · \d+ tokens · \d+ loss-bearing \(Σ weight [\d.]+\) · user 16 · assistant 94/);
  });

  test('colours by default; --ids selects rows; --json gives runs, ids and weights', async () => {
    const c = await cli(['data', 'inspect', '--data', dolly, '--model', SMOL, '--mask', 'output', '--ids', 'alpagasus_3k_5,alpagasus_3k_2'], { NO_COLOR: undefined, FORCE_COLOR: '1' });
    assert.match(c.stdout, /\x1b\[1;32m/);
    assert.deepEqual([...c.stdout.matchAll(/── row (\S+)/g)].map((m) => m[1]), ['alpagasus_3k_2', 'alpagasus_3k_5']);
    const j = JSON.parse((await cli(['data', 'inspect', '--data', dolly, '--model', SMOL, '--template', 'chatml', '--mask', 'last-turn', '--n', '1', '--json'])).stdout);
    const row = j.rows[0];
    assert.equal(row.ids.length, row.tokens);
    assert.equal(row.runs.filter((x: { weight: number }) => x.weight > 0).map((x: { text: string }) => x.text).join(''), JSON.parse(readFileSync(dolly, 'utf8').split('\n')[0]).messages[1].content + '<|im_end|>');
    const miss = await cli(['data', 'inspect', '--data', dolly, '--model', SMOL, '--ids', 'nope']);
    assert.equal(miss.code, 2);
    assert.match(miss.stderr, /not found: nope/);
  });

  test('the CLI runs as a process and lists the data commands in --help', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', "import('./src/cli/main.ts').then(async (m) => { process.exitCode = await m.run(process.argv.slice(1)); })", '--', '--help'], { cwd: ROOT, encoding: 'utf8', timeout: 60000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /data stats .*\n.*data inspect/);
  });
});
