/**
 * Where a heed training step's time goes (bench:train --profile; issue 17 item 3). An opt-in timing hook for the
 * bench child only: it changes nothing in src/ (no edit of src/engine/native.ts or node-workers.ts) and wraps, from
 * the outside, three things the engine already exposes:
 *
 * 1. the Web Worker class (installed by src/engine/node-workers.ts before jax-js starts its pool): a subclass that
 *    timestamps every kernel message posted to a worker and its `done` reply on the main thread, and prefixes
 *    jax-js's worker source with a few lines that time each wasm kernel inside the worker (the native GEMM route's
 *    replies already carry `heedGemmMs`);
 * 2. jax-js's wasm backend `dispatch` (outermost, around the native route's wrapper): each kernel hash is
 *    classified once from its exported Kernel structure with src/engine/native.ts `planKernel` — a matrix product
 *    (multiply-reduce that the native route takes, or one it leaves to wasm, with the reason), another reduction
 *    (softmax max/sum, norm sums, the loss, Σg²), elementwise work — and kernels dispatched synchronously on the
 *    main thread are timed there;
 * 3. `DeviceRun.prototype.step` (src/train/train-step.ts): the AdamW phase is the call of the run's compiled
 *    per-tensor update, so every kernel posted inside it counts as AdamW. With the host executor (the default in
 *    Node: host-optimizer.ts) there is no such update and no AdamW kernel: its loop is host time between kernels.
 * Every kernel reply carries its slice's compute time (`heedKernelMs`, on the thread that ran it: a worker, or the
 * main thread for HEED_INLINE_WORK kernels and for worker 0's share on HEED_KERNEL_CHANNEL main / shared).
 *
 * jax-js's pool runs one kernel at a time (each on up to `threads` workers, the next one after every worker has
 * answered), so a step's wall time splits exactly into kernel time (first post → last reply of each kernel) and
 * host time between kernels (tracing, jit dispatch, awaiting results, the trainer's own work). Kernel time splits
 * into the workers' compute (the slowest worker of each kernel) and messaging (the rest: postMessage, structured
 * clone, wake-up, the reply). Cost of the hook: two performance.now() calls and a few map operations per message.
 */
import { resolveObjectURL } from 'node:buffer';

type Kind = 'native GEMM' | 'wasm multiply-reduce' | 'other reduction' | 'elementwise' | 'routine';
type Phase = 'gradients' | 'AdamW' | 'outside step';

interface Rec {
  worker: number;
  hash?: string;
  group: number;
  phase: Phase;
  tPost: number;
  tDone: number;
  workerMs?: number;
  native: boolean;
  /** run by the native elementwise / reduction route (its reply carries `heedEwMs`) */
  ew?: boolean;
}

/** prefix of jax-js's worker source: time each message's handler and put the time on its `done` reply */
const PREFIX = `
(() => {
  let t0 = -1, handler = null;
  const post = globalThis.postMessage;
  globalThis.postMessage = (m) => {
    if (m && m.type === 'done' && t0 >= 0 && m.heedGemmMs === undefined && m.heedEwMs === undefined) m.heedProfMs = performance.now() - t0;
    t0 = -1;
    post(m);
  };
  Object.defineProperty(globalThis, 'onmessage', {
    configurable: true,
    get: () => handler,
    set: (f) => { handler = typeof f === 'function' ? (e) => { t0 = performance.now(); return f(e); } : f; },
  });
})();
`;

const recs: Rec[] = [];
const syncMs: { t: number; ms: number; kind: Kind }[] = [];
const kinds = new Map<string, { kind: Kind; reason?: string }>();
let recording = false;
let phase: Phase = 'outside step';
let group = 0;
let lastPtrs: unknown;

/** Call before initEngine: installs the worker polyfill (same thread count) and the timing subclass. */
export async function installProfiler(threads: number): Promise<void> {
  const { installNodeWorkers } = await import('../src/engine/node-workers.js');
  installNodeWorkers(threads);
  const g = globalThis as unknown as { Worker?: new (url: string | URL, o?: unknown) => { postMessage(m: unknown): void; onmessage: ((e: { data: unknown }) => void) | null } };
  const Base = g.Worker;
  if (!Base) throw new Error('kernel profile: no Worker polyfill (HEED_THREADS=1 runs kernels on the main thread: profile with 2+ threads)');
  let nextId = 0;
  class ProfWorker extends Base {
    private readonly id = nextId++;
    private current: (Omit<Rec, 'tDone' | 'native'> & { postMs?: number }) | undefined;
    constructor(url: string | URL, o?: unknown) {
      const blob = resolveObjectURL(String(url));
      super(blob ? URL.createObjectURL(new Blob([PREFIX, blob as unknown as BlobPart])) : url, o);
      let handler: ((e: { data: unknown }) => void) | null = null;
      const wrapped = (e: { data: unknown }) => {
        const c = this.current;
        if (c && recording) {
          const d = e.data as { heedGemmMs?: number; heedEwMs?: number; heedProfMs?: number; heedKernelMs?: number };
          // every kernel reply of the polyfill carries its compute time (heedKernelMs: the slice on whichever thread
          // ran it — a worker, or the main thread for HEED_INLINE_WORK kernels and worker 0's share on the main and
          // shared channels); routines are timed by the prefix; without either, the time postMessage took
          const { postMs, ...rec } = c;
          recs.push({ ...rec, tDone: performance.now(), workerMs: d.heedKernelMs ?? d.heedGemmMs ?? d.heedEwMs ?? d.heedProfMs ?? postMs, native: d.heedGemmMs !== undefined, ew: d.heedEwMs !== undefined });
        }
        this.current = undefined;
        handler?.(e);
      };
      Object.defineProperty(this, 'onmessage', { configurable: true, get: () => (handler ? wrapped : null), set: (f) => (handler = f) });
    }
    override postMessage(m: unknown): void {
      const k = m as { type?: string; kernelHash?: string; ptrs?: unknown };
      if (k?.type === 'kernel' || k?.type === 'routine') {
        // jax-js posts one kernel to each worker with the same ptrs array: consecutive posts sharing it are one kernel
        if (!(k.ptrs !== undefined && k.ptrs === lastPtrs)) group++;
        lastPtrs = k.ptrs;
        this.current = { worker: this.id, hash: k.kernelHash, group, phase, tPost: performance.now() };
      }
      const t = performance.now();
      super.postMessage(m);
      if (this.current) this.current.postMs = performance.now() - t;
    }
  }
  g.Worker = ProfWorker;
}

/** Call after initEngine: classify kernels at dispatch and mark the AdamW phase of DeviceRun.step. */
export async function attachProfiler(): Promise<void> {
  const { planKernel } = await import('../src/engine/native.js');
  const url = new URL('backend-CnjgxpXq.js', import.meta.resolve('@jax-js/jax'));
  const chunk = (await import(url.href)) as { s: (d: string) => { dispatch: (exe: unknown, i: number[], o: number[]) => void }; O: new (...a: never[]) => unknown } & Parameters<typeof planKernel>[1];
  const backend = chunk.s('wasm');
  const dispatch = backend.dispatch.bind(backend);
  const classify = (src: unknown): { kind: Kind; reason?: string } => {
    if (!(src instanceof chunk.O)) return { kind: 'routine' };
    const k = src as unknown as { reduction?: unknown };
    let plan: ReturnType<typeof planKernel>;
    try {
      plan = planKernel(src as never, chunk, '');
    } catch (e) {
      plan = `recogniser error: ${(e as Error).message}`;
    }
    if (plan && typeof plan === 'object') return { kind: 'wasm multiply-reduce', reason: 'a GEMM plan, but run in wasm' }; // replaced by 'native GEMM' when the reply says so
    if (typeof plan === 'string') return { kind: 'wasm multiply-reduce', reason: plan };
    return { kind: k.reduction ? 'other reduction' : 'elementwise' };
  };
  backend.dispatch = (exe, inputs, outputs) => {
    const e = exe as { source?: unknown; data?: { sync?: boolean; program?: { kernelHash?: string } } };
    const hash = e.data?.program?.kernelHash;
    let c = hash !== undefined ? kinds.get(hash) : undefined;
    if (!c) {
      c = classify(e.source);
      if (hash !== undefined) kinds.set(hash, c);
    }
    if (e.data?.sync && recording) {
      const t0 = performance.now();
      dispatch(exe, inputs, outputs);
      syncMs.push({ t: t0, ms: performance.now() - t0, kind: c.kind });
      return;
    }
    dispatch(exe, inputs, outputs);
  };
  const { DeviceRun } = await import('../src/train/train-step.js');
  type Self = { fns?: { upd?: { update: (...a: unknown[]) => Promise<unknown>; __prof?: boolean } } };
  const proto = DeviceRun.prototype as unknown as { step: (this: Self, s: unknown) => Promise<unknown> };
  const step = proto.step;
  proto.step = async function (this: Self, s: unknown) {
    const upd = this.fns?.upd;
    if (upd && !upd.__prof) {
      const u = upd.update.bind(upd);
      upd.update = async (...a: unknown[]) => {
        phase = 'AdamW';
        try {
          return await u(...a);
        } finally {
          phase = 'gradients';
        }
      };
      upd.__prof = true;
    }
    phase = 'gradients';
    try {
      return await step.call(this, s);
    } finally {
      phase = 'outside step';
    }
  };
  recording = true;
}

export interface Bucket {
  kernels: number;
  /** slowest worker's compute per kernel, summed */
  computeMs: number;
  /** first post → last reply per kernel, summed (compute + messaging) */
  wallMs: number;
}

export interface StepProfile {
  wallMs: number;
  kernels: number;
  /** by bucket: native GEMM, wasm multiply-reduce (by reason), other reductions, elementwise, AdamW (all its kernels), routines */
  buckets: Record<string, Bucket>;
  /** Σ kernel wall − Σ compute: postMessage, structured clone, worker wake-up, the replies */
  messagingMs: number;
  /** kernels run synchronously on the main thread */
  mainThreadKernelMs: number;
  /** step wall − kernel wall − main-thread kernels: host-side time with no kernel in flight */
  hostMs: number;
  /** wasm multiply-reduce kernels by reason */
  wasmMatmulReasons: Record<string, number>;
}

/** The profile of the window [t0, t1) (e.g. between two step callbacks). */
export function profileWindow(t0: number, t1: number): StepProfile {
  const groups = new Map<number, Rec[]>();
  for (const r of recs) if (r.tPost >= t0 && r.tDone <= t1) (groups.get(r.group) ?? groups.set(r.group, []).get(r.group)!).push(r);
  const buckets: Record<string, Bucket> = {};
  const reasons: Record<string, number> = {};
  let kernelWall = 0;
  let compute = 0;
  for (const rs of groups.values()) {
    const start = Math.min(...rs.map((r) => r.tPost));
    const end = Math.max(...rs.map((r) => r.tDone));
    const cms = Math.max(0, ...rs.map((r) => r.workerMs ?? 0));
    const c = rs[0].hash !== undefined ? kinds.get(rs[0].hash) : undefined;
    let kind: string = rs.some((r) => r.native) ? 'native GEMM' : rs.some((r) => r.ew) ? (c?.kind === 'elementwise' ? 'native elementwise' : 'native reduction') : (c?.kind ?? 'routine');
    if (kind === 'wasm multiply-reduce') reasons[c?.reason ?? '?'] = (reasons[c?.reason ?? '?'] ?? 0) + 1;
    if (rs[0].phase === 'AdamW') kind = `AdamW (${kind})`;
    const b = (buckets[kind] ??= { kernels: 0, computeMs: 0, wallMs: 0 });
    b.kernels++;
    b.computeMs += cms;
    b.wallMs += end - start;
    kernelWall += end - start;
    compute += cms;
  }
  const main = syncMs.filter((s) => s.t >= t0 && s.t < t1).reduce((a, s) => a + s.ms, 0);
  const wall = t1 - t0;
  return { wallMs: wall, kernels: groups.size, buckets, messagingMs: kernelWall - compute, mainThreadKernelMs: main, hostMs: wall - kernelWall - main, wasmMatmulReasons: reasons };
}

/** the profile of the step whose wall time is the median (the lower middle of an even count): its rows add up */
export function medianProfile(ps: StepProfile[]): StepProfile {
  const s = [...ps].sort((a, b) => a.wallMs - b.wallMs);
  return s[Math.floor((s.length - 1) / 2)];
}

/** the header of profileRows' table */
export const PROFILE_HEAD = ['what', 'kernels', 'compute ms', 'messaging ms', 'wall ms', 'share of the step (wall)'];

/** rows for a Markdown table: per bucket its kernels, compute, messaging (its kernels' wall − compute) and wall */
export function profileRows(p: StepProfile): string[][] {
  const pct = (ms: number) => `${((100 * ms) / p.wallMs).toFixed(1)}%`;
  const f = (ms: number) => ms.toFixed(0);
  const order = Object.entries(p.buckets).sort((a, b) => b[1].wallMs - a[1].wallMs);
  const compute = order.reduce((a, [, b]) => a + b.computeMs, 0);
  return [
    ...order.map(([n, b]) => [n, String(Math.round(b.kernels)), f(b.computeMs), f(b.wallMs - b.computeMs), f(b.wallMs), pct(b.wallMs)]),
    ['all kernels', String(Math.round(p.kernels)), f(compute), f(p.messagingMs), f(compute + p.messagingMs), pct(compute + p.messagingMs)],
    ['kernels on the main thread (synchronous dispatch)', '', '', '', f(p.mainThreadKernelMs), pct(p.mainThreadKernelMs)],
    ['host between kernels (tracing, jit dispatch, awaits, trainer)', '', '', '', f(p.hostMs), pct(p.hostMs)],
    ['step (wall, between step callbacks)', '', '', '', f(p.wallMs), '100%'],
  ];
}
