/**
 * The optional native GEMM addon (native/, `npm run build:native`): results against a plain JS reference for
 * every layout the training step uses (x·Wᵀ, dY·W, dYᵀ·X, and Aᵀ·Bᵀ), edge shapes (1, 0, sizes that are not
 * multiples of the register tile or of the K block), 1-3 threads, and every kernel this CPU supports; bad
 * arguments throw. When the addon is not built, these tests are reported as skipped (counted, with the reason),
 * and the fallback itself is tested: the loader returns null with a reason instead of throwing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import os from 'node:os';
import { loadNativeGemm, lastReason } from '../native/load.mjs';
import { EPILOGUE_OPS, elementwiseSwitch } from '../src/engine/native.js';

const native = loadNativeGemm({ quiet: true });
const skip = native ? false : `native addon not built (${lastReason()}): run npm run build:native`;

// .ci/run builds the addon and sets HEED_REQUIRE_NATIVE=1: there a missing addon is a failure, not a skip
test('the addon loads when required (HEED_REQUIRE_NATIVE=1)', { skip: process.env.HEED_REQUIRE_NATIVE === '1' ? false : skip }, () => {
  assert.ok(native, `HEED_REQUIRE_NATIVE=1 but the addon does not load: ${lastReason()}`);
});

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}

/** C = op(A)·op(B) in float64, and Σ|a·b| per element (the scale of the rounding error) */
function reference(ta: boolean, tb: boolean, M: number, N: number, K: number, A: Float32Array, B: Float32Array) {
  const C = new Float64Array(M * N), mag = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0, m = 0;
      for (let k = 0; k < K; k++) {
        const p = (ta ? A[k * M + i] : A[i * K + k]) * (tb ? B[j * K + k] : B[k * N + j]);
        s += p;
        m += Math.abs(p);
      }
      C[i * N + j] = s;
      mag[i * N + j] = m;
    }
  return { C, mag };
}

const SHAPES: [number, number, number][] = [
  [1, 1, 1], [5, 3, 2], [7, 17, 33], [6, 16, 256], [13, 40, 257], [37, 53, 301], [64, 33, 600], [100, 7, 513], [3, 70, 1],
];

test('the loader falls back with a reason when the addon is missing', () => {
  const none = loadNativeGemm({ file: path.join(os.tmpdir(), 'heed-no-such-addon', 'heed_gemm.node'), quiet: true });
  assert.equal(none, null);
  assert.match(lastReason(), /is not built \(npm run build:native\)/);
});

test('native GEMM matches the JS reference for every layout, shape, thread count and kernel', { skip }, () => {
  const g = native!;
  const isas = ['sse', 'avx2+fma', 'avx512f'].filter((isa) => {
    try {
      g.setIsa(isa);
      return true;
    } catch (e) {
      assert.match((e as Error).message, /not supported by this CPU/);
      return false;
    }
  });
  g.setIsa('');
  assert.ok(isas.includes('sse'));
  let checked = 0;
  try {
    for (const isa of isas) {
      assert.equal(g.setIsa(isa), isa);
      for (const [si, [M, N, K]] of SHAPES.entries())
        for (const ta of [false, true])
          for (const tb of [false, true]) {
            const A = rand(M * K, 1 + si), B = rand(K * N, 100 + si);
            const { C: R, mag } = reference(ta, tb, M, N, K, A, B);
            for (const threads of [1, 2, 3]) {
              const C = new Float32Array(M * N).fill(Number.NaN); // every element must be written
              g.gemm(ta, tb, M, N, K, A, B, C, threads);
              for (let i = 0; i < C.length; i++) {
                const tol = 1e-6 * mag[i] + 1e-7 * Math.sqrt(K) + 1e-30;
                if (!(Math.abs(C[i] - R[i]) <= tol)) assert.fail(`${isa} ${ta ? 'Aᵀ' : 'A'}·${tb ? 'Bᵀ' : 'B'} ${M}x${N}x${K} threads ${threads}: C[${i}] = ${C[i]}, reference ${R[i]}`);
              }
              checked++;
            }
          }
    }
  } finally {
    g.setIsa('');
  }
  assert.equal(checked, isas.length * SHAPES.length * 4 * 3);
});

test('native GEMM: K = 0 gives zeros; a training-size product agrees with the reference on samples', { skip }, () => {
  const g = native!;
  const C = new Float32Array(6).fill(7);
  g.gemm(false, false, 2, 3, 0, new Float32Array(0), new Float32Array(0), C, 2);
  assert.deepEqual([...C], [0, 0, 0, 0, 0, 0]);
  const [M, N, K] = [256, 192, 576]; // a k/v projection at SmolLM2's width, 2 K blocks
  const A = rand(M * K, 7), B = rand(N * K, 8), D = new Float32Array(M * N);
  g.gemm(false, true, M, N, K, A, B, D, 2);
  for (let s = 0; s < 200; s++) {
    const i = (s * 37) % M, j = (s * 101) % N;
    let x = 0;
    for (let k = 0; k < K; k++) x += A[i * K + k] * B[j * K + k];
    assert.ok(Math.abs(D[i * N + j] - x) < 1e-4, `C[${i},${j}] = ${D[i * N + j]}, reference ${x}`);
  }
});

test('gemmLd: sub-matrices with leading dimensions (the engine route), every layout; C outside the block untouched', { skip }, () => {
  const g = native!;
  for (const [M, N, K] of [[5, 3, 2], [13, 40, 257], [37, 53, 70]] as [number, number, number][])
    for (const ta of [false, true])
      for (const tb of [false, true]) {
        // op(A) is the [M, K] block at row/column 1 of a larger stored matrix; likewise op(B) and C
        const lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
        const Afull = rand((ta ? K : M) * lda + lda + 1, 3), Bfull = rand((tb ? N : K) * ldb + ldb + 1, 4);
        const A = Afull.subarray(lda + 1), B = Bfull.subarray(ldb + 1);
        const C = new Float32Array(M * ldc).fill(Number.NaN);
        g.gemmLd(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, 2);
        // the dense copies and the plain gemm as the reference
        const Ad = new Float32Array(M * K), Bd = new Float32Array(K * N);
        for (let i = 0; i < M; i++) for (let k = 0; k < K; k++) Ad[ta ? k * M + i : i * K + k] = ta ? A[k * lda + i] : A[i * lda + k];
        for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) Bd[tb ? j * K + k : k * N + j] = tb ? B[j * ldb + k] : B[k * ldb + j];
        const { C: R, mag } = reference(ta, tb, M, N, K, Ad, Bd);
        for (let i = 0; i < M; i++)
          for (let j = 0; j < ldc; j++) {
            const v = C[i * ldc + j];
            if (j >= N) assert.ok(Number.isNaN(v), `wrote outside the block at ${i},${j}`);
            else assert.ok(Math.abs(v - R[i * N + j]) <= 1e-6 * mag[i * N + j] + 1e-6, `${ta}/${tb} ${M}x${N}x${K}: C[${i},${j}] = ${v}, reference ${R[i * N + j]}`);
          }
      }
  assert.throws(() => g.gemmLd(false, false, 2, 2, 2, new Float32Array(4), 3, new Float32Array(4), 2, new Float32Array(4), 2, 1), /A must be a Float32Array of at least 5 elements/);
});

test('native GEMM rejects bad arguments with a clear error', { skip }, () => {
  const g = native!;
  assert.throws(() => g.gemm(false, false, 2, 2, 2, new Float32Array(3), new Float32Array(4), new Float32Array(4)), /A must be a Float32Array of at least 4 elements/);
  assert.throws(() => g.gemm(false, false, 2, 2, 2, new Float32Array(4), new Float64Array(4) as unknown as Float32Array, new Float32Array(4)), /B must be a Float32Array/);
  assert.throws(() => g.gemm(false, false, -1, 2, 2, new Float32Array(4), new Float32Array(4), new Float32Array(4)), /negative dimension/);
  assert.throws(() => g.setIsa('avx9000'), /not supported/);
});

test('native fmaPeak measures a positive FMA throughput where AVX2+FMA exists', { skip }, () => {
  const g = native!;
  const peak = g.fmaPeak(200_000);
  if (g.info().isa === 'sse') assert.equal(peak, 0);
  else assert.ok(peak > 1 && peak < 10_000, `fmaPeak ${peak} GFLOP/s`);
});

// ---- elementwise epilogues: the addon's epilogue() register programs (src/engine/native.ts compileEpilogue) ----
type EpilogueAddon = { epilogue(mem: Float32Array, code: Int32Array, nregs: number, out: number, cOff: number, begin: number, end: number, offs: Int32Array): void };
const f = Math.fround;
const fmin = (a: number, b: number) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b));
const fmax = (a: number, b: number) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b));
const sat = (x: number, lo: number, hi: number) => (Number.isNaN(x) ? 0 : Math.trunc(Math.min(hi, Math.max(lo, x))));
/** [name, opcode, source registers, result kind, reference]: registers 1, 2 hold floats a, b; 3, 4 int32 i, j */
const OPS: [string, keyof typeof EPILOGUE_OPS, number[], 'f' | 'i' | 'u', (a: number, b: number, i: number, j: number) => number][] = [
  ['a + b', 'FADD', [1, 2], 'f', (a, b) => f(a + b)],
  ['a - b', 'FSUB', [1, 2], 'f', (a, b) => f(a - b)],
  ['a · b', 'FMUL', [1, 2], 'f', (a, b) => f(a * b)],
  ['min', 'FMIN', [1, 2], 'f', fmin],
  ['max', 'FMAX', [1, 2], 'f', fmax],
  ['float idiv', 'FIDIV', [1, 2], 'f', (a, b) => f(Math.trunc(f(a / b)))],
  ['float mod', 'FMOD', [1, 2], 'f', (a, b) => f(a - f(Math.trunc(f(a / b)) * b))],
  ['a < b', 'FCMPLT', [1, 2], 'i', (a, b) => (a < b ? 1 : 0)],
  ['a != b', 'FCMPNE', [1, 2], 'i', (a, b) => (a !== b ? 1 : 0)],
  ['i + j', 'IADD', [3, 4], 'i', (_a, _b, i, j) => (i + j) | 0],
  ['i - j', 'ISUB', [3, 4], 'i', (_a, _b, i, j) => (i - j) | 0],
  ['i · j', 'IMUL', [3, 4], 'i', (_a, _b, i, j) => Math.imul(i, j)],
  ['i / j', 'IDIV', [3, 4], 'i', (_a, _b, i, j) => (j === 0 ? 0 : (i / j) | 0)],
  ['i % j', 'IMOD', [3, 4], 'i', (_a, _b, i, j) => (j === 0 ? 0 : (i % j) | 0)],
  ['imin', 'IMIN', [3, 4], 'i', (_a, _b, i, j) => Math.min(i, j)],
  ['imax', 'IMAX', [3, 4], 'i', (_a, _b, i, j) => Math.max(i, j)],
  ['i < j', 'ICMPLT', [3, 4], 'i', (_a, _b, i, j) => (i < j ? 1 : 0)],
  ['i != j', 'ICMPNE', [3, 4], 'i', (_a, _b, i, j) => (i !== j ? 1 : 0)],
  ['u / v', 'UDIV', [3, 4], 'u', (_a, _b, i, j) => (j === 0 ? 0 : Math.trunc((i >>> 0) / (j >>> 0)))],
  ['u % v', 'UMOD', [3, 4], 'u', (_a, _b, i, j) => (j === 0 ? 0 : (i >>> 0) % (j >>> 0))],
  ['umin', 'UMIN', [3, 4], 'u', (_a, _b, i, j) => Math.min(i >>> 0, j >>> 0)],
  ['umax', 'UMAX', [3, 4], 'u', (_a, _b, i, j) => Math.max(i >>> 0, j >>> 0)],
  ['u < v', 'UCMPLT', [3, 4], 'i', (_a, _b, i, j) => ((i >>> 0) < (j >>> 0) ? 1 : 0)],
  ['and', 'AND', [3, 4], 'i', (_a, _b, i, j) => i & j],
  ['or', 'OR', [3, 4], 'i', (_a, _b, i, j) => i | j],
  ['xor', 'XOR', [3, 4], 'i', (_a, _b, i, j) => i ^ j],
  ['shl', 'SHL', [3, 4], 'i', (_a, _b, i, j) => i << (j & 31)],
  ['shr', 'SHR', [3, 4], 'u', (_a, _b, i, j) => i >>> (j & 31)],
  ['exp', 'EXP', [1], 'f', (a) => f(Math.exp(a))],
  ['log', 'LOG', [1], 'f', (a) => f(Math.log(a))],
  ['sin', 'SIN', [1], 'f', (a) => f(Math.sin(a))],
  ['cos', 'COS', [1], 'f', (a) => f(Math.cos(a))],
  ['asin', 'ASIN', [1], 'f', (a) => f(Math.asin(a))],
  ['atan', 'ATAN', [1], 'f', (a) => f(Math.atan(a))],
  ['sqrt', 'SQRT', [1], 'f', (a) => f(Math.sqrt(a))],
  ['1/a', 'RECIP', [1], 'f', (a) => f(1 / a)],
  ['floor', 'FLOOR', [1], 'f', Math.floor],
  ['ceil', 'CEIL', [1], 'f', Math.ceil],
  ['int32 → float', 'I2F', [3], 'f', (_a, _b, i) => f(i)],
  ['uint32 → float', 'U2F', [3], 'f', (_a, _b, i) => f(i >>> 0)],
  ['float → int32', 'F2I', [1], 'i', (a) => sat(a, -2147483648, 2147483647)],
  ['float → uint32', 'F2U', [1], 'u', (a) => sat(a, 0, 4294967295)],
  ['float → bool', 'F2B', [1], 'i', (a) => (a !== 0 ? 1 : 0)],
  ['int → bool', 'I2B', [3], 'i', (_a, _b, i) => (i !== 0 ? 1 : 0)],
  ['where(i, a, b)', 'WHERE', [1, 2, 3], 'f', (a, b, i) => (i !== 0 ? a : b)],
];

test('epilogue programs: every operation against a JS reference (float32 rounding, wrapping ints, NaN, ±Inf, saturation, x / 0), blocks and a slice', { skip }, () => {
  const g = native as unknown as EpilogueAddon;
  const O = EPILOGUE_OPS;
  const n = 300; // more than one 256-lane block, not a multiple of it
  const mem = new Float32Array(6 * n), ints = new Int32Array(mem.buffer);
  const special = [NaN, Infinity, -Infinity, 0, -0, 88.8, 88.72, -90, -87.5, -110, 1e-3, -1e-3, 0.5, -0.5, 2.5, -2.5, 1, -1, 3e9, -3e9, 1e38];
  const ispecial = [0, 1, -1, 2147483647, -2147483648, 7, -7, 31, 33, 65536];
  const r = rand(4 * n, 11);
  for (let k = 0; k < n; k++) {
    mem[n + k] = k < special.length ? special[k] : f(r[k] * 20);
    mem[2 * n + k] = k >= 40 && k < 40 + special.length ? special[k - 40] : f(r[n + k] * 20);
    ints[3 * n + k] = k < ispecial.length ? ispecial[k] : Math.trunc(r[2 * n + k] * 2 ** 32) | 0;
    ints[4 * n + k] = k >= 20 && k < 20 + ispecial.length ? ispecial[k - 20] : k % 13 === 0 ? 0 : Math.trunc(r[3 * n + k] * (k % 2 ? 64 : 2 ** 32)) | 0;
  }
  const offs = Int32Array.of(n, 2 * n, 3 * n, 4 * n);
  const prologue = [O.GIDX, 0, 0, 0, 0, 0, O.LOAD, 1, 0, 0, 0, n, O.LOAD, 2, 0, 1, 0, n, O.LOAD, 3, 0, 2, 0, n, O.LOAD, 4, 0, 3, 0, n];
  for (const [name, op, src, kind, ref] of OPS) {
    const code = Int32Array.from([...prologue, O[op], 5, src[0] ?? 0, src[1] ?? 0, src[2] ?? 0, 0, ...(kind === 'f' ? [] : [kind === 'u' ? O.U2F : O.I2F, 6, 5, 0, 0, 0])]);
    mem.fill(NaN, 0, n);
    g.epilogue(mem, code, 7, kind === 'f' ? 5 : 6, 0, 0, n, offs);
    for (let k = 0; k < n; k++) {
      const want = f(ref(mem[n + k], mem[2 * n + k], ints[3 * n + k], ints[4 * n + k]));
      const got = mem[k];
      const tol = ['exp', 'log', 'sin', 'cos', 'asin', 'atan', 'float mod'].includes(name) ? 4e-7 * Math.abs(want) + 1e-37 + (name === 'float mod' ? 1e-6 * Math.abs(mem[n + k]) : 0) : 0;
      const ok = Number.isNaN(want) ? Number.isNaN(got) : got === want || Math.abs(got - want) <= tol;
      if (!ok) assert.fail(`${name}: element ${k} (a ${mem[n + k]}, b ${mem[2 * n + k]}, i ${ints[3 * n + k]}, j ${ints[4 * n + k]}): ${got}, reference ${want}`);
    }
  }
  // SwiGLU's epilogue silu(G) · acc over a slice [begin, end) of C at an offset: acc read from C, C outside untouched
  const fb = (x: number) => new Int32Array(Float32Array.of(x).buffer)[0];
  const silu = Int32Array.from([O.GIDX, 0, 0, 0, 0, 0, O.LOAD, 1, 0, 0, 0, n, O.CONST, 2, 0, 0, 0, fb(0), O.FSUB, 3, 2, 1, 0, 0, O.EXP, 4, 3, 0, 0, 0,
    O.CONST, 5, 0, 0, 0, fb(1), O.FADD, 6, 4, 5, 0, 0, O.RECIP, 7, 6, 0, 0, 0, O.FMUL, 8, 1, 7, 0, 0, O.ACC, 9, 0, 0, 0, 0, O.FMUL, 10, 8, 9, 0, 0]);
  const C0 = 5 * n;
  for (let k = 0; k < n; k++) mem[C0 + k] = r[k];
  g.epilogue(mem, silu, 11, 10, C0, 17, 290, Int32Array.of(2 * n));
  for (let k = 0; k < n; k++) {
    const x = mem[2 * n + k], want = k < 17 || k >= 290 ? r[k] : (x / (1 + Math.exp(-x))) * r[k];
    assert.ok(mem[C0 + k] === want || Math.abs(mem[C0 + k] - want) <= 1e-6 * (1 + Math.abs(want)) || (Number.isNaN(want) && Number.isNaN(mem[C0 + k])), `silu: C[${k}] = ${mem[C0 + k]}, reference ${want}`);
  }
  // malformed programs are refused, never run
  const one = (code: number[], nregs = 2, out = 1, offsArr = Int32Array.of(0)) => () => g.epilogue(mem, Int32Array.from(code), nregs, out, 0, 0, 4, offsArr);
  assert.throws(one([O.ACC, 0, 0, 0, 0, 0, O.FADD, 1, 0, 5, 0, 0]), /source register out of range/);
  assert.throws(one([O.ACC, 0, 0, 0, 0, 0, 99, 1, 0, 0, 0, 0]), /unknown operation 99/);
  assert.throws(one([O.GIDX, 0, 0, 0, 0, 0, O.LOAD, 1, 0, 0, 0, 6 * n + 1]), /a load reaches past the memory/);
  assert.throws(one([O.GIDX, 0, 0, 0, 0, 0, O.LOAD, 1, 0, 1, 0, 4]), /load slot out of range/);
  assert.throws(one([O.ACC, 0, 0, 0, 0, 0], 1, 3), /output register out of range/);
  assert.throws(() => g.epilogue(mem, Int32Array.of(1, 0, 0, 0, 0), 1, 0, 0, 0, 4, Int32Array.of()), /not a multiple of 6/);
  assert.throws(() => g.epilogue(mem, Int32Array.of(1, 0, 0, 0, 0, 0), 1, 0, 6 * n - 2, 0, 4, Int32Array.of()), /mem must be a Float32Array of at least/);
});

// ---- standalone elementwise kernels and reductions (native.ts planOther): loads' fast paths, reduce() ----
type ReduceAddon = EpilogueAddon & { reduce(mem: Float32Array, code: Int32Array, nregs: number, out: number, cOff: number, begin: number, end: number, offs: Int32Array, size: number, op: number): void };

test('elementwise programs: loads that run contiguously, broadcast one element or gather, and clamp outside [0, len) like wasm', { skip }, () => {
  const g = native as unknown as EpilogueAddon;
  const O = EPILOGUE_OPS;
  const n = 700, len = 600; // blocks of 256: the third block runs past len (those lanes read element 0)
  const mem = new Float32Array(2 * n + 1000);
  const src = rand(len, 21);
  mem.set(src, n);
  const cases: [string, number[], (k: number) => number][] = [
    // x[gidx]: contiguous, clamped past len
    ['x[gidx]', [O.GIDX, 0, 0, 0, 0, 0, O.LOAD, 1, 0, 0, 0, len], (k) => src[k < len ? k : 0]],
    // x[7]: one element for every lane
    ['x[7]', [O.CONST, 0, 0, 0, 0, 7, O.LOAD, 1, 0, 0, 0, len], () => src[7]],
    // x[gidx / 3]: a gather (each element three times)
    ['x[gidx / 3]', [O.GIDX, 0, 0, 0, 0, 0, O.CONST, 2, 0, 0, 0, 3, O.IDIV, 3, 0, 2, 0, 0, O.LOAD, 1, 3, 0, 0, len], (k) => src[Math.trunc(k / 3)]],
    // x[gidx - 5]: negative indices (lanes 0..4) read element 0 (uint32 compare)
    ['x[gidx - 5]', [O.GIDX, 0, 0, 0, 0, 0, O.CONST, 2, 0, 0, 0, 5, O.ISUB, 3, 0, 2, 0, 0, O.LOAD, 1, 3, 0, 0, len], (k) => src[k >= 5 && k - 5 < len ? k - 5 : 0]],
  ];
  for (const [name, code, want] of cases) {
    const out = code[code.length - 5]; // the last instruction's destination
    mem.fill(NaN, 0, n);
    g.epilogue(mem, Int32Array.from(code), 4, out, 0, 0, n, Int32Array.of(n));
    for (let k = 0; k < n; k++) assert.equal(mem[k], want(k), `${name}: element ${k}`);
  }
});

/** the addon's reduction order: term r into partial r % 8 (in ridx order), then ((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7)) */
function reduce8(terms: number[], op: (a: number, b: number) => number, id: number): number {
  const p = new Array(8).fill(id);
  terms.forEach((t, r) => (p[r % 8] = op(p[r % 8], t)));
  return op(op(op(p[0], p[1]), op(p[2], p[3])), op(op(p[4], p[5]), op(p[6], p[7])));
}

test('reduce(): Add / Max / Min of a body over ridx (bit-exact float32 sums in the stated order), NaN / ±Inf, slices, blocks; malformed calls refused', { skip }, () => {
  const g = native as unknown as ReduceAddon;
  if (typeof g.reduce !== 'function') assert.fail('the addon has no reduce(): rebuild it with npm run build:native');
  const O = EPILOGUE_OPS;
  const fb = (x: number) => new Int32Array(Float32Array.of(x).buffer)[0];
  for (const size of [1, 7, 256, 300, 1000]) {
    const rows = 9, X = rand(rows * size, size).map((v) => v * 50);
    X[3] = NaN; // row 0 (or a later row for size < 4)
    X[size + 1] = Infinity; // row 1
    if (size > 2) X[2 * size + 2] = -Infinity; // row 2
    const mem = new Float32Array(rows * size + 64);
    const C0 = 16;
    mem.set(X, 32);
    // body: exp(x[gidx * size + ridx] · 0.01) − 1: loads a row, elementwise work per term
    const code = Int32Array.from([O.GIDX, 0, 0, 0, 0, 0, O.CONST, 1, 0, 0, 0, size, O.IMUL, 2, 0, 1, 0, 0, O.RIDX, 3, 0, 0, 0, 0, O.IADD, 4, 2, 3, 0, 0,
      O.LOAD, 5, 4, 0, 0, rows * size, O.CONST, 6, 0, 0, 0, fb(0.01), O.FMUL, 7, 5, 6, 0, 0, O.EXP, 8, 7, 0, 0, 0, O.CONST, 9, 0, 0, 0, fb(1), O.FSUB, 10, 8, 9, 0, 0]);
    const term = (o: number, r: number) => f(f(Math.exp(f(X[o * size + r] * f(0.01)))) - 1);
    for (const [op, name] of [[0, 'Add'], [1, 'Max'], [2, 'Min']] as const) {
      const outMem = new Float32Array(mem);
      outMem.fill(-7, C0, C0 + rows);
      g.reduce(outMem, code, 11, 10, C0, 1, rows - 1, Int32Array.of(32), size, op); // outputs 1..7 only
      assert.equal(outMem[C0], -7, 'wrote before the slice');
      assert.equal(outMem[C0 + rows - 1], -7, 'wrote after the slice');
      for (let o = 1; o < rows - 1; o++) {
        // the same order as the addon: only exp's rounding (≤ 4e-7 relative per term) may differ
        const fop = (a: number, b: number) => (op === 0 ? f(a + b) : Number.isNaN(a) || Number.isNaN(b) ? NaN : op === 1 ? Math.max(a, b) : Math.min(a, b));
        const acc = reduce8(Array.from({ length: size }, (_, r) => term(o, r)), fop, op === 0 ? 0 : op === 1 ? -Infinity : Infinity);
        const got = outMem[C0 + o];
        const ok = Number.isNaN(acc) ? Number.isNaN(got) : got === acc || Math.abs(got - acc) <= 1e-6 * Math.sqrt(size) * (1 + Math.abs(acc));
        assert.ok(ok, `${name} size ${size} output ${o}: ${got}, reference ${acc}`);
      }
    }
    // a body of one plain load per term: the sum must be bit-exact (the stated order)
    const plain = Int32Array.from([O.GIDX, 0, 0, 0, 0, 0, O.CONST, 1, 0, 0, 0, size, O.IMUL, 2, 0, 1, 0, 0, O.RIDX, 3, 0, 0, 0, 0, O.IADD, 4, 2, 3, 0, 0, O.LOAD, 5, 4, 0, 0, rows * size]);
    const outMem = new Float32Array(mem);
    g.reduce(outMem, plain, 6, 5, C0, 0, rows, Int32Array.of(32), size, 0);
    for (let o = 0; o < rows; o++) {
      const acc = reduce8(Array.from(X.subarray(o * size, (o + 1) * size)), (a, b) => f(a + b), 0);
      assert.ok(Object.is(outMem[C0 + o], acc) || (Number.isNaN(acc) && Number.isNaN(outMem[C0 + o])), `plain sum size ${size} row ${o}: ${outMem[C0 + o]} vs ${acc}`);
    }
  }
  const mem = new Float32Array(64);
  const ridxBody = Int32Array.of(O.RIDX, 0, 0, 0, 0, 0);
  assert.throws(() => g.reduce(mem, Int32Array.of(O.ACC, 0, 0, 0, 0, 0), 1, 0, 0, 0, 4, Int32Array.of(), 3, 0), /acc in a reduction body/);
  assert.throws(() => g.epilogue(mem, ridxBody, 1, 0, 0, 0, 4, Int32Array.of()), /ridx outside a reduction body/);
  assert.throws(() => g.reduce(mem, ridxBody, 1, 0, 0, 0, 4, Int32Array.of(), 0, 0), /reduction size must be at least 1/);
  assert.throws(() => g.reduce(mem, ridxBody, 1, 0, 0, 0, 4, Int32Array.of(), 3, 5), /unknown reduction op/);
  assert.throws(() => g.reduce(mem, ridxBody, 1, 0, 62, 0, 4, Int32Array.of(), 3, 0), /mem must be a Float32Array of at least 66/);
  assert.throws(() => g.reduce(mem, ridxBody, 1, 3, 0, 0, 4, Int32Array.of(), 3, 0), /output register out of range/);
  assert.throws(() => (g.reduce as unknown as (...a: unknown[]) => void)(mem, ridxBody, 1, 0, 0, 0, 4, Int32Array.of()), /reduce\(mem, code, nregs, out, cOff, begin, end, offs, size, op\)/);
  // ridx in [0, size): a sum of ridx itself is size·(size − 1)/2
  g.reduce(mem, Int32Array.of(O.RIDX, 0, 0, 0, 0, 0, O.I2F, 1, 0, 0, 0, 0), 2, 1, 0, 0, 3, Int32Array.of(), 10, 0);
  assert.deepEqual([...mem.subarray(0, 3)], [45, 45, 45]);
});

test('HEED_NATIVE_ELEMENTWISE: 0, 1 (the default) or all; anything else is refused with a one-line error', () => {
  assert.equal(elementwiseSwitch(undefined), true);
  assert.equal(elementwiseSwitch('1'), true);
  assert.equal(elementwiseSwitch('0'), false);
  assert.equal(elementwiseSwitch('all'), 'all');
  for (const bad of ['2', 'yes', 'off', ' 1']) assert.throws(() => elementwiseSwitch(bad), (e: Error & { fix?: string }) => /HEED_NATIVE_ELEMENTWISE must be 0, 1 or all/.test(e.message) && !e.message.includes('\n') && typeof e.fix === 'string');
});

test('index arithmetic by constants (IDIVC, IMODC): truncating int32 division and remainder, exact for every sign and size; divisors below 1 refused', { skip }, () => {
  const g = native as unknown as EpilogueAddon;
  const O = EPILOGUE_OPS;
  const n = 600;
  const mem = new Float32Array(3 * n), ints = new Int32Array(mem.buffer);
  const r = rand(n, 31);
  const special = [0, 1, -1, 2, -2, 2147483647, -2147483648, 2147483646, -2147483647, 65535, 65536, -65536, 524287, 524288, 1572863];
  for (let k = 0; k < n; k++) ints[n + k] = k < special.length ? special[k] : Math.trunc(r[k] * 2 ** 32) | 0;
  for (const d of [1, 2, 3, 7, 256, 1536, 8192, 524288, 1000003, 2147483647]) {
    for (const [op, ref] of [['IDIVC', (a: number) => (a / d) | 0], ['IMODC', (a: number) => a % d | 0]] as const) {
      // out = I2F(op(x)) would round: compare the int bits via a Where-free program writing the int register's bits
      const code = Int32Array.from([O.GIDX, 0, 0, 0, 0, 0, O.LOAD, 1, 0, 0, 0, n, O[op], 2, 1, 0, 0, d]);
      g.epilogue(mem, code, 3, 2, 0, 0, n, Int32Array.of(n));
      for (let k = 0; k < n; k++) assert.equal(ints[k], ref(ints[n + k]), `${op} ${ints[n + k]} by ${d}`);
    }
  }
  assert.throws(() => g.epilogue(mem, Int32Array.of(O.GIDX, 0, 0, 0, 0, 0, O.IDIVC, 1, 0, 0, 0, 0), 2, 1, 0, 0, 4, Int32Array.of()), /a constant divisor below 1/);
  assert.throws(() => g.epilogue(mem, Int32Array.of(O.GIDX, 0, 0, 0, 0, 0, O.IMODC, 1, 0, 0, 0, -3), 2, 1, 0, 0, 4, Int32Array.of()), /a constant divisor below 1/);
});
