// heed native AdamW (issue 17): the host executor's update of one tensor, in place, for the chain
// chain(clipByGlobalNorm, adamw) of src/train/adamw.ts — the same operations in the same order as the loop that
// chain records (HostOptimizer.source), each rounded to f32. Built as its own addon (heed_adamw.node) with
// -ffp-contract=off and without the FMA ISA, so no multiply-add is ever fused: the results are bit-identical to
// the JS loop and to jax-js's wasm kernels (the loader checks that at start-up before heed uses it).
// Threads: std::thread over contiguous ranges of the tensor.
#include <node_api.h>
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <thread>
#include <vector>

namespace {

// s: the step's scalar vector — [clip, step, c2, decay, b1, 1-b1, b2, 1-b2, eps] (Optimizer.scalars)
#define HEED_ADAMW_BODY                                                   \
  const float c0 = s[0], c1 = s[1], c2 = s[2], c3 = s[3], c4 = s[4];      \
  const float c5 = s[5], c6 = s[6], c7 = s[7], c8 = s[8];                 \
  for (size_t i = a; i < e; i++) {                                        \
    const float gi = g[i] * c0;                                           \
    const float m2 = m[i] * c4 + gi * c5;                                 \
    const float v2 = v[i] * c6 + (gi * gi) * c7;                          \
    const float den = std::sqrt(v2) * c2 + c8;                            \
    const float p0 = decay ? p[i] * c3 : p[i];                            \
    p[i] = p0 - (m2 * (1.0f / den)) * c1;                                 \
    m[i] = m2;                                                            \
    v[i] = v2;                                                            \
  }

void loopBase(float* p, const float* g, float* m, float* v, const float* s, bool decay, size_t a, size_t e) { HEED_ADAMW_BODY }
#if defined(__x86_64__) || defined(__i386__)
// the same loop auto-vectorised for 8 lanes (AVX2 only: no "fma" in the target, so nothing can be contracted)
__attribute__((target("avx2"))) void loopAvx2(float* p, const float* g, float* m, float* v, const float* s, bool decay, size_t a, size_t e) { HEED_ADAMW_BODY }
#endif

void update(float* p, const float* g, float* m, float* v, const float* s, bool decay, size_t n, int threads) {
  auto loop = loopBase;
#if defined(__x86_64__) || defined(__i386__)
  if (__builtin_cpu_supports("avx2")) loop = loopAvx2;
#endif
  const size_t minPer = 1 << 16;  // below ~64k values a thread costs more than it saves
  int t = (int)std::max<size_t>(1, std::min<size_t>((size_t)std::max(1, threads), n / minPer));
  std::vector<std::thread> pool;
  for (int k = 0; k < t; k++) {
    size_t a = (n * k / t) & ~(size_t)63, e = k == t - 1 ? n : (n * (k + 1) / t) & ~(size_t)63;
    if (k == t - 1) loop(p, g, m, v, s, decay, a, e);
    else pool.emplace_back(loop, p, g, m, v, s, decay, a, e);
  }
  for (auto& th : pool) th.join();
}

bool floats(napi_env env, napi_value x, float** out, size_t* n) {
  bool is = false;
  if (napi_is_typedarray(env, x, &is) != napi_ok || !is) return false;
  napi_typedarray_type type;
  void* data;
  napi_value buf;
  size_t off;
  if (napi_get_typedarray_info(env, x, &type, n, &data, &buf, &off) != napi_ok || type != napi_float32_array) return false;
  *out = static_cast<float*>(data);
  return true;
}

// adamw(p, g, m, v, scalars, decay, threads): p, m, v updated in place from g
napi_value Adamw(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  float *p, *g, *m, *v, *s;
  size_t np_, ng, nm, nv, ns;
  bool decay = false;
  int32_t threads = 1;
  if (argc < 7 || !floats(env, argv[0], &p, &np_) || !floats(env, argv[1], &g, &ng) || !floats(env, argv[2], &m, &nm) || !floats(env, argv[3], &v, &nv) || !floats(env, argv[4], &s, &ns) ||
      napi_get_value_bool(env, argv[5], &decay) != napi_ok || napi_get_value_int32(env, argv[6], &threads) != napi_ok) {
    napi_throw_type_error(env, nullptr, "heed_adamw: adamw(p, g, m, v: Float32Array, scalars: Float32Array, decay: boolean, threads: number)");
    return nullptr;
  }
  if (ng != np_ || nm != np_ || nv != np_ || ns < 9) {
    napi_throw_range_error(env, nullptr, "heed_adamw: p, g, m, v must have the same length and scalars at least 9 values");
    return nullptr;
  }
  update(p, g, m, v, s, decay, np_, threads);
  return nullptr;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "adamw", NAPI_AUTO_LENGTH, Adamw, nullptr, &fn);
  napi_set_named_property(env, exports, "adamw", fn);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
