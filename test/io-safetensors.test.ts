import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeedError } from '../src/errors.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../src/io/dtype.js';
import { readSafetensors, readSafetensorsHeader, writeSafetensors, type HostTensor } from '../src/io/safetensors.js';
import { loadHfWeights, saveHfWeights } from '../src/io/hf-weights.js';

const tmp = mkdtempSync(join(tmpdir(), 'heed-st-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let counter = 0;
const fresh = (name: string) => join(tmp, `${counter++}-${name}`);

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
const f32 = (...xs: number[]) => new Float32Array(xs);
const f32FromBits = (...us: number[]) => new Float32Array(new Uint32Array(us).buffer);

/** Hand-build a safetensors file: header object (serialised as given, unpadded unless asked) + data buffer. */
function buildFile(path: string, header: unknown, data: Uint8Array = new Uint8Array(0), headerLen?: bigint): string {
  const hb = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLen ?? BigInt(hb.length));
  writeFileSync(path, Buffer.concat([len, hb, data]));
  return path;
}

function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 4;
  }
  return out;
}

function assertHeedError(fn: () => unknown, ...parts: (string | RegExp)[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof HeedError, `expected HeedError, got ${e}`);
    for (const p of parts) assert.match(e.message, typeof p === 'string' ? new RegExp(p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : p);
    assert.ok(e.fix && e.fix.length > 0, 'HeedError has a fix');
    return true;
  });
}

test('f16: known values', () => {
  const cases: Array<[number, number]> = [
    [0x3c00, 1], [0xbc00, -1], [0x0000, 0], [0x7bff, 65504], [0xfbff, -65504], [0x0001, 2 ** -24], [0x03ff, 1023 * 2 ** -24],
    [0x0400, 2 ** -14], [0x7c00, Infinity], [0xfc00, -Infinity], [0x3555, 0.333251953125], [0x4000, 2], [0xc000, -2],
  ];
  const got = f16ToF32(new Uint16Array(cases.map((c) => c[0])));
  cases.forEach(([h, v], i) => assert.equal(got[i], v, `0x${h.toString(16)}`));
  assert.ok(Object.is(f16ToF32(new Uint16Array([0x8000]))[0], -0));
  assert.ok(Number.isNaN(f16ToF32(new Uint16Array([0x7e00]))[0]));
  assert.deepEqual([...f32ToF16(new Float32Array(cases.map((c) => c[1])))], cases.map((c) => c[0]));
  // rounding: overflow, ties to even, underflow
  const r = f32ToF16(f32(65519, 65520, 1e6, -1e6, 2 ** -25, 2 ** -25 * 1.5, 3 * 2 ** -25, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 1e-10, -0));
  assert.deepEqual([...r], [0x7bff, 0x7c00, 0x7c00, 0xfc00, 0x0000, 0x0001, 0x0002, 0x3c00, 0x3c02, 0x0000, 0x8000]);
  const nan = f32ToF16(f32FromBits(0x7fc00000, 0x7f800001, 0xffc00000));
  for (const h of nan) assert.ok((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0, `NaN stays NaN: 0x${h.toString(16)}`);
});

test('bf16: known values', () => {
  assert.deepEqual([...f32ToBf16(f32(1, -1, 2, 0, Infinity, -Infinity, 3.4028234663852886e38))], [0x3f80, 0xbf80, 0x4000, 0, 0x7f80, 0xff80, 0x7f80]);
  assert.deepEqual([...bf16ToF32(new Uint16Array([0x3f80, 0x4049, 0x7f80, 0x0001]))], [1, 3.140625, Infinity, 2 ** -133]);
  // ties to even: 1 + 2^-8 lies halfway between 0x3f80 and 0x3f81 -> 0x3f80; 1 + 3*2^-8 -> 0x3f82
  assert.deepEqual([...f32ToBf16(f32(1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20))], [0x3f80, 0x3f82, 0x3f81]);
  const nan = f32ToBf16(f32FromBits(0x7fc00000, 0x7f800001, 0xff800100));
  assert.deepEqual([...nan].map((h) => (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0), [true, true, true]);
});

test('f16: f32ToF16 is round-to-nearest-even on random values', () => {
  const all = f16ToF32(new Uint16Array(65536).map((_, i) => i));
  const xs = rand(100_000, 7).map((x, i) => x * 2 ** ((i % 40) - 28)); // spans subnormals to overflow
  const hs = f32ToF16(xs);
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i]!, h = hs[i]!;
    const v = all[h]!;
    if (!Number.isFinite(v)) { assert.ok(Math.abs(x) >= 65520, `overflow only past 65520: ${x}`); continue; }
    for (const nb of [h - 1, h + 1]) {
      if ((nb & 0x7fff) >= 0x7c00 || nb < 0 || nb > 0xffff || ((nb ^ h) & 0x8000)) continue;
      const d = Math.abs(x - v), dn = Math.abs(x - all[nb]!);
      assert.ok(d < dn || (d === dn && (h & 1) === 0), `x=${x} h=0x${h.toString(16)} neighbour 0x${nb.toString(16)}`);
    }
  }
});

for (const [name, toF32, fromF32] of [['f16', f16ToF32, f32ToF16], ['bf16', bf16ToF32, f32ToBf16]] as const) {
  test(`${name}: all 65536 bit patterns round-trip through f32`, () => {
    const src = new Uint16Array(65536).map((_, i) => i);
    const wide = toF32(src);
    const back = fromF32(wide);
    const isNan = name === 'f16' ? (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0 : (h: number) => (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;
    for (let h = 0; h < 65536; h++) {
      if (isNan(h)) {
        assert.ok(Number.isNaN(wide[h]) && isNan(back[h]!), `NaN 0x${h.toString(16)}`);
        assert.equal(back[h], h, 'NaN payload kept');
      } else assert.equal(back[h], h, `0x${h.toString(16)} -> ${wide[h]} -> 0x${back[h]!.toString(16)}`);
    }
  });
}

test('safetensors: hand-built file header parsing and reading', () => {
  const data = new Uint8Array(4 * 4 + 2 * 2 + 8 * 2 + 2);
  const dv = new DataView(data.buffer);
  [1, -2, 3.5, 0].forEach((v, i) => dv.setFloat32(i * 4, v, true));
  dv.setUint16(16, 0x3c00, true); dv.setUint16(18, 0xc000, true); // F16 [1, -2]
  dv.setBigInt64(20, 7n, true); dv.setBigInt64(28, -3n, true);
  data[36] = 1; data[37] = 0;
  const path = buildFile(fresh('hand.safetensors'), {
    __metadata__: { format: 'pt', note: 'hi' },
    w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] },
    h: { dtype: 'F16', shape: [2], data_offsets: [16, 20] },
    i: { dtype: 'I64', shape: [2], data_offsets: [20, 36] },
    b: { dtype: 'BOOL', shape: [2], data_offsets: [36, 38] },
    e: { dtype: 'F32', shape: [0, 3], data_offsets: [38, 38] },
  }, data);
  const { header, metadata, dataStart } = readSafetensorsHeader(path);
  assert.deepEqual(metadata, { format: 'pt', note: 'hi' });
  assert.equal(dataStart, statSync(path).size - data.length);
  assert.deepEqual(header.w, { dtype: 'F32', shape: [2, 2], offsets: [0, 16] });
  assert.deepEqual(Object.keys(header).sort(), ['b', 'e', 'h', 'i', 'w']);
  const r = readSafetensors(path);
  assert.deepEqual([...r.tensors.get('w')!.data], [1, -2, 3.5, 0]);
  assert.deepEqual([...r.tensors.get('h')!.data], [1, -2]);
  assert.deepEqual([...r.tensors.get('i')!.data], [7, -3]);
  assert.deepEqual([...r.tensors.get('b')!.data], [1, 0]);
  assert.deepEqual(r.tensors.get('e'), { shape: [0, 3], data: new Float32Array(0) });
  assert.equal(r.dtypes.get('h'), 'F16');
  const some = readSafetensors(path, { names: ['h'] });
  assert.deepEqual([...some.tensors.keys()], ['h']);
});

test('safetensors: every validation error is a HeedError naming the file (and tensor)', async (t) => {
  const f4 = new Uint8Array(16);
  const cases: Array<[string, () => string, ...(string | RegExp)[]]> = [
    ['too short', () => { const p = fresh('short.safetensors'); writeFileSync(p, Buffer.alloc(5)); return p; }, /too short/],
    ['header length past end', () => buildFile(fresh('len.safetensors'), { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f4, 10_000n), /past the end/],
    ['header length huge', () => buildFile(fresh('huge.safetensors'), {}, f4, 2n ** 63n), /header length/],
    ['bad JSON', () => buildFile(fresh('json.safetensors'), '{"a": [1,'), /not valid UTF-8 JSON/],
    ['JSON not an object', () => buildFile(fresh('arr.safetensors'), '[1, 2]'), /not an object/],
    ['bad metadata', () => buildFile(fresh('meta.safetensors'), { __metadata__: { a: 1 } }), /__metadata__/],
    ['unsupported dtype', () => buildFile(fresh('dtype.safetensors'), { q: { dtype: 'F8_E4M3', shape: [4], data_offsets: [0, 4] } }, f4), 'tensor "q"', /F8_E4M3/],
    ['bad shape', () => buildFile(fresh('shape.safetensors'), { q: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, f4), 'tensor "q"', /shape/],
    ['bad offsets', () => buildFile(fresh('off.safetensors'), { q: { dtype: 'F32', shape: [1], data_offsets: [8, 4] } }, f4), 'tensor "q"', /data_offsets/],
    ['offsets out of range', () => buildFile(fresh('range.safetensors'), { q: { dtype: 'F32', shape: [8], data_offsets: [0, 32] } }, f4), 'tensor "q"', /past the 16-byte/],
    ['size mismatch', () => buildFile(fresh('size.safetensors'), { q: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, f4), 'tensor "q"', /needs 12/],
    ['overlap', () => buildFile(fresh('overlap.safetensors'), {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    }, f4), 'tensor "b"', 'tensor "a"', /overlap/],
    ['integer not representable', () => {
      const d = new Uint8Array(8); new DataView(d.buffer).setBigInt64(0, 2n ** 53n + 1n, true);
      return buildFile(fresh('int.safetensors'), { big: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, d);
    }, 'tensor "big"', /not exactly representable/],
    ['missing file', () => join(tmp, 'nope.safetensors'), /cannot open/],
  ];
  for (const [name, make, ...parts] of cases) {
    await t.test(name, () => {
      const path = make();
      assertHeedError(() => readSafetensors(path), path, ...parts);
    });
  }
  await t.test('unknown tensor name', () => {
    const p = fresh('ok.safetensors');
    writeSafetensors(p, [['a', { shape: [1], data: f32(1) }]]);
    assertHeedError(() => readSafetensors(p, { names: ['zz'] }), p, 'tensor "zz"');
  });
  await t.test('write: shape/data mismatch and duplicate names', () => {
    const p = fresh('w.safetensors');
    assertHeedError(() => writeSafetensors(p, [['a', { shape: [2, 2], data: f32(1, 2, 3) }]]), p, 'tensor "a"');
    assertHeedError(() => writeSafetensors(p, [['a', { shape: [1], data: f32(1) }], ['a', { shape: [1], data: f32(2) }]]), p, 'tensor "a"');
    assert.ok(!existsSync(p) && !existsSync(`${p}.tmp`));
  });
});

test('safetensors: F32 round trip is bit-identical', () => {
  const special = f32FromBits(0x7fc00000, 0x7f800001, 0xffbfffff, 0x7fc12345, 0x80000000, 0x00000001, 0x007fffff, 0x80000123, 0x7f800000, 0xff800000, 0x7f7fffff);
  const tensors = new Map<string, HostTensor>([
    ['z.special', { shape: [special.length], data: special }],
    ['a.random', { shape: [3, 5, 7], data: rand(105, 1) }],
    ['m.scalar', { shape: [], data: f32(Math.PI) }],
    ['e.empty', { shape: [2, 0], data: new Float32Array(0) }],
  ]);
  const p = fresh('rt.safetensors');
  writeSafetensors(p, tensors, { metadata: { step: '12' } });
  assert.ok(!existsSync(`${p}.tmp`));
  const buf = readFileSync(p);
  const n = Number(buf.readBigUInt64LE(0));
  assert.equal(n % 8, 0, 'header padded to a multiple of 8');
  const json = buf.subarray(8, 8 + n).toString('utf8');
  assert.match(json, / *$/);
  const parsed = JSON.parse(json);
  assert.deepEqual(Object.keys(parsed), ['__metadata__', 'a.random', 'e.empty', 'm.scalar', 'z.special'], 'metadata first, then sorted');
  assert.deepEqual(parsed.__metadata__, { format: 'pt', step: '12' });
  assert.equal(parsed['a.random'].data_offsets[0], 0);
  assert.equal(buf.length, 8 + n + 4 * (105 + 1 + special.length));
  const r = readSafetensors(p);
  assert.deepEqual(r.metadata, { format: 'pt', step: '12' });
  for (const [name, t] of tensors) {
    const got = r.tensors.get(name)!;
    assert.deepEqual(got.shape, t.shape, name);
    assert.deepEqual([...bits(got.data)], [...bits(t.data)], name);
    assert.equal(r.dtypes.get(name), 'F32');
  }
  // overwrite in place
  writeSafetensors(p, [['only', { shape: [1], data: f32(5) }]]);
  assert.deepEqual([...readSafetensors(p).tensors.keys()], ['only']);
});

test('safetensors: dtype choice on save (F16/BF16 half the size, within precision)', () => {
  const data = rand(4096, 3);
  const t = new Map([['w', { shape: [64, 64], data }]]);
  const p32 = fresh('w32.safetensors'), p16 = fresh('w16.safetensors'), pb16 = fresh('wb16.safetensors');
  writeSafetensors(p32, t);
  writeSafetensors(p16, t, { dtype: 'F16' });
  writeSafetensors(pb16, t, { dtype: 'BF16' });
  const dataBytes = (p: string) => statSync(p).size - readSafetensorsHeader(p).dataStart;
  assert.equal(dataBytes(p32), 4096 * 4);
  assert.equal(dataBytes(p16), 4096 * 2);
  assert.equal(dataBytes(pb16), 4096 * 2);
  for (const [p, dtype, rel] of [[p16, 'F16', 2 ** -11], [pb16, 'BF16', 2 ** -8]] as const) {
    const r = readSafetensors(p);
    assert.equal(r.dtypes.get('w'), dtype);
    const got = r.tensors.get('w')!.data;
    for (let i = 0; i < data.length; i++) assert.ok(Math.abs(got[i]! - data[i]!) <= Math.abs(data[i]!) * rel + 2 ** -24, `${dtype} ${i}`);
  }
});

test('hf-weights: single file, sharded save + load, index, stale files removed', () => {
  const dir = fresh('model');
  const tensors = new Map<string, HostTensor>();
  for (let i = 0; i < 5; i++) tensors.set(`layers.${i}.w`, { shape: [10, 10], data: rand(100, 10 + i) });
  tensors.set('big', { shape: [300], data: rand(300, 99) });
  tensors.set('bias', { shape: [3], data: rand(3, 5) });

  const one = saveHfWeights(dir, tensors);
  assert.deepEqual(one.files, [join(dir, 'model.safetensors')]);
  let loaded = loadHfWeights(dir);
  assert.deepEqual(loaded.files, one.files);
  const same = (m: Map<string, HostTensor>) => {
    assert.deepEqual([...m.keys()].sort(), [...tensors.keys()].sort());
    for (const [k, v] of tensors) {
      assert.deepEqual(m.get(k)!.shape, v.shape);
      assert.deepEqual([...bits(m.get(k)!.data)], [...bits(v.data)], k);
    }
  };
  same(loaded.tensors);

  // 400-byte tensors, 1000-byte shards: [l0 l1] [l2 l3] [big (1200 bytes, alone)] [l4 bias]
  const sharded = saveHfWeights(dir, tensors, { maxShardBytes: 1000 });
  const names = ['model-00001-of-00004.safetensors', 'model-00002-of-00004.safetensors', 'model-00003-of-00004.safetensors', 'model-00004-of-00004.safetensors'];
  assert.deepEqual(sharded.files, names.map((f) => join(dir, f)));
  assert.deepEqual(readdirSync(dir).sort(), [...names, 'model.safetensors.index.json'], 'old model.safetensors removed');
  const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'));
  assert.deepEqual(index.metadata, { total_size: 4 * (500 + 300 + 3) });
  assert.deepEqual(Object.keys(index.weight_map), [...tensors.keys()].sort());
  assert.equal(index.weight_map['layers.1.w'], names[0]);
  assert.equal(index.weight_map['layers.2.w'], names[1]);
  assert.equal(index.weight_map.big, names[2]);
  assert.equal(index.weight_map.bias, names[3]);
  for (const f of names) {
    const { header } = readSafetensorsHeader(join(dir, f));
    assert.deepEqual(Object.keys(header).sort(), Object.keys(index.weight_map).filter((k) => index.weight_map[k] === f).sort());
  }
  loaded = loadHfWeights(dir);
  same(loaded.tensors);
  assert.deepEqual(loaded.files, sharded.files);

  // fewer shards: the of-00004 files are replaced; back to one file: index and shards go
  saveHfWeights(dir, tensors, { maxShardBytes: 2000 });
  assert.ok(readdirSync(dir).every((f) => !f.includes('of-00004')));
  same(loadHfWeights(dir).tensors);
  writeFileSync(join(dir, 'config.json'), '{}');
  saveHfWeights(dir, tensors, { dtype: 'BF16' });
  assert.deepEqual(readdirSync(dir).sort(), ['config.json', 'model.safetensors']);
  assert.equal(loadHfWeights(dir).dtypes.get('big'), 'BF16');
});

test('hf-weights: load errors', () => {
  const dir = fresh('broken');
  const tensors = new Map<string, HostTensor>([
    ['a', { shape: [100], data: rand(100, 1) }],
    ['b', { shape: [100], data: rand(100, 2) }],
  ]);
  saveHfWeights(dir, tensors, { maxShardBytes: 400 });
  const indexPath = join(dir, 'model.safetensors.index.json');
  const index = JSON.parse(readFileSync(indexPath, 'utf8'));

  index.weight_map.c = 'model-00001-of-00002.safetensors';
  writeFileSync(indexPath, JSON.stringify(index));
  assertHeedError(() => loadHfWeights(dir), indexPath, 'tensor "c"', 'model-00001-of-00002.safetensors');

  delete index.weight_map.c;
  index.weight_map.b = 'model-00009-of-00009.safetensors';
  writeFileSync(indexPath, JSON.stringify(index));
  assertHeedError(() => loadHfWeights(dir), indexPath, 'model-00009-of-00009.safetensors', /missing/);

  writeFileSync(indexPath, '{"weight_map": 3}');
  assertHeedError(() => loadHfWeights(dir), indexPath, /weight_map/);

  const empty = fresh('empty');
  mkdirSync(empty);
  assertHeedError(() => loadHfWeights(empty), empty, /model\.safetensors/);
  writeFileSync(join(empty, 'pytorch_model.bin'), 'x');
  assert.throws(() => loadHfWeights(empty), (e: unknown) => e instanceof HeedError && /pytorch_model\.bin/.test(e.message) && /safe_serialization=True/.test(e.fix!));
  assertHeedError(() => loadHfWeights(join(tmp, 'no-such-dir')), 'no-such-dir');
});
