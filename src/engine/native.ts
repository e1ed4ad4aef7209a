/**
 * Native GEMM kernels under jax-js's wasm backend (Node only, optional; issue 17, bench/README.md "The wiring").
 *
 * jax-js stays the engine (tracing, autodiff, jit, fusion, memory). A matmul reaches its wasm backend as an
 * ordinary fused kernel: `GlobalView(a) * GlobalView(b)` reduced by Add over the last axis. This module wraps the
 * live WasmBackend's `dispatch` (no edit of node_modules, no fork), reads each reduction kernel's exported
 * AluExp / ShapeTracker structure, and records for the multiply-reduce ones (two f32 views with affine,
 * unmasked strides, optionally batched) a GEMM plan: which operand is op(A), which op(B), their layouts and
 * leading dimensions, M, N, K, the batch axes and offsets, and the epilogue jax-js fused after the reduction:
 * added views and constant scales as steps, anything else elementwise (SwiGLU's silu(gate)·acc, softplus, casts…)
 * compiled once per kernel to a register program for the addon's `epilogue()` (compileEpilogue). The worker
 * polyfill (node-workers.ts) attaches the plan to the kernel's `{type: 'kernel', kernelHash, ptrs, begin, end}`
 * message, and the worker runs the native addon (native/gemm.cc, `npm run build:native`) on Float32Array views of
 * the shared wasm memory for its [begin, end) slice of the outputs — the product, then the epilogue over the same
 * slice — instead of the wasm kernel, answering as the wasm kernel would. Standalone elementwise kernels and
 * reductions that are not products, where wasm has no SIMD code for them (Exp, Log, Reciprocal…), are compiled to the
 * same register programs (planOther) and run by the addon's `epilogue()` / `reduce()` (HEED_NATIVE_ELEMENTWISE=0
 * keeps them in wasm). Small kernels of any kind (≤
 * HEED_INLINE_WORK multiply-adds) run on the main thread instead of a worker, saving the message round trip.
 *
 * Off (the wasm kernels run) when: HEED_NATIVE=0, the addon is not built (one line says so), the device is not
 * wasm, there is no worker pool (one thread: jax-js then runs kernels on the main thread), or the start-up
 * self-check (x·Wᵀ, dY·W, dYᵀ·X and a batched product, jitted, native against wasm) fails (one line says so).
 */
import { HeedError } from '../errors.js';
import { inlinedKernels, nativeEwMs, nativeGemmMs, setKernelRoute } from './node-workers.js';

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
  /** the claimed dispatches by epilogue kind: 'none', 'views added / scaled' (bias, mask, residual, LoRA's
   * alpha/r) or 'elementwise (ops…)' (a register program for the addon, e.g. SwiGLU's silu(gate)·acc: Exp Mul Reciprocal …) */
  epilogues: Record<string, number>;
  /** milliseconds the workers spent in native GEMMs (summed over workers; divide by threads for wall time) */
  readonly gemmMs: number;
  /** small wasm kernel messages (≤ HEED_INLINE_WORK multiply-adds, default 16384; 0 = off) run on the main
   * thread instead of a worker, saving the round trip */
  readonly inlined: number;
  /** the other kernels (HEED_NATIVE_ELEMENTWISE=1, the default with the route on): standalone elementwise kernels
   * and reductions that are not products, run by the addon's register programs. `claimed`: dispatches run natively
   * (those small enough for the main thread, HEED_INLINE_WORK, stay wasm there and are not counted); `fallback`:
   * dispatches left to wasm in the workers, by reason; `ms`: the workers' milliseconds in them (summed over workers) */
  elementwise: { enabled: boolean; claimed: number; fallback: Record<string, number>; readonly ms: number };
  reductions: { enabled: boolean; claimed: number; fallback: Record<string, number> };
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
  /** any other elementwise epilogue, compiled to a register program (compileEpilogue): run by the addon over the
   * output slice after the product, in place of `epi` */
  fn?: EpilogueFn;
}

/** An elementwise epilogue compiled to a register program for the addon's `epilogue` (native/gemm.cc, namespace
 * epi): instructions of 6 words {op, dst, a, b, c, imm}, run in place over the output slice after the product. */
export interface EpilogueFn {
  code: Int32Array;
  nregs: number;
  /** the register holding the result */
  out: number;
  /** input index (into the kernel's ptrs) of each load slot */
  slots: number[];
  /** the distinct float operations it computes (for the counts by epilogue kind) */
  ops: string[];
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

type AluM = Alu & { rewriteGlobalViews(): AluM; simplify(): AluM; src: AluM[] };
/** operation codes of the addon's epilogue programs (native/gemm.cc, namespace epi) */
export const EPILOGUE_OPS = {
  GIDX: 0, ACC: 1, CONST: 2, LOAD: 3, RIDX: 4,
  FADD: 10, FSUB: 11, FMUL: 12, FMIN: 13, FMAX: 14, FIDIV: 15, FMOD: 16, FCMPLT: 17, FCMPNE: 18,
  IADD: 20, ISUB: 21, IMUL: 22, IDIV: 23, IMOD: 24, IMIN: 25, IMAX: 26, ICMPLT: 27, ICMPNE: 28, UDIV: 29, UMOD: 30, UMIN: 31, UMAX: 32, UCMPLT: 33, AND: 34, OR: 35, XOR: 36, SHL: 37, SHR: 38,
  EXP: 40, LOG: 41, SIN: 42, COS: 43, ASIN: 44, ATAN: 45, SQRT: 46, RECIP: 47, FLOOR: 48, CEIL: 49,
  I2F: 50, U2F: 51, F2I: 52, F2U: 53, F2B: 54, I2B: 55, WHERE: 60,
  /** int32 a / imm and a % imm (truncating) by a constant imm ≥ 1 (index arithmetic: multiplies, no division) */
  IDIVC: 61, IMODC: 62,
} as const;
const OP = EPILOGUE_OPS;
const UNARY: Record<string, number> = { Exp: OP.EXP, Log: OP.LOG, Sin: OP.SIN, Cos: OP.COS, Asin: OP.ASIN, Atan: OP.ATAN, Sqrt: OP.SQRT, Reciprocal: OP.RECIP, Floor: OP.FLOOR, Ceil: OP.CEIL };
const f32bits = (x: number): number => new Int32Array(Float32Array.of(x).buffer)[0];

/** The opcode of one AluExp node of dtype `t` over sources of dtype `st`, or a reason it has none. */
function opcodeOf(op: string, t: string, st: string | undefined, arg: unknown): number | string {
  const f = t === 'float32', u = t === 'uint32', b = t === 'bool';
  const bin: Record<string, [number, number, number]> = { // float, int32 (and bool), uint32
    Add: [OP.FADD, OP.IADD, OP.IADD], Sub: [OP.FSUB, OP.ISUB, OP.ISUB], Mul: [OP.FMUL, OP.IMUL, OP.IMUL],
    Idiv: [OP.FIDIV, OP.IDIV, OP.UDIV], Mod: [OP.FMOD, OP.IMOD, OP.UMOD], Min: [OP.FMIN, OP.IMIN, OP.UMIN], Max: [OP.FMAX, OP.IMAX, OP.UMAX],
  };
  if (op === 'Add' && b) return OP.OR;
  if (op === 'Mul' && b) return OP.AND;
  if (bin[op]) return bin[op][f ? 0 : u ? 2 : 1];
  if (op === 'Cmplt') return st === 'float32' ? OP.FCMPLT : st === 'uint32' ? OP.UCMPLT : OP.ICMPLT;
  if (op === 'Cmpne') return st === 'float32' ? OP.FCMPNE : OP.ICMPNE;
  if (op === 'BitCombine') return arg === 'and' ? OP.AND : arg === 'or' ? OP.OR : OP.XOR;
  if (op === 'BitShift') return arg === 'shl' ? OP.SHL : OP.SHR;
  if (op === 'Where') return OP.WHERE;
  if (UNARY[op] !== undefined && f) return UNARY[op];
  if (op === 'Cast') {
    if (f) return st === 'float32' ? -1 : st === 'uint32' ? OP.U2F : OP.I2F;
    if (b) return st === 'float32' ? OP.F2B : OP.I2B;
    if (st === 'float32') return u ? OP.F2U : OP.F2I;
    return -1; // int32 <-> uint32 <-> bool: the same bits
  }
  return `epilogue op ${op}`;
}

/**
 * Compile a reduction's epilogue (an AluExp over `acc`, `gidx` and global views, as jax-js hands it to its
 * backends) to a register program for the addon with the wasm backend's semantics: float32 arithmetic,
 * int32 / uint32 / bool as in wasm (wrapping, truncating division, Where as a select: both sides evaluated),
 * loads clamped to element 0 outside [0, len) as jax-js's wasm kernels do. Structurally equal subexpressions
 * share one register. Returns a reason string for what it cannot compile (float64 / float16 values, Erf,
 * Bitcast, random bits, other variables).
 */
export function compileEpilogue(epilogue: Alu): EpilogueFn | string {
  return compileProgram(epilogue, 'epilogue');
}

/**
 * What a register program may read: `epilogue` (acc, gidx: a product's or a reduction's epilogue), `elementwise`
 * (gidx: a standalone elementwise kernel, its output written at gidx), `body` (gidx, ridx: a reduction's body,
 * reduced by the addon's `reduce`). gidx / ridx may be jax-js Variables or the Specials its backends substitute.
 */
export type ProgramKind = 'epilogue' | 'elementwise' | 'body';

/** compileEpilogue for any kind of program (see ProgramKind); reasons are prefixed by the kind. */
export function compileProgram(exp: Alu, kind: ProgramKind): EpilogueFn | string {
  const e = (exp as AluM).rewriteGlobalViews().simplify();
  if (e.dtype !== 'float32') return `${kind} dtype`;
  const code: number[] = [];
  const regOf = new Map<AluM, number>();
  const byKey = new Map<string, number>();
  const slots: number[] = [];
  const ops = new Set<string>();
  let nregs = 0;
  const emit = (key: string, ins: number[]): number => {
    let r = byKey.get(key);
    if (r === undefined) {
      r = nregs++;
      code.push(ins[0], r, ins[1] ?? 0, ins[2] ?? 0, ins[3] ?? 0, ins[4] ?? 0);
      byKey.set(key, r);
    }
    return r;
  };
  const gen = (x: AluM): number => {
    const seen = regOf.get(x);
    if (seen !== undefined) return seen;
    const { op, dtype, arg } = x;
    if (dtype !== 'float32' && dtype !== 'int32' && dtype !== 'uint32' && dtype !== 'bool') throw new Error(`${kind} dtype ${dtype}`);
    const a = x.src.map(gen);
    let r: number;
    if (op === 'Const') {
      const v = arg as number;
      const bits = dtype === 'float32' ? f32bits(v) : v | 0;
      r = emit(`C|${bits}`, [OP.CONST, 0, 0, 0, bits]);
    } else if (op === 'Variable') {
      if (arg === 'acc' && dtype === 'float32' && kind === 'epilogue') r = emit('acc', [OP.ACC]);
      else if (arg === 'gidx' && dtype === 'int32') r = emit('gidx', [OP.GIDX]);
      else if (arg === 'ridx' && dtype === 'int32' && kind === 'body') r = emit('ridx', [OP.RIDX]);
      else throw new Error(`${kind} variable ${String(arg)}`);
    } else if (op === 'Special') {
      const name = (arg as [string, number])[0];
      if (name === 'gidx' && dtype === 'int32') r = emit('gidx', [OP.GIDX]);
      else if (name === 'ridx' && dtype === 'int32' && kind === 'body') r = emit('ridx', [OP.RIDX]);
      else throw new Error(`${kind} variable ${String(name)}`);
    } else if (op === 'GlobalIndex') {
      const [gid, len] = arg as [number, number];
      if (!Number.isInteger(gid) || gid < 0 || !Number.isInteger(len) || len < 1 || len > 2 ** 31 - 1) throw new Error(`${kind} view`);
      let slot = slots.indexOf(gid);
      if (slot < 0) slot = slots.push(gid) - 1;
      r = emit(`L|${slot}|${len}|${a[0]}`, [OP.LOAD, a[0], slot, 0, len]);
    } else {
      const oc = opcodeOf(op, dtype, x.src[0]?.dtype, arg);
      if (typeof oc === 'string') throw new Error(kind === 'epilogue' ? oc : oc.replace(/^epilogue/, kind));
      if (dtype === 'float32') ops.add(op); // not index arithmetic
      const dv = x.src[1];
      if ((oc === OP.IDIV || oc === OP.IMOD) && dtype === 'int32' && dv.op === 'Const' && dv.dtype === 'int32' && Number.isInteger(dv.arg) && (dv.arg as number) >= 1 && (dv.arg as number) <= 2 ** 31 - 1) {
        r = emit(`${oc}c|${a[0]}|${dv.arg}`, [oc === OP.IDIV ? OP.IDIVC : OP.IMODC, a[0], 0, 0, dv.arg as number]);
        regOf.set(x, r);
        return r;
      }
      r = oc < 0 ? a[0] : emit(`${oc}|${a.join(',')}`, [oc, ...(op === 'Where' ? [a[1], a[2], a[0]] : a)]);
    }
    regOf.set(x, r);
    return r;
  };
  try {
    const out = gen(e);
    return { code: Int32Array.from(code), nregs, out, slots, ops: [...ops].sort() };
  } catch (err) {
    return (err as Error).message;
  }
}

let gemmMsAtStart = 0;
let ewMsAtStart = 0;
let inlinedAtStart = 0;
let epilogueSupported = true; // false with an addon built before epilogue() existed
const status: NativeStatus = {
  active: false,
  isa: null,
  reason: 'not started',
  unavailable: false,
  claimed: 0,
  fallback: {},
  epilogues: {},
  get gemmMs() {
    return nativeGemmMs() - gemmMsAtStart;
  },
  get inlined() {
    return inlinedKernels() - inlinedAtStart;
  },
  elementwise: {
    enabled: false,
    claimed: 0,
    fallback: {},
    get ms() {
      return nativeEwMs() - ewMsAtStart;
    },
  },
  reductions: { enabled: false, claimed: 0, fallback: {} },
};
const plans = new Map<string, KernelPlan | string | null>();
/** the plan (or the reason it stays wasm) of each kernel that is not a multiply-reduce, by hash */
const otherPlans = new Map<string, ElementwisePlan | ReducePlan | string>();
let checking = false; // during the self-check every claimed kernel runs natively (no main-thread shortcut)
/** kernels small enough to run on the main thread (saving a worker round trip each): by hash */
const inlineOk = new Map<string, boolean>();
let INLINE_WORK = Number(process.env.HEED_INLINE_WORK ?? 16384);
/** Benchmarks: change the main-thread threshold (multiply-adds or elements of a kernel; 0 = every kernel in the workers). */
export function setInlineWork(work: number): void {
  INLINE_WORK = work;
  inlineOk.clear();
}
const debug = process.env.HEED_DEBUG_KERNELS === '1';
/** HEED_DEBUG_KERNELS=1: per fallback reason the dispatches, their multiply-adds and the largest kernel, printed at exit */
const examples = new Map<string, { n: number; work: number; top: number; kernel: string }>();
let claimedWork = 0;
function note(reason: string, work: number, kernel: unknown): void {
  const x = examples.get(reason) ?? { n: 0, work: 0, top: -1, kernel: '' };
  x.n++;
  x.work += work;
  if (work > x.top) [x.top, x.kernel] = [work, String(kernel).replace(/\s+/g, ' ').slice(0, 900)];
  examples.set(reason, x);
}
/** HEED_NATIVE_ELEMENTWISE=0 keeps standalone elementwise kernels and non-product reductions in wasm (A/B runs) */
let ewEnabled = false;
let reduceEnabled = false;
let ewSupported = false;
let reduceSupported = false;
/** Tests and benchmarks (A/B in one process): turn the elementwise / reduction route off, on (true: where wasm has no
 * SIMD code) or on for every kernel it compiles ('all'); only where the addon has it and HEED_NATIVE_ELEMENTWISE did
 * not turn it off at start-up. Returns whether it is on now. */
export function setNativeElementwise(on: boolean | 'all'): boolean {
  if ((on === 'all') !== ewAll) otherPlans.clear(); // the choices depend on it
  ewAll = on === 'all';
  ewEnabled = on !== false && ewSupported;
  reduceEnabled = ewEnabled && reduceSupported;
  status.elementwise.enabled = ewEnabled;
  status.reductions.enabled = reduceEnabled;
  return ewEnabled;
}
/** HEED_NATIVE_ELEMENTWISE: '1' (default), '0' or 'all'; anything else is refused */
export function elementwiseSwitch(v = process.env.HEED_NATIVE_ELEMENTWISE): boolean | 'all' {
  if (v === undefined || v === '' || v === '1') return true;
  if (v === '0') return false;
  if (v === 'all') return 'all';
  throw new HeedError(`HEED_NATIVE_ELEMENTWISE must be 0, 1 or all, got ${JSON.stringify(v)}`, 'unset it (native where wasm has no SIMD code for the kernel), or set HEED_NATIVE_ELEMENTWISE=0 (wasm for every elementwise kernel and reduction) or all (native for every one it can compile: for measurements)');
}
/** HEED_NATIVE_ELEMENTWISE=all: also the kernels wasm runs with SIMD code (measurements) */
let ewAll = false;
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
  let epiTerms = epilogueTerms(re.epilogue);
  let fn: EpilogueFn | undefined;
  if (!epiTerms) {
    if (!epilogueSupported) return 'epilogue (the addon has no epilogue(); rebuild it with npm run build:native)';
    const c = compileEpilogue(re.epilogue);
    if (typeof c === 'string') return c;
    [fn, epiTerms] = [c, []];
  }
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
    ...(fn ? { fn } : {}),
  };
}

/** A standalone elementwise kernel (no reduction): its AluExp compiled to one register program, run by the
 * addon's `epilogue()` over the worker's [begin, end) slice of the output (no acc: the program writes it). */
export interface ElementwisePlan {
  kind: 'elementwise';
  addon: string;
  fn: EpilogueFn;
}
/** A reduction that is not a matrix product (softmax's max and sum, RMSNorm's mean of squares and its gradient
 * sums, logsumexp, Σg²): the body (over gidx, ridx) reduced over ridx by the addon's `reduce()` for each output
 * of the slice, in ridx order, then the epilogue (if any) by `epilogue()` over the same slice. */
export interface ReducePlan {
  kind: 'reduce';
  addon: string;
  body: EpilogueFn;
  size: number;
  /** 0 Add, 1 Max, 2 Min */
  op: number;
  epi?: EpilogueFn;
}
export type KernelPlan = GemmPlan | ElementwisePlan | ReducePlan;
const REDUCE_OPS: Record<string, number> = { Add: 0, Max: 1, Min: 2 };

/** jax-js 0.1.25's wasm backend (isSimdEligible): the float32 / int32 / bool operations it has SIMD code for */
const WASM_SIMD: Record<string, Set<string>> = {
  float32: new Set(['Add', 'Sub', 'Mul', 'Floor', 'Ceil', 'Min', 'Max', 'Sqrt', 'Cast', 'Where', 'Const', 'GlobalIndex']),
  int32: new Set(['Add', 'Sub', 'Mul', 'Min', 'Max', 'Cast', 'Where', 'Const', 'GlobalIndex']),
  uint32: new Set(['Add', 'Sub', 'Mul', 'Min', 'Max', 'Cast', 'Where', 'Const', 'GlobalIndex']),
  bool: new Set(['Add', 'Mul', 'Min', 'Max', 'Cmplt', 'Cmpne', 'Const', 'GlobalIndex']),
};
/**
 * Whether jax-js's wasm backend runs this kernel with SIMD code (its isSimdEligible, outside the index arithmetic):
 * then its 4-lane loop with the loads in registers beats the addon's register programs (measured per kernel: plain copies,
 * sums of squares and maxima ran 2.8-25x slower natively; bench/ew-kernel-ab.ts), so the route leaves it there. Exp, Log, Reciprocal, the
 * trigonometric functions, float division and comparisons of floats have no SIMD variant in wasm and run one element
 * at a time with a call per exp: those kernels (softmax's exp-sums, logsumexp, SiLU and its gradient, the divisions)
 * are the ones that pay natively (3-4x).
 */
function wasmSimd(k: KernelLike): boolean {
  if (k.size < 4) return false;
  if (k.reduction && !WASM_SIMD[k.reduction.dtype]?.has(k.reduction.op)) return false;
  const seen = new Set<Alu>();
  const ok = (e: Alu): boolean => {
    if (seen.has(e)) return true;
    seen.add(e);
    if (e.op === 'GlobalView' || e.op === 'GlobalIndex' || e.op === 'Variable' || e.op === 'Special') return true; // loads and indices: not checked by wasm either
    if (!WASM_SIMD[e.dtype]?.has(e.op)) return false;
    return e.src.every(ok);
  };
  return ok(k.exp);
}

/** A jax-js Special (the bounded gidx / ridx its backends substitute before simplifying), built with the IR's own class. */
function special(like: Alu, name: string, n: number): Alu {
  const C = like.constructor as new (op: string, dtype: string, src: Alu[], arg: unknown) => Alu;
  return new C('Special', 'int32', [], [name, n]);
}
type Substitutable = Alu & { substitute(v: Record<string, Alu>): Alu; rewrite(f: (x: Alu) => Alu | undefined): Alu };

/**
 * Loads of plain views (one view, no mask) indexed by the output position (the unravel of gidx over the view's
 * shape; in a reduction body the last axis is ridx) as one flat index with the view's axes merged where they are
 * one axis in disguise and stride-0 (broadcast) axes dropped: a contiguous [4,4,2,256,256] view becomes `gidx`, a row
 * broadcast `gidx / 256`, instead of jax-js's per-axis `((gidx / 524288) % 4) * 524288 + …` (5 divisions and 5
 * remainders a load). Same index, same clamp (the view's data range); other loads are left to rewriteGlobalViews.
 */
function lowerViews(exp: Alu, chunk: Pick<Chunk, 'b' | 'E' | 'U'>, body: boolean): { exp: Alu; lowered: number } {
  const C = exp.constructor as new (op: string, dtype: string, src: Alu[], arg?: unknown) => Alu;
  const i32 = (v: number) => new C('Const', 'int32', [], v);
  const bin = (op: string, a: Alu, b: Alu) => new C(op, 'int32', [a, b]);
  const expected = new Map<string, Alu[]>();
  let lowered = 0;
  const out = (exp as Substitutable).rewrite((x) => {
    if (x.op !== 'GlobalView') return undefined;
    const [gid, st] = x.arg as [number, { views?: (ViewLike & { dataRange?: () => [number, number] })[] }];
    if (!Array.isArray(st?.views) || st.views.length !== 1) return undefined;
    const v = st.views[0];
    if (v.mask !== null || typeof v.dataRange !== 'function' || !Number.isInteger(v.offset) || v.strides.some((z) => !Number.isInteger(z))) return undefined;
    const nd = v.shape.length;
    if (body && nd < 1) return undefined;
    const outShape = body ? v.shape.slice(0, -1) : v.shape;
    const key = outShape.join(',');
    let want = expected.get(key);
    if (!want) {
      want = [...chunk.b(outShape, chunk.E.gidx), ...(body ? [chunk.E.ridx] : [])].map((e) => (e as unknown as { simplify(): Alu }).simplify());
      expected.set(key, want);
    }
    if (!chunk.U(x.src, want)) return undefined;
    const [, len] = v.dataRange();
    if (!Number.isInteger(len) || len < 1 || len > 2 ** 31 - 1) return undefined;
    // the output axes (over gidx), innermost last, merged; then the index
    const axes: { n: number; s: number }[] = [];
    for (let i = 0; i < outShape.length; i++) {
      const n = outShape[i], s = v.strides[i];
      if (n === 1) continue;
      const prev = axes[axes.length - 1];
      if (prev && prev.s === s * n) {
        prev.n *= n;
        prev.s = s;
      } else axes.push({ n, s });
    }
    let idx: Alu | null = v.offset !== 0 ? i32(v.offset) : null;
    const add = (t: Alu) => (idx = idx ? bin('Add', idx, t) : t);
    let P = 1;
    for (let j = axes.length - 1; j >= 0; j--) {
      const { n, s } = axes[j];
      if (s !== 0) {
        let t: Alu = chunk.E.gidx;
        if (P !== 1) t = bin('Idiv', t, i32(P));
        if (j > 0) t = bin('Mod', t, i32(n));
        if (s !== 1) t = bin('Mul', t, i32(s));
        add(t);
      }
      P *= n;
      if (P > 2 ** 31 - 1) return undefined;
    }
    if (body && v.shape[nd - 1] !== 1 && v.strides[nd - 1] !== 0) add(v.strides[nd - 1] === 1 ? chunk.E.ridx : bin('Mul', chunk.E.ridx, i32(v.strides[nd - 1])));
    lowered++;
    return new C('GlobalIndex', x.dtype, [idx ?? i32(0)], [gid, len]);
  });
  return { exp: out, lowered };
}

/**
 * Classify a kernel that is not a matrix product for the addon: an elementwise plan (no reduction), a reduction
 * plan (Add / Max / Min over the last axis of a float32 body), a reason it stays in wasm, or null (nothing the
 * route takes: a kernel with several outputs is refused at dispatch). The expressions are those jax-js's wasm
 * backend compiles (gidx / ridx substituted by bounded Specials, global views rewritten, simplified).
 */
export function planOther(k: KernelLike, addon: string, opts: { reduce?: boolean; chunk?: Pick<Chunk, 'b' | 'E' | 'U'>; all?: boolean } = {}): ElementwisePlan | ReducePlan | string {
  const lower = (e: Alu, body: boolean) => (opts.chunk ? lowerViews(e, opts.chunk, body).exp : e);
  if (!opts.all && wasmSimd(k)) return 'wasm SIMD (faster there)';
  const re = k.reduction;
  if (!Number.isInteger(k.size) || k.size < 1 || k.size > 2 ** 31 - 1) return 'size';
  if (!re) {
    if (k.exp.dtype !== 'float32') return `output dtype ${k.exp.dtype}`;
    const fn = compileProgram((lower(k.exp, false) as Substitutable).substitute({ gidx: special(k.exp, 'gidx', k.size) }), 'elementwise');
    return typeof fn === 'string' ? fn : { kind: 'elementwise', addon, fn };
  }
  if (opts.reduce === false) return 'reductions off';
  if (REDUCE_OPS[re.op] === undefined) return `reduction op ${re.op}`;
  if (re.dtype !== 'float32' || k.exp.dtype !== 'float32' || re.epilogue.dtype !== 'float32') return 'reduction dtype';
  if (!Number.isInteger(re.size) || re.size < 1 || re.size > 2 ** 31 - 1) return 'size';
  const body = compileProgram((lower(k.exp, true) as Substitutable).substitute({ gidx: special(k.exp, 'gidx', k.size), ridx: special(k.exp, 'ridx', re.size) }), 'body');
  if (typeof body === 'string') return body;
  let epi: EpilogueFn | undefined;
  if (!isAcc(re.epilogue)) {
    const c = compileProgram((lower(re.epilogue, false) as Substitutable).substitute({ gidx: special(re.epilogue, 'gidx', k.size) }), 'epilogue');
    if (typeof c === 'string') return c;
    epi = c;
  }
  return { kind: 'reduce', addon, body, size: re.size, op: REDUCE_OPS[re.op], ...(epi ? { epi } : {}) };
}

function fellBack(reason: string): void {
  status.fallback[reason] = (status.fallback[reason] ?? 0) + 1;
}

type Engine = {
  jit: (f: (...a: never[]) => unknown) => (...a: unknown[]) => unknown;
  np: {
    matmul: (a: unknown, b: unknown) => unknown; exp: (a: unknown) => unknown; maximum: (a: unknown, b: unknown) => unknown; multiply: (a: unknown, b: unknown) => unknown;
    subtract: (a: unknown, b: unknown) => unknown; log: (a: unknown) => unknown; divide: (a: unknown, b: unknown) => unknown; sqrt: (a: unknown) => unknown; less: (a: unknown, b: unknown) => unknown; where: (c: unknown, a: unknown, b: unknown) => unknown;
    max: (a: unknown, axis: number, o: { keepdims: boolean }) => unknown; sum: (a: unknown, axis: number, o: { keepdims: boolean }) => unknown;
  };
  fromHost: (d: Float32Array, s: number[]) => { transpose: (p?: number[]) => unknown };
  toHost: (t: unknown) => Promise<Float32Array>;
};

/**
 * Start the route (called by initEngine on device wasm in Node, after jax.init). Never throws: on any problem the
 * route stays off, `nativeStatus().reason` says why, and at most one line is printed.
 */
export async function startNative(threads: number, engine: Engine): Promise<NativeStatus> {
  const ewWanted = elementwiseSwitch(); // the one throw: a bad HEED_NATIVE_ELEMENTWISE value is refused
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
  epilogueSupported = typeof (addon as { epilogue?: unknown }).epilogue === 'function';
  ewEnabled = ewSupported = ewWanted !== false && epilogueSupported;
  ewAll = ewWanted === 'all';
  reduceEnabled = reduceSupported = ewEnabled && typeof (addon as { reduce?: unknown }).reduce === 'function';
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
    if (routing && hash !== undefined && e.source instanceof chunk.O && !inlineOk.has(hash)) {
      // small kernels (≤ HEED_INLINE_WORK outputs × reduction length) run on the main thread, not in a worker
      const src = e.source as KernelLike;
      inlineOk.set(hash, INLINE_WORK > 0 && src.size * (src.reduction?.size ?? 1) <= INLINE_WORK);
    }
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
      const src = e.source as KernelLike;
      const work = debug ? src.size * (src.reduction?.size ?? 0) : 0;
      // not a product (or a product whose operands are computed, e.g. RMSNorm's gradient sums): the elementwise /
      // reduction route, when on
      let other: ElementwisePlan | ReducePlan | string | undefined;
      if (ewEnabled && (plan === null || plan === 'operands not two plain views')) {
        other = otherPlans.get(hash);
        if (other === undefined) {
          try {
            other = outputs.length !== 1 ? 'outputs' : planOther(src, ADDON_PATH, { reduce: reduceEnabled, chunk, all: ewAll });
          } catch (err) {
            other = `recogniser error: ${(err as Error).message}`;
          }
          otherPlans.set(hash, other);
        }
        const bucket = src.reduction ? status.reductions : status.elementwise;
        if (typeof other === 'string') {
          bucket.fallback[other] = (bucket.fallback[other] ?? 0) + 1;
          if (debug) note(`${src.reduction ? 'reduction' : 'elementwise'}: ${other}`, src.size * (src.reduction?.size ?? 1), e.source);
          other = undefined;
        } else if (e.data?.sync) {
          bucket.fallback['synchronous dispatch'] = (bucket.fallback['synchronous dispatch'] ?? 0) + 1;
          other = undefined;
        } else if (!(inlineOk.get(hash) && !checking)) {
          bucket.claimed++;
          if (debug) note(`native ${other.kind}`, src.size * (src.reduction?.size ?? 1), e.source);
        }
      }
      if (other) {
        /* claimed by the elementwise / reduction route (or small: wasm on the main thread) */
      } else if (typeof plan === 'string') {
        fellBack(plan);
        if (debug) note(plan, work, e.source);
      }
      else if (plan) {
        if (e.data?.sync || outputs.length !== 1) {
          fellBack(e.data?.sync ? 'synchronous dispatch' : 'outputs');
        } else {
          const g = plan as GemmPlan;
          status.claimed++;
          claimedWork += work;
          const kind = g.fn ? `elementwise (${g.fn.ops.join(' ')})` : g.epi.length ? 'views added / scaled' : 'none';
          status.epilogues[kind] = (status.epilogues[kind] ?? 0) + 1;
        }
      }
    }
    return dispatch(exe, inputs, outputs);
  };
  setKernelRoute((hash) => {
    if (!routing) return undefined;
    const p = plans.get(hash);
    if (p && typeof p === 'object') return p;
    const o = ewEnabled ? otherPlans.get(hash) : undefined;
    if (o && typeof o === 'object' && !(inlineOk.get(hash) && !checking)) return o;
    return inlineOk.get(hash) ? 'inline' : undefined;
  });
  // self-check: the same jitted products with the route off (wasm) and on (native), compared
  try {
    let bad = await selfCheck(engine);
    if (bad.startsWith('elementwise: ')) {
      // the products passed: keep them, and the elementwise kernels and reductions in wasm
      console.error(`heed: native elementwise kernels off: the start-up self-check failed (${bad.slice(13)}); products stay native`);
      ewSupported = false;
      setNativeElementwise(false);
      bad = '';
    }
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
  status.epilogues = {};
  status.elementwise.enabled = ewEnabled;
  status.elementwise.claimed = 0;
  status.elementwise.fallback = {};
  status.reductions.enabled = reduceEnabled;
  status.reductions.claimed = 0;
  status.reductions.fallback = {};
  ewMsAtStart = nativeEwMs();
  gemmMsAtStart = nativeGemmMs();
  inlinedAtStart = inlinedKernels();
  if (debug) {
    process.on('exit', () => {
      const fb = Object.entries(status.fallback).map(([r, n]) => `${r} ${n}`).join(', ');
      console.error(`heed: native GEMM (${status.isa}): ${status.claimed} matmul kernels native, ${Object.values(status.fallback).reduce((a, b) => a + b, 0)} wasm${fb ? ` (${fb})` : ''}`);
      const G = (w: number) => `${(w / 1e9).toFixed(3)} G multiply-adds`;
      console.error(`heed:   native: ${G(claimedWork)}; by epilogue: ${Object.entries(status.epilogues).map(([k, n]) => `${k} ${n}`).join(', ')}; small wasm kernel messages run on the main thread: ${status.inlined}`);
      const fbs = (r: Record<string, number>) => Object.entries(r).map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
      console.error(`heed:   elementwise kernels: ${status.elementwise.enabled ? `${status.elementwise.claimed} native (${status.elementwise.ms.toFixed(0)} ms in the workers with the reductions), wasm: ${fbs(status.elementwise.fallback)}` : 'off'}; reductions: ${status.reductions.enabled ? `${status.reductions.claimed} native, wasm: ${fbs(status.reductions.fallback)}` : 'off'}`);
      for (const [r, x] of [...examples].sort((a, b) => b[1].work - a[1].work)) console.error(`heed:   ${r.startsWith('native ') ? r : `wasm (${r})`}: ${x.n} dispatches, ${G(x.work)}${r.includes(': ') || r.startsWith('native ') ? ' (elements × reduction length)' : ''}; largest: ${x.kernel}`);
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
  type T = { transpose: (p?: number[]) => unknown; ref: T };
  const cases: [string, () => unknown][] = [
    ['x·Wᵀ', () => jit((a: T, b: T) => np.matmul(a, b.transpose()) as never)(fromHost(x, [M, K]), fromHost(w, [N, K]))],
    ['dY·W', () => jit((a: T, b: T) => np.matmul(a, b) as never)(fromHost(dy, [M, N]), fromHost(w, [N, K]))],
    ['dYᵀ·X', () => jit((a: T, b: T) => np.matmul(a.transpose(), b) as never)(fromHost(dy, [M, N]), fromHost(x, [M, K]))],
    ['batched Q·Kᵀ', () => jit((a: T, b: T) => np.matmul(a, b.transpose([0, 2, 1])) as never)(fromHost(q, [Bt, M, K]), fromHost(kk, [Bt, N, K]))],
    // an elementwise epilogue (compiled for the addon's epilogue()): exp(G) · max(x·Wᵀ, 0)
    ['exp(G)·max(x·Wᵀ, 0)', () => jit((a: T, b: T, g: T) => np.multiply(np.exp(g), np.maximum(np.matmul(a, b.transpose()), 0)) as never)(fromHost(x, [M, K]), fromHost(w, [N, K]), fromHost(dy, [M, N]))],
  ];
  // the elementwise / reduction route: a masked softmax over rows of 300 (a max, the exp, its sum, the division,
  // a where over a broadcast mask) and a logsumexp (the exp-sum in one reduction, then a log), the workers running
  // them (no main-thread shortcut while checking); the route's counts must move
  const R = 64, C = 300;
  const big = rand(R * C, 6).map((v) => v * 8), mask = rand(C, 7);
  const nCore = cases.length;
  if (ewEnabled) {
    cases.push(
      ['masked softmax', () => jit((a: T, m: T) => {
        const z = np.where(np.less(m, 0.3), a, -1e9) as T;
        const e = np.exp(np.subtract(z.ref, np.max(z, -1, { keepdims: true }))) as T;
        return np.divide(e.ref, np.sum(e, -1, { keepdims: true })) as never;
      })(fromHost(big, [R, C]), fromHost(mask, [C]))],
      ['logsumexp', () => jit((a: T) => np.log(np.sum(np.exp(np.subtract(a.ref, np.max(a, -1, { keepdims: true }))), -1, { keepdims: true })) as never)(fromHost(big, [R, C]))],
    );
  }
  const wasm: Float32Array[] = [];
  routing = false;
  for (const [, f] of cases) wasm.push(await E.toHost(f()));
  routing = true;
  const before = status.claimed;
  const elementwise = () => Object.entries(status.epilogues).reduce((n, [k, v]) => n + (k.startsWith('elementwise') ? v : 0), 0);
  const epiBefore = elementwise();
  const ew0 = status.elementwise.claimed, red0 = status.reductions.claimed;
  checking = true;
  try {
  for (let c = 0; c < cases.length; c++) {
    const got = await toHost(cases[c][1]());
    const ref = wasm[c];
    if (got.length !== ref.length) return `${cases[c][0]}: ${got.length} values, wasm gave ${ref.length}`;
    for (let i = 0; i < ref.length; i++) {
      if (!(Math.abs(got[i] - ref[i]) <= 1e-4 * (1 + Math.abs(ref[i])))) return `${c >= nCore ? 'elementwise: ' : ''}${cases[c][0]}: element ${i} is ${got[i]}, wasm gave ${ref[i]}`;
    }
  }
  } finally {
    checking = false;
  }
  if (status.claimed - before < nCore) return `only ${status.claimed - before} of ${nCore} products were recognised`;
  if (ewEnabled && status.elementwise.claimed === ew0) return 'elementwise: no standalone elementwise kernel was recognised';
  if (reduceEnabled && status.reductions.claimed === red0) return 'elementwise: no reduction was recognised';
  if (epilogueSupported && elementwise() === epiBefore) return 'the elementwise epilogue exp(G)·max(acc, 0) was not recognised';
  return '';
}

/** For tests: a clear error when the route was required but is off. */
export function requireNative(): void {
  if (!status.active) throw new HeedError(`native GEMM kernels are off: ${status.reason}`, 'run npm run build:native (needs g++ and Node headers) and unset HEED_NATIVE');
}
