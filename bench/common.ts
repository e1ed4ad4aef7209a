/**
 * Shared machinery of the benchmarks that run each measurement in a child process (bench/bench.ts,
 * bench/train-bench.ts): the child result protocol ("@@BENCH {json}" as the last such line of stdout),
 * spawning with a timeout and out-of-memory detection, machine-load measurement from /proc/stat (the share of
 * the cores other processes used while a child ran), waiting for an idle machine, and formatting helpers.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

/** What a child prints (bench/bench.ts children, bench/train-bench.ts children, bench/torch_bench.py). */
export interface ChildResult {
  ok: boolean;
  error?: string;
  doesNotFit?: boolean;
  timedOut?: boolean;
  engine?: string;
  version?: string;
  threads?: number;
  params?: number;
  tokPerS?: number;
  medianMs?: number;
  timesMs?: number[];
  firstMs?: number;
  prefillMs?: number;
  peakRssMb?: number;
  loss?: number[];
  wallS?: number;
  /** CPU seconds of the child (all its threads) */
  cpuS?: number;
  /** share of all cores other processes used while the child ran */
  otherCpu?: number;
  [k: string]: unknown;
}

export const RESULT_TAG = '@@BENCH ';
export const HERE = fileURLToPath(new URL('.', import.meta.url));
export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const PYTHON = process.env.HEED_BENCH_PYTHON ?? '/usr/bin/python3';
export const NCPU = os.cpus().length;

export const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

/** peak resident set size of this process so far, MB */
export const peakRssMb = () => process.resourceUsage().maxRSS / 1024;

/** messages of an out-of-memory failure (jax-js's 4 GiB wasm32 heap, V8, the OS) */
export const OOM = /memory32|4 ?GiB|out of memory|Allocation exceeds|WebAssembly\.Memory|Array buffer allocation failed|could not allocate|Cannot allocate|heap limit|ENOMEM/i;

/**
 * The body of a child process: run `work`, turn an exception into a failed result (out of memory marked
 * `doesNotFit`), add the process's CPU time and print the result line, then exit (0 when ok).
 */
export async function childMain(work: () => Promise<ChildResult>): Promise<void> {
  let res: ChildResult;
  try {
    res = await work();
  } catch (e) {
    const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    res = { ok: false, error: msg.slice(0, 600), doesNotFit: OOM.test(msg), peakRssMb: peakRssMb() };
  }
  const cpu = process.cpuUsage(); // the whole process, worker threads included
  res.cpuS = (cpu.user + cpu.system) / 1e6;
  process.stdout.write(RESULT_TAG + JSON.stringify(res) + '\n', () => process.exit(res.ok ? 0 : 1));
}

/** machine-wide busy CPU seconds so far (Linux /proc/stat; undefined elsewhere) */
export function busyCpuS(): number | undefined {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3] + (f[4] ?? 0);
    return (f.slice(0, 8).reduce((a, b) => a + b, 0) - idle) / 100; // USER_HZ = 100
  } catch {
    return undefined;
  }
}

/** fraction of all cores busy with other work during the next `ms` */
export async function otherLoad(ms: number): Promise<number | undefined> {
  const b0 = busyCpuS();
  await new Promise((r) => setTimeout(r, ms));
  const b1 = busyCpuS();
  return b0 === undefined || b1 === undefined ? undefined : Math.max(0, (b1 - b0) / ((ms / 1000) * NCPU));
}

/** wait (up to maxS) until other processes use less than a quarter of the cores */
export async function waitIdle(maxS: number): Promise<{ waitedS: number; otherBefore?: number }> {
  const t0 = performance.now();
  let other = await otherLoad(1000);
  while (other !== undefined && other > 0.25 && (performance.now() - t0) / 1000 < maxS) other = await otherLoad(2000);
  return { waitedS: +((performance.now() - t0) / 1000).toFixed(1), otherBefore: other === undefined ? undefined : +other.toFixed(2) };
}

/**
 * Run a child to completion (SIGKILL after timeoutS) and return its result line, with wallS and otherCpu
 * (machine busy time minus the child's own CPU time, as a share of all cores). Without a result line: a
 * failed result whose error is the last lines of stderr, `doesNotFit` when they look like out of memory.
 */
export function runProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutS: number): Promise<ChildResult> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const busy0 = busyCpuS();
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutS * 1000);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ ok: false, error: `${cmd}: ${e.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const wallS = (performance.now() - t0) / 1000;
      const busy1 = busyCpuS();
      const line = out.split('\n').reverse().find((l) => l.startsWith(RESULT_TAG));
      if (line) {
        const r = JSON.parse(line.slice(RESULT_TAG.length)) as ChildResult;
        const otherCpu = busy0 !== undefined && busy1 !== undefined && typeof r.cpuS === 'number' ? +Math.max(0, (busy1 - busy0 - r.cpuS) / (wallS * NCPU)).toFixed(3) : undefined;
        resolve({ ...r, wallS, otherCpu });
        return;
      }
      const tail = (err.trim() || out.trim()).split('\n').filter((l) => l.trim()).slice(-3).join(' | ').slice(0, 400);
      const why = timedOut ? `timed out after ${timeoutS} s` : `exited with ${signal ?? `code ${code}`}`;
      resolve({ ok: false, timedOut, doesNotFit: OOM.test(err + out), error: `${why}: ${tail}`, wallS });
    });
  });
}

/** Run bench/torch_bench.py with a spec (OMP_NUM_THREADS = threads). */
export function runTorch(spec: { threads: number }, timeoutS: number): Promise<ChildResult> {
  return runProcess(PYTHON, [`${HERE}torch_bench.py`, JSON.stringify(spec)], { ...process.env, OMP_NUM_THREADS: String(spec.threads) }, timeoutS);
}

/** torch's version when PYTHON imports torch, else null */
export async function torchAvailable(): Promise<string | null> {
  const r = await runProcess(PYTHON, [`${HERE}torch_bench.py`, '--version'], process.env, 60);
  return r.ok ? String(r.version) : null;
}

/** thread count for both engines: HEED_THREADS, else all cores */
export const benchThreads = () => (Number(process.env.HEED_THREADS) > 0 ? Number(process.env.HEED_THREADS) : os.availableParallelism());

export const fmt = (x: number | undefined, d = 0) => (x === undefined || !Number.isFinite(x) ? '—' : x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));

/** a Markdown table with padded columns */
export function markdownTable(head: string[], lines: string[][]): string {
  const all = [head, ...lines];
  const w = head.map((_, i) => Math.max(...all.map((l) => l[i].length)));
  const row = (l: string[]) => '| ' + l.map((x, i) => x.padEnd(w[i])).join(' | ') + ' |';
  return [row(head), '|' + w.map((n) => '-'.repeat(n + 2)).join('|') + '|', ...lines.map(row)].join('\n');
}

/** local date-time for result file names, e.g. 2026-11-21T12-00-35 */
export function stamp(): string {
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}-${p(d.getMinutes())}-${p(d.getSeconds())}`;
}

/** one GEMM C[M,N] = op(A)·op(B) (ta: A stored [K,M]; tb: B stored [N,K]) */
export interface GemmShape {
  kind: 'fwd' | 'dX' | 'dW';
  M: number;
  N: number;
  K: number;
  ta: boolean;
  tb: boolean;
}

/** the three GEMMs of a linear layer W[out,in] over `tokens` rows: fwd X·Wᵀ, dX = dY·W, dW = dYᵀ·X */
export function linearGemms(inDim: number, outDim: number, tokens: number): GemmShape[] {
  return [
    { kind: 'fwd', M: tokens, N: outDim, K: inDim, ta: false, tb: true },
    { kind: 'dX', M: tokens, N: inDim, K: outDim, ta: false, tb: false },
    { kind: 'dW', M: outDim, N: inDim, K: tokens, ta: true, tb: false },
  ];
}

/**
 * The GEMM shape at which bench:train measures PyTorch's (and the native addon's) own sgemm speed in the same run:
 * SmolLM2-135M's gate/up projection (576 → 1536) over 1024 tokens (4×256), all three GEMMs.
 */
export const TRAIN_SGEMM = { layer: 'smollm2-135M gate/up_proj (576 -> 1536), 1024 tokens', inDim: 576, outDim: 1536, tokens: 1024 };

/** the FP32 FMA peak per core from /proc/cpuinfo (nominal): GHz x 2 FMA pipes x lanes (16 with AVX-512F, 8 with AVX2+FMA) x 2 flops */
export interface FmaPeak {
  ghz?: number;
  lanes: number;
  /** the figure to use: measured when measured, else nominal */
  perCore?: number;
  nominalPerCore?: number;
  measuredPerCore?: number;
  note: string;
}
export function fmaPeak(): FmaPeak {
  let flags = '', mhz: number | undefined;
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    flags = /^flags\s*:(.*)$/m.exec(info)?.[1] ?? '';
    mhz = Number(/^cpu MHz\s*:\s*([\d.]+)/m.exec(info)?.[1]);
  } catch { /* not Linux */ }
  const avx512 = / avx512f /.test(flags + ' '), fma = / fma /.test(flags + ' ');
  const lanes = avx512 ? 16 : fma ? 8 : 4;
  const ghz = mhz ? mhz / 1000 : undefined;
  return {
    ghz, lanes, perCore: ghz ? ghz * 2 * lanes * 2 : undefined, nominalPerCore: ghz ? +(ghz * 2 * lanes * 2).toFixed(1) : undefined,
    note: `${avx512 ? 'AVX-512F' : fma ? 'AVX2+FMA' : 'no FMA'}; /proc/cpuinfo "cpu MHz" (${mhz ?? '?'}) x 2 FMA pipes x ${lanes} lanes x 2 flops, assumes 2 FMA pipes per core (Zen 3/4, Skylake-SP and later); boost clocks would raise it`,
  };
}

/**
 * fmaPeak() with the per-core figure measured where the native addon is built: its fmaPeak() runs 12 independent
 * AVX2 FMA chains timed by the thread's CPU clock (the core's FP32 FMA rate at the clock it really runs), best of
 * `reps`. Other load still lowers it (measured here: 102 GFLOP/s per core quiet-ish, 84 at load average 10 on 2
 * cores: the clock drops when every core is busy), so bench:train takes the best of its start and end readings. Without the addon the nominal figure stays, and the note says so.
 */
export function measuredFmaPeak(addon: { fmaPeak(iters?: number): number } | null | undefined, reps = 3): FmaPeak {
  const peak = fmaPeak();
  if (!addon) return { ...peak, note: `nominal (native addon not built, nothing measured): ${peak.note}` };
  const measured = Math.max(...Array.from({ length: reps }, () => addon.fmaPeak(20_000_000)));
  if (measured > 0) Object.assign(peak, { measuredPerCore: +measured.toFixed(1), perCore: +measured.toFixed(1), note: `measured: 12 independent AVX2 FMA chains timed by thread CPU time (native fmaPeak), best of ${reps}; nominal ${peak.note}` });
  return peak;
}

/** one GEMM's timings: every timed call's wall ms (the first, warm-up call excluded), best and median GFLOP/s */
export interface SgemmResult extends GemmShape {
  ms: number[];
  bestGflops: number;
  medianGflops: number;
}
const gflopsOf = (g: GemmShape, ms: number) => (2 * g.M * g.N * g.K) / ms / 1e6;
const summarise = (g: GemmShape, ms: number[]): SgemmResult => ({ ...g, ms: ms.map((x) => +x.toFixed(3)), bestGflops: +gflopsOf(g, Math.min(...ms)).toFixed(1), medianGflops: +gflopsOf(g, median(ms)).toFixed(1) });

/**
 * PyTorch's own sgemm speed (torch.mm, its BLAS) at `gemms`, in one short child (bench/torch_gemm.py, the GEMM
 * server of bench:gemm) with OMP_NUM_THREADS = threads. Returns the BLAS library it loaded and each GEMM's timings,
 * or an error string.
 */
export async function torchSgemm(gemms: GemmShape[], threads: number, reps = 5, budgetS = 2, timeoutS = 120): Promise<{ blas: string[]; gemms: SgemmResult[] } | string> {
  const ver = await runProcess(PYTHON, [`${HERE}torch_gemm.py`, '--version'], process.env, 60);
  if (!ver.ok) return `PyTorch not available (${ver.error})`;
  return new Promise((resolve) => {
    const child = spawn(PYTHON, [`${HERE}torch_gemm.py`, String(threads)], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, OMP_NUM_THREADS: String(threads) } });
    let out = '', err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutS * 1000);
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e) => { clearTimeout(timer); resolve(`${PYTHON}: ${e.message}`); });
    child.on('close', (code) => {
      clearTimeout(timer);
      const answers = out.split('\n').filter((l) => l.startsWith(RESULT_TAG)).map((l) => JSON.parse(l.slice(RESULT_TAG.length)) as { ok: boolean; ready?: boolean; ms?: number[]; error?: string });
      const res = answers.filter((a) => !a.ready);
      const bad = res.find((a) => !a.ok);
      if (bad || res.length !== gemms.length) return resolve(`torch_gemm.py: ${bad?.error ?? `${res.length} of ${gemms.length} answers (exit ${code}): ${err.trim().split('\n').slice(-2).join(' | ')}`}`);
      resolve({ blas: (ver.blas as string[] | undefined) ?? [], gemms: gemms.map((g, i) => summarise(g, res[i].ms!)) });
    });
    for (const g of gemms) child.stdin.write(JSON.stringify({ M: g.M, N: g.N, K: g.K, ta: g.ta, tb: g.tb, reps, budgetS }) + '\n');
    child.stdin.end();
  });
}

/** the native addon's gemm at `gemms` (threads as given), timed here; the first call of each is a warm-up */
export function nativeSgemm(addon: { gemm(ta: boolean, tb: boolean, M: number, N: number, K: number, A: Float32Array, B: Float32Array, C: Float32Array, threads?: number): void }, gemms: GemmShape[], threads: number, reps = 5, budgetS = 2): SgemmResult[] {
  return gemms.map((g) => {
    const A = new Float32Array(g.M * g.K).map((_, i) => ((i * 2654435761) % 1000) / 1000 - 0.5);
    const B = new Float32Array(g.K * g.N).map((_, i) => ((i * 40503) % 1000) / 1000 - 0.5);
    const C = new Float32Array(g.M * g.N);
    addon.gemm(g.ta, g.tb, g.M, g.N, g.K, A, B, C, threads);
    const ms: number[] = [];
    const end = performance.now() + budgetS * 1000;
    while (ms.length < reps && (ms.length < 2 || performance.now() < end)) {
      const t0 = performance.now();
      addon.gemm(g.ta, g.tb, g.M, g.N, g.K, A, B, C, threads);
      ms.push(performance.now() - t0);
    }
    return summarise(g, ms);
  });
}

export const machineInfo = () => ({ cpu: os.cpus()[0]?.model, cores: os.cpus().length, memGiB: os.totalmem() / 2 ** 30, node: process.version, platform: `${os.platform()} ${os.release()}` });

/** a logger prefixing seconds since t0, on stderr */
export const makeLog = (t0: number) => (s: string) => console.error(`[${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${s}`);
