/**
 * Web Worker polyfill over node:worker_threads so that jax-js starts its wasm thread pool in Node
 * (jax-js only does so when a global `Worker` exists). jax-js creates each worker from a blob: URL holding a
 * classic script that uses `self.onmessage` / `postMessage`; we resolve the blob with node:buffer's
 * resolveObjectURL, boot a worker_threads Worker that defines `self`/`postMessage`, send it the source, and
 * queue messages until the source has run. Installed only in Node and only when no Worker exists.
 *
 * The kernel channel (HEED_KERNEL_CHANNEL, bench/README.md "The kernel channel"): jax-js dispatches one kernel at a
 * time, posting `{type: 'kernel', kernelHash, module, ptrs, begin, end}` to each of its workers (worker i gets the
 * i-th slice [begin, end) of the outputs) and awaiting every `done` reply before the next kernel.
 * - `message` (jax-js's own way): every slice goes to its worker by postMessage, the reply comes back through the
 *   main event loop; the main thread idles meanwhile.
 * - `main` (the default): the main thread runs worker 0's slice itself (in a microtask, after jax-js has posted the other slices),
 *   and answers for worker 0 as the worker would; the other slices go by postMessage.
 * - `mailbox`: every slice goes through a per-worker SharedArrayBuffer mailbox (below); the main thread only waits.
 * - `shared`: as `main`, and the other slices go through a per-worker SharedArrayBuffer mailbox
 *   (kernel id, ptrs, begin, end; the kernel's module and native plan travel once per worker by postMessage, read by
 *   the worker with receiveMessageOnPort); the worker waits for jobs in Atomics.wait, the main thread waits for its
 *   done flag with Atomics.wait after its own slice (then, for a long kernel, with Atomics.waitAsync, so the event
 *   loop runs and a worker that exits is an error, not a hang). Routines (`type: 'routine'`) and every other
 *   message stay on postMessage. On `main` and `shared` a kernel whose slice ran longer than MAIN_SHARE_MAX_MS goes
 *   whole to the workers from then on (a busy main thread competes for a core with the worker it just woke).
 * The kernels and slices are the same on every channel, so the results are bit-identical (test/kernel-channel.test.ts).
 * What runs one kernel message (the native GEMM plan when there is one, else the wasm kernel) is ONE function,
 * heedRun in RUN_SOURCE, evaluated in the workers and on the main thread.
 */
import { Worker as NodeWorker } from 'node:worker_threads';
import { resolveObjectURL } from 'node:buffer';
import { HeedError } from '../errors.js';

/**
 * The execution of one kernel message, as source text evaluated in every worker (BOOT) and on the main thread.
 * heedRun(m, st) runs `m` ({kernelHash, module, ptrs, begin, end, heedGemm?}) for its slice: with a heedGemm plan
 * (src/engine/native.ts) the native addon on views of the shared wasm memory — the product, then the epilogue over
 * the same slice — else, or when the native path fails (one warning per thread), the wasm kernel. It returns
 * {ok: true, ms, gemm} (gemm: the native path ran) or {ok: false, error}. `st` is the thread's state: the wasm
 * memory, its kernel instances by hash, the addon (undefined = not loaded yet, null = unavailable), a row buffer,
 * the warned flag, a require function and the thread's name for the warning.
 */
const RUN_SOURCE = String.raw`
// native GEMM route (src/engine/native.ts): a kernel message with a heedGemm plan runs the addon on views of the
// shared wasm memory for outputs [begin, end) and answers as the wasm kernel would; any failure runs the wasm kernel
function heedGemm(m, st) {
  const p = m.heedGemm;
  if (st.addon === undefined) { if (!st.req) return false; try { st.addon = st.req(p.addon); } catch { st.addon = null; } }
  const heedAddon = st.addon;
  if (!heedAddon || !st.memory) return false;
  const buf = st.memory.buffer, ptrs = m.ptrs, M = p.M, N = p.N, K = p.K, MN = M * N;
  const view = (byte) => new Float32Array(buf, byte, (buf.byteLength - byte) >>> 2);
  const A0 = ptrs[p.a], B0 = ptrs[p.b], C0 = ptrs[ptrs.length - 1];
  if (st.row.length < N) st.row = new Float32Array(N);
  const heedRow = st.row;
  let i = m.begin;
  const end = m.end;
  while (i < end) {
    const bi = Math.floor(i / MN);
    let ao = p.aOff, bo = p.bOff, rem = bi;
    for (let d = p.batch.length - 1; d >= 0; d--) { const x = rem % p.batch[d]; rem = (rem - x) / p.batch[d]; ao += x * p.aB[d]; bo += x * p.bB[d]; }
    const base = bi * MN, stop = Math.min(end, base + MN) - base;
    let r = i - base;
    const Bv = view(B0 + 4 * bo);
    const aAt = (row) => view(A0 + 4 * (ao + (p.ta ? row : row * p.lda)));
    while (r < stop) {
      const row = Math.floor(r / N), col = r - row * N;
      if (col === 0 && stop - r >= N) {
        const rows = Math.floor((stop - r) / N);
        heedAddon.gemmLd(p.ta, p.tb, rows, N, K, aAt(row), p.lda, Bv, p.ldb, view(C0 + 4 * (base + r)), N, 1);
        r += rows * N;
      } else {
        const to = Math.min(N, stop - row * N);
        heedAddon.gemmLd(p.ta, p.tb, 1, N, K, aAt(row), p.lda, Bv, p.ldb, heedRow, N, 1);
        new Float32Array(buf, C0 + 4 * (base + r), to - col).set(heedRow.subarray(col, to));
        r = row * N + to;
      }
    }
    i = base + stop;
  }
  if (p.fn) {
    const offs = new Int32Array(p.fn.slots.length);
    for (let q = 0; q < offs.length; q++) offs[q] = ptrs[p.fn.slots[q]] >>> 2;
    heedAddon.epilogue(new Float32Array(buf), p.fn.code, p.fn.nregs, p.fn.out, C0 >>> 2, m.begin, end, offs);
  } else if (p.epi.length) {
    const C = new Float32Array(buf, C0, end), os = p.outShape, nd = os.length, last = os[nd - 1];
    for (const e of p.epi) {
      if (e.mul !== undefined) { for (let j = m.begin; j < end; j++) C[j] *= e.mul; continue; }
      const D = view(ptrs[e.gid]), st = e.strides, sl = st[nd - 1];
      let j = m.begin;
      while (j < end) {
        let rem = j, idx = e.off;
        for (let d = nd - 1; d >= 0; d--) { const x = rem % os[d]; rem = (rem - x) / os[d]; idx += x * st[d]; }
        const runEnd = Math.min(end, j - (j % last) + last);
        for (; j < runEnd; j++, idx += sl) C[j] += D[idx];
      }
    }
  }
  return true;
}
// elementwise / reduction route (native.ts planOther): a heedEw plan runs the addon's register programs over [begin, end)
function heedElementwise(m, st) {
  const p = m.heedEw;
  if (st.addon === undefined) { if (!st.req) return false; try { st.addon = st.req(p.addon); } catch { st.addon = null; } }
  const heedAddon = st.addon;
  if (!heedAddon || !st.memory) return false;
  const mem = new Float32Array(st.memory.buffer), ptrs = m.ptrs, C0 = ptrs[ptrs.length - 1] >>> 2;
  const offs = (fn) => { const o = new Int32Array(fn.slots.length); for (let q = 0; q < o.length; q++) o[q] = ptrs[fn.slots[q]] >>> 2; return o; };
  if (p.kind === 'reduce') {
    heedAddon.reduce(mem, p.body.code, p.body.nregs, p.body.out, C0, m.begin, m.end, offs(p.body), p.size, p.op);
    if (p.epi) heedAddon.epilogue(mem, p.epi.code, p.epi.nregs, p.epi.out, C0, m.begin, m.end, offs(p.epi));
  } else heedAddon.epilogue(mem, p.fn.code, p.fn.nregs, p.fn.out, C0, m.begin, m.end, offs(p.fn));
  return true;
}
function heedKernel(st, hash, module) {
  let f = st.kernels.get(hash);
  if (f !== undefined) {
    st.kernels.delete(hash);
    st.kernels.set(hash, f);
    return f;
  }
  f = new WebAssembly.Instance(module, { env: { memory: st.memory } }).exports.kernel;
  st.kernels.set(hash, f);
  if (st.kernels.size > 256) st.kernels.delete(st.kernels.keys().next().value);
  return f;
}
function heedRun(m, st) {
  const t0 = performance.now();
  if (m.heedGemm || m.heedEw) {
    try {
      if (m.heedGemm ? heedGemm(m, st) : heedElementwise(m, st)) return { ok: true, ms: performance.now() - t0, gemm: !!m.heedGemm, ew: !m.heedGemm };
    } catch (e) {
      if (!st.warned) { st.warned = true; console.error('heed: a native kernel failed in ' + st.where + ' (' + String(e) + '); running that kernel in wasm'); }
    }
  }
  try {
    const f = heedKernel(st, m.kernelHash, m.module);
    const t1 = performance.now(); // the kernel's time, without instantiating it
    f(...m.ptrs, m.begin, m.end);
    return { ok: true, ms: performance.now() - t1, gemm: false, ew: false };
  } catch (e) {
    return { ok: false, error: String(e) };
  }
}
`;

/** The mailbox (one SharedArrayBuffer per worker): Int32 words, the ptrs as Uint32 words, the compute time as a
 * Float64, an error text as bytes. SEQ: the main thread's job counter (the worker waits on it); DONE: the last job
 * the worker finished (the main thread waits on it); KIND: KERNEL (run ID over ptrs [BEGIN, END)), PORT (only read
 * the pending port messages: a routine was posted), LEAVE (back to the worker's event loop). OK: 0 error, 1 wasm,
 * 2 native. */
const MB = { SEQ: 0, KIND: 1, ID: 2, BEGIN: 3, END: 4, NPTRS: 5, DONE: 6, OK: 7, ERRLEN: 8, ZERO: 15, MS_F64: 8, PTRS: 32, MAX_PTRS: 64, ERR_BYTE: 512, BYTES: 2048 } as const;
const JOB = { KERNEL: 1, PORT: 2, LEAVE: 3 } as const;

const BOOT = `
const { parentPort, receiveMessageOnPort } = require('node:worker_threads');
globalThis.self = globalThis;
globalThis.postMessage = (m) => parentPort.postMessage(m);
let pending = [];
${RUN_SOURCE}
const heedSt = { memory: null, kernels: new Map(), addon: undefined, row: new Float32Array(0), warned: false, req: require, where: 'a worker' };
function heedReply(r) {
  postMessage(!r.ok ? { type: 'done', ok: false, error: r.error } : r.gemm ? { type: 'done', ok: true, heedKernelMs: r.ms, heedGemmMs: r.ms } : r.ew ? { type: 'done', ok: true, heedKernelMs: r.ms, heedEwMs: r.ms } : { type: 'done', ok: true, heedKernelMs: r.ms });
}
// the shared-memory mailbox (HEED_KERNEL_CHANNEL=shared): entered on a wake message, left on a LEAVE job
let ctl = null, ctlU = null, ctlF = null, ctlB = null, seen = 0, inLoop = false;
const defs = new Map();
function heedDrain() {
  for (let r; (r = receiveMessageOnPort(parentPort)) !== undefined; ) heedOnMessage(r.message);
}
function heedLoop() {
  if (inLoop || !ctl) return;
  inLoop = true;
  try {
    for (;;) {
      let s = Atomics.load(ctl, ${MB.SEQ});
      for (let i = 0; i < 2000 && s === seen; i++) s = Atomics.load(ctl, ${MB.SEQ});
      if (s === seen) { Atomics.wait(ctl, ${MB.SEQ}, seen, 10000); continue; }
      seen = s;
      heedDrain();
      const kind = ctl[${MB.KIND}];
      if (kind === ${JOB.KERNEL}) {
        const id = ctl[${MB.ID}];
        let d = defs.get(id);
        for (let t = 0; d === undefined && t < 5000; t++) { Atomics.wait(ctl, ${MB.ZERO}, 0, 1); heedDrain(); d = defs.get(id); }
        let r;
        if (d === undefined) r = { ok: false, error: 'heed: kernel ' + id + ' was never sent to this worker' };
        else {
          const n = ctl[${MB.NPTRS}], ptrs = new Array(n);
          for (let i = 0; i < n; i++) ptrs[i] = ctlU[${MB.PTRS} + i];
          r = heedRun({ type: 'kernel', kernelHash: d.kernelHash, module: d.module, heedGemm: d.heedGemm, heedEw: d.heedEw, ptrs, begin: ctl[${MB.BEGIN}], end: ctl[${MB.END}] }, heedSt);
        }
        ctl[${MB.OK}] = r.ok ? (r.gemm ? 2 : r.ew ? 3 : 1) : 0;
        ctlF[${MB.MS_F64}] = r.ok ? r.ms : 0;
        if (!r.ok) {
          const bytes = new TextEncoder().encode(String(r.error).slice(0, 500));
          ctlB.set(bytes, ${MB.ERR_BYTE});
          ctl[${MB.ERRLEN}] = bytes.length;
        }
      }
      Atomics.store(ctl, ${MB.DONE}, s);
      Atomics.notify(ctl, ${MB.DONE});
      if (kind === ${JOB.LEAVE}) return;
    }
  } finally {
    inLoop = false;
  }
}
function heedOnMessage(m) {
  if (m && m.__heedDef !== undefined) { defs.set(m.__heedDef, m); return; }
  if (m && m.__heedWake !== undefined) { heedLoop(); return; }
  if (m && m.type === 'init') heedSt.memory = m.memory;
  if (m && m.type === 'kernel') { heedReply(heedRun(m, heedSt)); return; }
  self.onmessage({ data: m });
}
parentPort.on('message', (m) => {
  if (pending) {
    if (m && m.__heedWorkerSource !== undefined) {
      const c = m.ctl;
      ctl = new Int32Array(c); ctlU = new Uint32Array(c); ctlF = new Float64Array(c); ctlB = new Uint8Array(c);
      (0, eval)(m.__heedWorkerSource);
      const q = pending; pending = null;
      for (const x of q) heedOnMessage(x);
    } else pending.push(m);
    return;
  }
  heedOnMessage(m);
});`;

/** The main thread's instance of heedRun (the same source as the workers'). */
type RunResult = { ok: true; ms: number; gemm: boolean; ew: boolean } | { ok: false; error: string };
type KernelMsg = { type: 'kernel'; kernelHash: string; module: WebAssembly.Module; ptrs: number[]; begin: number; end: number; heedGemm?: object; heedEw?: object };
/** where a native plan travels in a kernel message: a GEMM plan as heedGemm, an elementwise / reduction plan (it has a `kind`) as heedEw */
const planField = (plan: object): { heedGemm: object } | { heedEw: object } => ((plan as { kind?: string }).kind ? { heedEw: plan } : { heedGemm: plan });
let heedRunMain: ((m: KernelMsg, st: object) => RunResult) | undefined;
/** made on first use (Node only: the browser never reaches the polyfill) */
function heedRun(m: KernelMsg, st: object): RunResult {
  heedRunMain ??= new Function(`${RUN_SOURCE}\nreturn heedRun;`)() as (m: KernelMsg, st: object) => RunResult;
  return heedRunMain(m, st);
}

export type KernelChannel = 'message' | 'main' | 'mailbox' | 'shared';
export const KERNEL_CHANNELS: readonly KernelChannel[] = ['message', 'main', 'mailbox', 'shared'];
/** the default channel (bench/README.md "The kernel channel": the most consistent gain in the measurements there) */
export const DEFAULT_KERNEL_CHANNEL: KernelChannel = 'main';

/** HEED_KERNEL_CHANNEL, validated: a HeedError for any other value than message, main, shared (or unset). */
export function kernelChannelFromEnv(env: string | undefined = process.env.HEED_KERNEL_CHANNEL): KernelChannel {
  if (env === undefined || env === '') return DEFAULT_KERNEL_CHANNEL;
  if ((KERNEL_CHANNELS as readonly string[]).includes(env)) return env as KernelChannel;
  throw new HeedError(`HEED_KERNEL_CHANNEL must be one of ${KERNEL_CHANNELS.join(', ')}, got "${env}"`, `unset it (default ${DEFAULT_KERNEL_CHANNEL}) or set e.g. HEED_KERNEL_CHANNEL=message`);
}
// a bad value is refused by initEngine (src/engine/index.ts) with the error above; until then the default runs
let channel: KernelChannel = (() => {
  try {
    return kernelChannelFromEnv();
  } catch {
    return DEFAULT_KERNEL_CHANNEL;
  }
})();
/** The channel kernels go through (see the header). */
export function kernelChannel(): KernelChannel {
  return channel;
}
/** Change the channel (initEngine from HEED_KERNEL_CHANNEL; benchmarks and tests for A/B): from the next kernel on. */
export function setKernelChannel(c: KernelChannel): void {
  if (!KERNEL_CHANNELS.includes(c)) throw new HeedError(`unknown kernel channel "${String(c)}"`, `use one of ${KERNEL_CHANNELS.join(', ')}`);
  channel = c;
}

/** Set by src/engine/native.ts: a plan for a kernel hash (a GEMM plan; one with a `kind`, elementwise or reduce, runs
 * heedElementwise), 'inline' (a small wasm kernel: run it on this
 * thread, saving the round trip to a worker), or undefined (the wasm kernel runs in the worker). */
type KernelRoute = (kernelHash: string) => object | 'inline' | undefined;
let kernelRoute: KernelRoute | null = null;
let gemmMs = 0;
let ewMs = 0;
let inlined = 0;
/** the shared wasm memory (from jax-js's init message) and the main thread's heedRun state */
const mainSt = { memory: null as WebAssembly.Memory | null, kernels: new Map(), addon: undefined as unknown, row: new Float32Array(0), warned: false, req: undefined as ((id: string) => unknown) | undefined, where: 'the main thread' };
/** Kernel messages run on the main thread instead of a worker ('inline' routes) so far. */
export function inlinedKernels(): number {
  return inlined;
}
/** What went through the channels so far: kernel dispatches (jax-js's worker-0 messages), slices the main thread
 * ran as worker 0's share (channels main and shared) and of those natively, mailbox jobs, mailbox waits that went
 * past the blocking wait (long kernels), slices sent by postMessage. */
export const channelStats = { kernels: 0, mainShare: 0, mainShareNative: 0, mailbox: 0, mailboxAsync: 0, messages: 0 };
/** Milliseconds spent in native elementwise kernels and reductions so far (summed over the workers and the main thread). */
export function nativeEwMs(): number {
  return ewMs;
}
/** Milliseconds spent in native GEMM kernels so far (summed over the workers and the main thread). */
export function nativeGemmMs(): number {
  return gemmMs;
}
export function setKernelRoute(route: KernelRoute | null): void {
  kernelRoute = route;
}

type Reply = { type: 'done'; ok: boolean; error?: string; heedKernelMs?: number; heedGemmMs?: number; heedEwMs?: number };
const replyOf = (r: RunResult): Reply => (!r.ok ? { type: 'done', ok: false, error: r.error } : r.gemm ? { type: 'done', ok: true, heedKernelMs: r.ms, heedGemmMs: r.ms } : r.ew ? { type: 'done', ok: true, heedKernelMs: r.ms, heedEwMs: r.ms } : { type: 'done', ok: true, heedKernelMs: r.ms });

/**
 * The main thread takes worker 0's slice only of kernels whose slices are short: a kernel whose slice ran longer than
 * MAIN_SHARE_MAX_MS (on any thread) goes whole to the workers from then on (by hash). Measured on the loaded 2-core
 * machine (bench/kernel-overhead.ts): the main thread's share saves the round trip of small kernels (0.6× the time
 * per kernel at 64×256·256×256), but a main thread busy with a long slice competes with the worker it has just woken
 * for a core (1.6× the time at 256×512·512×512 under load), where the round trip is a small share anyway.
 */
let MAIN_SHARE_MAX_MS = 0.5;
const longKernels = new Set<string>();
/** consecutive long slices by hash: two in a row mark a kernel long (one slow slice may be a preemption) */
const longRuns = new Map<string, number>();
/** Benchmarks: the slice length (ms) above which a kernel runs only in the workers (Infinity: always share). */
export function setMainShareLimit(ms: number): void {
  MAIN_SHARE_MAX_MS = ms;
  longKernels.clear();
  longRuns.clear();
}
function noteSlice(hash: string, r: { ok: boolean; ms?: number }): void {
  if (!r.ok || r.ms === undefined || longKernels.has(hash)) return;
  if (r.ms <= MAIN_SHARE_MAX_MS) {
    longRuns.delete(hash);
    return;
  }
  const n = (longRuns.get(hash) ?? 0) + 1;
  if (n < 2) longRuns.set(hash, n);
  else if (longKernels.size < 100_000) {
    longKernels.add(hash);
    longRuns.delete(hash);
  }
}

/** the main thread's share of the kernel being dispatched, and the workers with a mailbox job in flight */
let mainQueue: { w: NodeWebWorker; m: KernelMsg }[] = [];
let sharedWaiting: NodeWebWorker[] = [];
let flushQueued = false;
/** the main thread answers within microtasks; every YIELD_MS it lets the event loop run once (timers, I/O) */
const YIELD_MS = 25;
let lastTurn = 0;
/** how long the main thread blocks in Atomics.wait for a worker's slice before waiting without blocking */
const SYNC_WAIT_MS = 50;
/** a kernel slice that runs longer than this is reported as an error (a worker stuck or gone), never a hang */
const KERNEL_TIMEOUT_MS = 15 * 60_000;

function flushMain(): void {
  flushQueued = false;
  const jobs = mainQueue;
  mainQueue = [];
  for (const { w, m } of jobs) {
    const r = heedRun(m, mainSt);
    noteSlice(m.kernelHash, r);
    channelStats.mainShare++;
    if (r.ok && r.gemm) channelStats.mainShareNative++;
    w.deliverSoon(replyOf(r));
  }
  const waits = sharedWaiting;
  sharedWaiting = [];
  for (const w of waits) w.awaitShared();
}
function scheduleFlush(): void {
  if (flushQueued) return;
  flushQueued = true;
  queueMicrotask(flushMain);
}

/** kernel ids for the mailbox: one per (hash, module, plan) */
const kernelIds = new Map<string, { id: number; module: WebAssembly.Module; plan: object | undefined }>();
let nextKernelId = 1;
function kernelId(hash: string, module: WebAssembly.Module, plan: object | undefined): number {
  const e = kernelIds.get(hash);
  if (e && e.module === module && e.plan === plan) return e.id;
  const id = nextKernelId++;
  kernelIds.set(hash, { id, module, plan });
  return id;
}

type Handler = ((e: { data: unknown }) => void) | null;

class NodeWebWorker {
  onmessage: Handler = null;
  onerror: ((e: { message: string }) => void) | null = null;
  private readonly w: NodeWorker;
  private readonly sab = new SharedArrayBuffer(MB.BYTES);
  private readonly ctl = new Int32Array(this.sab);
  private readonly ctlU = new Uint32Array(this.sab);
  private readonly ctlF = new Float64Array(this.sab);
  private readonly ctlB = new Uint8Array(this.sab);
  /** true once a wake message was posted and no LEAVE since: the worker reads jobs from the mailbox */
  private inLoop = false;
  private seq = 0;
  /** the SEQ of the mailbox kernel job awaiting its answer, and its kernel hash */
  private jobSeq = 0;
  private jobHash = '';
  private readonly sent = new Set<number>();
  private exited = false;
  constructor(url: string | URL) {
    const blob = resolveObjectURL(String(url));
    if (!blob) throw new Error(`heed worker polyfill: cannot resolve worker URL ${String(url)}`);
    this.w = new NodeWorker(BOOT, { eval: true });
    this.w.on('message', (m) => {
      // jax-js answers every message it posts with exactly one reply; idle workers must not keep Node alive
      this.release();
      this.deliver(m as Reply);
    });
    this.w.on('error', (e) => this.onerror?.({ message: e.message }));
    this.w.on('exit', () => (this.exited = true));
    this.w.unref(); // after the listeners: adding one re-refs the port
    void blob.text().then((src) => this.w.postMessage({ __heedWorkerSource: src, ctl: this.sab }));
  }
  private pending = 0;
  private hold(): void {
    if (this.pending++ === 0) this.w.ref();
  }
  private release(): void {
    if (--this.pending === 0) this.w.unref();
  }
  /** hand a reply to jax-js (as the worker's own `done` would arrive) */
  deliver(m: Reply): void {
    const ms = m?.heedGemmMs;
    if (ms !== undefined) gemmMs += ms;
    else if (m?.heedEwMs !== undefined) ewMs += m.heedEwMs;
    this.onmessage?.({ data: m });
  }
  /** deliver from a microtask chain: every YIELD_MS through setImmediate, so the event loop still turns */
  deliverSoon(m: Reply): void {
    const now = performance.now();
    if (now - lastTurn < YIELD_MS) return this.deliver(m);
    lastTurn = now;
    setImmediate(() => {
      lastTurn = performance.now();
      this.deliver(m);
    });
  }
  private job(kind: number): number {
    this.ctl[MB.KIND] = kind;
    Atomics.store(this.ctl, MB.SEQ, ++this.seq);
    Atomics.notify(this.ctl, MB.SEQ);
    return this.seq;
  }
  /** a message the worker reads from its port (and answers through it when a reply is expected) */
  private send(m: unknown, reply: boolean): void {
    if (this.inLoop && channel !== 'shared' && channel !== 'mailbox') {
      this.job(JOB.LEAVE);
      this.inLoop = false;
    }
    if (reply) this.hold();
    this.w.postMessage(m);
    if (this.inLoop) this.job(JOB.PORT);
  }
  /** post one kernel slice through the mailbox; flushMain waits for its answer */
  private postShared(k: KernelMsg, plan: object | undefined): void {
    if (!this.inLoop) {
      this.w.postMessage({ __heedWake: 1 });
      this.inLoop = true;
    }
    const id = kernelId(k.kernelHash, k.module, plan);
    if (!this.sent.has(id)) {
      this.w.postMessage({ __heedDef: id, kernelHash: k.kernelHash, module: k.module, ...(plan ? planField(plan) : {}) });
      this.sent.add(id);
    }
    const c = this.ctl;
    c[MB.ID] = id;
    c[MB.BEGIN] = k.begin;
    c[MB.END] = k.end;
    c[MB.NPTRS] = k.ptrs.length;
    for (let i = 0; i < k.ptrs.length; i++) this.ctlU[MB.PTRS + i] = k.ptrs[i];
    this.jobHash = k.kernelHash;
    this.jobSeq = this.job(JOB.KERNEL);
    channelStats.mailbox++;
    sharedWaiting.push(this);
    scheduleFlush();
  }
  private sharedReply(): Reply {
    const ok = this.ctl[MB.OK];
    if (ok === 0) return { type: 'done', ok: false, error: new TextDecoder().decode(this.ctlB.slice(MB.ERR_BYTE, MB.ERR_BYTE + this.ctl[MB.ERRLEN])) };
    const ms = this.ctlF[MB.MS_F64];
    noteSlice(this.jobHash, { ok: true, ms });
    return ok === 2 ? { type: 'done', ok: true, heedKernelMs: ms, heedGemmMs: ms } : ok === 3 ? { type: 'done', ok: true, heedKernelMs: ms, heedEwMs: ms } : { type: 'done', ok: true, heedKernelMs: ms };
  }
  /** wait for the mailbox job: spin, then Atomics.wait up to SYNC_WAIT_MS, then Atomics.waitAsync (the event loop
   * runs, a worker that exits or a slice past KERNEL_TIMEOUT_MS answers ok: false) */
  awaitShared(): void {
    const c = this.ctl, s = this.jobSeq;
    let d = Atomics.load(c, MB.DONE);
    for (let i = 0; i < 4000 && d < s; i++) d = Atomics.load(c, MB.DONE);
    if (d < s) {
      const t0 = performance.now();
      let left = SYNC_WAIT_MS;
      while (d < s && left > 0) {
        Atomics.wait(c, MB.DONE, d, left);
        d = Atomics.load(c, MB.DONE);
        left = SYNC_WAIT_MS - (performance.now() - t0);
      }
    }
    if (d >= s) return this.deliverSoon(this.sharedReply());
    channelStats.mailboxAsync++;
    this.hold();
    const t0 = performance.now();
    let finished = false;
    const finish = (m: Reply): void => {
      if (finished) return;
      finished = true;
      clearInterval(keep);
      this.release();
      this.deliver(m);
    };
    const check = (): boolean => {
      if (finished) return true;
      if (Atomics.load(c, MB.DONE) >= s) finish(this.sharedReply());
      else if (this.exited || performance.now() - t0 > KERNEL_TIMEOUT_MS) {
        const why = this.exited ? 'the wasm worker exited while running a kernel' : `a kernel slice ran for more than ${KERNEL_TIMEOUT_MS / 60_000} minutes in a wasm worker`;
        finish({ type: 'done', ok: false, error: `heed: ${why} (HEED_KERNEL_CHANNEL=${channel}; HEED_KERNEL_CHANNEL=message uses postMessage instead)` });
      }
      return finished;
    };
    // a ref'd timer keeps Node alive while the slice runs (a pending waitAsync does not) and notices a worker that exited
    const keep = setInterval(check, 200);
    const wa = (Atomics as unknown as { waitAsync?: (a: Int32Array, i: number, v: number, t: number) => { async: boolean; value: unknown } }).waitAsync;
    const wait = (): void => {
      if (check() || !wa) return;
      const r = wa(c, MB.DONE, Atomics.load(c, MB.DONE), 1000);
      if (r.async) void (r.value as Promise<unknown>).then(wait);
      else setImmediate(wait);
    };
    wait();
  }
  postMessage(m: unknown): void {
    const k = m as Partial<Omit<KernelMsg, 'type'>> & { type?: string; memory?: WebAssembly.Memory };
    if (k?.type === 'init' && k.memory) mainSt.memory = k.memory;
    if (k?.type === 'kernel' && k.kernelHash !== undefined) {
      if (k.begin === 0) channelStats.kernels++;
      const route = kernelRoute ? kernelRoute(k.kernelHash) : undefined;
      if (route === 'inline' && mainSt.memory && k.module) {
        // jax-js awaits each kernel's reply before it posts the next one, so running it here keeps the order;
        // on any failure the message goes to the worker as usual (the kernel is pure: a rerun overwrites its outputs)
        const r = heedRun(k as KernelMsg, mainSt);
        if (r.ok) {
          inlined++;
          queueMicrotask(() => this.deliver(replyOf(r)));
          return;
        }
      }
      const plan = route && route !== 'inline' ? route : undefined;
      const km = (plan ? { ...k, ...planField(plan) } : k) as KernelMsg;
      if (channel !== 'message' && mainSt.memory && k.module && Array.isArray(k.ptrs)) {
        // worker 0's slice (begin 0: jax-js posts it first) runs on the main thread once the other slices are posted
        if (k.begin === 0 && (channel === 'main' || channel === 'shared') && !longKernels.has(k.kernelHash)) {
          mainQueue.push({ w: this, m: km });
          scheduleFlush();
          return;
        }
        if ((channel === 'shared' || channel === 'mailbox') && k.ptrs.length <= MB.MAX_PTRS && !this.exited) return this.postShared(km, plan);
      }
      channelStats.messages++;
      return this.send(km, true);
    }
    this.send(m, true);
  }
  terminate(): void {
    if (this.inLoop) this.job(JOB.LEAVE);
    void this.w.terminate();
  }
}

/** Install the polyfill with `threads` workers (navigator.hardwareConcurrency is what jax-js reads). */
export function installNodeWorkers(threads: number): void {
  const g = globalThis as Record<string, unknown>;
  // one thread from the start (HEED_THREADS=1): no pool at all. jax-js then runs kernels synchronously on the
  // main thread, saving the postMessage round trip per kernel (decode: 1.6-1.8x faster than a one-worker pool,
  // bench/README.md). Once the polyfill is in place it stays (jax-js may already rely on it); a later request
  // for one thread then gets a pool of one worker.
  if (threads <= 1 && typeof g.Worker === 'undefined') return;
  if (typeof g.Worker === 'undefined') {
    g.Worker = NodeWebWorker;
    // the main thread's require for the native addon (its share of native GEMM kernels); until it is there, wasm
    void import('node:module').then((m) => (mainSt.req ??= m.createRequire(import.meta.url)));
  }
  const nav = (g.navigator ?? {}) as Record<string, unknown>;
  try {
    Object.defineProperty(nav, 'hardwareConcurrency', { value: threads, configurable: true });
  } catch {
    /* a frozen navigator: keep its value */
  }
  if (!g.navigator) Object.defineProperty(g, 'navigator', { value: nav, configurable: true, writable: true });
}
