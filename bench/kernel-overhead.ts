/**
 * Per-kernel overhead of the channel between jax-js and its wasm workers (issue 17; src/engine/node-workers.ts,
 * bench/README.md "The kernel channel"). One process, one engine: each case is a jitted chain of R dependent
 * matrix products (each its own kernel, jax-js dispatches them one at a time), timed on every channel —
 * `message` (jax-js's postMessage round trip per slice), `main` (the main thread runs worker 0's slice, the rest
 * by postMessage), `shared` (the main thread's slice + shared-memory mailboxes) — interleaved A, B, C, A, B, C, …
 * in the same run, and reported as µs per kernel (wall / kernels) with the ratio against `message`.
 *
 *   node --import tsx bench/kernel-overhead.ts [--rounds 5] [--no-save] [--save-as NAME.json]
 *
 * Cases: `tiny-1` (8×16 · 16×16: 128 outputs, one slice per kernel — on `main` and `shared` the main thread runs
 * it, on `message` worker 0), `tiny-workers` (16×64 · 64×64 with the main-thread threshold off:
 * two slices per kernel, nearly no compute — the channel's cost itself), `small` (64×256 · 256×256, a native GEMM
 * when the addon is built), `medium` (256×512 · 512×512). Saves bench/results/kernel-overhead-<stamp>.json (or
 * --save-as) with the CPU model, the load average at start and end, and every timing. Not a test.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { initEngine, jit, np, fromHost, toHost, type Tensor } from '../src/engine/index.js';
import { setInlineWork } from '../src/engine/native.js';
import { channelStats, KERNEL_CHANNELS, kernelChannel, setKernelChannel, type KernelChannel } from '../src/engine/node-workers.js';
import { HERE, markdownTable, stamp } from './common.js';

const args = process.argv.slice(2);
const flag = (n: string) => args.includes(n);
const opt = (n: string, d: string) => {
  const i = args.indexOf(n);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : d;
};
const ROUNDS = Number(opt('--rounds', '5'));

interface Case {
  name: string;
  M: number;
  K: number;
  /** kernels per call */
  R: number;
  /** calls per timing */
  calls: number;
  inlineOff: boolean;
}
const CASES: Case[] = [
  { name: 'tiny-1', M: 8, K: 16, R: 100, calls: 10, inlineOff: false },
  { name: 'tiny-workers', M: 16, K: 64, R: 100, calls: 10, inlineOff: true },
  { name: 'small', M: 64, K: 256, R: 50, calls: 6, inlineOff: true },
  { name: 'medium', M: 256, K: 512, R: 20, calls: 3, inlineOff: true },
];

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 2 ** 32 - 0.5) * 0.1;
  }
  return a;
}

const cpuModel = os.cpus()[0]?.model ?? 'unknown';
const load0 = os.loadavg();
const info = await initEngine();
const inlineDefault = Number(process.env.HEED_INLINE_WORK ?? 16384);
console.log(`kernel channel overhead: ${cpuModel}, ${info.threads} threads, kernels ${info.kernels}${info.native?.isa ? ` (${info.native.isa})` : ''}, default channel ${info.channel}, load ${load0.map((x) => x.toFixed(2)).join(' ')}`);

type Row = { case: string; channel: KernelChannel; usPerKernel: number[]; cpuUsPerKernel: number[]; kernels: number };
const rows: Row[] = [];
const channels = [...KERNEL_CHANNELS];
for (const c of CASES) {
  setInlineWork(c.inlineOff ? 0 : inlineDefault);
  const f = jit((x: Tensor, w: Tensor) => {
    let y = x;
    for (let r = 0; r < c.R; r++) y = np.matmul(y, w.ref);
    w.dispose();
    return y;
  });
  const x = fromHost(rand(c.M * c.K, 1), [c.M, c.K]);
  const w = fromHost(rand(c.K * c.K, 2), [c.K, c.K]);
  const run = async (): Promise<Float32Array> => toHost(f(x.ref, w.ref) as Tensor);
  const byCh = new Map<KernelChannel, Row>();
  for (const ch of channels) {
    setKernelChannel(ch);
    await run(); // warm-up (the first compiles; later ones instantiate the kernel on each thread)
    await run();
    byCh.set(ch, { case: c.name, channel: ch, usPerKernel: [], cpuUsPerKernel: [], kernels: 0 });
  }
  const ref: Float32Array[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const ch of channels) {
      setKernelChannel(ch);
      const k0 = channelStats.kernels;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      let out: Float32Array | undefined;
      for (let i = 0; i < c.calls; i++) out = await run();
      const ms = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      const kernels = channelStats.kernels - k0 || c.R * c.calls; // inline kernels are not channel dispatches
      const row = byCh.get(ch)!;
      row.usPerKernel.push((1000 * ms) / kernels);
      row.cpuUsPerKernel.push((cpu.user + cpu.system) / kernels); // the whole process: main thread and workers
      row.kernels = kernels;
      if (round === 0) ref.push(out!);
    }
  }
  // same bits on every channel
  const same = ref.every((r) => Buffer.from(r.buffer).equals(Buffer.from(ref[0].buffer)));
  if (!same) console.error(`${c.name}: the channels gave different results`);
  x.dispose();
  w.dispose();
  rows.push(...byCh.values());
}
setKernelChannel(kernelChannel());
const load1 = os.loadavg();
const med = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor((a.length - 1) / 2)];
const lines = CASES.map((c) => {
  const r = (ch: KernelChannel) => rows.find((x) => x.case === c.name && x.channel === ch)!;
  const base = med(r('message').usPerKernel);
  const cbase = med(r('message').cpuUsPerKernel);
  const cell = (ch: KernelChannel, k: 'usPerKernel' | 'cpuUsPerKernel', b: number) => `${med(r(ch)[k]).toFixed(1)}${ch === 'message' ? '' : ` (${(med(r(ch)[k]) / b).toFixed(2)}×)`}`;
  return [c.name, `${c.M}×${c.K}·${c.K}×${c.K}`, String(c.R), ...channels.map((ch) => cell(ch, 'usPerKernel', base)), ...channels.map((ch) => cell(ch, 'cpuUsPerKernel', cbase))];
});
console.log(markdownTable(['case', 'product', 'kernels per call', ...channels.map((c) => `${c} µs/kernel`), ...channels.map((c) => `${c} CPU µs/kernel`)], lines));
console.log(`load average at start ${load0.map((x) => x.toFixed(2)).join(' ')}, at end ${load1.map((x) => x.toFixed(2)).join(' ')}; ${ROUNDS} interleaved rounds, median`);
if (!flag('--no-save')) {
  const dir = join(HERE, 'results');
  mkdirSync(dir, { recursive: true });
  const name = opt('--save-as', `kernel-overhead-${stamp()}.json`);
  const file = name.includes('/') ? name : join(dir, name);
  writeFileSync(file, JSON.stringify({ when: new Date().toISOString(), cpuModel, threads: info.threads, kernels: info.kernels, isa: info.native?.isa ?? null, inlineWork: inlineDefault, rounds: ROUNDS, loadAvgStart: load0, loadAvgEnd: load1, cases: CASES, rows }, null, 1) + '\n');
  console.log(`saved ${name.includes('/') ? name : join('bench', 'results', name)}`);
}
