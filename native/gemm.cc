// heed native GEMM prototype (issue 17): C[M,N] = op(A) . op(B), float32, row-major, beta = 0.
// op(A) = A [M,K] or, with transA, A stored [K,M]; op(B) = B [K,N] or, with transB, B stored [N,K].
// BLIS-style blocking: B packed into KC x NR panels, A into MR x KC panels, an MR x NR register microkernel.
// The microkernel is compiled for AVX-512F, AVX2+FMA and plain C++ (function target attributes, no -march),
// and chosen at run time with __builtin_cpu_supports. Threads: std::thread over row or column blocks of C.
#include <node_api.h>
#include <immintrin.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <time.h>
#include <vector>

namespace {

constexpr int MR = 6;
constexpr int KC = 256;
constexpr int MC = 72;   // 12 x MR
constexpr int NC = 1024;

struct Mat {
  const float* p;
  bool trans;
  int ld;
};

inline float atA(const Mat& a, int i, int k) { return a.trans ? a.p[(size_t)k * a.ld + i] : a.p[(size_t)i * a.ld + k]; }
inline float atB(const Mat& b, int k, int j) { return b.trans ? b.p[(size_t)j * b.ld + k] : b.p[(size_t)k * b.ld + j]; }

// Ap[p * MR + i] = A(i0 + i, k0 + p), zero padded past m
void packA(const Mat& a, int i0, int m, int k0, int kc, float* ap) {
  for (int p = 0; p < kc; p++)
    for (int i = 0; i < MR; i++) ap[p * MR + i] = i < m ? atA(a, i0 + i, k0 + p) : 0.f;
}
// Bp[p * NR + j] = B(k0 + p, j0 + j), zero padded past n
template <int NR>
void packB(const Mat& b, int k0, int kc, int j0, int n, float* bp) {
  if (!b.trans && n == NR) {
    for (int p = 0; p < kc; p++) std::memcpy(bp + p * NR, b.p + (size_t)(k0 + p) * b.ld + j0, NR * sizeof(float));
    return;
  }
  for (int p = 0; p < kc; p++)
    for (int j = 0; j < NR; j++) bp[p * NR + j] = j < n ? atB(b, k0 + p, j0 + j) : 0.f;
}

#define KERNEL_BODY                                                                              \
  V c[MR][2];                                                                                    \
  for (int i = 0; i < MR; i++) c[i][0] = c[i][1] = V{};                                          \
  for (int p = 0; p < kc; p++) {                                                                 \
    V b0, b1;                                                                                    \
    std::memcpy(&b0, bp + p * NR, sizeof(V));                                                    \
    std::memcpy(&b1, bp + p * NR + W, sizeof(V));                                                \
    for (int i = 0; i < MR; i++) {                                                               \
      V av = V{} + ap[p * MR + i];                                                               \
      c[i][0] += av * b0;                                                                        \
      c[i][1] += av * b1;                                                                        \
    }                                                                                            \
  }                                                                                              \
  if (m == MR && n == NR) {                                                                      \
    for (int i = 0; i < MR; i++) {                                                               \
      float* row = cp + (size_t)i * ldc;                                                         \
      if (accumulate) {                                                                          \
        V r0, r1;                                                                                \
        std::memcpy(&r0, row, sizeof(V));                                                        \
        std::memcpy(&r1, row + W, sizeof(V));                                                    \
        c[i][0] += r0;                                                                           \
        c[i][1] += r1;                                                                           \
      }                                                                                          \
      std::memcpy(row, &c[i][0], sizeof(V));                                                     \
      std::memcpy(row + W, &c[i][1], sizeof(V));                                                 \
    }                                                                                            \
  } else {                                                                                       \
    float tmp[MR][NR];                                                                           \
    for (int i = 0; i < MR; i++) {                                                               \
      std::memcpy(&tmp[i][0], &c[i][0], sizeof(V));                                              \
      std::memcpy(&tmp[i][W], &c[i][1], sizeof(V));                                              \
    }                                                                                            \
    for (int i = 0; i < m; i++)                                                                  \
      for (int j = 0; j < n; j++) cp[(size_t)i * ldc + j] = (accumulate ? cp[(size_t)i * ldc + j] : 0.f) + tmp[i][j]; \
  }

typedef float v16 __attribute__((vector_size(64)));
typedef float v8 __attribute__((vector_size(32)));
typedef float v4 __attribute__((vector_size(16)));

__attribute__((target("avx512f"))) void kern512(int kc, const float* ap, const float* bp, float* cp, int ldc, int m, int n, bool accumulate) {
  typedef v16 V; constexpr int W = 16, NR = 32;
  KERNEL_BODY
}
// AVX2+FMA: 12 ymm accumulators, A broadcast straight from memory (vbroadcastss m32), k unrolled by 2
__attribute__((target("avx2,fma"))) void kern256(int kc, const float* ap, const float* bp, float* cp, int ldc, int m, int n, bool accumulate) {
  constexpr int NR = 16;
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#define STEP(P)                                                                                  \
  {                                                                                              \
    const float* a = ap + (P) * MR;                                                              \
    __m256 b0 = _mm256_loadu_ps(bp + (P) * NR), b1 = _mm256_loadu_ps(bp + (P) * NR + 8), av;     \
    av = _mm256_broadcast_ss(a + 0); c00 = _mm256_fmadd_ps(av, b0, c00); c01 = _mm256_fmadd_ps(av, b1, c01); \
    av = _mm256_broadcast_ss(a + 1); c10 = _mm256_fmadd_ps(av, b0, c10); c11 = _mm256_fmadd_ps(av, b1, c11); \
    av = _mm256_broadcast_ss(a + 2); c20 = _mm256_fmadd_ps(av, b0, c20); c21 = _mm256_fmadd_ps(av, b1, c21); \
    av = _mm256_broadcast_ss(a + 3); c30 = _mm256_fmadd_ps(av, b0, c30); c31 = _mm256_fmadd_ps(av, b1, c31); \
    av = _mm256_broadcast_ss(a + 4); c40 = _mm256_fmadd_ps(av, b0, c40); c41 = _mm256_fmadd_ps(av, b1, c41); \
    av = _mm256_broadcast_ss(a + 5); c50 = _mm256_fmadd_ps(av, b0, c50); c51 = _mm256_fmadd_ps(av, b1, c51); \
  }
  int p = 0;
  for (; p + 1 < kc; p += 2) { STEP(p) STEP(p + 1) }
  if (p < kc) STEP(p)
#undef STEP
  __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  if (m == MR && n == NR) {
    for (int i = 0; i < MR; i++) {
      float* row = cp + (size_t)i * ldc;
      if (accumulate) { acc[i][0] = _mm256_add_ps(acc[i][0], _mm256_loadu_ps(row)); acc[i][1] = _mm256_add_ps(acc[i][1], _mm256_loadu_ps(row + 8)); }
      _mm256_storeu_ps(row, acc[i][0]);
      _mm256_storeu_ps(row + 8, acc[i][1]);
    }
  } else {
    float tmp[MR][NR];
    for (int i = 0; i < MR; i++) { _mm256_storeu_ps(&tmp[i][0], acc[i][0]); _mm256_storeu_ps(&tmp[i][8], acc[i][1]); }
    for (int i = 0; i < m; i++)
      for (int j = 0; j < n; j++) cp[(size_t)i * ldc + j] = (accumulate ? cp[(size_t)i * ldc + j] : 0.f) + tmp[i][j];
  }
}
void kern128(int kc, const float* ap, const float* bp, float* cp, int ldc, int m, int n, bool accumulate) {
  typedef v4 V; constexpr int W = 4, NR = 8;
  KERNEL_BODY
}

typedef void (*Kern)(int, const float*, const float*, float*, int, int, int, bool);

template <int NR>
void gemmBlock(const Mat& a, const Mat& b, float* c, int ldc, int K, int m0, int m1, int n0, int n1, Kern kern) {
  float* bp = static_cast<float*>(std::aligned_alloc(64, sizeof(float) * KC * (NC + NR)));
  float* ap = static_cast<float*>(std::aligned_alloc(64, sizeof(float) * KC * (MC + MR)));
  for (int jc = n0; jc < n1; jc += NC) {
    int nc = std::min(NC, n1 - jc);
    for (int pc = 0; pc < K; pc += KC) {
      int kc = std::min(KC, K - pc);
      for (int jr = 0; jr < nc; jr += NR) packB<NR>(b, pc, kc, jc + jr, std::min(NR, nc - jr), bp + (size_t)jr * kc);
      for (int ic = m0; ic < m1; ic += MC) {
        int mc = std::min(MC, m1 - ic);
        for (int ir = 0; ir < mc; ir += MR) packA(a, ic + ir, std::min(MR, mc - ir), pc, kc, ap + (size_t)ir * kc);
        for (int jr = 0; jr < nc; jr += NR)
          for (int ir = 0; ir < mc; ir += MR)
            kern(kc, ap + (size_t)ir * kc, bp + (size_t)jr * kc, c + (size_t)(ic + ir) * ldc + jc + jr, ldc, std::min(MR, mc - ir), std::min(NR, nc - jr), pc > 0);
      }
    }
  }
  std::free(ap);
  std::free(bp);
}

const char* isaName() {
  if (__builtin_cpu_supports("avx512f")) return "avx512f";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "avx2+fma";
  return "sse";
}

template <int NR>
void gemmThreads(const Mat& a, const Mat& b, float* c, int M, int N, int K, int threads, Kern kern, int ldc) {
  if (K == 0) { for (int i = 0; i < M; i++) std::memset(c + (size_t)i * ldc, 0, sizeof(float) * (size_t)N); return; }
  // split the larger of M, N into `threads` parts (in whole register tiles)
  std::vector<std::thread> pool;
  bool splitM = M >= N;
  int unit = splitM ? MR : NR, len = splitM ? M : N;
  int tiles = (len + unit - 1) / unit;
  threads = std::max(1, std::min(threads, tiles));
  for (int t = 0; t < threads; t++) {
    int s = std::min(len, (int)((long)tiles * t / threads) * unit), e = std::min(len, (int)((long)tiles * (t + 1) / threads) * unit);
    auto job = [=, &a, &b] {
      if (splitM) gemmBlock<NR>(a, b, c, ldc, K, s, e, 0, N, kern);
      else gemmBlock<NR>(a, b, c, ldc, K, 0, M, s, e, kern);
    };
    if (t == threads - 1) job(); else pool.emplace_back(job);
  }
  for (auto& th : pool) th.join();
}

std::string forcedIsa;  // HEED_NATIVE_ISA=avx512f|avx2+fma|sse, or setIsa() (tests and benchmarks)

// C[i * ldc + j] = sum_k op(A)(i, k) * op(B)(k, j); A(i, k) = A[i * lda + k] (transA: A[k * lda + i]),
// B(k, j) = B[k * ldb + j] (transB: B[j * ldb + k]). Any non-negative leading dimensions (views, slices).
void gemmLd(bool transA, bool transB, int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C, int ldc, int threads) {
  Mat a{A, transA, lda}, b{B, transB, ldb};
  std::string isa = forcedIsa.empty() ? isaName() : forcedIsa;
  if (isa == "avx512f" && __builtin_cpu_supports("avx512f")) gemmThreads<32>(a, b, C, M, N, K, threads, kern512, ldc);
  else if ((isa == "avx512f" || isa == "avx2+fma" || isa == "avx2") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) gemmThreads<16>(a, b, C, M, N, K, threads, kern256, ldc);
  else gemmThreads<8>(a, b, C, M, N, K, threads, kern128, ldc);
}

void gemm(bool transA, bool transB, int M, int N, int K, const float* A, const float* B, float* C, int threads) {
  gemmLd(transA, transB, M, N, K, A, transA ? M : K, B, transB ? K : N, C, N, threads);
}


// ---- elementwise epilogues (src/engine/native.ts compileEpilogue) ----
// A kernel's epilogue after the product (e.g. SwiGLU's silu(gate) * acc) as a straight-line program over
// registers of BLK 32-bit lanes (float32, int32/bool or uint32, one union), run block by block over the output
// slice [begin, end) of C in place: one instruction = EPI_W words {op, dst, a, b, c, imm}. Semantics follow
// jax-js's wasm backend: float32 arithmetic, wrapping int32, truncating division, loads clamped to element 0
// outside [0, len), Where as a select. The loops are simple enough for the compiler to vectorize.
// no-trapping-math: lets the compiler if-convert the selects below (clamps, NaN checks) and vectorize every loop
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")
namespace epi {
constexpr int BLK = 256, W = 6;
union U { float f; int32_t i; uint32_t u; };
enum Op {
  GIDX = 0, ACC = 1, CONST = 2, LOAD = 3, RIDX = 4,
  FADD = 10, FSUB, FMUL, FMIN, FMAX, FIDIV, FMOD, FCMPLT, FCMPNE,
  IADD = 20, ISUB, IMUL, IDIV, IMOD, IMIN, IMAX, ICMPLT, ICMPNE, UDIV, UMOD, UMIN, UMAX, UCMPLT, AND, OR, XOR, SHL, SHR,
  EXP = 40, LOG, SIN, COS, ASIN, ATAN, SQRT, RECIP, FLOOR, CEIL,
  I2F = 50, U2F, F2I, F2U, F2B, I2B, WHERE = 60,
  IDIVC = 61, IMODC = 62,  // int32 a / imm, a % imm (truncating) for a constant imm >= 1: index arithmetic
};
inline bool known(int op) { return (op >= 0 && op <= 4) || (op >= 10 && op <= 18) || (op >= 20 && op <= 38) || (op >= 40 && op <= 49) || (op >= 50 && op <= 55) || (op >= 60 && op <= 62); }
inline int arity(int op) { return op <= 4 ? (op == LOAD ? 1 : 0) : op == WHERE ? 3 : (op >= 40) ? 1 : 2; }
// trunc(a / d) for int32 a and 1 <= d < 2^31, exactly: (|a| + 0.5) / d is at least 0.5 / d away from an integer and
// the two roundings of (|a| + 0.5) * fl(1 / d) err by at most (|a| + 0.5) / d * 2^-52 < 0.5 / d; multiplies, no division
inline int32_t idivc(int32_t a, double inv) {
  const double x = (double)a, q = std::trunc((std::fabs(x) + 0.5) * inv);
  return (int32_t)(x < 0 ? -q : q);
}

// exp for float32: 2^n * p(r), x = n ln2 + r, |r| <= ln2/2, degree-6 Taylor (relative error ~3e-7), 2^n applied
// as two halves so that results near FLT_MAX and the denormals come out right; branch-free (n rounded by adding
// 1.5 * 2^23) so that the loop vectorizes
inline float expf1(float x) {
  float xc = x > 88.73f ? 88.73f : x;
  xc = xc < -104.f ? -104.f : xc;
  const float t = xc * 1.44269504f + 12582912.f, fn = t - 12582912.f;
  U tb; tb.f = t;
  const int n = tb.i - 0x4B400000, n1 = n >> 1, n2 = n - n1;
  const float r = xc - fn * 0.693145752f - fn * 1.42860677e-6f;
  const float p = 1.f + r * (1.f + r * (0.5f + r * (0.166666672f + r * (0.0416666679f + r * (0.00833333377f + r * 0.00138888892f)))));
  U s1, s2; s1.i = (n1 + 127) << 23; s2.i = (n2 + 127) << 23;
  float y = p * s1.f * s2.f;
  y = x > 88.73f ? __builtin_inff() : y;
  y = x < -104.f ? 0.f : y;
  return x != x ? x : y;
}
inline float fminw(float a, float b) { return a != a ? a : (b != b ? b : (a < b ? a : b)); }
inline float fmaxw(float a, float b) { return a != a ? a : (b != b ? b : (a > b ? a : b)); }
inline int32_t f2i(float x) { return x != x ? 0 : x >= 2147483647.f ? 2147483647 : x <= -2147483648.f ? (int32_t)-2147483648LL : (int32_t)x; }
inline uint32_t f2u(float x) { return x != x || x <= 0.f ? 0u : x >= 4294967295.f ? 4294967295u : (uint32_t)x; }

// '' when the program is well formed for these sizes, else what is wrong. reduce: a reduction's body (over gidx
// and ridx, no acc); else an epilogue or a standalone elementwise kernel (over gidx and acc, no ridx)
std::string check(const int32_t* code, int n, int nregs, int out, int nslots, const int32_t* offs, size_t memLen, bool reduce = false) {
  if (nregs < 1 || nregs > 4096 || out < 0 || out >= nregs) return "register count or output register out of range";
  for (int q = 0; q < n; q++) {
    const int32_t* I = code + (size_t)q * W;
    if (!known(I[0])) return "unknown operation " + std::to_string(I[0]);
    if (I[0] == (reduce ? ACC : RIDX)) return reduce ? "acc in a reduction body" : "ridx outside a reduction body";
    if (I[1] < 0 || I[1] >= nregs) return "destination register out of range";
    for (int s = 0; s < arity(I[0]); s++) if (I[2 + s] < 0 || I[2 + s] >= nregs) return "source register out of range";
    if (I[0] == LOAD) {
      if (I[3] < 0 || I[3] >= nslots) return "load slot out of range";
      if (I[5] <= 0 || offs[I[3]] < 0 || (size_t)offs[I[3]] + (size_t)(uint32_t)I[5] > memLen) return "a load reaches past the memory";
    }
    if ((I[0] == IDIVC || I[0] == IMODC) && I[5] < 1) return "a constant divisor below 1";
  }
  return "";
}

// one block of m <= BLK lanes: lane k is output j0 + k (gl == nullptr), or the (gidx, ridx) pair (gl[k], rl[k]) of
// a reduction body
__attribute__((always_inline)) inline void evalBlock(const int32_t* code, int n, U* R, const float* mem, size_t cOff, int j0, int m, const int32_t* offs, const int32_t* gl, const int32_t* rl) {
    for (int q = 0; q < n; q++) {
      const int32_t* I = code + (size_t)q * W;
      U* __restrict d = R + (size_t)I[1] * BLK;
      const U* a = R + (size_t)I[2] * BLK;
      const U* b = R + (size_t)I[3] * BLK;
      const U* c = R + (size_t)I[4] * BLK;
      switch (I[0]) {
#define L(expr) for (int k = 0; k < m; k++) { expr; } break;
        case GIDX: if (gl) { L(d[k].i = gl[k]) } else { L(d[k].i = j0 + k) }
        case RIDX: L(d[k].i = rl[k])
        case ACC: L(d[k].f = mem[cOff + j0 + k])
        case CONST: { U v; v.i = I[5]; L(d[k] = v) }
        case LOAD: {
          const U* g = reinterpret_cast<const U*>(mem + offs[I[3]]);
          const uint32_t len = (uint32_t)I[5], i0 = a[0].u;
          // contiguous (a view at the output's position) or one broadcast element: a copy or a fill, not a gather
          uint32_t off = 0, diff = 0;  // OR-reductions (vectorized): zero when every lane is i0 + k, resp. i0
          for (int k = 0; k < m; k++) { off |= a[k].u - (i0 + (uint32_t)k); diff |= a[k].u ^ i0; }
          if (off == 0 && i0 < len && (uint64_t)i0 + (uint64_t)m <= len) { const U* __restrict gs = g + i0; for (int k = 0; k < m; k++) d[k].u = gs[k].u; break; }
          if (diff == 0 && i0 < len) { const U v = g[i0]; L(d[k] = v) }
          L(d[k] = g[a[k].u < len ? a[k].u : 0])
        }
        case FADD: L(d[k].f = a[k].f + b[k].f)
        case FSUB: L(d[k].f = a[k].f - b[k].f)
        case FMUL: L(d[k].f = a[k].f * b[k].f)
        case FMIN: L(d[k].f = fminw(a[k].f, b[k].f))
        case FMAX: L(d[k].f = fmaxw(a[k].f, b[k].f))
        case FIDIV: L(d[k].f = std::trunc(a[k].f / b[k].f))
        case FMOD: L(d[k].f = a[k].f - std::trunc(a[k].f / b[k].f) * b[k].f)
        case FCMPLT: L(d[k].i = a[k].f < b[k].f)
        case FCMPNE: L(d[k].i = a[k].f != b[k].f)
        case IADD: L(d[k].u = a[k].u + b[k].u)
        case ISUB: L(d[k].u = a[k].u - b[k].u)
        case IMUL: L(d[k].u = a[k].u * b[k].u)
        // exact for int32 operands in double; a zero divisor gives 0 (wasm would trap), never a crash here
        case IDIV: L(const int32_t y = b[k].i ? b[k].i : 1; const int32_t q = (int32_t)((double)a[k].i / (double)y); d[k].i = b[k].i ? q : 0)
        case IMOD: L(const int32_t y = b[k].i ? b[k].i : 1; const int32_t q = (int32_t)((double)a[k].i / (double)y); d[k].u = b[k].i ? a[k].u - (uint32_t)q * (uint32_t)y : 0u)
        case IMIN: L(d[k].i = a[k].i < b[k].i ? a[k].i : b[k].i)
        case IMAX: L(d[k].i = a[k].i > b[k].i ? a[k].i : b[k].i)
        case ICMPLT: L(d[k].i = a[k].i < b[k].i)
        case ICMPNE: L(d[k].i = a[k].i != b[k].i)
        case UDIV: L(d[k].u = b[k].u == 0 ? 0 : a[k].u / b[k].u)
        case UMOD: L(d[k].u = b[k].u == 0 ? 0 : a[k].u % b[k].u)
        case UMIN: L(d[k].u = a[k].u < b[k].u ? a[k].u : b[k].u)
        case UMAX: L(d[k].u = a[k].u > b[k].u ? a[k].u : b[k].u)
        case UCMPLT: L(d[k].i = a[k].u < b[k].u)
        case AND: L(d[k].u = a[k].u & b[k].u)
        case OR: L(d[k].u = a[k].u | b[k].u)
        case XOR: L(d[k].u = a[k].u ^ b[k].u)
        case SHL: L(d[k].u = a[k].u << (b[k].u & 31))
        case SHR: L(d[k].u = a[k].u >> (b[k].u & 31))
        case EXP: L(d[k].f = expf1(a[k].f))
        case LOG: L(d[k].f = std::log(a[k].f))
        case SIN: L(d[k].f = std::sin(a[k].f))
        case COS: L(d[k].f = std::cos(a[k].f))
        case ASIN: L(d[k].f = std::asin(a[k].f))
        case ATAN: L(d[k].f = std::atan(a[k].f))
        case SQRT: L(d[k].f = __builtin_sqrtf(a[k].f))
        case RECIP: L(d[k].f = 1.f / a[k].f)
        case FLOOR: L(d[k].f = std::floor(a[k].f))
        case CEIL: L(d[k].f = std::ceil(a[k].f))
        case I2F: L(d[k].f = (float)a[k].i)
        case U2F: L(d[k].f = (float)a[k].u)
        case F2I: L(d[k].i = f2i(a[k].f))
        case F2U: L(d[k].u = f2u(a[k].f))
        case F2B: L(d[k].i = a[k].f != 0.f)
        case I2B: L(d[k].i = a[k].u != 0)
        case WHERE: L(d[k].u = c[k].u ? a[k].u : b[k].u)
        case IDIVC: { const double inv = 1.0 / I[5]; L(d[k].i = idivc(a[k].i, inv)) }
        case IMODC: { const double inv = 1.0 / I[5]; const uint32_t dv = (uint32_t)I[5]; L(d[k].u = a[k].u - (uint32_t)idivc(a[k].i, inv) * dv) }
#undef L
      }
    }
}

__attribute__((always_inline)) inline void runBody(const int32_t* code, int n, int nregs, int out, float* mem, size_t cOff, int begin, int end, const int32_t* offs) {
  static thread_local std::vector<U> regs;
  if (regs.size() < (size_t)nregs * BLK) regs.resize((size_t)nregs * BLK);
  U* R = regs.data();
  for (int j0 = begin; j0 < end; j0 += BLK) {
    const int m = std::min(BLK, end - j0);
    evalBlock(code, n, R, mem, cOff, j0, m, offs, nullptr, nullptr);
    const U* o = R + (size_t)out * BLK;
    for (int k = 0; k < m; k++) mem[cOff + j0 + k] = o[k].f;
  }
}

// a reduction over ridx in [0, size) of the body program for each output in [begin, end): C[cOff + o] = the terms
// reduced by rop (0 Add, 1 Max, 2 Min; float32) in 8 partial results, term r into partial r % 8 in ridx order, then
// ((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7)): the same order whatever the block or thread split (a run is
// deterministic), 8 independent chains the compiler vectorizes; not the order of jax-js's wasm loops (which differ
// between their SIMD paths too), so sums differ from wasm's in the last bits (the engine tests bound it)
template <int ROP>
__attribute__((always_inline)) inline float rop2(float a, float b) { return ROP == 0 ? a + b : ROP == 1 ? fmaxw(a, b) : fminw(a, b); }
template <int ROP>
__attribute__((always_inline)) inline void reduceBody(const int32_t* code, int n, int nregs, int out, float* mem, size_t cOff, int begin, int end, const int32_t* offs, int size) {
  static thread_local std::vector<U> regs;
  if (regs.size() < (size_t)nregs * BLK) regs.resize((size_t)nregs * BLK);
  U* R = regs.data();
  int32_t gl[BLK], rl[BLK];
  const float id = ROP == 0 ? 0.f : ROP == 1 ? -__builtin_inff() : __builtin_inff();
  int o = begin, r = 0;
  float p[8];
  for (int l = 0; l < 8; l++) p[l] = id;
  while (o < end) {
    int m = 0;
    for (int o2 = o, r2 = r; m < BLK && o2 < end;) {  // runs of one output: a fill and an iota (vectorized)
      const int run = std::min(BLK - m, size - r2);
      for (int q = 0; q < run; q++) { gl[m + q] = o2; rl[m + q] = r2 + q; }
      m += run;
      r2 += run;
      if (r2 == size) { r2 = 0; o2++; }
    }
    evalBlock(code, n, R, mem, cOff, 0, m, offs, gl, rl);
    const U* v = R + (size_t)out * BLK;
    int k = 0;
    while (k < m) {
      const int run = std::min(m - k, size - r);  // terms of output o in this block: r .. r + run - 1
      int q = 0;
      for (; q < run && ((r + q) & 7); q++) p[(r + q) & 7] = rop2<ROP>(p[(r + q) & 7], v[k + q].f);
      if (q + 8 <= run) {  // whole groups of 8 (r % 8 == 0 here): one vector of the 8 partials
        typedef float f8 __attribute__((vector_size(32)));
        typedef int32_t i8 __attribute__((vector_size(32)));
        f8 pv;
        std::memcpy(&pv, p, sizeof pv);
        for (; q + 8 <= run; q += 8) {
          f8 x;
          std::memcpy(&x, &v[k + q], sizeof x);
          if (ROP == 0) pv = pv + x;
          else {
            const i8 nan = (pv != pv) | (x != x);
            const f8 m = ROP == 1 ? (x > pv ? x : pv) : (x < pv ? x : pv);
            pv = nan ? pv + x : m;  // NaN if either is
          }
        }
        std::memcpy(p, &pv, sizeof pv);
      }
      for (; q < run; q++) p[(r + q) & 7] = rop2<ROP>(p[(r + q) & 7], v[k + q].f);
      k += run;
      r += run;
      if (r == size) {
        mem[cOff + o] = rop2<ROP>(rop2<ROP>(rop2<ROP>(p[0], p[1]), rop2<ROP>(p[2], p[3])), rop2<ROP>(rop2<ROP>(p[4], p[5]), rop2<ROP>(p[6], p[7])));
        for (int l = 0; l < 8; l++) p[l] = id;
        r = 0;
        o++;
      }
    }
  }
}
// the same program compiled for AVX2+FMA and for the baseline ISA (SSE2), chosen at run time
__attribute__((target("avx2,fma"), optimize("no-trapping-math"))) void runAvx2(const int32_t* code, int n, int nregs, int out, float* mem, size_t cOff, int begin, int end, const int32_t* offs) { runBody(code, n, nregs, out, mem, cOff, begin, end, offs); }
__attribute__((optimize("no-trapping-math"))) void runBase(const int32_t* code, int n, int nregs, int out, float* mem, size_t cOff, int begin, int end, const int32_t* offs) { runBody(code, n, nregs, out, mem, cOff, begin, end, offs); }
void run(const int32_t* code, int n, int nregs, int out, float* mem, size_t cOff, int begin, int end, const int32_t* offs) {
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && forcedIsa != "sse") runAvx2(code, n, nregs, out, mem, cOff, begin, end, offs);
  else runBase(code, n, nregs, out, mem, cOff, begin, end, offs);
}
#define RED_BODY { if (rop == 0) reduceBody<0>(code, n, nregs, out, mem, cOff, begin, end, offs, size); else if (rop == 1) reduceBody<1>(code, n, nregs, out, mem, cOff, begin, end, offs, size); else reduceBody<2>(code, n, nregs, out, mem, cOff, begin, end, offs, size); }
__attribute__((target("avx2,fma"), optimize("no-trapping-math"))) void reduceAvx2(const int32_t* code, int n, int nregs, int out, float* mem, size_t cOff, int begin, int end, const int32_t* offs, int size, int rop) RED_BODY
__attribute__((optimize("no-trapping-math"))) void reduceBase(const int32_t* code, int n, int nregs, int out, float* mem, size_t cOff, int begin, int end, const int32_t* offs, int size, int rop) RED_BODY
#undef RED_BODY
void reduce(const int32_t* code, int n, int nregs, int out, float* mem, size_t cOff, int begin, int end, const int32_t* offs, int size, int rop) {
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && forcedIsa != "sse") reduceAvx2(code, n, nregs, out, mem, cOff, begin, end, offs, size, rop);
  else reduceBase(code, n, nregs, out, mem, cOff, begin, end, offs, size, rop);
}
}  // namespace epi
#pragma GCC pop_options

// ---- N-API ----
#define CHECK(x) do { if ((x) != napi_ok) { napi_throw_error(env, nullptr, "heed_gemm: N-API call failed: " #x); return nullptr; } } while (0)

// the data (and length) of a typed-array argument of type `want` with at least `need` elements; false (and a
// TypeError naming `what`, plus the element count when `sized`) if not
bool typedArg(napi_env env, napi_value v, napi_typedarray_type want, const char* what, bool sized, size_t need, const char* name, void** out, size_t* len = nullptr) {
  bool is = false;
  napi_is_typedarray(env, v, &is);
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (is) napi_get_typedarray_info(env, v, &type, &length, &data, nullptr, nullptr);
  if (!is || type != want || length < need) {
    std::string msg = std::string("heed_gemm: ") + name + " must be " + what + (sized ? " of at least " + std::to_string(need) + " elements" : "");
    napi_throw_type_error(env, nullptr, msg.c_str());
    return false;
  }
  *out = data;
  if (len) *len = length;
  return true;
}

// the data of a Float32Array argument with at least `need` elements (and its length); false (and a TypeError thrown) if not
bool f32arg(napi_env env, napi_value v, size_t need, const char* name, float** out, size_t* len = nullptr) {
  void* data = nullptr;
  if (!typedArg(env, v, napi_float32_array, "a Float32Array", true, need, name, &data, len)) return false;
  *out = static_cast<float*>(data);
  return true;
}

// gemm(transA, transB, M, N, K, A, B, C, threads)
napi_value Gemm(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 8) { napi_throw_type_error(env, nullptr, "heed_gemm: gemm(transA, transB, M, N, K, A, B, C, threads?)"); return nullptr; }
  bool ta, tb;
  int32_t M, N, K, threads = (int32_t)std::max(1u, std::thread::hardware_concurrency());
  CHECK(napi_get_value_bool(env, argv[0], &ta));
  CHECK(napi_get_value_bool(env, argv[1], &tb));
  CHECK(napi_get_value_int32(env, argv[2], &M));
  CHECK(napi_get_value_int32(env, argv[3], &N));
  CHECK(napi_get_value_int32(env, argv[4], &K));
  if (argc > 8) CHECK(napi_get_value_int32(env, argv[8], &threads));
  if (M < 0 || N < 0 || K < 0) { napi_throw_range_error(env, nullptr, "heed_gemm: negative dimension"); return nullptr; }
  float *A = nullptr, *B = nullptr, *C = nullptr;  // empty arrays may have a null data pointer
  if (!f32arg(env, argv[5], (size_t)M * K, "A", &A) || !f32arg(env, argv[6], (size_t)K * N, "B", &B) || !f32arg(env, argv[7], (size_t)M * N, "C", &C)) return nullptr;
  if ((size_t)M * N == 0) return nullptr;
  gemm(ta, tb, M, N, K, A, B, C, std::max(1, threads));
  return nullptr;
}

// gemmLd(transA, transB, M, N, K, A, lda, B, ldb, C, ldc, threads): as gemm with explicit leading dimensions
// (elements). The arrays must hold every element the strides reach (checked).
napi_value GemmLd(napi_env env, napi_callback_info info) {
  size_t argc = 12;
  napi_value argv[12];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 12) { napi_throw_type_error(env, nullptr, "heed_gemm: gemmLd(transA, transB, M, N, K, A, lda, B, ldb, C, ldc, threads)"); return nullptr; }
  bool ta, tb;
  int32_t M, N, K, lda, ldb, ldc, threads;
  CHECK(napi_get_value_bool(env, argv[0], &ta));
  CHECK(napi_get_value_bool(env, argv[1], &tb));
  CHECK(napi_get_value_int32(env, argv[2], &M));
  CHECK(napi_get_value_int32(env, argv[3], &N));
  CHECK(napi_get_value_int32(env, argv[4], &K));
  CHECK(napi_get_value_int32(env, argv[6], &lda));
  CHECK(napi_get_value_int32(env, argv[8], &ldb));
  CHECK(napi_get_value_int32(env, argv[10], &ldc));
  CHECK(napi_get_value_int32(env, argv[11], &threads));
  if (M < 0 || N < 0 || K < 0 || lda < 0 || ldb < 0 || ldc < 0) { napi_throw_range_error(env, nullptr, "heed_gemm: negative dimension or leading dimension"); return nullptr; }
  if ((size_t)M * N == 0) return nullptr;
  // elements reached: the largest index + 1 of each operand
  auto reach = [](bool t, int rows, int cols, int ld) -> size_t {  // rows x cols logical, stored row-major (t: transposed)
    if (rows == 0 || cols == 0) return 0;
    return t ? (size_t)(cols - 1) * ld + rows : (size_t)(rows - 1) * ld + cols;
  };
  float *A = nullptr, *B = nullptr, *C = nullptr;
  if (!f32arg(env, argv[5], K ? reach(ta, M, K, lda) : 0, "A", &A) || !f32arg(env, argv[7], K ? reach(tb, K, N, ldb) : 0, "B", &B) || !f32arg(env, argv[9], reach(false, M, N, ldc), "C", &C)) return nullptr;
  gemmLd(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, std::max(1, threads));
  return nullptr;
}


// epilogue(mem, code, nregs, out, cOff, begin, end, offs): run an elementwise epilogue program (see namespace epi)
// over C = mem[cOff + begin, cOff + end) in place (also a standalone elementwise kernel: a program without acc).
// mem: a Float32Array over the whole (shared) memory; code: Int32Array of instructions; offs: Int32Array, the
// element offset in mem of each load slot. Checked: registers, operations, every load and C within mem.
// reduce(mem, code, nregs, out, cOff, begin, end, offs, size, op): a reduction kernel's body program (over gidx
// and ridx) reduced over ridx in [0, size) by op (0 Add, 1 Max, 2 Min) for each output in [begin, end), the raw
// result written to C (its epilogue, if any, is an epilogue() call after it). Checked as epilogue().
napi_value RunProgram(napi_env env, napi_callback_info info, bool reduce) {
  size_t argc = 10;
  napi_value argv[10];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < (reduce ? 10u : 8u)) { napi_throw_type_error(env, nullptr, reduce ? "heed_gemm: reduce(mem, code, nregs, out, cOff, begin, end, offs, size, op)" : "heed_gemm: epilogue(mem, code, nregs, out, cOff, begin, end, offs)"); return nullptr; }
  const char* what = reduce ? "heed_gemm: reduce: " : "heed_gemm: epilogue: ";
  auto i32array = [&](napi_value v, const char* name, int32_t** p, size_t* len) -> bool {
    void* data = nullptr;
    if (!typedArg(env, v, napi_int32_array, "an Int32Array", false, 0, name, &data, len)) return false;
    *p = static_cast<int32_t*>(data);
    return true;
  };
  int32_t *code = nullptr, *offs = nullptr;
  size_t codeLen = 0, nslots = 0;
  int32_t nregs, out, cOff, begin, end, size = 1, rop = 0;
  CHECK(napi_get_value_int32(env, argv[2], &nregs));
  CHECK(napi_get_value_int32(env, argv[3], &out));
  CHECK(napi_get_value_int32(env, argv[4], &cOff));
  CHECK(napi_get_value_int32(env, argv[5], &begin));
  CHECK(napi_get_value_int32(env, argv[6], &end));
  if (reduce) {
    CHECK(napi_get_value_int32(env, argv[8], &size));
    CHECK(napi_get_value_int32(env, argv[9], &rop));
    if (size < 1) { napi_throw_range_error(env, nullptr, "heed_gemm: reduce: the reduction size must be at least 1"); return nullptr; }
    if (rop < 0 || rop > 2) { napi_throw_range_error(env, nullptr, "heed_gemm: reduce: unknown reduction op (0 Add, 1 Max, 2 Min)"); return nullptr; }
  }
  if (!i32array(argv[1], "code", &code, &codeLen) || !i32array(argv[7], "offs", &offs, &nslots)) return nullptr;
  if (codeLen % epi::W != 0) { napi_throw_range_error(env, nullptr, (std::string(what) + "code length is not a multiple of 6").c_str()); return nullptr; }
  if (cOff < 0 || begin < 0 || end < begin) { napi_throw_range_error(env, nullptr, (std::string(what) + "negative offset or empty range").c_str()); return nullptr; }
  float* mem = nullptr;
  size_t memLen = 0;
  if (!f32arg(env, argv[0], (size_t)cOff + (size_t)end, "mem", &mem, &memLen)) return nullptr;
  std::string bad = epi::check(code, (int)(codeLen / epi::W), nregs, out, (int)nslots, offs, memLen, reduce);
  if (!bad.empty()) { napi_throw_range_error(env, nullptr, (std::string(what) + bad).c_str()); return nullptr; }
  if (end > begin) {
    if (reduce) epi::reduce(code, (int)(codeLen / epi::W), nregs, out, mem, (size_t)cOff, begin, end, offs, size, rop);
    else epi::run(code, (int)(codeLen / epi::W), nregs, out, mem, (size_t)cOff, begin, end, offs);
  }
  return nullptr;
}
napi_value Epilogue(napi_env env, napi_callback_info info) { return RunProgram(env, info, false); }
napi_value Reduce(napi_env env, napi_callback_info info) { return RunProgram(env, info, true); }

// The core's FP32 FMA throughput, measured: 12 independent chains of 8-lane FMAs (AVX2) for `iters` rounds,
// timed by this thread's CPU clock, so other load on the machine does not lower it. GFLOP per CPU-second.
__attribute__((target("avx2,fma"))) double fmaPeakAvx2(long iters) {
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  __m256 c0 = _mm256_set1_ps(1.f), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
  timespec t0, t1;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
  for (long n = 0; n < iters; n++) {
#define F(c) c = _mm256_fmadd_ps(c, a, b);
    F(c0) F(c1) F(c2) F(c3) F(c4) F(c5) F(c6) F(c7) F(c8) F(c9) F(c10) F(c11)
#undef F
    __asm__ volatile("" : "+x"(c0), "+x"(c1), "+x"(c2), "+x"(c3), "+x"(c4), "+x"(c5), "+x"(c6), "+x"(c7), "+x"(c8), "+x"(c9), "+x"(c10), "+x"(c11));
  }
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
  __m256 sum = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)), _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
  sum = _mm256_add_ps(sum, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
  volatile float keep = sum[0];
  (void)keep;
  double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
  return iters * 12.0 * 8 * 2 / s / 1e9;
}

napi_value FmaPeak(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  int64_t iters = 20000000;
  if (argc > 0) CHECK(napi_get_value_int64(env, argv[0], &iters));
  double g = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? fmaPeakAvx2(iters) : 0;
  CHECK(napi_create_double(env, g, &out));
  return out;
}

napi_value Info(napi_env env, napi_callback_info) {
  napi_value o, s, n;
  CHECK(napi_create_object(env, &o));
  std::string isa = forcedIsa.empty() ? isaName() : forcedIsa;
  CHECK(napi_create_string_utf8(env, isa.c_str(), NAPI_AUTO_LENGTH, &s));
  CHECK(napi_set_named_property(env, o, "isa", s));
  CHECK(napi_create_int32(env, (int32_t)std::thread::hardware_concurrency(), &n));
  CHECK(napi_set_named_property(env, o, "hardwareThreads", n));
  return o;
}

// setIsa("avx512f" | "avx2+fma" | "sse" | ""): force a kernel (tests); "" = auto. Returns the kernel now in use.
napi_value SetIsa(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  char buf[32] = {0};
  size_t len = 0;
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], buf, sizeof buf, &len) != napi_ok) { napi_throw_type_error(env, nullptr, "heed_gemm: setIsa(name: string)"); return nullptr; }
  std::string want(buf, len);
  bool ok = want.empty() || want == "sse" || (want == "avx2+fma" && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) || (want == "avx512f" && __builtin_cpu_supports("avx512f"));
  if (!ok) { napi_throw_range_error(env, nullptr, ("heed_gemm: kernel " + want + " is not supported by this CPU (or unknown)").c_str()); return nullptr; }
  forcedIsa = want;
  napi_value s;
  std::string now = forcedIsa.empty() ? isaName() : forcedIsa;
  CHECK(napi_create_string_utf8(env, now.c_str(), NAPI_AUTO_LENGTH, &s));
  return s;
}

napi_value Init(napi_env env, napi_value exports) {
  if (const char* f = std::getenv("HEED_NATIVE_ISA")) forcedIsa = f;
  napi_value fn;
  napi_create_function(env, "gemm", NAPI_AUTO_LENGTH, Gemm, nullptr, &fn);
  napi_set_named_property(env, exports, "gemm", fn);
  napi_create_function(env, "gemmLd", NAPI_AUTO_LENGTH, GemmLd, nullptr, &fn);
  napi_set_named_property(env, exports, "gemmLd", fn);
  napi_create_function(env, "epilogue", NAPI_AUTO_LENGTH, Epilogue, nullptr, &fn);
  napi_set_named_property(env, exports, "epilogue", fn);
  napi_create_function(env, "reduce", NAPI_AUTO_LENGTH, Reduce, nullptr, &fn);
  napi_set_named_property(env, exports, "reduce", fn);
  napi_create_function(env, "setIsa", NAPI_AUTO_LENGTH, SetIsa, nullptr, &fn);
  napi_set_named_property(env, exports, "setIsa", fn);
  napi_create_function(env, "fmaPeak", NAPI_AUTO_LENGTH, FmaPeak, nullptr, &fn);
  napi_set_named_property(env, exports, "fmaPeak", fn);
  napi_create_function(env, "info", NAPI_AUTO_LENGTH, Info, nullptr, &fn);
  napi_set_named_property(env, exports, "info", fn);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
