/**
 * Issue 16, item 1: a user's own data format. ShareGPT, OpenAI messages with content parts, Alpaca and
 * prompt/completion by name in configs (heed train) and CLI (heed data stats) alike; field/role mapping
 * keys in the config; CSV/Parquet-looking files refused in one line; config errors name config keys. And the
 * walkthrough of docs/your-own-data.md (ShareGPT config → train → Ctrl-C → --resume → generate --chat → report).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HeedError } from '../src/errors.js';
import { BadRowLog, loadConversations, type LoadInfo, type LoadOptions } from '../src/data/load.js';
import type { Conversation } from '../src/data/types.js';
import { validateTrainConfig, resolveStages } from '../src/train/config.js';
import { loadRunData } from '../src/train/data.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { run } from '../src/cli/main.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BASE = join(ROOT, 'models', 'base-dolly');
const tmp = mkdtempSync(join(tmpdir(), 'heed-userdata-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

const write = (name: string, rows: unknown[] | string) => {
  const p = join(tmp, name);
  writeFileSync(p, typeof rows === 'string' ? rows : rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return p;
};

async function load(path: string, opts: LoadOptions = {}, policy: 'fail' | 'skip' = 'fail') {
  const log = new BadRowLog(policy, basename(path));
  const info: LoadInfo = { file: path, rows: 0, blankLines: 0, lastLine: 0 };
  const convs: Conversation[] = [];
  for await (const c of loadConversations(path, opts, log, info)) convs.push(c);
  log.check(info.lastLine);
  return { convs, log, info };
}

async function cli(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (...a: unknown[]) => out.push(a.join(' '));
  console.error = (...a: unknown[]) => err.push(a.join(' '));
  try {
    return { code: await run(args), stdout: out.join('\n'), stderr: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

const SHAREGPT = [
  { id: 's1', system: 'Be brief.', conversations: [{ from: 'human', value: 'Name a colour.' }, { from: 'gpt', value: 'Blue.' }] },
  { id: 's2', conversations: [{ from: 'system', value: 'You are kind.' }, { from: 'human', value: 'Hi?' }, { from: 'gpt', value: 'Hello.' }, { from: 'human', value: 'Bye?' }, { from: 'gpt', value: 'Bye.' }] },
];

describe('named data formats', () => {
  test('ShareGPT is detected from "conversations" and loads by name', async () => {
    const p = write('sharegpt.jsonl', SHAREGPT);
    for (const opts of [{}, { format: 'sharegpt' as const }]) {
      const { convs, info } = await load(p, opts);
      assert.equal(info.format, 'sharegpt');
      assert.deepEqual(convs[0].messages.map((m) => [m.role, m.content]), [['system', 'Be brief.'], ['user', 'Name a colour.'], ['assistant', 'Blue.']]);
      assert.deepEqual(convs[1].messages.map((m) => m.role), ['system', 'user', 'assistant', 'user', 'assistant']);
    }
  });

  test('ShareGPT with other names: fields and roles override the preset', async () => {
    const p = write('sharegpt-custom.jsonl', [{ dialog: [{ speaker: 'customer', text: 'Where is my order?' }, { speaker: 'agent', text: 'On its way.' }] }]);
    const { convs } = await load(p, { format: 'sharegpt', fields: { messages: 'dialog', role: 'speaker', content: 'text' }, roles: { customer: 'user', agent: 'assistant' } });
    assert.deepEqual(convs[0].messages.map((m) => [m.role, m.content]), [['user', 'Where is my order?'], ['assistant', 'On its way.']]);
  });

  test('OpenAI messages with content parts: text parts joined, other parts a counted bad row', async () => {
    const p = write('openai.jsonl', [
      { messages: [{ role: 'user', content: [{ type: 'text', text: 'Line one.' }, { type: 'text', text: 'Line two.' }] }, { role: 'assistant', content: [{ type: 'text', text: 'OK.' }] }] },
      { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x.png' } }] }, { role: 'assistant', content: 'A cat.' }] },
    ]);
    const { convs, log } = await load(p, { format: 'openai' }, 'skip');
    assert.equal(convs.length, 1);
    assert.equal(convs[0].messages[0].content, 'Line one.\nLine two.');
    assert.equal(convs[0].messages[1].content, 'OK.');
    assert.equal(log.count, 1);
    assert.match(log.first[0].message, /type "image_url": only text parts are supported/);
  });

  test('alpaca and prompt-completion by name', async () => {
    const a = write('alpaca.jsonl', [{ instruction: 'Add.', input: '1+1', output: '2' }]);
    assert.equal((await load(a, { format: 'alpaca' })).convs[0].messages[0].content, 'Add.\n\n1+1');
    const pc = write('pc.jsonl', [{ prompt: 'Q?', completion: 'A.' }]);
    assert.deepEqual((await load(pc, { format: 'prompt-completion' })).convs[0].messages.map((m) => m.content), ['Q?', 'A.']);
  });
});

describe('files heed cannot read yet', () => {
  const refused = async (p: string, re: RegExp) =>
    assert.rejects(load(p), (e: unknown) => {
      assert.ok(e instanceof HeedError, `HeedError expected, got ${e}`);
      assert.match(e.message, re);
      assert.doesNotMatch(e.message, /malformed JSON/);
      assert.ok(!e.message.includes('\n'), 'one line');
      assert.match(e.fix ?? '', /JSONL/);
      return true;
    });
  test('CSV (by content, even named .jsonl), TSV, Parquet (magic bytes), ZIP', async () => {
    await refused(write('data.jsonl', 'instruction,output\n"Add 1+1",2\n'), /looks like CSV .*not supported yet/);
    await refused(write('data.tsv', 'instruction\toutput\nAdd\t2\n'), /looks like TSV/);
    await refused(write('rows.bin', Buffer.concat([Buffer.from('PAR1'), Buffer.alloc(64)]).toString('latin1')), /Parquet file: not supported yet/);
    await refused(write('sheet.xlsx', 'PK\u0003\u0004rest'), /ZIP archive/);
  });
});

describe('formats in a train config', () => {
  test('format: sharegpt with fields/roles keys reaches the training rows; config errors name config keys', async () => {
    const data = write('own.jsonl', Array.from({ length: 6 }, (_, i) => ({ id: `r${i}`, chat: [{ who: 'me', said: `Question ${i}?` }, { who: 'bot', said: `Answer ${i}.` }] })));
    const c = validateTrainConfig({ model: BASE, data, format: 'sharegpt', fields: { messages: 'chat', role: 'who', content: 'said' }, roles: { me: 'user', bot: 'assistant' }, eval: null, steps: 1 }, 'cfg.yaml', tmp);
    const tok = loadTokenizer(BASE);
    const rd = await loadRunData(c, resolveStages(c), tok, () => {});
    assert.equal(rd.drops.files[0].kept, 6);
    assert.equal(rd.stages[0].length, 6);

    assert.throws(() => validateTrainConfig({ model: BASE, data, fields: { message: 'chat' } }, 'cfg.yaml', tmp), /message/);
    assert.throws(() => validateTrainConfig({ model: BASE, data, roles: { me: 'human' } }, 'cfg.yaml', tmp), /roles/);

    // unmapped: the error's fix speaks of config keys, never of CLI flags
    const plain = validateTrainConfig({ model: BASE, data, eval: null, steps: 1 }, 'cfg.yaml', tmp);
    await assert.rejects(loadRunData(plain, resolveStages(plain), tok, () => {}), (e: unknown) => {
      assert.ok(e instanceof HeedError);
      assert.match(e.message, /unknown-shape/);
      assert.match(e.fix ?? '', /format: .*sharegpt/);
      assert.match(e.fix ?? '', /on_bad_row: skip/);
      assert.doesNotMatch(e.fix ?? '', /--/);
      return true;
    });
  });

  test('im_marker_quirk with a held-out split: the eval rows use the output mask without the quirk', async () => {
    const data = write('quirk.jsonl', Array.from({ length: 10 }, (_, i) => ({ conversations: [{ from: 'human', value: `Question ${i}?` }, { from: 'gpt', value: `Answer ${i}.` }] })));
    const c = validateTrainConfig({ model: BASE, data, template: 'plain', mask: 'weighted:0.3', im_marker_quirk: true, eval: { split: 0.2 }, steps: 1 }, 'cfg.yaml', tmp);
    const rd = await loadRunData(c, resolveStages(c), loadTokenizer(BASE), () => {});
    assert.equal(rd.stages[0].length + rd.evalRows.length, 10);
    assert.ok(rd.evalRows.length > 0);
    // training rows carry loss on the marker between instruction and answer (the quirk); eval rows only on the answer
    const lossOn = (e: { weights: Float32Array }) => e.weights.reduce((a, w) => a + (w > 0 ? 1 : 0), 0);
    assert.ok(rd.evalRows.every((e) => lossOn(e) < e.ids.length - 2));
  });

  test('heed data stats --format sharegpt (CLI), and an unknown --format lists the names', async () => {
    const p = write('sg.jsonl', SHAREGPT);
    const r = await cli(['data', 'stats', '--data', p, '--model', BASE, '--format', 'sharegpt', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.rows.good, 2);
    const bad = await cli(['data', 'stats', '--data', p, '--model', BASE, '--format', 'csv']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /sharegpt/);
  });
});

describe('the "your own data" walkthrough (docs/your-own-data.md) on a tiny budget', () => {
  // the doc's steps with examples/lora-sharegpt.yaml: ShareGPT rows → heed train → Ctrl-C (SIGINT) →
  // --resume → heed generate --chat → heed ifs (base and tuned) → heed report base vs tuned
  const HEED = join(ROOT, 'bin', 'heed.js');
  const heed = (args: string[]) => spawnSync(process.execPath, [HEED, ...args], { cwd: tmp, encoding: 'utf8', timeout: 120_000 });
  test('train, interrupt, resume, chat, report', { timeout: 240_000 }, async () => {
    // the doc's conversion one-liner, on the first 24 shipped Dolly rows
    const rows = readFileSync(join(ROOT, 'data', 'demo', 'dolly-train.jsonl'), 'utf8').split('\n').filter(Boolean).slice(0, 24).map((l) => JSON.parse(l));
    const chats = write('my-chats.jsonl', rows.map((r) => ({ id: r.id, conversations: r.messages.map((m: { role: string; content: string }) => ({ from: { system: 'system', user: 'human', assistant: 'gpt' }[m.role], value: m.content })) })));
    const out = join(tmp, 'runs');
    const sets = [`data=${chats}`, `out=${out}`, 'steps=4', 'batch_size=2', 'grad_accum=1', 'max_length=96', 'save_every=2', 'eval_every=2', 'eval_max_rows=4', 'warmup_steps=1'];
    const child = spawn(process.execPath, [HEED, 'train', join(ROOT, 'examples', 'lora-sharegpt.yaml'), ...sets.flatMap((s) => ['--set', s])], { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const run = join(out, 'lora-sharegpt');
    const code = await new Promise<number | null>((res) => {
      const poll = setInterval(() => {
        if (existsSync(join(run, 'step-2', 'manifest.json'))) {
          clearInterval(poll);
          child.kill('SIGINT'); // Ctrl-C: a checkpoint after this step, then exit 130
        }
      }, 100);
      child.on('exit', (c) => (clearInterval(poll), res(c)));
    });
    assert.equal(code, 130, stdout + stderr);
    assert.match(stdout, /interrupted: checkpoint .*continue with: heed train --resume /);
    assert.match(stderr, /interrupt: saving a checkpoint/);
    const stopped = JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8'));
    assert.ok(stopped.interrupted && stopped.steps >= 2 && stopped.steps < 4, `interrupted at ${stopped.steps}`);

    const resumed = heed(['train', '--resume', run, '--quiet']);
    assert.equal(resumed.status, 0, resumed.stdout + resumed.stderr);
    const s = JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8'));
    assert.equal(s.steps, 4);
    assert.equal(s.interrupted, false);
    const steps = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).step);
    assert.deepEqual(steps, [1, 2, 3, 4], 'every step once, across the interruption');
    const final = join(run, 'final');
    assert.ok(existsSync(join(final, 'adapter_model.safetensors')));

    const chat = heed(['generate', '--model', final, '--chat', '--prompt', 'Name a colour.', '--max-tokens', '6']);
    assert.equal(chat.status, 0, chat.stderr);
    assert.ok(chat.stdout.trim().length > 0);

    const ifsArgs = ['--variant', 'C', '--limit', '4', '--max-tokens', '8', '--json'];
    const base = heed(['ifs', '--model', BASE, ...ifsArgs]);
    assert.equal(base.status, 0, base.stderr);
    writeFileSync(join(tmp, 'base-ifs.json'), base.stdout);
    const tuned = heed(['ifs', '--model', final, ...ifsArgs]);
    assert.equal(tuned.status, 0, tuned.stderr);
    writeFileSync(join(final, 'ifs.json'), tuned.stdout);
    const html = join(tmp, 'report.html');
    const rep = heed(['report', run, final, join(tmp, 'base-ifs.json'), '--out', html]);
    assert.equal(rep.status, 0, rep.stderr);
    const page = readFileSync(html, 'utf8');
    for (const name of ['lora-sharegpt', 'base-ifs', 'final']) assert.ok(page.includes(name), `the report names ${name}`);
  });
});
