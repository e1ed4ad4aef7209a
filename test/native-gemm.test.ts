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
