/**
 * Issue 16, item 7: TensorBoard event files and CSV from a run's metrics (src/train/loggers/), `heed logs export`.
 * The event files are checked three ways: a decoder written here from the format's documentation (TFRecord
 * framing with masked CRC32C — computed bit by bit here, not with the writer's table —, Event and Summary
 * protobuf fields), and, where a Python with the `tensorboard` package is set up (.ci/run makes /tmp/heed-tb-venv),
 * TensorBoard's own EventAccumulator.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, tmp } from './helpers.js';
import { crc32c, maskedCrc32c } from '../src/train/loggers/tensorboard.js';
import { RunLoggers, loggerKinds } from '../src/train/loggers/index.js';
import { z } from 'zod';

const heed = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/heed.js'), ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 60_000 });

// --- an independent reader, from the documentation of the formats
function crcBitwise(b: Uint8Array): number {
  let c = ~0 >>> 0;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0x82f63b78 & -(c & 1));
  }
  return ~c >>> 0;
}
const mask = (c: number) => ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;

interface Ev { wallTime?: number; step: number; fileVersion?: string; values: Array<{ tag: string; value: number }> }
function readVarint(b: Uint8Array, p: { i: number }): bigint {
  let v = 0n;
  for (let s = 0n; ; s += 7n) {
    const x = b[p.i++];
    v |= BigInt(x & 0x7f) << s;
    if (!(x & 0x80)) return v;
  }
}
/** protobuf fields: [field, wire type, value] (varint → bigint, 64/32-bit → bytes, length-delimited → bytes) */
function fields(b: Uint8Array): Array<[number, number, bigint | Uint8Array]> {
  const out: Array<[number, number, bigint | Uint8Array]> = [];
  const p = { i: 0 };
  while (p.i < b.length) {
    const key = Number(readVarint(b, p));
    const [f, w] = [key >>> 3, key & 7];
    if (w === 0) out.push([f, w, readVarint(b, p)]);
    else if (w === 1 || w === 5) {
      const n = w === 1 ? 8 : 4;
      out.push([f, w, b.subarray(p.i, p.i + n)]);
      p.i += n;
    } else if (w === 2) {
      const n = Number(readVarint(b, p));
      out.push([f, w, b.subarray(p.i, p.i + n)]);
      p.i += n;
    } else throw new Error(`wire type ${w}`);
  }
  return out;
}
function readEvents(file: string): Ev[] {
  const buf = new Uint8Array(readFileSync(file));
  const dv = new DataView(buf.buffer, buf.byteOffset);
  const evs: Ev[] = [];
  for (let o = 0; o < buf.length; ) {
    const len = Number(dv.getBigUint64(o, true));
    assert.equal(dv.getUint32(o + 8, true), mask(crcBitwise(buf.subarray(o, o + 8))), 'length CRC');
    const data = buf.subarray(o + 12, o + 12 + len);
    assert.equal(dv.getUint32(o + 12 + len, true), mask(crcBitwise(data)), 'data CRC');
    o += 16 + len;
    const ev: Ev = { step: 0, values: [] };
    for (const [f, w, v] of fields(data)) {
      if (f === 1 && w === 1) ev.wallTime = new DataView((v as Uint8Array).slice().buffer).getFloat64(0, true);
      else if (f === 2 && w === 0) ev.step = Number(v);
      else if (f === 3 && w === 2) ev.fileVersion = new TextDecoder().decode(v as Uint8Array);
      else if (f === 5 && w === 2)
        for (const [sf, , sv] of fields(v as Uint8Array)) {
          assert.equal(sf, 1, 'Summary.value');
          const val: { tag: string; value: number } = { tag: '', value: NaN };
          for (const [vf, vw, vv] of fields(sv as Uint8Array)) {
            if (vf === 1 && vw === 2) val.tag = new TextDecoder().decode(vv as Uint8Array);
            if (vf === 2 && vw === 5) val.value = new DataView((vv as Uint8Array).slice().buffer).getFloat32(0, true);
          }
          ev.values.push(val);
        }
    }
    evs.push(ev);
  }
  return evs;
}

const RECS = [
  { step: 1, stage: 0, stage_name: 'main', epoch: 0.1, lr: 0.001, loss: 4.5, grad_norm: 2.5, tokens: 512, tokens_per_s: 100 },
  { step: 2, stage: 0, stage_name: 'main', epoch: 0.2, lr: 0.002, loss: 4.25, grad_norm: 2.0, tokens: 1024, tokens_per_s: 110, eval_loss: 4.4 },
  { step: 3, stage: 0, stage_name: 'main', epoch: 0.3, lr: 0.002, loss: 4.0, grad_norm: 1.5, tokens: 1536, tokens_per_s: 120 },
  { step: 4, stage: 0, stage_name: 'main, easy', epoch: 0.4, lr: 0.001, loss: 3.75, grad_norm: 1.25, tokens: 2048, tokens_per_s: 130, eval_loss: 4.1, ifs: 0.25 },
];
function runWith(recs: object[], torn = true): string {
  const d = join(tmp(), 'runs', 'r1');
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'metrics.jsonl'), recs.map((r) => JSON.stringify(r) + '\n').join('') + (torn ? '{"step": 5, "loss": 3.' : ''));
  return d;
}
const eventFile = (d: string) => {
  const f = readdirSync(d).filter((x) => x.startsWith('events.out.tfevents.'));
  assert.equal(f.length, 1, f.join(', '));
  assert.match(f[0], /^events\.out\.tfevents\.\d{10}\.[\w.-]+$/);
  return join(d, f[0]);
};

test('CRC32C: the standard check value, the writer agrees with a bitwise implementation, masking as documented', () => {
  const nine = new TextEncoder().encode('123456789');
  assert.equal(crc32c(nine), 0xe3069283);
  assert.equal(crcBitwise(nine), 0xe3069283);
  for (const s of ['', 'a', 'brain.Event:2', 'x'.repeat(1000)]) assert.equal(maskedCrc32c(new TextEncoder().encode(s)), mask(crcBitwise(new TextEncoder().encode(s))));
});

test('heed logs export: TensorBoard events (step + a scalar per numeric metric) and one-header CSV; a torn last line left out', () => {
  const d = runWith(RECS);
  const r = heed('logs', 'export', d, '--tensorboard', '--csv');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^4 metrics records → .*events\.out\.tfevents\.\d+\..*, .*metrics\.csv\nview: tensorboard --logdir /);
  const evs = readEvents(eventFile(d));
  assert.equal(evs[0].fileVersion, 'brain.Event:2');
  assert.deepEqual(evs.slice(1).map((e) => e.step), [1, 2, 3, 4]);
  assert.ok(evs.every((e) => e.wallTime! > 1.7e9));
  assert.deepEqual(evs[1].values.map((v) => v.tag), ['stage', 'epoch', 'lr', 'loss', 'grad_norm', 'tokens', 'tokens_per_s']);
  assert.deepEqual(Object.fromEntries(evs[4].values.map((v) => [v.tag, v.value])), { stage: 0, epoch: Math.fround(0.4), lr: Math.fround(0.001), loss: 3.75, grad_norm: 1.25, tokens: 2048, tokens_per_s: 130, eval_loss: Math.fround(4.1), ifs: 0.25 });
  const csv = readFileSync(join(d, 'metrics.csv'), 'utf8').trimEnd().split('\n');
  assert.equal(csv[0], 'step,stage,stage_name,epoch,lr,loss,grad_norm,tokens,tokens_per_s,eval_loss,ifs');
  assert.equal(csv.length, 5);
  assert.equal(csv[1], '1,0,main,0.1,0.001,4.5,2.5,512,100,,');
  assert.equal(csv[4], '4,0,"main, easy",0.4,0.001,3.75,1.25,2048,130,4.1,0.25');
  // again: the files are replaced, not doubled
  assert.equal(heed('logs', 'export', d, '--tensorboard', '--csv', '--out', join(d, 'tb')).status, 0);
  assert.equal(readEvents(eventFile(join(d, 'tb'))).length, 5);
  assert.equal(heed('logs', 'export', d, '--csv').status, 0);
  assert.equal(readFileSync(join(d, 'metrics.csv'), 'utf8').trimEnd().split('\n').length, 5);
  for (const [args, re] of [
    [['logs', 'export', d], /nothing to export \(fix: pass --tensorboard, --csv or both\)/],
    [['logs', 'export', join(d, 'nope'), '--csv'], /nope: no metrics\.jsonl \(fix: /],
    [['logs', 'export', '--csv'], /missing the run folder/],
  ] as Array<[string[], RegExp]>) {
    const e = heed(...args);
    assert.equal(e.status, 2, e.stderr);
    assert.match(e.stderr.trim(), re);
  }
});

test('live loggers: the files hold the kept records at open (a resumed run) and every record written after, readable at once', () => {
  const d = runWith(RECS.slice(0, 2), false);
  const l = RunLoggers.open(d, ['tensorboard', 'csv']);
  assert.equal(readEvents(eventFile(d)).length, 3);
  for (const r of RECS.slice(2)) {
    appendFileSync(join(d, 'metrics.jsonl'), JSON.stringify(r) + '\n');
    l.write(r);
  }
  assert.deepEqual(readEvents(eventFile(d)).slice(1).map((e) => e.step), [1, 2, 3, 4]);
  const csv = readFileSync(join(d, 'metrics.csv'), 'utf8').trimEnd().split('\n');
  assert.equal(csv[0].split(',').at(-1), 'ifs', 'the column of a metric that appears late is added (one header)');
  assert.equal(csv.length, 5);
  // resuming from step 2 (the trainer cut metrics.jsonl back): one event file, each step once
  writeFileSync(join(d, 'metrics.jsonl'), RECS.slice(0, 2).map((r) => JSON.stringify(r) + '\n').join(''));
  const again = RunLoggers.open(d, ['tensorboard', 'csv']);
  again.write({ ...RECS[2], loss: 3.9 });
  const evs = readEvents(eventFile(d));
  assert.deepEqual(evs.slice(1).map((e) => e.step), [1, 2, 3]);
  assert.equal(evs[3].values.find((v) => v.tag === 'loss')!.value, Math.fround(3.9));
  assert.equal(readFileSync(join(d, 'metrics.csv'), 'utf8').trimEnd().split('\n').length, 4);
  // the config key: loggers: [tensorboard, csv] in the train config, checked by its schema
  assert.deepEqual(loggerKinds({ loggers: ['csv', 'tensorboard'] }), ['tensorboard', 'csv']);
  assert.deepEqual(loggerKinds({}), []);
});

test('heed logs export --follow appends what a live run writes and stops when the run finishes', async () => {
  const d = runWith(RECS.slice(0, 1), false);
  const c = spawn(process.execPath, [join(ROOT, 'bin/heed.js'), 'logs', 'export', d, '--csv', '--tensorboard', '--follow', '--poll-ms', '50'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  c.stderr.on('data', (x) => (err += x));
  c.stdout.on('data', (x) => (out += x));
  const seen = async (re: RegExp) => {
    for (let i = 0; i < 200 && !re.test(err); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(err, re);
  };
  await seen(/\[1 records\]/);
  for (const r of RECS.slice(1)) appendFileSync(join(d, 'metrics.jsonl'), JSON.stringify(r) + '\n');
  await seen(/\[4 records\]/);
  assert.equal(readFileSync(join(d, 'metrics.csv'), 'utf8').trimEnd().split('\n').length, 5, 'readable while the run goes on');
  writeFileSync(join(d, 'summary.json'), '{}');
  const code = await new Promise((r) => c.on('exit', r));
  assert.equal(code, 0, err);
  assert.match(out, /^4 metrics records/);
  assert.deepEqual(readEvents(eventFile(d)).slice(1).map((e) => e.step), [1, 2, 3, 4]);
});

const TB_PY = process.env.HEED_TB_PYTHON ?? '/tmp/heed-tb-venv/bin/python';
const hasTb = existsSync(TB_PY) && spawnSync(TB_PY, ['-c', 'import tensorboard'], { encoding: 'utf8' }).status === 0;
test('TensorBoard itself reads the event file: every scalar of every step (EventAccumulator)', { skip: !hasTb && !process.env.HEED_REQUIRE_TENSORBOARD ? `no Python with the tensorboard package at ${TB_PY} (.ci/run makes it; or set HEED_TB_PYTHON)` : false }, () => {
  const d = runWith(RECS);
  assert.equal(heed('logs', 'export', d, '--tensorboard').status, 0);
  const py = `
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
ea = EventAccumulator(sys.argv[1]); ea.Reload()
print(json.dumps({t: [[e.step, e.value] for e in ea.Scalars(t)] for t in ea.Tags()["scalars"]}))`;
  const r = spawnSync(TB_PY, ['-c', py, d], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  assert.deepEqual(Object.keys(s).sort(), ['epoch', 'eval_loss', 'grad_norm', 'ifs', 'loss', 'lr', 'stage', 'tokens', 'tokens_per_s']);
  assert.deepEqual(s.loss, [[1, 4.5], [2, 4.25], [3, 4.0], [4, 3.75]]);
  assert.deepEqual(s.ifs, [[4, 0.25]]);
  assert.deepEqual(s.eval_loss.map((x: number[]) => x[0]), [2, 4]);
});
