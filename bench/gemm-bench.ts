/**
 * `npm run bench:gemm`: the GEMMs of a training step at the training shapes (bench/shapes.ts: probe-4.2M,
 * llama-30M, SmolLM2-135M; 1024 tokens = bench:train's 8x128 / 4x256), for every linear layer and the LM head:
 *   fwd  Y[T,out]  = X[T,in] · W[out,in]ᵀ
 *   dX   dX[T,in]  = dY[T,out] · W[out,in]
 *   dW   dW[out,in] = dY[T,out]ᵀ · X[T,in]
 * on four engines in one run, back to back per GEMM (the order rotates every round, best of the rounds kept):
 *   jax-js  heed's engine (@jax-js/jax 0.1.25 wasm backend, jit, its worker pool), the ops as src/models writes them
 *   wasm    bench/wasm-gemm.ts: a hand-written wasm SIMD kernel (relaxed-SIMD FMA where validated), worker threads
 *   native  native/gemm.cc: C++ N-API addon (AVX-512F / AVX2+FMA chosen at run time, std::thread); `npm run build:native`
 *   torch   PyTorch (torch.mm on the same layouts; Debian python3-torch + libopenblas0-openmp), a child process
 * Prints GFLOP/s, ratios to PyTorch measured in the same run, the share of the machine's FP32 FMA peak, and a
 * per-shape "step GEMM" line (every linear of every layer x 3 GEMMs + the head: attention's QKᵀ and PV are not
 * in it). JSON: bench/results/gemm-<date-time>.json and bench/results/gemm-latest.json.
 *
 * Flags: --quick (probe and llama-30M only, fewer reps), --shapes a,b, --engines jax,wasm,native,torch,
 * --rounds R (default 3; 2 with --quick), --reps N (timed calls per round, default 5), --budget S (seconds per
 * engine per GEMM per round, default 4), --no-save. HEED_THREADS: threads of every engine (default all cores).
 */
import { initEngine, np, jit, blockUntilReady, fromHost, toHost, type Tensor } from '../src/engine/index.js';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { HERE, PYTHON, ROOT, benchThreads, busyCpuS, fmaPeak, fmt, linearGemms, machineInfo, makeLog, markdownTable, measuredFmaPeak, stamp } from './common.js';
import { WasmGemm, packB, wasmSimdPeak } from './wasm-gemm.js';
import { lastReason, loadNativeGemm } from '../native/load.mjs';

type Engine = 'jax' | 'wasm' | 'native' | 'torch';
type Kind = 'fwd' | 'dX' | 'dW';
interface Gemm {
  shape: string;
  layer: string;
  kind: Kind;
  /** C[M,N] = op(A)·op(B) */
  M: number;
  N: number;
  K: number;
  ta: boolean;
  tb: boolean;
  /** how many times a training step runs it */
  count: number;
}
interface Linear { layer: string; in: number; out: number; count: number }

const T = 1024;
const LINEARS: Record<string, Linear[]> = {
  'probe-4.2M': [
    { layer: 'attn.c_attn', in: 256, out: 768, count: 4 },
    { layer: 'attn.c_proj', in: 256, out: 256, count: 4 },
    { layer: 'mlp.c_fc', in: 256, out: 1024, count: 4 },
    { layer: 'mlp.c_proj', in: 1024, out: 256, count: 4 },
    { layer: 'lm_head', in: 256, out: 4096, count: 1 },
  ],
  'llama-30M': [
    { layer: 'q/o_proj', in: 512, out: 512, count: 16 },
    { layer: 'k/v_proj', in: 512, out: 256, count: 16 },
    { layer: 'gate/up_proj', in: 512, out: 1536, count: 16 },
    { layer: 'down_proj', in: 1536, out: 512, count: 8 },
    { layer: 'lm_head', in: 512, out: 8192, count: 1 },
  ],
  'smollm2-135M': [
    { layer: 'q/o_proj', in: 576, out: 576, count: 60 },
    { layer: 'k/v_proj', in: 576, out: 192, count: 60 },
    { layer: 'gate/up_proj', in: 576, out: 1536, count: 60 },
    { layer: 'down_proj', in: 1536, out: 576, count: 30 },
    { layer: 'lm_head', in: 576, out: 49152, count: 1 },
  ],
};

function gemmsOf(shape: string): Gemm[] {
  return LINEARS[shape].flatMap((l) => linearGemms(l.in, l.out, T).map((g) => ({ shape, layer: l.layer, count: l.count, ...g })));
}
const flops = (g: Gemm) => 2 * g.M * g.N * g.K;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const has = (name: string) => process.argv.includes(name);
const quick = has('--quick') || process.env.HEED_BENCH_QUICK === '1';
const shapes = (arg('--shapes')?.split(',') ?? (quick ? ['probe-4.2M', 'llama-30M'] : Object.keys(LINEARS))).map((s) => {
  const k = Object.keys(LINEARS).find((n) => n.startsWith(s));
  if (!k) throw new Error(`--shapes: unknown shape "${s}" (known: ${Object.keys(LINEARS).join(', ')})`);
  return k;
});
const engines = (arg('--engines')?.split(',') ?? ['jax', 'wasm', 'native', 'torch']) as Engine[];
const rounds = Number(arg('--rounds') ?? (quick ? 2 : 3));
const reps = Number(arg('--reps') ?? (quick ? 3 : 5));
const budgetS = Number(arg('--budget') ?? 4);
const threads = benchThreads();
const log = makeLog(performance.now());

function randomF32(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    a[i] = ((s >>> 0) / 4294967296 - 0.5) * 0.2;
  }
  return a;
}

/** C[i,j] = Σ_k op(A)[i,k]·op(B)[k,j] at `samples` random positions: the largest relative error of C */
function checkSamples(g: Gemm, A: Float32Array, B: Float32Array, C: Float32Array, samples = 48): number {
  let worst = 0;
  for (let s = 0; s < samples; s++) {
    const i = (s * 7919) % g.M, j = (s * 104729) % g.N;
    let x = 0, mag = 0;
    for (let k = 0; k < g.K; k++) {
      const p = (g.ta ? A[k * g.M + i] : A[i * g.K + k]) * (g.tb ? B[j * g.K + k] : B[k * g.N + j]);
      x += p;
      mag += Math.abs(p);
    }
    worst = Math.max(worst, Math.abs(x - C[i * g.N + j]) / (mag + 1e-30));
  }
  return worst;
}

// ---- engines ----
interface Runner {
  /** prepare operands; returns a timed call and a result check (max relative error) */
  prepare(g: Gemm, A: Float32Array, B: Float32Array): Promise<{ call: () => Promise<void>; check: () => Promise<number>; prepMs?: number; dispose: () => void }>;
  close?(): void;
}

async function jaxRunner(): Promise<Runner> {
  await initEngine({ device: 'wasm', threads });
  const fns = {
    'false,true': jit((a: Tensor, b: Tensor) => np.matmul(a, b.transpose())),
    'false,false': jit((a: Tensor, b: Tensor) => np.matmul(a, b)),
    'true,false': jit((a: Tensor, b: Tensor) => np.matmul(a.transpose(), b)),
  } as Record<string, (a: Tensor, b: Tensor) => Tensor>;
  return {
    async prepare(g, A, B) {
      const a = fromHost(A, g.ta ? [g.K, g.M] : [g.M, g.K]);
      const b = fromHost(B, g.tb ? [g.N, g.K] : [g.K, g.N]);
      const f = fns[`${g.ta},${g.tb}`];
      return {
        call: async () => {
          const c = await blockUntilReady(f(a.ref, b.ref));
          c.dispose();
        },
        check: async () => checkSamples(g, A, B, await toHost(f(a.ref, b.ref))),
        dispose: () => { a.dispose(); b.dispose(); },
      };
    },
  };
}

function transpose(src: Float32Array, rows: number, cols: number, dst: Float32Array): void {
  const bs = 32;
  for (let i0 = 0; i0 < rows; i0 += bs)
    for (let j0 = 0; j0 < cols; j0 += bs)
      for (let i = i0; i < Math.min(rows, i0 + bs); i++)
        for (let j = j0; j < Math.min(cols, j0 + bs); j++) dst[j * rows + i] = src[i * cols + j];
}

function wasmRunner(): Runner & { relaxed: boolean } {
  const w = new WasmGemm(threads);
  return {
    relaxed: w.relaxed,
    async prepare(g, A, B) {
      w.reset();
      const a = w.alloc(g.M * g.K), b = w.alloc(g.K * g.N), c = w.alloc(g.M * g.N);
      // the kernel takes A [M,K] and B packed in 8-column panels: done once here (prepMs, not timed)
      const t0 = performance.now();
      if (g.ta) transpose(A, g.K, g.M, a.view); else a.view.set(A);
      packB(B, g.K, g.N, b.view, g.tb);
      const prepMs = performance.now() - t0;
      return {
        prepMs,
        call: () => w.gemm(a.ptr, b.ptr, c.ptr, g.M, g.N, g.K),
        check: async () => (await w.gemm(a.ptr, b.ptr, c.ptr, g.M, g.N, g.K), checkSamples(g, A, B, c.view.slice())),
        dispose: () => w.reset(),
      };
    },
    close: () => w.close(),
  };
}

type NativeGemm = NonNullable<ReturnType<typeof loadNativeGemm>>;
function loadNative(): NativeGemm | string {
  return loadNativeGemm({ quiet: true }) ?? lastReason();
}
function nativeRunner(mod: NativeGemm): Runner {
  return {
    async prepare(g, A, B) {
      const C = new Float32Array(g.M * g.N);
      return {
        call: async () => mod.gemm(g.ta, g.tb, g.M, g.N, g.K, A, B, C, threads),
        check: async () => (mod.gemm(g.ta, g.tb, g.M, g.N, g.K, A, B, C, threads), checkSamples(g, A, B, C)),
        dispose: () => {},
      };
    },
  };
}

/** PyTorch as a long-lived child (bench/torch_gemm.py): one request line, one answer line */
interface TorchServer { run: (g: Gemm) => Promise<{ ms: number[]; cpuMs: number[] }>; close: () => void; version: unknown }
async function torchServer(): Promise<TorchServer | string> {
  const ver = await new Promise<string>((resolve) => {
    const p = spawn(PYTHON, [path.join(HERE, 'torch_gemm.py'), '--version'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('error', () => resolve(''));
    p.on('close', () => resolve(out));
  });
  const line = ver.split('\n').find((l) => l.startsWith('@@BENCH '));
  const v = line ? JSON.parse(line.slice(8)) : { ok: false, error: `${PYTHON} did not answer` };
  if (!v.ok) return `PyTorch not available (${v.error}): apt-get install python3-torch libopenblas0-openmp, or set HEED_BENCH_PYTHON`;
  const child = spawn(PYTHON, [path.join(HERE, 'torch_gemm.py'), String(threads)], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, OMP_NUM_THREADS: String(threads) } });
  const lines = createInterface({ input: child.stdout });
  const waiting: ((l: string) => void)[] = [];
  lines.on('line', (l) => { if (l.startsWith('@@BENCH ')) waiting.shift()?.(l.slice(8)); });
  const next = () => new Promise<string>((resolve) => waiting.push(resolve));
  await next(); // ready
  return {
    version: { torch: v.version, blas: v.blas },
    run: async (g) => {
      const p = next();
      child.stdin.write(JSON.stringify({ M: g.M, N: g.N, K: g.K, ta: g.ta, tb: g.tb, reps, budgetS }) + '\n');
      const r = JSON.parse(await p);
      if (!r.ok) throw new Error(`torch: ${r.error}`);
      return { ms: r.ms as number[], cpuMs: r.cpuMs as number[] };
    },
    close: () => child.stdin.end(),
  };
}

/** wall ms and CPU ms (this process, all threads) of each timed call */
async function timeCalls(call: () => Promise<void>): Promise<{ ms: number[]; cpuMs: number[] }> {
  await call(); // warm-up (jit compilation, wasm tier-up, page faults)
  const ms: number[] = [], cpuMs: number[] = [];
  const end = performance.now() + budgetS * 1000;
  while (ms.length < reps && (ms.length < 2 || performance.now() < end)) {
    const c0 = process.cpuUsage(), t0 = performance.now();
    await call();
    ms.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpuMs.push((c.user + c.system) / 1000);
  }
  return { ms, cpuMs };
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const peak = fmaPeak();
  const machine = { ...machineInfo(), loadavgStart: os.loadavg().map((x) => +x.toFixed(2)), fmaPeak: peak };
  log(`${machine.cpu}, ${machine.cores} cores, load average ${machine.loadavgStart.join(' ')}; FP32 FMA peak ${fmt(peak.perCore, 0)} GFLOP/s per core (${peak.note})`);
  const notes: string[] = [];
  const runners: Partial<Record<Engine, Runner>> = {};
  const info: Record<string, unknown> = { threads };
  let torch: TorchServer | undefined;
  for (const e of engines) {
    if (e === 'jax') runners.jax = await jaxRunner();
    else if (e === 'wasm') {
      const w = wasmRunner();
      runners.wasm = w;
      info.wasmRelaxedSimd = w.relaxed;
      const p = wasmSimdPeak();
      info.wasmSimdPeakPerCore = +p.gflops.toFixed(1);
      log(`measured wasm SIMD128 multiply-add peak: ${fmt(p.gflops, 1)} GFLOP/s per core (${p.relaxed ? 'relaxed_madd' : 'mul + add'}, 4 lanes): the ceiling of any wasm kernel here`);
    }
    else if (e === 'native') {
      const m = loadNative();
      if (typeof m === 'string') notes.push(`native: ${m}`);
      else {
        runners.native = nativeRunner(m);
        info.nativeIsa = m.info().isa;
        // the core's FMA throughput measured by CPU time (robust to other load); replaces the nominal-clock estimate
        const measured = measuredFmaPeak(m);
        if (measured.measuredPerCore) Object.assign(peak, measured);
        log(`measured FP32 FMA peak: ${fmt(measured.measuredPerCore, 1)} GFLOP/s per core (AVX2, 8 lanes x 2 pipes)`);
      }
    } else if (e === 'torch') {
      const t = await torchServer();
      if (typeof t === 'string') notes.push(t);
      else { torch = t; info.torch = t.version; }
    } else throw new Error(`--engines: unknown engine "${e}" (jax, wasm, native, torch)`);
  }
  for (const n of notes) log(`note: ${n}`);
  log(`engines: ${Object.keys(runners).join(', ')}${torch ? ', torch' : ''}; ${threads} threads each; ${rounds} rounds x up to ${reps} calls; ${JSON.stringify(info)}`);
  const active: Engine[] = [...(Object.keys(runners) as Engine[]), ...(torch ? (['torch'] as Engine[]) : [])];

  const results: (Gemm & { gflop: number; bestMs: Partial<Record<Engine, number>>; bestCpuMs: Partial<Record<Engine, number>>; allMs: Partial<Record<Engine, number[][]>>; maxRelErr: Partial<Record<Engine, number>>; prepMs?: number; otherCpu?: number; errors?: Record<string, string> })[] = [];
  const todo = shapes.flatMap(gemmsOf);
  for (const [gi, g] of todo.entries()) {
    const A = randomF32(g.M * g.K, 1 + gi), B = randomF32(g.K * g.N, 1000 + gi);
    const r: (typeof results)[number] = { ...g, gflop: flops(g) / 1e9, bestMs: {}, bestCpuMs: {}, allMs: {}, maxRelErr: {} };
    const busy0 = busyCpuS(), cpu0 = process.cpuUsage(), w0 = performance.now();
    const prepared: Partial<Record<Engine, Awaited<ReturnType<Runner['prepare']>>>> = {};
    try {
      for (const e of Object.keys(runners) as Engine[]) {
        prepared[e] = await runners[e]!.prepare(g, A, B);
        r.maxRelErr[e] = +(await prepared[e]!.check()).toExponential(2);
        if (prepared[e]!.prepMs !== undefined) r.prepMs = +prepared[e]!.prepMs!.toFixed(1);
      }
      for (let round = 0; round < rounds; round++) {
        const order = active.map((_, i) => active[(i + round) % active.length]);
        for (const e of order) {
          try {
            const { ms, cpuMs } = e === 'torch' ? await torch!.run(g) : await timeCalls(prepared[e]!.call);
            (r.allMs[e] ??= []).push(ms.map((x) => +x.toFixed(2)));
            r.bestMs[e] = Math.min(r.bestMs[e] ?? Infinity, ...ms);
            r.bestCpuMs[e] = Math.min(r.bestCpuMs[e] ?? Infinity, ...cpuMs);
          } catch (err) {
            (r.errors ??= {})[e] = (err as Error).message.slice(0, 300);
          }
        }
      }
    } finally {
      for (const p of Object.values(prepared)) p?.dispose();
    }
    const wall = (performance.now() - w0) / 1000, busy1 = busyCpuS(), cpu1 = process.cpuUsage(cpu0);
    // other processes' share of the cores (torch's child CPU is not subtracted: an upper bound)
    if (busy0 !== undefined && busy1 !== undefined) r.otherCpu = +Math.max(0, (busy1 - busy0 - (cpu1.user + cpu1.system) / 1e6) / (wall * os.cpus().length)).toFixed(2);
    results.push(r);
    const gf = (e: Engine) => (r.bestMs[e] ? flops(g) / r.bestMs[e]! / 1e6 : undefined);
    log(`[${gi + 1}/${todo.length}] ${g.shape} ${g.layer} ${g.kind} ${g.M}x${g.N}x${g.K}: ${active.map((e) => `${e} ${fmt(gf(e), 1)}`).join(', ')} GFLOP/s${r.errors ? ` errors ${JSON.stringify(r.errors)}` : ''}`);
  }
  torch?.close();
  for (const r of Object.values(runners)) r.close?.();

  // tables
  const peakAll = peak.perCore ? peak.perCore * threads : undefined;
  const gfl = (r: (typeof results)[number], e: Engine) => (r.bestMs[e] ? (r.gflop * 1e3) / r.bestMs[e]! : undefined);
  const cpuGfl = (r: (typeof results)[number], e: Engine) => (r.bestCpuMs[e] ? (r.gflop * 1e3 * threads) / r.bestCpuMs[e]! : undefined);
  const head = ['shape', 'GEMM', 'M×N×K', ...active.map((e) => `${e} GFLOP/s (per CPU-s × threads)`), ...active.filter((e) => e !== 'torch').map((e) => `${e}/torch`), 'other load'];
  const rows = results.map((r) => [
    r.shape, `${r.layer} ${r.kind}`, `${r.M}×${r.N}×${r.K}`,
    ...active.map((e) => `${fmt(gfl(r, e), 1)} (${fmt(cpuGfl(r, e), 1)})`),
    ...active.filter((e) => e !== 'torch').map((e) => (torch && r.bestMs[e] && r.bestMs.torch ? fmt(r.bestMs.torch / r.bestMs[e]!, 2) : '—')),
    r.otherCpu === undefined ? '—' : `${Math.round(r.otherCpu * 100)}%`,
  ]);
  console.log('\n' + markdownTable(head, rows));
  // per-shape step GEMM time: Σ count x best time
  const step = shapes.map((s) => {
    const rs = results.filter((r) => r.shape === s);
    const totalGflop = rs.reduce((a, r) => a + r.gflop * r.count, 0);
    const per: Partial<Record<Engine, { ms: number; gflops: number; peakShare?: number; vsTorch?: number; cpuMs: number; cpuGflops: number; cpuVsTorch?: number }>> = {};
    for (const e of active) {
      if (rs.some((r) => !r.bestMs[e] || !r.bestCpuMs[e])) continue;
      const ms = rs.reduce((a, r) => a + r.bestMs[e]! * r.count, 0);
      const cpuMs = rs.reduce((a, r) => a + r.bestCpuMs[e]! * r.count, 0);
      per[e] = { ms: +ms.toFixed(1), gflops: +((totalGflop * 1e3) / ms).toFixed(1), peakShare: peakAll ? +((totalGflop * 1e3) / ms / peakAll).toFixed(3) : undefined, cpuMs: +cpuMs.toFixed(1), cpuGflops: +((totalGflop * 1e3 * threads) / cpuMs).toFixed(1) };
    }
    for (const e of active) if (per[e] && per.torch) { per[e]!.vsTorch = +(per.torch.ms / per[e]!.ms).toFixed(2); per[e]!.cpuVsTorch = +(per.torch.cpuMs / per[e]!.cpuMs).toFixed(2); }
    return { shape: s, totalGflop: +totalGflop.toFixed(1), per };
  });
  console.log('\nStep GEMMs (every linear of every layer: fwd + dX + dW, and the LM head; attention QKᵀ/PV not included):');
  console.log(markdownTable(['shape', 'GFLOP', ...active.map((e) => `${e} ms (GFLOP/s, % peak, ×torch | by CPU time: GFLOP/s, ×torch)`)], step.map((s) => [
    s.shape, fmt(s.totalGflop, 1),
    ...active.map((e) => { const p = s.per[e]; return p ? `${fmt(p.ms, 0)} (${fmt(p.gflops, 1)}, ${p.peakShare === undefined ? '?' : Math.round(p.peakShare * 100) + '%'}, ${p.vsTorch === undefined ? '—' : p.vsTorch.toFixed(2)} | ${fmt(p.cpuGflops, 1)}, ${p.cpuVsTorch === undefined ? '—' : p.cpuVsTorch.toFixed(2)})` : '—'; }),
  ])));
  console.log('By CPU time: GFLOP per CPU-second of the process x threads, i.e. the speed the engine would have with its threads undisturbed; robust to other load with HEED_THREADS=1 (with more threads, OpenMP spin-waiting counts against torch and idle waits do not count against the others).');
  const loadEnd = os.loadavg().map((x) => +x.toFixed(2));
  const maxOther = Math.max(...results.map((r) => r.otherCpu ?? 0));
  if (maxOther > 0.15) console.log(`\nNote: other processes used up to ${Math.round(maxOther * 100)}% of the cores during this run (load average ${machine.loadavgStart.join(' ')} -> ${loadEnd.join(' ')}): absolute GFLOP/s are depressed and PyTorch's OpenMP threads suffer most under contention, so ratios are indicative only.`);
  for (const n of notes) console.log(`Note: ${n}`);
  const out = {
    kind: 'gemm-bench', date: new Date().toISOString(), wallS: +((performance.now() - t0) / 1000).toFixed(1),
    machine: { ...machine, loadavgEnd: loadEnd }, info, threads, rounds, reps, budgetS, quick, notes, steps: step, gemms: results,
  };
  if (!has('--no-save')) {
    const dir = path.join(HERE, 'results');
    mkdirSync(dir, { recursive: true });
    const f = path.join(dir, `gemm-${stamp()}.json`);
    writeFileSync(f, JSON.stringify(out, null, 1) + '\n');
    writeFileSync(path.join(dir, quick ? 'gemm-latest-quick.json' : 'gemm-latest.json'), JSON.stringify(out, null, 1) + '\n');
    log(`wrote ${path.relative(ROOT, f)}`);
  }
  process.exit(0);
}

await main();
