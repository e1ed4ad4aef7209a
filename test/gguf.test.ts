/** GGUF writer/reader and the model export (no llama.cpp needed; the parity tests are in gguf-parity.test.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HeedError } from '../src/errors.js';
import { meta, readGguf, readGgufTensor, writeGguf, quantizeQ8_0, dequantizeQ8_0, VT } from '../src/io/gguf.js';
import { exportGguf, permuteRope, preTokenizerName } from '../src/export/gguf.js';
import { loadHostModel } from '../src/models/load.js';
import { ROOT, TINY, tmp, maxAbsDiff } from './helpers.js';

const heed = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/heed.js'), ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 120_000 });

test('GGUF v3 round trip: typed metadata, reversed dims, 32-byte aligned offsets, f32 exact, f16 and q8_0 within their precision', () => {
  const dir = tmp('heed-gguf-');
  const f = join(dir, 'a.gguf');
  const a = Float32Array.from({ length: 3 * 64 }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 5)));
  const b = Float32Array.from({ length: 7 }, (_, i) => i - 3.5);
  writeGguf(f, [['general.architecture', meta.str('llama')], ['x.u32', meta.u32(4000000000)], ['x.f32', meta.f32(0.25)], ['x.bool', meta.bool(true)], ['x.strs', meta.strs(['a', 'ĠI', '<|im_end|>'])], ['x.i32s', meta.i32s([-1, 2])]], [
    { name: 'a32', shape: [3, 64], type: 'F32', data: () => a },
    { name: 'b', shape: [7], type: 'F32', data: () => b },
    { name: 'a16', shape: [3, 64], type: 'F16', data: () => a },
    { name: 'a8', shape: [3, 64], type: 'Q8_0', data: () => a },
  ]);
  const g = readGguf(f);
  assert.equal(g.version, 3);
  assert.equal(g.metadata.get('x.u32'), 4000000000);
  assert.equal(g.metadata.get('x.f32'), 0.25);
  assert.equal(g.metadata.get('x.bool'), true);
  assert.deepEqual(g.metadata.get('x.strs'), ['a', 'ĠI', '<|im_end|>']);
  assert.deepEqual(g.metadata.get('x.i32s'), [-1, 2]);
  assert.deepEqual(g.types.get('x.strs'), [VT.ARRAY, VT.STRING]);
  assert.deepEqual(g.tensors.map((t) => [t.name, t.shape, t.typeName]), [['a32', [3, 64], 'F32'], ['b', [7], 'F32'], ['a16', [3, 64], 'F16'], ['a8', [3, 64], 'Q8_0']]);
  for (const t of g.tensors) assert.equal((t.offset - g.dataStart) % 32, 0, `${t.name} aligned`);
  assert.equal(g.dataStart % 32, 0);
  assert.deepEqual(readGgufTensor(f, g.tensors[0]), a);
  assert.deepEqual(readGgufTensor(f, g.tensors[1]), b);
  assert.ok(maxAbsDiff(readGgufTensor(f, g.tensors[2]), a) < 3e-3);
  const q = readGgufTensor(f, g.tensors[3]);
  // q8_0: per block of 32 the error is at most half a step (max|x|/127/2), plus the f16 rounding of the scale
  for (let blk = 0; blk < a.length / 32; blk++) {
    const s = a.subarray(blk * 32, blk * 32 + 32);
    const amax = Math.max(...Array.from(s, Math.abs));
    assert.ok(maxAbsDiff(q.subarray(blk * 32, blk * 32 + 32), s) <= (amax / 127) * 0.5 + amax * 1e-3);
  }
  // the file size is what the tensor table implies (each tensor padded to the alignment)
  const last = g.tensors[3];
  assert.equal(statSync(f).size, Math.ceil((last.offset + (3 * 64 / 32) * 34) / 32) * 32);
});

test('q8_0 blocks: 34 bytes (f16 scale + 32 int8), an all-zero block stays zero, halves round away from zero', () => {
  const x = new Float32Array(64);
  x[32] = 127; x[33] = -0.5; x[34] = 0.5; x[35] = -127;
  const q = quantizeQ8_0(x);
  assert.equal(q.length, 68);
  const back = dequantizeQ8_0(q, 64);
  assert.deepEqual(Array.from(back.subarray(0, 32)), new Array(32).fill(0));
  assert.deepEqual(Array.from(back.subarray(32, 36)), [127, -1, 1, -127]);
});

test('Q/K permutation: HF half-split rope rows → interleaved rows per head (convert_hf_to_gguf.py\'s permute)', () => {
  // 2 heads of dim 4, 1 column: rows [h0: a0 a1 b0 b1, h1: ...] → [a0 b0 a1 b1, ...]
  const x = Float32Array.from([0, 1, 2, 3, 10, 11, 12, 13]);
  assert.deepEqual(Array.from(permuteRope(x, [8, 1], 2)), [0, 2, 1, 3, 10, 12, 11, 13]);
  const w = Float32Array.from({ length: 8 * 3 }, (_, i) => i);
  const p = permuteRope(w, [8, 3], 2);
  assert.deepEqual(Array.from(p.subarray(3, 6)), [6, 7, 8]); // new row 1 = old row 2
});

test('heed export gguf writes every tiny architecture with llama.cpp tensor names and metadata; weights read back', () => {
  const dir = tmp('heed-gguf-x-');
  for (const [name, arch, extra] of [['llama-gqa', 'llama', 'output.weight'], ['llama-tied-llama3rope', 'llama', 'rope_freqs.weight'], ['qwen2', 'qwen2', 'blk.0.attn_q.bias'], ['gpt2', 'gpt2', 'position_embd.weight']] as const) {
    const out = join(dir, `${name}.gguf`);
    const r = exportGguf(join(TINY, name), out);
    assert.equal(r.arch, arch);
    const g = readGguf(out);
    assert.equal(g.metadata.get('general.architecture'), arch);
    assert.equal(g.metadata.get('tokenizer.ggml.model'), 'gpt2');
    assert.equal(g.metadata.get('tokenizer.ggml.pre'), 'gpt-2');
    assert.equal(g.metadata.get('tokenizer.ggml.add_bos_token'), false);
    assert.equal((g.metadata.get('tokenizer.ggml.tokens') as string[]).length, 272, `${name}: one token per embedding row`);
    assert.equal(g.metadata.get('tokenizer.ggml.eos_token_id'), 0);
    assert.equal(typeof g.metadata.get('tokenizer.chat_template'), 'string');
    const names = g.tensors.map((t) => t.name);
    assert.ok(names.includes('token_embd.weight') && names.includes('output_norm.weight') && names.includes(extra), `${name}: ${names.join(' ')}`);
    const host = loadHostModel(join(TINY, name));
    const emb = g.tensors.find((t) => t.name === 'token_embd.weight')!;
    assert.deepEqual(readGgufTensor(out, emb), (host.tensors.get(arch === 'gpt2' ? 'wte.weight' : 'model.embed_tokens.weight')!).data);
    if (arch === 'llama') {
      const v = g.tensors.find((t) => t.name === 'blk.1.attn_v.weight')!;
      assert.deepEqual(readGgufTensor(out, v), host.tensors.get('model.layers.1.self_attn.v_proj.weight')!.data);
      const q = g.tensors.find((t) => t.name === 'blk.1.attn_q.weight')!;
      assert.notDeepEqual(readGgufTensor(out, q), host.tensors.get('model.layers.1.self_attn.q_proj.weight')!.data, 'q rows are permuted');
    }
  }
  // 1-D tensors stay f32 in f16 / q8_0 files; 2-D ones take the dtype
  const q8 = join(dir, 'q8.gguf');
  exportGguf(join(TINY, 'llama-gqa'), q8, { dtype: 'q8_0' });
  const g8 = readGguf(q8);
  assert.equal(g8.tensors.find((t) => t.name === 'blk.0.attn_norm.weight')!.typeName, 'F32');
  assert.equal(g8.tensors.find((t) => t.name === 'blk.0.ffn_up.weight')!.typeName, 'Q8_0');
  assert.equal(g8.metadata.get('general.file_type'), 7);
});

test('export refuses what llama.cpp would run differently, with one-line errors (CLI too)', () => {
  const dir = tmp('heed-gguf-e-');
  assert.throws(() => exportGguf(join(TINY, 'mistral-window'), join(dir, 'm.gguf')), (e: unknown) => e instanceof HeedError && /sliding_window 6/.test(e.message));
  assert.throws(() => preTokenizerName({ type: 'Metaspace' }, 'tokenizer.json'), (e: unknown) => e instanceof HeedError && /--pre/.test(e.fix ?? ''));
  assert.equal(preTokenizerName({ type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, { type: 'ByteLevel', use_regex: true }] }, 't'), 'smollm');
  assert.throws(() => readGguf(join(dir, 'none.gguf')), /GGUF file not found/);
  writeFileSync(join(dir, 'bad.gguf'), 'not a gguf at all, just text....');
  assert.throws(() => readGguf(join(dir, 'bad.gguf')), /no "GGUF" magic/);
  if (!existsSync(join(ROOT, 'dist/cli/main.js'))) return;
  const ok = heed('export', 'gguf', join(ROOT, 'models/tiny-dolly'), join(dir, 't.gguf'), '--dtype', 'f16');
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /wrote .*t\.gguf: llama, 38 tensors, f16/);
  const bad = heed('export', 'gguf', join(ROOT, 'models/tiny-dolly'), join(dir, 't.gguf'), '--dtype', 'q4_k');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^error: --dtype q4_k is not supported \(fix: use one of f32, f16, q8_0\)\n$/);
  const miss = heed('export', 'gguf', join(dir, 'nope'), join(dir, 't.gguf'));
  assert.equal(miss.status, 2);
  assert.match(miss.stderr, /no config\.json/);
});
