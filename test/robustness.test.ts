/**
 * Bad input of every class heed meets (docs/robustness.md has the table): each gets a clear one-line error
 * naming the path/field and the fix, or a counted, reported skip — never a crash, never a silent drop.
 * The kill -9 chaos test is test/chaos.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, openSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { initEngine } from '../src/engine/index.js';
import { applySet, loadTrainConfig, validateTrainConfig } from '../src/train/config.js';
import { train } from '../src/train/trainer.js';
import { loadVerifiedCheckpoint, writeManifest } from '../src/train/checkpoint.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { readModelConfig } from '../src/models/config.js';
import { HeedError, fromSystemError, safeText } from '../src/errors.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { DataPipeline } from '../src/data/pipeline.js';
import { weightRuns } from '../src/data/inspect.js';
import type { TrainerCallback } from '../src/train/callbacks.js';
import { ROOT, TINY, tmp } from './helpers.js';

await initEngine();

const BAD = join(ROOT, 'test/fixtures/bad-input');
const SMALL = join(BAD, 'small.jsonl');
const GQA = join(TINY, 'llama-gqa');
const base = (over: Record<string, unknown> = {}) => ({
  model: GQA,
  data: SMALL,
  template: 'chatml',
  max_length: 128,
  batch_size: 2,
  steps: 6,
  lr: 3e-3,
  eval_every: 3,
  save_every: 2,
  eval_max_rows: 3,
  eval: { split: 0.1 },
  seed: 1,
  out: tmp('heed-rb-'),
  name: 'r',
  ...over,
});
const run = (over: Record<string, unknown> = {}, opts = {}) => train(validateTrainConfig(base(over)), { quiet: true, ...opts });
const metrics = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const heed = (args: string[], input?: string) => spawnSync(process.execPath, [join(ROOT, 'bin/heed.js'), ...args], { encoding: 'utf8', input, timeout: 60_000 });
const heedError = (e: unknown, re: RegExp) => e instanceof HeedError && re.test(e.message) && !!e.fix;
/** a CLI failure: exit 2, one `error: ... (fix: ...)` line, no "bug in heed", no raw ESC */
function oneLineError(r: ReturnType<typeof heed>, re: RegExp) {
  assert.equal(r.status, 2, `exit ${r.status}: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^error: .*\(fix: .+\)$/);
  assert.match(lines[0], re);
  assert.doesNotMatch(r.stderr, /bug in heed/);
  assert.ok(!r.stderr.includes('\x1b'), 'no raw ESC');
}
const rowsOf = (n: number, long = 0) =>
  Array.from({ length: n }, (_, i) => JSON.stringify({ id: `r${i}`, messages: [{ role: 'user', content: `Question ${i}?` }, { role: 'assistant', content: `Answer ${i}.${i < long ? ' pad'.repeat(60) : ''}` }] })).join('\n') + '\n';

test('drops: every stage counts what it removes (by file and reason) in the log and summary.json; max_drop_share fails above its share', async () => {
  const dir = tmp();
  const f = join(dir, 'd.jsonl');
  writeFileSync(f, rowsOf(30, 10) + '{"id":"broken",\n\n' + '{"id":"nol","messages":[{"role":"user","content":"' + 'x'.repeat(300) + '"},{"role":"assistant","content":"y"}]}\n');
  const lines: string[] = [];
  const s = await run({ data: f, truncation: 'drop', on_bad_row: 'skip', eval: null, steps: 2 }, { log: (l: string) => lines.push(l) });
  const d = (s.data as { files: Array<Record<string, number>>; dropped: number; rows_read: number; drop_share: number }).files[0];
  assert.equal(d.rows_read, 32);
  assert.equal(d.blank_lines, 1);
  assert.equal(d.bad_rows_skipped, 1);
  assert.equal(d.dropped_too_long, 11, 'the 10 padded rows and the 300-char one');
  assert.equal(d.training_rows, 20);
  const summary = JSON.parse(readFileSync(join(s.run_dir, 'summary.json'), 'utf8'));
  assert.equal(summary.data.dropped, 12);
  assert.equal(summary.data.rows_read, 32);
  assert.ok(lines.some((l) => /32 rows read, 12 dropped \(11 longer than max_length 128 \(truncation: drop\), 1 bad rows skipped \(malformed-json 1\)\)/.test(l)), lines.join('\n'));
  // truncate-right keeps them (counted as truncated); the prompt-only-long row loses every loss-bearing token
  const t = await run({ data: f, truncation: 'truncate-right', on_bad_row: 'skip', eval: null, steps: 1, name: 't' });
  const td = (t.data as { files: Array<Record<string, number>> }).files[0];
  assert.equal(td.truncated, 10);
  assert.equal(td.dropped_no_loss, 1);
  await assert.rejects(run({ data: f, truncation: 'drop', on_bad_row: 'skip', eval: null, max_drop_share: 0.2, name: 'm' }), (e) => heedError(e, /12 of 32 training rows dropped \(37\.5 % > max_drop_share 0\.2\)/));
  // the CLI: --strict fails on any drop, and the final report names the count
  const cfg = join(dir, 'c.yaml');
  writeFileSync(cfg, JSON.stringify(base({ data: f, truncation: 'drop', on_bad_row: 'skip', eval: null, steps: 1, out: dir })));
  oneLineError(heed(['train', cfg, '--strict', '--quiet']), /12 of 32 training rows dropped .*max_drop_share 0\)/);
  const ok = heed(['train', cfg, '--quiet', '--set', 'name=ok']);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /data: 32 rows read, 12 dropped \(37\.5 %/);
});

test('the shipped examples/sft-dolly.yaml keeps its rows (was: 251 of 400 dropped unseen)', () => {
  const c = loadTrainConfig(join(ROOT, 'examples/sft-dolly.yaml'));
  assert.equal(c.truncation, 'truncate-right');
  assert.equal(c.max_length, 512);
  assert.equal(c.max_drop_share, 0.05);
});

test('divergence guard: the first non-finite loss or gradient norm stops the run, names the step, keeps the last good checkpoint', async () => {
  let err: unknown;
  const out = tmp('heed-div-');
  await run({ lr: 1e30, grad_clip: 0, save_every: 1, steps: 8, eval_every: 100, out }).catch((e) => (err = e));
  assert.ok(heedError(err, /training diverged at step (\d+): loss .*gradient norm .*the last good checkpoint .*step-\d+/), String(err));
  const step = Number(/diverged at step (\d+)/.exec((err as Error).message)![1]);
  const summary = JSON.parse(readFileSync(join(out, 'r', 'summary.json'), 'utf8'));
  assert.equal(summary.diverged.step, step);
  assert.equal(summary.last_checkpoint, join(out, 'r', `step-${step - 1}`));
  for (const ck of readdirSync(join(out, 'r')).filter((x) => x.startsWith('step-'))) {
    for (const t of readSafetensors(join(out, 'r', ck, 'model.safetensors')).tensors.values()) assert.ok(t.data.every(Number.isFinite), `${ck} holds finite weights only`);
  }
  assert.ok(!existsSync(join(out, 'r', `step-${step}`)), 'nothing of the diverged step saved');
});

test('NaN parameters in a checkpoint are refused on resume (even with a matching manifest); an earlier intact one is used', async () => {
  const interrupt = { stop: false };
  const stopAt: TrainerCallback = { name: 'stop', async onEval(ctx) { if (ctx.step === 6) interrupt.stop = true; } };
  const s = await run({ steps: 8, eval_every: 6 }, { interrupt, callbacks: [stopAt] });
  const ck = join(s.run_dir, 'step-6');
  const opt = readSafetensors(join(ck, 'optimizer.safetensors')).tensors;
  opt.values().next().value!.data[0] = NaN;
  writeSafetensors(join(ck, 'optimizer.safetensors'), opt, { dtype: 'F32' });
  writeManifest(ck, 6);
  const lines: string[] = [];
  const r = await train({ resume: s.run_dir }, { quiet: true, log: (l) => lines.push(l) });
  assert.equal(r.steps, 8);
  assert.ok(lines.some((l) => /step-6 is damaged \(optimizer\.safetensors: .*non-finite value \(NaN\)/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /resuming from .*step-4, the newest intact checkpoint/.test(l)));
  assert.ok(existsSync(join(s.run_dir, 'damaged-step-6')), 'the damaged checkpoint is kept aside, not deleted');
});

test('checkpoints: a flipped byte in any file, or a forged step, is detected; resume falls back to the newest intact checkpoint with the same curve', async () => {
  const ref = metrics((await run({ steps: 8 })).run_dir);
  const interrupt = { stop: false };
  const stopAt: TrainerCallback = { name: 'stop', async onEval(ctx) { if (ctx.step === 6) interrupt.stop = true; } };
  const s = await run({ steps: 8 }, { interrupt, callbacks: [stopAt] });
  const ck = join(s.run_dir, 'step-6');
  const recs = metrics(s.run_dir);
  assert.ok('state' in loadVerifiedCheckpoint(ck, 6, recs), 'intact');
  // every file of the checkpoint: flip one byte → damaged, naming the file
  const files = readdirSync(ck).sort();
  for (const f of ['config.json', 'model.safetensors', 'optimizer.safetensors', 'trainer_state.json', 'tokenizer.json', 'manifest.json']) assert.ok(files.includes(f), `${f} in ${files}`);
  for (const f of files) {
    const p = join(ck, f);
    const orig = readFileSync(p);
    const b = Buffer.from(orig);
    b[Math.floor(b.length / 2)] ^= 0x01;
    writeFileSync(p, b);
    const r = loadVerifiedCheckpoint(ck, 6, recs);
    assert.ok('damaged' in r, `${f} flipped is detected`);
    if (f !== 'manifest.json') assert.match(r.damaged, new RegExp(f.replace('.', '\\.')));
    writeFileSync(p, orig);
  }
  // a checkpoint of an older heed (no manifest) is used, flagged as unverified
  const mf = readFileSync(join(ck, 'manifest.json'));
  rmSync(join(ck, 'manifest.json'));
  assert.equal((loadVerifiedCheckpoint(ck, 6, recs) as { unverified?: boolean }).unverified, true);
  writeFileSync(join(ck, 'manifest.json'), mf);
  // a forged step with a recomputed manifest: cross-checked against the folder and metrics.jsonl
  const st = JSON.parse(readFileSync(join(ck, 'trainer_state.json'), 'utf8'));
  writeFileSync(join(ck, 'trainer_state.json'), JSON.stringify({ ...st, step: 1000 }));
  writeManifest(ck, 6);
  assert.match((loadVerifiedCheckpoint(ck, 6, recs) as { damaged: string }).damaged, /says step 1000, but the folder is step-6/);
  writeFileSync(join(ck, 'trainer_state.json'), JSON.stringify({ ...st, tokens: st.tokens + 1 }));
  writeManifest(ck, 6);
  assert.match((loadVerifiedCheckpoint(ck, 6, recs) as { damaged: string }).damaged, /metrics\.jsonl/);
  // resume: falls back to step-4, says so, and ends on the reference curve
  const lines: string[] = [];
  const r = await train({ resume: s.run_dir }, { quiet: true, log: (l) => lines.push(l) });
  assert.equal(r.steps, 8);
  assert.ok(lines.some((l) => /warning: resuming from .*step-4/.test(l)), lines.join('\n'));
  assert.deepEqual(metrics(s.run_dir).map((m) => [m.step, m.loss, m.eval_loss]), ref.map((m) => [m.step, m.loss, m.eval_loss]));
  // all damaged: a one-line error, nothing deleted
  const s2 = await run({ steps: 4, name: 'all' });
  for (const c of readdirSync(s2.run_dir).filter((x) => /^step-/.test(x))) writeFileSync(join(s2.run_dir, c, 'config.json'), '{}');
  rmSync(join(s2.run_dir, 'summary.json'));
  await assert.rejects(train({ resume: s2.run_dir }, { quiet: true }), (e) => heedError(e, /every checkpoint is damaged/));
});

test('a run killed after its last checkpoint writes summary.json on --resume; a finished run with a summary is refused', async () => {
  const s = await run({ steps: 4 });
  const before = JSON.parse(readFileSync(join(s.run_dir, 'summary.json'), 'utf8'));
  rmSync(join(s.run_dir, 'summary.json'));
  const lines: string[] = [];
  const r = await train({ resume: s.run_dir }, { quiet: true, log: (l) => lines.push(l) });
  assert.ok(lines.some((l) => /killed before summary\.json was written/.test(l)));
  const after = JSON.parse(readFileSync(join(s.run_dir, 'summary.json'), 'utf8'));
  for (const k of ['steps', 'tokens', 'final', 'best', 'last_checkpoint', 'stopped_early', 'stages', 'data']) assert.deepEqual(after[k], before[k], k);
  assert.equal(r.steps, 4);
  assert.equal(metrics(s.run_dir).length, 4, 'no step trained twice');
  // a stale summary of an earlier, interrupted session of the same run is replaced, not taken as the end
  writeFileSync(join(s.run_dir, 'summary.json'), JSON.stringify({ steps: 2, interrupted: true }));
  await train({ resume: s.run_dir }, { quiet: true });
  assert.equal(JSON.parse(readFileSync(join(s.run_dir, 'summary.json'), 'utf8')).steps, 4);
  await assert.rejects(train({ resume: s.run_dir }, { quiet: true }), (e) => heedError(e, /already finished/));
});

test('max_length is checked against the model context before data is read; sizes are bounded before allocating', async () => {
  // llama-gqa has 128 positions; the data file does not even exist: the check comes first
  await assert.rejects(run({ max_length: 200, data: '/nonexistent.jsonl' }), (e) => heedError(e, /max_length 200 is longer than the model's context: .*allows 128 positions/));
  assert.throws(() => validateTrainConfig(base({ max_length: 1e9 })), (e) => heedError(e, /"max_length"/));
  assert.throws(() => validateTrainConfig(base({ data: [{ path: SMALL, weight: 1e7 }] })), (e) => heedError(e, /"data\.0\.weight": .*at most 1000/));
  const dir = tmp();
  const cfg = JSON.parse(readFileSync(join(GQA, 'config.json'), 'utf8'));
  for (const [k, v, re] of [['num_hidden_layers', 1e8, /"num_hidden_layers" is 100000000, more than 4,096/], ['hidden_size', 65536 * 2, /largest weight would hold/]] as const) {
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, [k]: v, ...(k === 'hidden_size' ? { vocab_size: 1 << 22, num_attention_heads: 4 } : {}) }));
    assert.throws(() => readModelConfig(dir), (e) => heedError(e, re));
  }
  // a 5 GB tensor (sparse file): refused from its header, nothing allocated
  const st = join(dir, 'huge.safetensors');
  const n = 1_250_000_000;
  const header = Buffer.from(JSON.stringify({ w: { dtype: 'F32', shape: [n], data_offsets: [0, 4 * n] } }).padEnd(64, ' '));
  const fd = openSync(st, 'w');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  writeSync(fd, len);
  writeSync(fd, header);
  writeSync(fd, Buffer.alloc(1), 0, 1, 8 + header.length + 4 * n - 1);
  closeSync(fd);
  assert.throws(() => readSafetensors(st), (e) => heedError(e, /tensor "w" has 1,250,000,000 values .*more than the 1,073,741,824/));
  rmSync(st);
});

test('resume is exact for LoRA with clipping active (one canonical tensor order)', async () => {
  const over = { model: join(TINY, 'qwen2'), lora: { r: 4, alpha: 8, targets: ['q', 'v', 'down'] }, grad_clip: 0.01, lr: 1e-2, steps: 6, eval_every: 2 };
  const ref = metrics((await run(over)).run_dir);
  assert.ok(ref.every((m) => m.grad_norm > 0.01), 'clipping is active at every step');
  const interrupt = { stop: false };
  const stopAt: TrainerCallback = { name: 'stop', async onEval(ctx) { if (ctx.step === 2) interrupt.stop = true; } };
  const s = await run(over, { interrupt, callbacks: [stopAt] });
  await train({ resume: s.run_dir }, { quiet: true });
  assert.deepEqual(metrics(s.run_dir).map((m) => [m.loss, m.grad_norm, m.eval_loss]), ref.map((m) => [m.loss, m.grad_norm, m.eval_loss]));
});

test('control characters from data are printed escaped: data inspect, stats and error messages (one helper)', () => {
  assert.equal(safeText('a\x1b]52;c;eA==\x07b\r\u202e\ud800', { newlines: true }), 'a\\u001b]52;c;eA==\\u0007b\\r\\u202e\\ud800');
  assert.equal(safeText('x\ny\tz'), 'x\\ny\tz');
  assert.equal(safeText('emoji 😀 ünïcødé 漢字', { newlines: true }), 'emoji 😀 ünïcødé 漢字');
  const f = join(BAD, 'control-chars.jsonl');
  for (const extra of [['--no-color'], []]) {
    const r = heed(['data', 'inspect', '--data', f, '--model', GQA, '--template', 'chatml', '--mask', 'output', ...extra]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Copy this\\u001b\]52;c;ZWNobyBwd25lZA==\\u0007 please/);
    assert.match(r.stdout, /row bell\\u001b\[31mred/);
    // the only ESC bytes are heed's own colour codes (none with --no-color)
    const stray = r.stdout.replace(/\x1b\[(0|1|2|33|1;32)m/g, '');
    assert.ok(!/[\x00-\x08\x0b-\x1f\x7f-\x9f]/.test(stray), JSON.stringify(stray.slice(0, 200)));
    assert.ok(!r.stdout.includes('\u202e'));
  }
  // an error that quotes data (a role name with an OSC 52 sequence)
  const dir = tmp();
  writeFileSync(join(dir, 'x.jsonl'), JSON.stringify({ messages: [{ role: 'x\x1b]52;c;ZQ==\x07', content: 'a' }, { role: 'assistant', content: 'b' }] }) + '\n');
  const e = heed(['data', 'stats', '--data', join(dir, 'x.jsonl'), '--model', GQA]);
  assert.equal(e.status, 2);
  assert.ok(!e.stderr.includes('\x1b') && !e.stderr.includes('\x07'), JSON.stringify(e.stderr));
  assert.match(e.stderr, /\\u001b\]52/);
});

test('data inspect is linear in turns: a 20,000-turn row decodes run by run to exactly the whole text', () => {
  for (const model of [GQA, join(ROOT, 'models/base-dolly')]) {
    const tok = loadTokenizer(model);
    const pl = new DataPipeline(tok, { template: 'chatml', mask: 'output' });
    const turns = model === GQA ? 20_000 : 2_000;
    const messages = Array.from({ length: turns }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: i % 2 ? `fine ünï ${i} 😀` : `how ${i}?` })) as Array<{ role: 'user' | 'assistant'; content: string }>;
    const p = pl.prepare({ id: 'long', line: 1, messages });
    const runs = weightRuns(p.example, pl.enc);
    assert.ok(runs.length >= turns, `${runs.length} runs`);
    assert.equal(runs.map((r) => r.text).join(''), pl.enc.decode(p.example.ids), model);
  }
  // and through the CLI
  const dir = tmp();
  const msgs = Array.from({ length: 4000 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `t${i}` }));
  writeFileSync(join(dir, 'long.jsonl'), JSON.stringify({ id: 'long', messages: msgs }) + '\n');
  const r = heed(['data', 'inspect', '--data', join(dir, 'long.jsonl'), '--model', GQA, '--template', 'chatml', '--mask', 'output', '--no-color']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /\[\[t3999<\|im_end\|>\]\]/);
});

test('OS conditions are one-line errors naming the path and the fix (never "a bug in heed")', () => {
  const dir = tmp();
  const ok = join(dir, 'ok.jsonl');
  writeFileSync(ok, rowsOf(3));
  const stats = (data: string) => heed(['data', 'stats', '--data', data, '--model', GQA]);
  oneLineError(stats(join(ok, 'x.jsonl')), /ok\.jsonl\/x\.jsonl: a part of the path is a file, not a folder \(ENOTDIR/);
  oneLineError(stats(dir), /is a folder, not a data file/);
  spawnSync('mkfifo', [join(dir, 'fifo')]);
  oneLineError(stats(join(dir, 'fifo')), /fifo: is a pipe \(FIFO\), not a regular file/);
  symlinkSync(join(dir, 'missing.jsonl'), join(dir, 'dangling.jsonl'));
  oneLineError(stats(join(dir, 'dangling.jsonl')), /dangling\.jsonl: data file not found \(a symbolic link to a missing file\)/);
  symlinkSync(join(dir, 'loop2'), join(dir, 'loop1'));
  symlinkSync(join(dir, 'loop1'), join(dir, 'loop2'));
  oneLineError(stats(join(dir, 'loop1')), /loop1: too many symbolic links/);
  oneLineError(stats(join(BAD, 'utf16le.jsonl')), /is UTF-16 \(byte order mark FF FE\), not UTF-8/);
  oneLineError(stats(join(BAD, 'data.jsonl.gz')), /is gzip-compressed/);
  // a model folder that is a file; an output folder under a file (ENOTDIR when the run folder is made)
  oneLineError(heed(['model', 'info', ok]), /ok\.jsonl/);
  const cfg = join(dir, 'c.yaml');
  writeFileSync(cfg, JSON.stringify(base({ data: ok, eval: null, out: join(ok, 'runs') })));
  oneLineError(heed(['train', cfg, '--quiet']), /ok\.jsonl\/runs.*(ENOTDIR|EEXIST)/);
  // permissions: root reads anything, so the real chmod case runs only as another user; the mapping itself always
  const e = fromSystemError(Object.assign(new Error("EACCES: permission denied, open '/x/y.jsonl'"), { code: 'EACCES', path: '/x/y.jsonl', syscall: 'open' }));
  assert.ok(e && /^\/x\/y\.jsonl: permission denied \(EACCES in open\)/.test(e.message) && /chmod/.test(e.fix!));
  assert.match(fromSystemError(new RangeError('Array buffer allocation failed'))!.message, /out of memory/);
  if (process.getuid?.() !== 0) {
    const locked = join(dir, 'locked.jsonl');
    writeFileSync(locked, rowsOf(2));
    chmodSync(locked, 0);
    oneLineError(stats(locked), /locked\.jsonl: permission denied/);
  }
  // a closed output pipe ends quietly
  const p = spawnSync('sh', ['-c', `node ${join(ROOT, 'bin/heed.js')} data inspect --data ${join(BAD, 'small.jsonl')} --model ${GQA} --template chatml --mask output --n 40 --no-color | head -c 10 >/dev/null`], { encoding: 'utf8' });
  assert.doesNotMatch(p.stderr, /bug in heed|EPIPE/);
});

test('smaller: --set cannot reach the prototype; lone surrogates are bad rows; an empty text is not answer-like in ifs classify', () => {
  const raw: Record<string, unknown> = {};
  for (const s of ['__proto__.polluted=1', 'constructor.prototype.x=1', 'lora.__proto__.r=1'])
    assert.throws(() => applySet(raw, s), (e) => heedError(e, /is not a config key/), s);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  applySet(raw, 'adamw.beta2=0.95');
  assert.deepEqual(raw, { adamw: { beta2: 0.95 } });
  const r = heed(['data', 'stats', '--data', join(BAD, 'lone-surrogate.jsonl'), '--model', GQA, '--on-bad-row', 'skip']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /1 bad/);
  assert.match(r.stdout, /lone-surrogate/);
  const dir = tmp();
  writeFileSync(join(dir, 't.jsonl'), ['""', '"   "', '"Paris is the capital of France."'].map((t) => `{"text": ${t}}`).join('\n') + '\n');
  const c = heed(['ifs', 'classify', join(dir, 't.jsonl'), '--json']);
  assert.equal(c.status, 0, c.stderr);
  const out = c.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(out[0].label, 0);
  assert.equal(out[0].prob, 0);
  assert.equal(out[1].label, 0);
  oneLineError(heed(['ifs', 'classify', '']), /input file name is empty/);
});

