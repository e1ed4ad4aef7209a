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
parentPort.on('message', (m) => {
  if (pending) {
    if (m && m.__heedWorkerSource !== undefined) {
      (0, eval)(m.__heedWorkerSource);
      const q = pending; pending = null;
      for (const x of q) self.onmessage({ data: x });
    } else pending.push(m);
    return;
  }
  self.onmessage({ data: m });
});`;

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
      this.onmessage?.({ data: m });
    });
    this.w.on('error', (e) => this.onerror?.({ message: e.message }));
    this.w.unref(); // after the listeners: adding one re-refs the port
    void blob.text().then((src) => this.w.postMessage({ __heedWorkerSource: src }));
  }
  private pending = 0;
  postMessage(m: unknown): void {
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
