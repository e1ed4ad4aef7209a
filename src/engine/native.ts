/**
 * Native GEMM kernels under jax-js's wasm backend (Node only, optional; issue 17, bench/README.md "The wiring").
 *
 * jax-js stays the engine (tracing, autodiff, jit, fusion, memory). A matmul reaches its wasm backend as an
 * ordinary fused kernel: `GlobalView(a) * GlobalView(b)` reduced by Add over the last axis. This module wraps the
 * live WasmBackend's `dispatch` (no edit of node_modules, no fork), reads each reduction kernel's exported
 * AluExp / ShapeTracker structure, and records for the plain multiply-reduce ones (two f32 views with affine,
 * unmasked strides, no epilogue, optionally batched) a GEMM plan: which operand is op(A), which op(B), their
 * layouts and leading dimensions, M, N, K, the batch axes and offsets. The worker polyfill (node-workers.ts)
 * attaches the plan to the kernel's `{type: 'kernel', kernelHash, ptrs, begin, end}` message, and the worker runs
 * the native addon (native/gemm.cc, `npm run build:native`) on Float32Array views of the shared wasm memory for
 * its [begin, end) slice of the outputs instead of the wasm kernel, answering as the wasm kernel would.
 *
 * Off (the wasm kernels run) when: HEED_NATIVE=0, the addon is not built (one line says so), the device is not
 * wasm, there is no worker pool (one thread: jax-js then runs kernels on the main thread), or the start-up
 * self-check (x·Wᵀ, dY·W, dYᵀ·X and a batched product, jitted, native against wasm) fails (one line says so).
 */
import { HeedError } from '../errors.js';
import { nativeGemmMs, setKernelRoute } from './node-workers.js';

export interface NativeStatus {
  /** true when matmul kernels are routed to the native addon */
  active: boolean;
  /** the addon's kernel (`avx512f`, `avx2+fma`, `sse`), or null when the addon is not loaded */
  isa: string | null;
  /** why the route is off ('' when active) */
  reason: string;
  /** true when the addon is simply not built or not installed (the ordinary state of a bare install, and not
   * printed here: the training commands say it once, where the speed matters — see src/cli/common.ts) */
  unavailable: boolean;
  /** multiply-reduce kernel dispatches run natively */
  claimed: number;
  /** multiply-reduce kernel dispatches left to wasm, by reason */
  fallback: Record<string, number>;
  /** milliseconds the workers spent in native GEMMs (summed over workers; divide by threads for wall time) */
  readonly gemmMs: number;
}

interface Alu {
  op: string;
  dtype: string;
  src: Alu[];
  arg: unknown;
}
interface ViewLike {
  shape: number[];
  strides: number[];
  offset: number;
  mask: unknown;
}
interface KernelLike {
  nargs: number;
  size: number;
  exp: Alu;
  reduction?: { op: string; dtype: string; size: number; epilogue: Alu };
}
interface Exe {
  source?: unknown;
  data?: { sync?: boolean; program?: { kernelHash?: string } };
}
interface Chunk {
  s: (device: string) => { dispatch: (exe: unknown, inputs: number[], outputs: number[]) => void };
  b: (shape: number[], idx: Alu) => Alu[]; // unravelAlu
  E: { gidx: Alu; ridx: Alu }; // AluVar
  U: (a: unknown, b: unknown) => boolean; // deepEqual
  O: new (...a: never[]) => unknown; // Kernel
}

/** What the worker needs to run one kernel natively (structured-cloned with each kernel message). */
export interface GemmPlan {
  addon: string;
  /** input index (into ptrs) of op(A) and op(B) */
  a: number;
  b: number;
  ta: boolean;
  tb: boolean;
  M: number;
  N: number;
  K: number;
  lda: number;
  ldb: number;
  /** element offsets of the operands' views */
  aOff: number;
  bOff: number;
  /** batch axes (outermost first) and the operands' strides along them */
  batch: number[];
  aB: number[];
  bB: number[];
  /** the output's shape, and the epilogue's steps in order: views added (`acc + D`), constant scales (`acc * c`) */
  outShape: number[];
  epi: ({ gid: number; off: number; strides: number[] } | { mul: number })[];
}

const isAcc = (e: Alu): boolean => e.op === 'Variable' && e.arg === 'acc';
const hasAcc = (e: Alu): boolean => isAcc(e) || e.src.some(hasAcc);

/**
 * The epilogue as the steps applied to the accumulator, innermost first: views added (`acc + D`,
 * `D2 + (acc + D1)`) and constant scales (`acc * 2`, LoRA's alpha/r), or null for anything else (activations,
 * sums of views added before the accumulator: other roundings).
 */
function epilogueTerms(e: Alu): (Alu | number)[] | null {
  const out: (Alu | number)[] = [];
  let cur = e;
  while (!isAcc(cur)) {
    if ((cur.op !== 'Add' && cur.op !== 'Mul') || cur.src.length !== 2) return null;
    const [x, y] = cur.src;
    const xa = hasAcc(x);
    if (xa === hasAcc(y)) return null;
    const other = xa ? y : x;
    if (cur.op === 'Add' && other.op === 'GlobalView') out.unshift(other);
    else if (cur.op === 'Mul' && other.op === 'Const' && typeof other.arg === 'number' && other.dtype === 'float32') out.unshift(other.arg);
    else return null;
    cur = xa ? x : y;
  }
  return out;
}

let gemmMsAtStart = 0;
const status: NativeStatus = {
  active: false,
  isa: null,
  reason: 'not started',
  unavailable: false,
  claimed: 0,
  fallback: {},
  get gemmMs() {
    return nativeGemmMs() - gemmMsAtStart;
  },
};
const plans = new Map<string, GemmPlan | string | null>();
const debug = process.env.HEED_DEBUG_KERNELS === '1';
const examples = new Map<string, string>(); // HEED_DEBUG_KERNELS=1: one kernel per fallback reason, printed at exit
let routing = false; // plans are handed to the workers only while true (the self-check runs wasm first)

export function nativeStatus(): NativeStatus {
  return status;
}

/** The chunk of @jax-js/jax 0.1.25 that holds getBackend and the IR classes (same module instance as the package). */
const CHUNK = 'backend-CnjgxpXq.js';

/**
 * Classify one kernel: a GEMM plan, a fallback reason (a multiply-reduce kernel that stays wasm), or null (not a
 * multiply-reduce kernel at all: elementwise work, other reductions).
 */
export function planKernel(k: KernelLike, chunk: Pick<Chunk, 'b' | 'E' | 'U'>, addon: string): GemmPlan | string | null {
  const re = k.reduction;
  if (!re || re.op !== 'Add') return null;
  const exp = k.exp;
  if (exp.op !== 'Mul') return null;
  if (exp.src.length !== 2 || exp.src.some((s) => s.op !== 'GlobalView')) return 'operands not two plain views';
  const epiTerms = epilogueTerms(re.epilogue);
  if (!epiTerms) return 'epilogue';
  if (exp.dtype !== 'float32' || re.dtype !== 'float32' || re.epilogue.dtype !== 'float32' || [...exp.src, ...epiTerms].some((s) => typeof s !== 'number' && s.dtype !== 'float32')) return 'dtype';
  const views: ViewLike[] = [];
  const gids: number[] = [];
  for (const gv of exp.src) {
    const [gid, st] = gv.arg as [number, { views?: ViewLike[] }];
    if (!Number.isInteger(gid) || gid < 0 || gid >= k.nargs || !Array.isArray(st?.views)) return 'unknown view structure';
    if (st.views.length !== 1) return 'view chain';
    const v = st.views[0];
    if (v.mask !== null) return 'masked view';
    views.push(v);
    gids.push(gid);
  }
  const shape = views[0].shape;
  const nd = shape.length;
  if (nd < 2) return null; // one sum over everything (e.g. Σ g² of the gradient norm): not a matrix product
  if (!chunk.U(shape, views[1].shape) || shape[nd - 1] !== re.size) return 'shape';
  const K = re.size;
  let outs = 1;
  for (let i = 0; i < nd - 1; i++) outs *= shape[i];
  if (outs !== k.size || K < 1) return 'shape';
  const expected = [...chunk.b(shape.slice(0, -1), chunk.E.gidx), chunk.E.ridx].map((e) => (e as unknown as { simplify(): Alu }).simplify());
  for (const gv of exp.src) if (!chunk.U(gv.src, expected)) return 'indexing';
  // epilogue terms: views over the output, indexed by the output position
  const outShape = shape.slice(0, -1);
  const expectedOut = chunk.b(outShape, chunk.E.gidx).map((e) => (e as unknown as { simplify(): Alu }).simplify());
  const epi: GemmPlan['epi'] = [];
  for (const gv of epiTerms) {
    if (typeof gv === 'number') {
      epi.push({ mul: gv });
      continue;
    }
    const [gid, st] = gv.arg as [number, { views?: ViewLike[] }];
    if (!Number.isInteger(gid) || gid < 0 || gid >= k.nargs || !Array.isArray(st?.views) || st.views.length !== 1) return 'epilogue view';
    const v = st.views[0];
    if (v.mask !== null || !chunk.U(v.shape, outShape) || !chunk.U(gv.src, expectedOut)) return 'epilogue view';
    if (!Number.isInteger(v.offset) || v.offset < 0 || v.strides.some((x) => !Number.isInteger(x) || x < 0)) return 'epilogue view';
    epi.push({ gid, off: v.offset, strides: v.strides });
  }
  for (const v of views) if (!Number.isInteger(v.offset) || v.offset < 0 || v.strides.some((s) => !Number.isInteger(s) || s < 0)) return 'negative or odd strides';
  // output axes (size 1 dropped): batch (both operands move, or neither), owned by operand 0, owned by operand 1;
  // neighbours of one kind merge when they are one axis in disguise for both operands (e.g. GQA's group and T axes)
  const [s0, s1] = [views[0].strides, views[1].strides];
  type Axis = { n: number; s: [number, number]; kind: 'batch' | 0 | 1 };
  const axes: Axis[] = [];
  for (let i = 0; i < nd - 1; i++) {
    if (shape[i] === 1) continue;
    const ax: Axis = { n: shape[i], s: [s0[i], s1[i]], kind: (s0[i] > 0) === (s1[i] > 0) ? 'batch' : s0[i] > 0 ? 0 : 1 };
    const prev = axes[axes.length - 1];
    if (prev && prev.kind === ax.kind && prev.s[0] === ax.s[0] * ax.n && prev.s[1] === ax.s[1] * ax.n) {
      prev.n *= ax.n;
      prev.s = ax.s;
    } else axes.push(ax);
  }
  const firstNon = axes.findIndex((a) => a.kind !== 'batch');
  if (firstNon < 0) return null; // a dot product per output (e.g. Σ x·x): not a matrix product
  const mat = axes.slice(firstNon);
  if (mat.some((a) => a.kind === 'batch')) return 'batch axis inside the matrix';
  if (mat.length > 2 || (mat.length === 2 && mat[0].kind === mat[1].kind)) return 'more than one row or column axis';
  // a matrix-vector product (decoding one token): memory-bound, the tiled kernel would compute 16 columns for one
  if (mat.length === 1) return 'matrix-vector';
  const rowOp = mat[0].kind as 0 | 1;
  const colOp = (1 - rowOp) as 0 | 1;
  // here mat is one row axis and one column axis (a single axis returned 'matrix-vector' above)
  const M = mat[0].n;
  const N = mat[1].n;
  const A = views[rowOp], B = views[colOp];
  const sM = mat[0].s[rowOp], sKa = A.strides[nd - 1];
  const sN = mat[1].s[colOp], sKb = B.strides[nd - 1];
  let ta: boolean, lda: number, tb: boolean, ldb: number;
  if (sKa === 1) [ta, lda] = [false, sM];
  else if (sM === 1) [ta, lda] = [true, sKa];
  else return 'strides (neither operand axis contiguous)';
  if (sN === 1) [tb, ldb] = [false, sKb];
  else if (sKb === 1) [tb, ldb] = [true, sN];
  else return 'strides (neither operand axis contiguous)';
  const bAxes = axes.slice(0, firstNon);
  const max = 2 ** 31 - 1;
  if ([M, N, K, lda, ldb, ...bAxes.flatMap((a) => a.s)].some((x) => x > max)) return 'too large';
  return {
    addon,
    a: gids[rowOp],
    b: gids[colOp],
    ta,
    tb,
    M,
    N,
    K,
    lda,
    ldb,
    aOff: A.offset,
    bOff: B.offset,
    batch: bAxes.map((a) => a.n),
    aB: bAxes.map((a) => a.s[rowOp]),
    bB: bAxes.map((a) => a.s[colOp]),
    outShape,
    epi,
  };
}

function fellBack(reason: string): void {
  status.fallback[reason] = (status.fallback[reason] ?? 0) + 1;
}

type Engine = {
  jit: (f: (...a: never[]) => unknown) => (...a: unknown[]) => unknown;
  np: { matmul: (a: unknown, b: unknown) => unknown; einsum?: unknown };
  fromHost: (d: Float32Array, s: number[]) => { transpose: (p?: number[]) => unknown };
  toHost: (t: unknown) => Promise<Float32Array>;
};

/**
 * Start the route (called by initEngine on device wasm in Node, after jax.init). Never throws: on any problem the
 * route stays off, `nativeStatus().reason` says why, and at most one line is printed.
 */
export async function startNative(threads: number, engine: Engine): Promise<NativeStatus> {
  const say = (why: string, print: boolean): NativeStatus => {
    status.active = false;
    status.reason = why;
    if (print) console.error(`heed: native GEMM kernels not available: ${why}; using the wasm engine`);
    return status;
  };
  let loader: {
    loadNativeGemm: (o?: { quiet?: boolean }) => null | { info(): { isa: string }; gemmLd?: unknown };
    lastReason: () => string;
    ADDON_PATH: string;
  };
  try {
    // @ts-ignore -- plain ESM JavaScript next to the addon (native/, beside src/ and dist/), typed by its JSDoc
    loader = (await import('../../native/load.mjs')) as typeof loader;
  } catch (e) {
    status.unavailable = process.env.HEED_NATIVE !== '0';
    return say(`native/load.mjs is not part of this installation (${(e as Error).message.split('\n')[0]})`, false);
  }
  const { loadNativeGemm, lastReason, ADDON_PATH } = loader;
  const addon = loadNativeGemm({ quiet: true });
  if (!addon) {
    status.unavailable = process.env.HEED_NATIVE !== '0';
    return say(lastReason(), false);
  }
  status.isa = addon.info().isa;
  if (typeof addon.gemmLd !== 'function') return say('the addon is older than this heed (no gemmLd); rebuild it with npm run build:native', true);
  if (typeof (globalThis as { Worker?: unknown }).Worker === 'undefined' || threads <= 1) {
    return say('one thread (HEED_THREADS=1): jax-js runs its kernels on the main thread, which the route does not reach', false);
  }
  let chunk: Chunk;
  try {
    const url = new URL(CHUNK, import.meta.resolve('@jax-js/jax'));
    chunk = (await import(url.href)) as Chunk;
    if (typeof chunk.s !== 'function' || typeof chunk.b !== 'function' || typeof chunk.U !== 'function' || !chunk.E?.gidx) throw new Error(`${CHUNK} does not export what jax-js 0.1.25 did`);
  } catch (e) {
    return say(`jax-js internals differ from 0.1.25 (${(e as Error).message.split('\n')[0]})`, true);
  }
  const backend = chunk.s('wasm');
  const dispatch = backend.dispatch.bind(backend);
  backend.dispatch = (exe: unknown, inputs: number[], outputs: number[]) => {
    const e = exe as Exe;
    const hash = e.data?.program?.kernelHash;
    if (routing && hash !== undefined && e.source instanceof chunk.O) {
      let plan = plans.get(hash);
      if (plan === undefined) {
        try {
          plan = planKernel(e.source as KernelLike, chunk, ADDON_PATH);
        } catch (err) {
          plan = `recogniser error: ${(err as Error).message}`;
        }
        plans.set(hash, plan);
      }
      if (typeof plan === 'string') {
        fellBack(plan);
        if (debug && !examples.has(plan)) examples.set(plan, String(e.source).replace(/\s+/g, ' ').slice(0, 600));
      }
      else if (plan) {
        if (e.data?.sync || outputs.length !== 1) {
          fellBack(e.data?.sync ? 'synchronous dispatch' : 'outputs');
        } else status.claimed++;
      }
    }
    return dispatch(exe, inputs, outputs);
  };
  setKernelRoute((hash) => {
    if (!routing) return undefined;
    const p = plans.get(hash);
    return p && typeof p === 'object' ? p : undefined;
  });
  // self-check: the same jitted products with the route off (wasm) and on (native), compared
  try {
    const bad = await selfCheck(engine);
    if (bad) {
      routing = false;
      setKernelRoute(null);
      return say(`the start-up self-check failed (${bad}): jax-js internals differ from what the route expects`, true);
    }
  } catch (e) {
    routing = false;
    setKernelRoute(null);
    return say(`the start-up self-check failed (${(e as Error).message.split('\n')[0]})`, true);
  }
  status.active = true;
  status.reason = '';
  status.claimed = 0;
  status.fallback = {};
  gemmMsAtStart = nativeGemmMs();
  if (debug) {
    process.on('exit', () => {
      const fb = Object.entries(status.fallback).map(([r, n]) => `${r} ${n}`).join(', ');
      console.error(`heed: native GEMM (${status.isa}): ${status.claimed} matmul kernels native, ${Object.values(status.fallback).reduce((a, b) => a + b, 0)} wasm${fb ? ` (${fb})` : ''}`);
      for (const [r, k] of examples) console.error(`heed:   wasm (${r}): ${k}`);
    });
  }
  return status;
}

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}

/** '' when the native results match wasm's; else what differed. Runs with `routing` toggled. */
async function selfCheck(E: Engine): Promise<string> {
  const { jit, np, fromHost, toHost } = E;
  const M = 37, K = 53, N = 70, Bt = 3;
  const x = rand(M * K, 1), w = rand(N * K, 2), dy = rand(M * N, 3), q = rand(Bt * M * K, 4), kk = rand(Bt * N * K, 5);
  type T = { transpose: (p?: number[]) => unknown };
  const cases: [string, () => unknown][] = [
    ['x·Wᵀ', () => jit((a: T, b: T) => np.matmul(a, b.transpose()) as never)(fromHost(x, [M, K]), fromHost(w, [N, K]))],
    ['dY·W', () => jit((a: T, b: T) => np.matmul(a, b) as never)(fromHost(dy, [M, N]), fromHost(w, [N, K]))],
    ['dYᵀ·X', () => jit((a: T, b: T) => np.matmul(a.transpose(), b) as never)(fromHost(dy, [M, N]), fromHost(x, [M, K]))],
    ['batched Q·Kᵀ', () => jit((a: T, b: T) => np.matmul(a, b.transpose([0, 2, 1])) as never)(fromHost(q, [Bt, M, K]), fromHost(kk, [Bt, N, K]))],
  ];
  const wasm: Float32Array[] = [];
  routing = false;
  for (const [, f] of cases) wasm.push(await E.toHost(f()));
  routing = true;
  const before = status.claimed;
  for (let c = 0; c < cases.length; c++) {
    const got = await toHost(cases[c][1]());
    const ref = wasm[c];
    if (got.length !== ref.length) return `${cases[c][0]}: ${got.length} values, wasm gave ${ref.length}`;
    for (let i = 0; i < ref.length; i++) {
      if (!(Math.abs(got[i] - ref[i]) <= 1e-4 * (1 + Math.abs(ref[i])))) return `${cases[c][0]}: element ${i} is ${got[i]}, wasm gave ${ref[i]}`;
    }
  }
  if (status.claimed - before < cases.length) return `only ${status.claimed - before} of ${cases.length} products were recognised`;
  return '';
}

/** For tests: a clear error when the route was required but is off. */
export function requireNative(): void {
  if (!status.active) throw new HeedError(`native GEMM kernels are off: ${status.reason}`, 'run npm run build:native (needs g++ and Node headers) and unset HEED_NATIVE');
}
