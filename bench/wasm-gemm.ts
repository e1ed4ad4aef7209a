/**
 * A hand-written WebAssembly SIMD GEMM (bench only, issue 17's "measure first"): C[m0:m1, :] = A[M,K] · B[K,N],
 * row-major f32 in one shared WebAssembly.Memory, B packed in 8-column panels ([N/8][K][8], `packB`), a 4 x 8
 * register tile (8 f32x4 accumulators), K blocked by 256, FMA as f32x4.relaxed_madd where the runtime validates relaxed SIMD, else f32x4.mul + f32x4.add. The
 * module is assembled here byte by byte (no toolchain needed). Threads: worker_threads instantiating the same
 * module on the same shared memory, each taking a range of rows. Requires N % 8 == 0 and M % 4 == 0 (true at
 * every training shape benchmarked); the other layouts (x·Wᵀ, dYᵀ·X) are transposed into this form first.
 */
import { Worker } from 'node:worker_threads';

const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};
const sleb = (n: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) return [...out, b];
    out.push(b | 0x80);
  }
};
const str = (s: string) => [...uleb(s.length), ...Buffer.from(s)];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];

/** The module's bytes; `relaxed` picks f32x4.relaxed_madd for the multiply-add. */
export function gemmModule(relaxed: boolean): Uint8Array<ArrayBuffer> {
  // params: 0 pa, 1 pb, 2 pc, 3 N, 4 K, 5 m0, 6 m1 (byte pointers, element counts)
  const [pa, pb, pc, N, K, m0, m1] = [0, 1, 2, 3, 4, 5, 6];
  const [kb, kend, j, i, k, a0, a1, a2, a3, bptr, cptr, ns, ks] = [7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19];
  const acc = [20, 21, 22, 23, 24, 25, 26, 27];
  const [bv0, bv1, av] = [28, 29, 30];
  const c: number[] = [];
  const get = (l: number) => c.push(0x20, ...uleb(l));
  const set = (l: number) => c.push(0x21, ...uleb(l));
  const i32 = (n: number) => c.push(0x41, ...sleb(n));
  const op = (...b: number[]) => c.push(...b);
  const simd = (code: number, ...imm: number[]) => c.push(0xfd, ...uleb(code), ...imm);
  const ADD = 0x6a, MUL = 0x6c, LT_S = 0x48, SELECT = 0x1b;
  const addTo = (l: number, n: number) => (get(l), i32(n), op(ADD), set(l));
  const cRow = (r: number) => { get(cptr); if (r) { get(ns); i32(r); op(MUL, ADD); } };

  get(N); i32(4); op(MUL); set(ns);
  get(K); i32(4); op(MUL); set(ks);
  i32(0); set(kb);
  op(0x03, 0x40); // loop KB
  // kend = min(kb + 256, K)
  get(kb); i32(256); op(ADD); get(K); get(kb); i32(256); op(ADD); get(K); op(LT_S, SELECT); set(kend);
  i32(0); set(j);
  op(0x03, 0x40); // loop J
  get(m0); set(i);
  op(0x03, 0x40); // loop I
  // cptr = pc + (i*N + j)*4
  get(pc); get(i); get(N); op(MUL); get(j); op(ADD); i32(4); op(MUL, ADD); set(cptr);
  // accumulators: zero on the first K block, else the partial sums in C
  get(kb); op(0x45); // i32.eqz
  op(0x04, 0x40); // if
  for (const a of acc) { simd(0x0c, ...new Array(16).fill(0)); set(a); }
  op(0x05); // else
  for (let r = 0; r < 4; r++) for (let h = 0; h < 2; h++) { cRow(r); simd(0x00, 4, ...uleb(16 * h)); set(acc[2 * r + h]); }
  op(0x0b); // end if
  get(kb); set(k);
  // a_r = pa + ((i + r)*K + kb)*4 ; bptr = pb + (j*K + kb*8)*4 (B packed in 8-column panels [N/8][K][8])
  for (let r = 0; r < 4; r++) { get(pa); get(i); if (r) { i32(r); op(ADD); } get(K); op(MUL); get(kb); op(ADD); i32(4); op(MUL, ADD); set([a0, a1, a2, a3][r]); }
  get(pb); get(j); get(K); op(MUL); get(kb); i32(8); op(MUL, ADD); i32(4); op(MUL, ADD); set(bptr);
  op(0x03, 0x40); // loop K
  get(bptr); simd(0x00, 4, 0); set(bv0);
  get(bptr); simd(0x00, 4, 16); set(bv1);
  for (let r = 0; r < 4; r++) {
    get([a0, a1, a2, a3][r]); op(0x2a, 2, 0); simd(0x13); set(av); // f32.load, f32x4.splat
    for (let h = 0; h < 2; h++) {
      const a = acc[2 * r + h], b = h ? bv1 : bv0;
      if (relaxed) { get(av); get(b); get(a); simd(0x105); } else { get(a); get(av); get(b); simd(0xe6); simd(0xe4); }
      set(a);
    }
  }
  for (const a of [a0, a1, a2, a3]) addTo(a, 4);
  addTo(bptr, 32);
  addTo(k, 1);
  get(k); get(kend); op(LT_S, 0x0d, 0); // br_if loop K
  op(0x0b); // end loop K
  for (let r = 0; r < 4; r++) for (let h = 0; h < 2; h++) { cRow(r); get(acc[2 * r + h]); simd(0x0b, 4, ...uleb(16 * h)); }
  addTo(i, 4);
  get(i); get(m1); op(LT_S, 0x0d, 0); op(0x0b); // loop I
  addTo(j, 8);
  get(j); get(N); op(LT_S, 0x0d, 0); op(0x0b); // loop J
  addTo(kb, 256);
  get(kb); get(K); op(LT_S, 0x0d, 0); op(0x0b); // loop KB
  op(0x0b); // end func
  const body = [...uleb(2), ...uleb(13), 0x7f, ...uleb(11), 0x7b, ...c];
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 7, ...new Array(7).fill(0x7f), 0]),
    ...section(2, [1, ...str('env'), ...str('memory'), 0x02, 0x03, ...uleb(1), ...uleb(65536)]),
    ...section(3, [1, 0]),
    ...section(7, [1, ...str('mm'), 0x00, 0]),
    ...section(10, [1, ...uleb(body.length), ...body]),
  ];
  return Uint8Array.from(bytes);
}

/** B [K,N] (row-major) -> 8-column panels [N/8][K][8], the layout the kernel reads */
export function packB(B: Float32Array, K: number, N: number, out: Float32Array, transposed = false): void {
  // transposed: B is stored [N,K] (the x·Wᵀ case)
  for (let j0 = 0; j0 < N; j0 += 8)
    for (let k = 0; k < K; k++) {
      const o = j0 * K + k * 8;
      for (let j = 0; j < 8; j++) out[o + j] = transposed ? B[(j0 + j) * K + k] : B[k * N + j0 + j];
    }
}

/** A wasm module measuring the core's f32x4 multiply-add throughput: 12 independent chains, `iters` rounds */
export function peakModule(relaxed: boolean): Uint8Array<ArrayBuffer> {
  const c: number[] = [];
  const simd = (code: number, ...imm: number[]) => c.push(0xfd, ...uleb(code), ...imm);
  // param 0: iters (i32); locals 1..12 v128 accumulators, 13 a, 14 b
  const one = [...new Uint8Array(new Float32Array([1, 1, 1, 1]).buffer)];
  const a = [...new Uint8Array(new Float32Array([0.999999, 0.999999, 0.999999, 0.999999]).buffer)];
  const b = [...new Uint8Array(new Float32Array([1e-7, 1e-7, 1e-7, 1e-7]).buffer)];
  for (let l = 1; l <= 12; l++) { simd(0x0c, ...one); c.push(0x21, l); }
  simd(0x0c, ...a); c.push(0x21, 13);
  simd(0x0c, ...b); c.push(0x21, 14);
  c.push(0x03, 0x40);
  for (let l = 1; l <= 12; l++) {
    if (relaxed) { c.push(0x20, l, 0x20, 13, 0x20, 14); simd(0x105); } else { c.push(0x20, l, 0x20, 13); simd(0xe6); c.push(0x20, 14); simd(0xe4); }
    c.push(0x21, l);
  }
  c.push(0x20, 0, 0x41, 1, 0x6b, 0x22, 0, 0x0d, 0, 0x0b); // iters -= 1; br_if iters != 0
  // return lane 0 of the sum so the work is not dead
  c.push(0x20, 1);
  for (let l = 2; l <= 12; l++) { c.push(0x20, l); simd(0xe4); }
  simd(0x1f, 0); // f32x4.extract_lane 0
  c.push(0x0b);
  const body = [...uleb(1), 14, 0x7b, ...c];
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 1, 0x7f, 1, 0x7d]),
    ...section(3, [1, 0]),
    ...section(7, [1, ...str('peak'), 0x00, 0]),
    ...section(10, [1, ...uleb(body.length), ...body]),
  ]);
}

/** GFLOP per CPU-second of one thread running f32x4 multiply-adds (relaxed FMA where valid): wasm SIMD's ceiling here */
export function wasmSimdPeak(iters = 20_000_000): { gflops: number; relaxed: boolean } {
  let relaxed = true;
  let bytes = peakModule(true);
  if (!WebAssembly.validate(bytes)) { relaxed = false; bytes = peakModule(false); }
  const peak = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports.peak as (n: number) => number;
  peak(1000);
  let best = 0;
  for (let r = 0; r < 3; r++) {
    const c0 = process.cpuUsage();
    peak(iters);
    const c = process.cpuUsage(c0);
    best = Math.max(best, (iters * 12 * 4 * 2) / ((c.user + c.system) / 1e6) / 1e9);
  }
  return { gflops: best, relaxed };
}

type MM = (pa: number, pb: number, pc: number, N: number, K: number, m0: number, m1: number) => void;

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const inst = new WebAssembly.Instance(workerData.module, { env: { memory: workerData.memory } });
parentPort.on('message', (m) => { inst.exports.mm(m.pa, m.pb, m.pc, m.N, m.K, m.m0, m.m1); parentPort.postMessage(0); });
`;

/** A threaded wasm GEMM over its own shared memory; `alloc` hands out float arrays in that memory. */
export class WasmGemm {
  readonly memory: WebAssembly.Memory;
  readonly relaxed: boolean;
  readonly threads: number;
  private mm: MM;
  private workers: Worker[] = [];
  private top = 64;

  constructor(threads: number) {
    let relaxed = true;
    let bytes = gemmModule(true);
    if (!WebAssembly.validate(bytes)) {
      relaxed = false;
      bytes = gemmModule(false);
    }
    this.relaxed = relaxed;
    this.threads = threads;
    this.memory = new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true });
    const module = new WebAssembly.Module(bytes);
    this.mm = new WebAssembly.Instance(module, { env: { memory: this.memory } }).exports.mm as MM;
    for (let t = 1; t < threads; t++) this.workers.push(new Worker(WORKER, { eval: true, workerData: { module, memory: this.memory } }));
  }

  /** forget every allocation (the arrays handed out before are invalid afterwards) */
  reset(): void {
    this.top = 64;
  }

  alloc(n: number): { ptr: number; view: Float32Array } {
    const ptr = this.top;
    this.top += Math.ceil((n * 4) / 64) * 64;
    const need = Math.ceil(this.top / 65536);
    const have = this.memory.buffer.byteLength / 65536;
    if (need > have) this.memory.grow(need - have);
    return { ptr, view: new Float32Array(this.memory.buffer, ptr, n) };
  }

  /** C[M,N] = A[M,K] · B[K,N] (pointers from alloc), rows split over the threads */
  async gemm(pa: number, pb: number, pc: number, M: number, N: number, K: number): Promise<void> {
    if (N % 8 || M % 4) throw new Error(`wasm gemm: needs N % 8 == 0 and M % 4 == 0, got M ${M} N ${N}`);
    const T = this.threads;
    const tiles = M / 4;
    const cut = (t: number) => Math.floor((tiles * t) / T) * 4;
    const done = this.workers.map((w, t) => {
      const [s, e] = [cut(t + 1), cut(t + 2)];
      if (s >= e) return Promise.resolve();
      return new Promise<void>((resolve) => {
        w.once('message', () => resolve());
        w.postMessage({ pa, pb, pc, N, K, m0: s, m1: e });
      });
    });
    if (cut(1) > 0) this.mm(pa, pb, pc, N, K, 0, cut(1));
    await Promise.all(done);
  }

  close(): void {
    for (const w of this.workers) void w.terminate();
  }
}
