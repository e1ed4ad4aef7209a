/**
 * Web Worker polyfill over node:worker_threads so that jax-js starts its wasm thread pool in Node
 * (jax-js only does so when a global `Worker` exists). jax-js creates each worker from a blob: URL holding a
 * classic script that uses `self.onmessage` / `postMessage`; we resolve the blob with node:buffer's
 * resolveObjectURL, boot a worker_threads Worker that defines `self`/`postMessage`, send it the source, and
 * queue messages until the source has run. Installed only in Node and only when no Worker exists.
 */
import { Worker as NodeWorker } from 'node:worker_threads';
import { resolveObjectURL } from 'node:buffer';

const BOOT = `
const { parentPort } = require('node:worker_threads');
globalThis.self = globalThis;
globalThis.postMessage = (m) => parentPort.postMessage(m);
let pending = [];
// native GEMM route (src/engine/native.ts): a kernel message with a heedGemm plan runs the addon on views of the
// shared wasm memory for outputs [begin, end) and answers as the wasm kernel would; any failure runs the wasm kernel
let heedMemory = null, heedAddon, heedRow = new Float32Array(0), heedWarned = false;
function heedGemm(m) {
  const p = m.heedGemm;
  if (heedAddon === undefined) { try { heedAddon = require(p.addon); } catch { heedAddon = null; } }
  if (!heedAddon || !heedMemory) return false;
  const buf = heedMemory.buffer, ptrs = m.ptrs, M = p.M, N = p.N, K = p.K, MN = M * N;
  const view = (byte) => new Float32Array(buf, byte, (buf.byteLength - byte) >>> 2);
  const A0 = ptrs[p.a], B0 = ptrs[p.b], C0 = ptrs[ptrs.length - 1];
  if (heedRow.length < N) heedRow = new Float32Array(N);
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
function heedElementwise(m) {
  const p = m.heedEw;
  if (heedAddon === undefined) { try { heedAddon = require(p.addon); } catch { heedAddon = null; } }
  if (!heedAddon || !heedMemory) return false;
  const mem = new Float32Array(heedMemory.buffer), ptrs = m.ptrs, C0 = ptrs[ptrs.length - 1] >>> 2;
  const offs = (fn) => { const o = new Int32Array(fn.slots.length); for (let q = 0; q < o.length; q++) o[q] = ptrs[fn.slots[q]] >>> 2; return o; };
  if (p.kind === 'reduce') {
    heedAddon.reduce(mem, p.body.code, p.body.nregs, p.body.out, C0, m.begin, m.end, offs(p.body), p.size, p.op);
    if (p.epi) heedAddon.epilogue(mem, p.epi.code, p.epi.nregs, p.epi.out, C0, m.begin, m.end, offs(p.epi));
  } else heedAddon.epilogue(mem, p.fn.code, p.fn.nregs, p.fn.out, C0, m.begin, m.end, offs(p.fn));
  return true;
}
function heedOnMessage(m) {
  if (m && m.type === 'init') heedMemory = m.memory;
  if (m && (m.heedGemm || m.heedEw)) {
    try {
      const t0 = performance.now();
      if (m.heedGemm ? heedGemm(m) : heedElementwise(m)) { postMessage({ type: 'done', ok: true, [m.heedGemm ? 'heedGemmMs' : 'heedEwMs']: performance.now() - t0 }); return; }
    } catch (e) {
      if (!heedWarned) { heedWarned = true; console.error('heed: a native kernel failed in a worker (' + String(e) + '); running that kernel in wasm'); }
    }
  }
  self.onmessage({ data: m });
}
parentPort.on('message', (m) => {
  if (pending) {
    if (m && m.__heedWorkerSource !== undefined) {
      (0, eval)(m.__heedWorkerSource);
      const q = pending; pending = null;
      for (const x of q) heedOnMessage(x);
    } else pending.push(m);
    return;
  }
  heedOnMessage(m);
});`;

/** Set by src/engine/native.ts: a plan for a kernel hash (a GEMM plan; one with a `kind`, elementwise or reduce, goes
 * to heedElementwise), 'inline' (a small wasm kernel: run it on this
 * thread, saving the round trip to a worker), or undefined (the wasm kernel runs in the worker). */
type KernelRoute = (kernelHash: string) => object | 'inline' | undefined;
let kernelRoute: KernelRoute | null = null;
let gemmMs = 0;
let ewMs = 0;
let inlined = 0;
/** the shared wasm memory (from jax-js's init message) and main-thread instances of small kernels, by hash */
let mainMemory: WebAssembly.Memory | null = null;
const mainKernels = new Map<string, (...a: number[]) => void>();
/** Kernel messages run on the main thread instead of a worker ('inline' routes) so far. */
export function inlinedKernels(): number {
  return inlined;
}
/** Milliseconds the workers spent in native elementwise kernels and reductions so far (summed over workers). */
export function nativeEwMs(): number {
  return ewMs;
}
/** Milliseconds the workers spent in native GEMM kernels so far (summed over workers). */
export function nativeGemmMs(): number {
  return gemmMs;
}
export function setKernelRoute(route: KernelRoute | null): void {
  kernelRoute = route;
}

type Handler = ((e: { data: unknown }) => void) | null;

class NodeWebWorker {
  onmessage: Handler = null;
  onerror: ((e: { message: string }) => void) | null = null;
  private readonly w: NodeWorker;
  constructor(url: string | URL) {
    const blob = resolveObjectURL(String(url));
    if (!blob) throw new Error(`heed worker polyfill: cannot resolve worker URL ${String(url)}`);
    this.w = new NodeWorker(BOOT, { eval: true });
    this.w.on('message', (m) => {
      // jax-js answers every message it posts with exactly one reply; idle workers must not keep Node alive
      if (--this.pending === 0) this.w.unref();
      const ms = (m as { heedGemmMs?: number } | null)?.heedGemmMs;
      if (ms !== undefined) gemmMs += ms;
      else if ((m as { heedEwMs?: number } | null)?.heedEwMs !== undefined) ewMs += (m as { heedEwMs: number }).heedEwMs;
      this.onmessage?.({ data: m });
    });
    this.w.on('error', (e) => this.onerror?.({ message: e.message }));
    this.w.unref(); // after the listeners: adding one re-refs the port
    void blob.text().then((src) => this.w.postMessage({ __heedWorkerSource: src }));
  }
  private pending = 0;
  postMessage(m: unknown): void {
    const k = m as { type?: string; kernelHash?: string; memory?: WebAssembly.Memory; module?: WebAssembly.Module; ptrs?: number[]; begin?: number; end?: number };
    if (k?.type === 'init' && k.memory) mainMemory = k.memory;
    if (kernelRoute && k?.type === 'kernel' && k.kernelHash !== undefined) {
      const plan = kernelRoute(k.kernelHash);
      if (plan === 'inline' && mainMemory && k.module) {
        // jax-js awaits each kernel's reply before it posts the next one, so running it here keeps the order;
        // on any failure the message goes to the worker as usual (the kernel is pure: a rerun overwrites its outputs)
        try {
          let fn = mainKernels.get(k.kernelHash);
          if (!fn) {
            fn = new WebAssembly.Instance(k.module, { env: { memory: mainMemory } }).exports.kernel as (...a: number[]) => void;
            if (mainKernels.size >= 512) mainKernels.delete(mainKernels.keys().next().value!);
            mainKernels.set(k.kernelHash, fn);
          }
          fn(...k.ptrs!, k.begin!, k.end!);
          inlined++;
          queueMicrotask(() => this.onmessage?.({ data: { type: 'done', ok: true } }));
          return;
        } catch {
          /* the worker runs it */
        }
      }
      if (plan && plan !== 'inline') m = (plan as { kind?: string }).kind ? { ...k, heedEw: plan } : { ...k, heedGemm: plan };
    }
    if (this.pending++ === 0) this.w.ref();
    this.w.postMessage(m);
  }
  terminate(): void {
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
  if (typeof g.Worker === 'undefined') g.Worker = NodeWebWorker;
  const nav = (g.navigator ?? {}) as Record<string, unknown>;
  try {
    Object.defineProperty(nav, 'hardwareConcurrency', { value: threads, configurable: true });
  } catch {
    /* a frozen navigator: keep its value */
  }
  if (!g.navigator) Object.defineProperty(g, 'navigator', { value: nav, configurable: true, writable: true });
}
