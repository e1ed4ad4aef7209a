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

export const machineInfo = () => ({ cpu: os.cpus()[0]?.model, cores: os.cpus().length, memGiB: os.totalmem() / 2 ** 30, node: process.version, platform: `${os.platform()} ${os.release()}` });

/** a logger prefixing seconds since t0, on stderr */
export const makeLog = (t0: number) => (s: string) => console.error(`[${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${s}`);
