import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, TINY, TINY_NAMES } from './helpers.js';
import { commands, run } from '../src/cli/main.js';
import { closest, flagHelp, heedName, parse, useColor, GLOBAL_FLAGS } from '../src/cli/args.js';
import { HeedError } from '../src/errors.js';

/** heed in this process (no new node per call: the suite runs on a busy machine): exit code, stdout, stderr */
async function heedIn(args: string[], env: Record<string, string | undefined> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const [log, error] = [console.log, console.error];
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(env)) v === undefined ? delete process.env[k] : (process.env[k] = v);
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try {
    const status = await run(args);
    return { status, stdout: out.join('\n') + '\n', stderr: err.join('\n') + '\n' };
  } finally {
    [console.log, console.error] = [log, error];
    for (const [k, v] of Object.entries(saved)) v === undefined ? delete process.env[k] : (process.env[k] = v);
  }
}

const heed = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/heed.js'), ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 120_000 });

test('heed --help lists the commands', () => {
  const r = heed('--help');
  assert.equal(r.status, 0);
  for (const c of ['model info', 'generate', 'data stats', 'data inspect']) assert.match(r.stdout, new RegExp(c));
});

test('heed model info on every tiny architecture (text and --json)', () => {
  for (const name of TINY_NAMES) {
    const r = heed('model', 'info', join(TINY, name), '--json');
    assert.equal(r.status, 0, r.stderr);
    const info = JSON.parse(r.stdout);
    assert.equal(info.model_type, JSON.parse(readFileSync(join(TINY, name, 'config.json'), 'utf8')).model_type);
    assert.ok(info.parameters > 10_000);
    assert.equal(info.chat_template, true);
    assert.equal(info.dtype, 'F32');
  }
  const t = heed('model', 'info', join(TINY, 'qwen2'));
  assert.match(t.stdout, /architecture\s+qwen2 \(Llama family\)/);
  assert.match(t.stdout, /kv heads 1/);
});

test('heed generate streams text and stops at --max-tokens; --json for machines; --chat uses the template', () => {
  const r = heed('generate', '--model', join(TINY, 'gpt2'), '--prompt', 'Hello', '--max-tokens', '7');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /\[7 tokens in .* finish: length\]/);
  const j = heed('generate', '--model', join(TINY, 'llama-gqa'), '--prompt', 'a', '--prompt', 'bbb', '--max-tokens', '4', '--temperature', '0.7', '--top-k', '20', '--top-p', '0.9', '--seed', '3', '--json');
  assert.equal(j.status, 0, j.stderr);
  const rows = JSON.parse(j.stdout);
  assert.equal(rows.length, 2);
  assert.equal(rows[1].prompt, 'bbb');
  const c = heed('generate', '--model', join(TINY, 'qwen2'), '--prompt', 'hi', '--chat', '--system', 'be brief', '--max-tokens', '3');
  assert.equal(c.status, 0, c.stderr);
});

test('errors: one line naming the field and the fix, exit code 2, stack only with --debug', () => {
  const cases: Array<[string[], RegExp]> = [
    [['generate', '--model', join(TINY, 'gpt2'), '--prompt', 'x', '--max-tokens', 'many'], /--max-tokens must be an integer/],
    [['generate', '--prompt', 'x'], /missing --model/],
    [['generate', '--model', '/nonexistent', '--prompt', 'x'], /\/nonexistent: model folder not found/],
    [['generate', '--model', join(TINY, 'gpt2'), '--prompt', 'x', '--device', 'webgpu'], /WebGPU is not available/],
    [['generate', '--model', join(TINY, 'gpt2'), '--prompt', 'x', '--max-tokens', '500'], /exceeds the model's context length 128/],
    [['generate', '--model', join(TINY, 'gpt2'), '--prompt', 'x', '--bogus'], /unknown flag --bogus/],
    [['model', 'info'], /missing model folder/],
    [['frobnicate'], /unknown command/],
  ];
  for (const [args, re] of cases) {
    const r = heed(...args);
    assert.equal(r.status, 2, `${args.join(' ')} → ${r.status}: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line: ${r.stderr}`);
    assert.match(lines[0], /^error: .*\(fix: .+\)$/);
    assert.match(lines[0], re);
  }
  const d = heed('model', 'info', '/nonexistent', '--debug');
  assert.equal(d.status, 2);
  assert.match(d.stderr, /at .*\.js/);
});

test('every flag of every command is declared with one line of help (what heed help prints)', async () => {
  const all = commands();
  assert.ok(all.length >= 24);
  for (const c of all) {
    const cmd = await c.load();
    assert.deepEqual(cmd.path, c.path);
    const flags = Object.entries(cmd.options);
    assert.ok(flags.length >= 1 || cmd.path.join(' ') === 'report', `${c.path.join(' ')} declares its flags`);
    for (const [name, f] of flags) {
      assert.ok(typeof f.help === 'string' && f.help.trim().length >= 8 && !f.help.includes('\n'), `${c.path.join(' ')} --${name}: help text`);
      assert.ok(!(name in GLOBAL_FLAGS), `${c.path.join(' ')} --${name} shadows a global flag`);
      if (f.default !== undefined) assert.ok(f.default.trim().length > 0, `${c.path.join(' ')} --${name}: empty default`);
    }
    // the help page lists every flag, its default and its meaning
    const lines = flagHelp(cmd.options).join('\n');
    for (const [name, f] of flags) {
      assert.match(lines, new RegExp(`--${name}\\b`));
      if (f.default !== undefined) assert.ok(lines.includes(`default: ${f.default}`), `${c.path.join(' ')} --${name}: default shown`);
    }
  }
});

test('heed help <command> and <command> --help print usage, summary and every flag with its default', async () => {
  const a = await heedIn(['help', 'generate']);
  const b = await heedIn(['generate', '--help']);
  assert.equal(a.status, 0, a.stderr);
  assert.equal(a.stdout, b.stdout);
  assert.match(a.stdout, /^usage: heed generate /);
  assert.match(a.stdout, /--max-tokens N +new tokens per prompt at most \(default: 128\)/);
  assert.match(a.stdout, /-p, --prompt TEXT .*repeatable/);
  assert.match(a.stdout, /--debug +on an error, also print the stack trace/);
  const d = await heedIn(['help', 'data', 'inspect']);
  assert.match(d.stdout, /--mask POLICY +which tokens carry loss.*\(default: output\)/);
  assert.match((await heedIn(['help', 'nope'])).stderr, /unknown command "nope"/);
});

test('parser errors in heed\'s words with a "did you mean" (never node\'s own messages)', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['generate', '--promt', 'x'], /^error: unknown flag --promt \(did you mean --prompt\?\) \(fix: usage: heed generate .*heed help generate lists every flag\)\)$/],
    [['generate', '--model'], /^error: --model is missing its value \(fix: --model SPEC: the model/],
    [['generate', '--model', '--prompt', 'x'], /--model needs a value, and "--prompt" looks like a flag \(fix: write --model=--prompt if that is the value/],
    [['demo', '--fast=yes'], /--fast is a switch and takes no value \(got "yes"\)/],
    [['demo', 'extra'], /unexpected argument "extra": this command takes flags only/],
    [['genrate'], /unknown command "genrate" \(did you mean "generate"\?\)/],
    [['data', 'stat'], /unknown command "data stat" \(did you mean "data stats"\?\)/],
    [['model', 'info', 'x', '--jsn'], /unknown flag --jsn \(did you mean --json\?\)/],
  ];
  for (const [args, re] of cases) {
    const r = await heedIn(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr.trim(), re);
    assert.doesNotMatch(r.stderr, /Unknown option|Option '|ERR_PARSE_ARGS|To specify an option argument/);
  }
  // in-process: the same errors are HeedErrors
  const opts = { model: { type: 'string', help: 'the model' }, json: { type: 'boolean', help: 'JSON' } } as const;
  assert.throws(() => parse(['--modle', 'x'], opts, 'heed x --model M'), (e) => e instanceof HeedError && /did you mean --model/.test(e.message));
  assert.deepEqual({ ...parse(['--model', 'm', '--json'], opts, 'heed x').values }, { model: 'm', json: true });
  assert.equal(closest('stgaes', ['stages', 'steps']), 'stages');
  assert.equal(closest('zzzzzz', ['stages', 'steps']), undefined);
});

test('hints say `npx heed` when heed was started through npx; colour only on a terminal, never with NO_COLOR', async () => {
  assert.equal(heedName({}, '/usr/lib/node_modules/heed/bin/heed.js'), 'heed');
  assert.equal(heedName({ npm_command: 'exec' }, '/x/heed.js'), 'npx heed');
  assert.equal(heedName({}, '/home/u/.npm/_npx/1a2b/node_modules/heed/bin/heed.js'), 'npx heed');
  const r = await heedIn(['train'], { npm_command: 'exec' });
  assert.match(r.stderr, /usage: npx heed train <config\.yaml>.*\|   npx heed train --resume/);
  assert.doesNotMatch(r.stderr, /npx npx/);
  assert.equal(useColor({ isTTY: true }, {}), true);
  assert.equal(useColor({ isTTY: false }, {}), false);
  assert.equal(useColor({ isTTY: true }, { NO_COLOR: '1' }), false);
  assert.equal(useColor({ isTTY: false }, { FORCE_COLOR: '1' }), true);
  assert.equal(useColor({ isTTY: true }, { FORCE_COLOR: '1', NO_COLOR: '1' }), false);
});
