import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, TINY, TINY_NAMES } from './helpers.js';

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
    [['generate', '--model', join(TINY, 'gpt2'), '--prompt', 'x', '--bogus'], /Unknown option '--bogus'/],
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
