/**
 * Engine benchmark (not a test): heed (jax-js wasm, jit) against a PyTorch reference on the same shapes.
 *
 *   npm run bench                      # full run (~10-15 min on 2 cores)
 *   npm run bench -- --quick           # probe + llama-30M, fewer iterations, no full-FT search (~3 min)
 *   npm run bench -- --shapes llama-30M --measures fwd,train --no-torch --no-search
 *   npm run bench -- --rounds 2        # each pair twice in alternating order, fastest round kept (noisy machines)
 *   HEED_THREADS=1 npm run bench       # thread count for both engines (default: all cores)
 *   npm run bench -- --device webgpu   # also heed on WebGPU (needs the `webgpu` package in Node and a GPU; without
 *                                      # one, HEED_WEBGPU_ADAPTER=swiftshader runs it on the CPU: a correctness
 *                                      # check, not a GPU figure); adds webgpu/wasm ratios of the same run
 *   other flags: --no-save, --search-budget S (default 330), --idle-wait S (default 20); env HEED_BENCH_QUICK=1,
 *   HEED_BENCH_ROUNDS, HEED_BENCH_IDLE_WAIT, HEED_BENCH_PYTHON
 *
 * Per shape: forward tokens/s (full logits), batch-1 decode tokens/s (KV cache, prompt 32 + 64 new tokens,
 * greedy, compile excluded), training-step tokens/s (loss + grads + AdamW in one jitted step) and peak RSS.
 * Every (shape, measurement, engine) runs in its own child process, so peak RSS is per measurement and an
 * out-of-memory failure (jax-js keeps all arrays in one 4 GiB wasm32 memory) is recorded, not fatal.
 * Then a search for the largest full-fine-tuning shape that fits (SmolLM2-135M shape with fewer layers).
 * Results: bench/results/<date-time>.json and bench/results/latest.json. See bench/README.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SHAPES, smollm2Config, type BenchShape } from './shapes.js';
import { HERE, PYTHON, benchThreads, childMain, fmt, machineInfo, makeLog, markdownTable, median, peakRssMb, runProcess, runTorch, stamp, torchAvailable, waitIdle, type ChildResult } from './common.js';

type Measure = 'fwd' | 'decode' | 'train';
const MEASURES: Measure[] = ['fwd', 'decode', 'train'];

/** What a child process is asked to do (the same JSON goes to bench/torch_bench.py). */
interface ChildSpec {
  measure: Measure;
  config: Record<string, unknown>;
  batch: [number, number];
  warmup: number;
  iters: number;
  /** stop timing once this many seconds have been spent in timed iterations (at least 2 are kept) */
  budgetS: number;
  threads: number;
  promptLen: number;
  newTokens: number;
  seed: number;
  /** heed's device (default wasm) */
  device?: 'wasm' | 'webgpu';
}

// ---------------------------------------------------------------------------------------------------------
// child: one measurement of heed in this process
// ---------------------------------------------------------------------------------------------------------

async function heedChild(spec: ChildSpec): Promise<ChildResult> {
  const { initEngine, fromHost, tree, blockUntilReady, jit, toHost, np } = await import('../src/engine/index.js');
  const { parseModelConfig, parameterCount } = await import('../src/models/config.js');
  const { randomParams, mulberry32 } = await import('../src/models/random.js');
  const { toDevice } = await import('../src/models/load.js');
  const { forward } = await import('../src/models/transformer.js');
  const info = await initEngine({ device: spec.device ?? 'wasm' });
  const c = parseModelConfig(spec.config);
  let adapter: string | undefined;
  if (info.device === 'webgpu') {
    const a = (await (globalThis as any).navigator.gpu.requestAdapter({ powerPreference: 'high-performance' })) as { info?: { vendor?: string; architecture?: string; description?: string; device?: string } } | null;
    adapter = [a?.info?.vendor, a?.info?.architecture, a?.info?.device, a?.info?.description].filter(Boolean).join(' / ') || 'unknown adapter';
  }
  const base = { engine: `heed (@jax-js/jax ${info.version}, ${info.device}${adapter ? ` on ${adapter}` : ''}, jit${info.relaxedSimd && info.device === 'wasm' ? ', relaxed SIMD' : ''})`, version: info.version, threads: info.threads, params: parameterCount(c), device: info.device, adapter };
  const rand = mulberry32(spec.seed + 1);
  const randIds = (n: number) => Int32Array.from({ length: n }, () => Math.floor(rand() * c.vocabSize));
  let params = toDevice(randomParams(c, spec.seed, { exactNorms: true }));
  const [B, T] = spec.batch;

  /** warm-up, then timed iterations within the budget; fn returns after the device work is done */
  async function timeLoop(fn: () => Promise<void>): Promise<{ times: number[]; first: number }> {
    const times: number[] = [];
    let first = NaN;
    for (let i = 0; i < spec.warmup; i++) {
      const t0 = performance.now();
      await fn();
      if (i === 0) first = performance.now() - t0;
    }
    let spent = 0;
    for (let i = 0; i < spec.iters; i++) {
      const t0 = performance.now();
      await fn();
      const ms = performance.now() - t0;
      times.push(ms);
      spent += ms;
      if (spent / 1000 > spec.budgetS && times.length >= 2) break;
    }
    return { times, first };
  }

  if (spec.measure === 'fwd') {
    const { invFreqFor } = await import('../src/models/run.js');
    const f = jit((p: Record<string, any>, ids: any, positions: any, qSeg: any, kSeg: any, qSlot: any, kSlot: any, invFreq: any) =>
      forward(c, p, { ids, positions, qSeg, kSeg, qSlot, kSlot }, { invFreq }).logits);
    const ids = randIds(B * T);
    const pos = Int32Array.from({ length: B * T }, (_, i) => i % T);
    const seg = new Int32Array(B * T);
    const slots = Int32Array.from({ length: T }, (_, i) => i);
    const { times, first } = await timeLoop(async () => {
      const out = f(tree.ref(params), fromHost(ids, [B, T]), fromHost(pos, [B, T]), fromHost(seg, [B, T]), fromHost(seg, [B, T]), fromHost(slots, [T]), fromHost(slots, [T]), invFreqFor(c)) as any;
      await blockUntilReady(out);
      out.dispose();
    });
    const m = median(times);
    return { ok: true, ...base, batch: [B, T], tokPerS: (B * T) / (m / 1000), medianMs: m, timesMs: times, firstMs: first, peakRssMb: peakRssMb() };
  }

  if (spec.measure === 'decode') {
    const { EngineGenerator } = await import('../src/decode/generate.js');
    // generateIds touches only eosIds, padId and decode of the tokenizer
    const tokenizer = { eosIds: [] as number[], padId: 0, decode: () => '' } as any;
    const gen = new EngineGenerator({ config: c, params, tokenizer });
    const prompt = Array.from(randIds(spec.promptLen));
    let stamps: number[] = [];
    // a logits processor runs once per step, right after that step's logits reach the host
    const stamp = (_ids: readonly number[], logits: Float32Array) => {
      stamps.push(performance.now());
      return logits;
    };
    const stepTimes: number[] = [];
    const prefills: number[] = [];
    const runs: number[] = [];
    let outIds: number[] = [];
    let first = NaN;
    for (let r = 0; r < spec.warmup + spec.iters; r++) {
      stamps = [];
      const t0 = performance.now();
      const res = await gen.generateIds([prompt], { maxTokens: spec.newTokens, eosIds: [], logitsProcessors: [stamp] });
      const t1 = performance.now();
      outIds = res[0].ids;
      if (r === 0) first = t1 - t0;
      if (r < spec.warmup) continue;
      prefills.push(stamps[0] - t0);
      runs.push(t1 - t0);
      for (let i = 1; i < stamps.length; i++) stepTimes.push(stamps[i] - stamps[i - 1]);
      if (runs.reduce((a, b) => a + b, 0) / 1000 > spec.budgetS) break;
    }
    const m = median(stepTimes);
    return {
      ok: true, ...base, promptLen: spec.promptLen, newTokens: spec.newTokens, tokPerS: 1000 / m, medianMs: m,
      meanTokPerS: stepTimes.length / (stepTimes.reduce((a, b) => a + b, 0) / 1000), prefillMs: median(prefills), runMs: runs,
      firstMs: first, generated: outIds.slice(0, 8), peakRssMb: peakRssMb(),
    };
  }

  // train: one jitted step = loss + gradients + AdamW
  const { makeTrainer, toDeviceBatch } = await import('../src/train/step.js');
  const { adamw, chain, decays } = await import('../src/train/adamw.js');
  const opt = chain(adamw({ beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, decayMask: decays }));
  const trainer = makeTrainer(c, opt);
  let st = opt.init(params);
  const ids = randIds(B * T);
  const weights = new Float32Array(B * T).fill(1);
  const losses: number[] = [];
  let t = 0;
  const { times, first } = await timeLoop(async () => {
    const batch = toDeviceBatch({ B, T, ids, weights });
    t++;
    const out = trainer.step(params, st, batch, { lr: 1e-3, count: t });
    params = out.p;
    st = out.state;
    await blockUntilReady([params, st]);
    losses.push((await toHost(out.loss))[0]);
  });
  void np;
  const md = median(times);
  return { ok: true, ...base, batch: [B, T], tokPerS: (B * T) / (md / 1000), medianMs: md, timesMs: times, firstMs: first, loss: losses, peakRssMb: peakRssMb() };
}

// ---------------------------------------------------------------------------------------------------------
// parent: spawn children, collect, print
// ---------------------------------------------------------------------------------------------------------

function runHeed(spec: ChildSpec, timeoutS: number) {
  return runProcess(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', JSON.stringify(spec)], { ...process.env, HEED_THREADS: String(spec.threads) }, timeoutS);
}

/** iteration plan per measurement (warm-up, max timed iterations, time budget in seconds, child timeout) */
function plan(shape: BenchShape, m: Measure, quick: boolean): { warmup: number; iters: number; budgetS: number; timeoutS: number } {
  const big = shape.name === 'smollm2-135M';
  if (m === 'decode') return { warmup: 1, iters: quick || big ? 1 : 2, budgetS: 10, timeoutS: 300 };
  if (m === 'fwd') return { warmup: big ? 1 : 2, iters: quick ? 3 : 5, budgetS: 10, timeoutS: 400 };
  return { warmup: big ? 1 : 2, iters: quick ? 3 : 5, budgetS: big ? 20 : 15, timeoutS: 400 };
}

const ratio = (a?: ChildResult, b?: ChildResult) => (a?.ok && b?.ok && a.tokPerS && b.tokPerS ? a.tokPerS / b.tokPerS : undefined);
function cell(r: ChildResult | undefined): string {
  if (!r) return 'skipped';
  if (r.ok) return fmt(r.tokPerS);
  if (r.doesNotFit) return 'does not fit';
  if (r.timedOut) return 'timeout';
  return 'error';
}

interface SearchProbe {
  family: string;
  layers: number;
  params: number;
  batch: [number, number];
  fits: boolean;
  tokPerS?: number;
  peakRssMb?: number;
  error?: string;
  wallS?: number;
}

interface SearchOutcome {
  family: string;
  batch: [number, number];
  /** most layers that fit (0: none) */
  layers: number;
  firstFailingLayers: number | null;
  exact: boolean;
  params?: number;
  trainTokPerS?: number;
  peakRssMb?: number;
  config?: Record<string, unknown>;
}

interface ShapeResult {
  name: string;
  note: string;
  config: Record<string, unknown>;
  params: number;
  batch: [number, number];
  heed: Partial<Record<Measure, ChildResult>>;
  torch: Partial<Record<Measure, ChildResult>>;
  ratio: Partial<Record<Measure, number>>;
  /** --device webgpu: heed on WebGPU in the same run, and its ratio to heed on wasm */
  webgpu?: Partial<Record<Measure, ChildResult>>;
  webgpuRatio?: Partial<Record<Measure, number>>;
}

/** a pair during which other processes used more than this share of the cores gets a '*' */
const BUSY = 0.15;
const otherOf = (r?: ChildResult) => (typeof r?.otherCpu === 'number' ? r.otherCpu : 0);
function ratioCell(r: ShapeResult, m: Measure): string {
  const x = fmt(r.ratio[m], 2);
  return x !== '—' && Math.max(otherOf(r.heed[m]), otherOf(r.torch[m])) > BUSY ? `${x}*` : x;
}

function table(rows: ShapeResult[]): string {
  const head = ['shape', 'params', 'fwd heed', 'fwd torch', 'ratio', 'decode heed', 'decode torch', 'ratio', 'train heed', 'train torch', 'ratio', 'peak RSS MB heed / torch (fwd, decode, train)'];
  const lines = rows.map((r) => {
    const rss = (e: Partial<Record<Measure, ChildResult>>) => MEASURES.map((m) => (e[m]?.ok ? fmt(e[m]!.peakRssMb) : '—')).join(', ');
    return [
      r.name, `${(r.params / 1e6).toFixed(1)}M`,
      cell(r.heed.fwd), cell(r.torch.fwd), ratioCell(r, 'fwd'),
      cell(r.heed.decode), cell(r.torch.decode), ratioCell(r, 'decode'),
      cell(r.heed.train), cell(r.torch.train), ratioCell(r, 'train'),
      `${rss(r.heed)} / ${rss(r.torch)}`,
    ];
  });
  return markdownTable(head, lines);
}

async function main() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: process.env.HEED_BENCH_QUICK === '1' },
      shapes: { type: 'string' },
      measures: { type: 'string' },
      'no-torch': { type: 'boolean', default: false },
      'no-search': { type: 'boolean', default: false },
      'no-save': { type: 'boolean', default: false },
      'search-budget': { type: 'string', default: '330' },
      rounds: { type: 'string', default: process.env.HEED_BENCH_ROUNDS ?? '1' },
      'idle-wait': { type: 'string', default: process.env.HEED_BENCH_IDLE_WAIT ?? '20' },
      child: { type: 'string' },
      device: { type: 'string', default: 'wasm' },
    },
  });
  if (values.child) {
    const spec = JSON.parse(values.child) as ChildSpec;
    await childMain(() => heedChild(spec));
    return;
  }

  const quick = values.quick!;
  if (values.device !== 'wasm' && values.device !== 'webgpu') throw new Error(`--device must be wasm or webgpu, got "${values.device}"`);
  const gpu = values.device === 'webgpu';
  const rounds = Math.max(1, Number(values.rounds) || 1);
  const t0 = performance.now();
  const threads = benchThreads();
  const wanted = values.shapes ? values.shapes.split(',') : quick ? ['probe-4.2M', 'llama-30M'] : SHAPES.map((s) => s.name);
  const unknown = wanted.filter((n) => !SHAPES.some((s) => s.name === n));
  if (unknown.length) throw new Error(`unknown shape(s) ${unknown.join(', ')}; known: ${SHAPES.map((s) => s.name).join(', ')}`);
  const shapes = SHAPES.filter((s) => wanted.includes(s.name));
  const measures = values.measures ? (values.measures.split(',') as Measure[]) : MEASURES;
  const torchVersion = values['no-torch'] ? null : await torchAvailable();
  if (!values['no-torch'] && !torchVersion) console.log(`note: ${PYTHON} has no usable torch: PyTorch columns are skipped (Debian: apt-get install python3-torch libopenblas0-openmp)`);
  const log = makeLog(t0);
  const idleWait = Number(values['idle-wait']);
  log(`threads ${threads}, torch ${torchVersion ?? 'absent'}, shapes ${shapes.map((s) => s.name).join(', ')}${quick ? ' (quick)' : ''}`);

  const { parseModelConfig, parameterCount } = await import('../src/models/config.js');
  const rows: ShapeResult[] = [];
  for (const shape of shapes) {
    const row: ShapeResult = { name: shape.name, note: shape.note, config: shape.config, params: parameterCount(parseModelConfig(shape.config)), batch: shape.batch, heed: {}, torch: {}, ratio: {}, ...(gpu ? { webgpu: {}, webgpuRatio: {} } : {}) };
    rows.push(row);
    for (const m of measures) {
      const pl = plan(shape, m, quick);
      const spec: ChildSpec = { measure: m, config: shape.config, batch: shape.batch, warmup: pl.warmup, iters: pl.iters, budgetS: pl.budgetS, threads, promptLen: 32, newTokens: 64, seed: 0 };
      // rounds > 1: alternate the order (heed, torch / torch, heed) and keep each engine's fastest round
      const best = (a: ChildResult | undefined, b: ChildResult) => (!a ? b : b.ok && (!a.ok || (b.tokPerS ?? 0) > (a.tokPerS ?? 0)) ? b : a);
      for (let round = 0; round < rounds; round++) {
        const order: ('heed' | 'torch' | 'webgpu')[] = round % 2 ? ['torch', 'heed'] : ['heed', 'torch'];
        if (gpu) order.splice(1, 0, 'webgpu');
        for (const eng of order) {
          if (eng === 'torch' && !torchVersion) continue;
          const idle = idleWait > 0 ? await waitIdle(idleWait) : undefined;
          const r = eng === 'heed' ? await runHeed(spec, pl.timeoutS) : eng === 'webgpu' ? await runHeed({ ...spec, device: 'webgpu' }, pl.timeoutS) : await runTorch(spec, pl.timeoutS);
          if (idle) Object.assign(r, idle);
          if (rounds > 1) r.round = round;
          row[eng]![m] = best(row[eng]![m], r);
          log(`${shape.name} ${m} ${eng}${rounds > 1 ? ` (round ${round + 1})` : ''}: ${r.ok ? `${fmt(r.tokPerS)} tok/s, ${fmt(r.peakRssMb)} MB` : r.error} (${fmt(r.wallS, 1)} s${typeof r.otherCpu === 'number' ? `, other processes used ${(100 * r.otherCpu).toFixed(0)}% of the cores` : ''}${idle && idle.waitedS > 2 ? `, waited ${idle.waitedS} s for them` : ''})`);
        }
        if (!row.heed[m]?.ok && row.heed[m]?.doesNotFit) break; // no point repeating a measurement that does not fit
      }
      row.ratio[m] = ratio(row.heed[m], row.torch[m]);
      if (row.webgpu && row.webgpuRatio) row.webgpuRatio[m] = ratio(row.webgpu[m], row.heed[m]);
    }
  }

  // largest full fine-tuning (one jitted train step incl. AdamW) that fits in jax-js's 4 GiB wasm memory
  const search: SearchProbe[] = [];
  const largest: SearchOutcome[] = [];
  if (!values['no-search'] && !quick && !gpu && measures.includes('train')) {
    const deadline = performance.now() + Number(values['search-budget']) * 1000;
    const smol = rows.find((r) => r.name === 'smollm2-135M');
    const known = new Map<string, ChildResult>();
    if (smol?.heed.train) known.set(`smollm2-width/30@${smol.batch.join('x')}`, smol.heed.train);
    const families: { name: string; config: (L: number) => Record<string, unknown> }[] = [
      { name: 'smollm2-width', config: (L) => smollm2Config(L) },
      { name: 'smollm2-body-vocab8192', config: (L) => ({ ...smollm2Config(L), vocab_size: 8192 }) },
    ];
    const probe = async (fam: (typeof families)[number], L: number, batch: [number, number]): Promise<ChildResult> => {
      const key = `${fam.name}/${L}@${batch.join('x')}`;
      const hit = known.get(key);
      if (hit) return hit;
      const config = fam.config(L);
      // 1x128: compile + 1 timed step; 4x256 (slow steps): the first step only, which shows whether it fits
      const warmup = batch[0] * batch[1] <= 128 ? 1 : 0;
      const spec: ChildSpec = { measure: 'train', config, batch, warmup, iters: 1, budgetS: 0, threads, promptLen: 32, newTokens: 64, seed: 0 };
      const r = await runHeed(spec, 400);
      if (r.ok && warmup === 0) r.tokPerS = undefined; // a first step includes compilation: no throughput
      known.set(key, r);
      const params = parameterCount(parseModelConfig(config));
      search.push({ family: fam.name, layers: L, params, batch, fits: r.ok, tokPerS: r.tokPerS, peakRssMb: r.peakRssMb, error: r.ok ? undefined : r.error, wallS: r.wallS });
      log(`full-FT search ${fam.name}: ${L} layers (${(params / 1e6).toFixed(1)}M) at ${batch.join('x')}: ${r.ok ? `fits${r.tokPerS ? `, ${fmt(r.tokPerS)} tok/s` : ''}, ${fmt(r.peakRssMb)} MB` : r.error} (${fmt(r.wallS, 1)} s)`);
      return r;
    };
    /** binary search on layers in [1, hi], starting at guess: lo fits (0 = none), bad does not; stops at the deadline */
    const largestLayers = async (fam: (typeof families)[number], batch: [number, number], hi: number, guess: number): Promise<SearchOutcome> => {
      let lo = 0;
      let bad = hi + 1;
      const g = Math.max(1, Math.min(guess, hi));
      if ((await probe(fam, g, batch)).ok) lo = g;
      else {
        bad = g;
        if (g > 1 && performance.now() < deadline) {
          if ((await probe(fam, 1, batch)).ok) lo = 1;
          else bad = 1;
        }
      }
      while (bad - lo > 1 && performance.now() < deadline) {
        const mid = Math.floor((lo + bad) / 2);
        if ((await probe(fam, mid, batch)).ok) lo = mid;
        else bad = mid;
      }
      const out: SearchOutcome = { family: fam.name, batch, layers: lo, firstFailingLayers: bad <= hi ? bad : null, exact: bad - lo === 1 };
      if (lo > 0) {
        const r = known.get(`${fam.name}/${lo}@${batch.join('x')}`)!;
        Object.assign(out, { params: parameterCount(parseModelConfig(fam.config(lo))), trainTokPerS: r.tokPerS, peakRssMb: r.peakRssMb, config: fam.config(lo) });
      }
      return out;
    };
    const small = await largestLayers(families[0], [1, 128], 30, 26);
    largest.push(small);
    const cap = small.layers || 30; // what does not fit at 1x128 does not fit at 4x256
    const big = await largestLayers(families[0], [4, 256], cap, 1);
    largest.push(big);
    if (big.layers === 0 && performance.now() < deadline) largest.push(await largestLayers(families[1], [4, 256], cap, Math.ceil(cap / 2)));
  }

  const elapsedS = (performance.now() - t0) / 1000;
  console.log(`\nheed vs PyTorch, tokens/s (ratio = heed / torch); threads ${threads}; ${os.cpus()[0]?.model ?? 'cpu'}`);
  console.log(table(rows));
  if (rows.some((r) => MEASURES.some((m) => ratioCell(r, m).endsWith('*')))) console.log(`  * other processes used more than ${100 * BUSY}% of the cores while this pair ran: timings are skewed (PyTorch's OpenMP threads suffer most), so this ratio is unreliable`);
  for (const r of rows) console.log(`  ${r.name}: ${r.note}; fwd/train batch ${r.batch.join('x')}; decode batch 1, prompt 32 + 64 new tokens (greedy)`);
  if (gpu) {
    const adapter = rows.flatMap((r) => Object.values(r.webgpu ?? {})).find((h) => h?.ok && h.adapter)?.adapter ?? 'no adapter';
    console.log(`\nheed on WebGPU (${adapter}) vs heed on wasm (${threads} threads), tokens/s (ratio = webgpu / wasm)${/swiftshader/i.test(String(adapter)) ? ': SwiftShader is a CPU implementation of Vulkan, so this is a correctness run, not a GPU figure' : ''}`);
    console.log(markdownTable(['shape', 'fwd wasm', 'fwd webgpu', 'ratio', 'decode wasm', 'decode webgpu', 'ratio', 'train wasm', 'train webgpu', 'ratio'], rows.map((r) => [r.name, ...MEASURES.flatMap((m) => [cell(r.heed[m]), cell(r.webgpu?.[m]), fmt(r.webgpuRatio?.[m], 2)])])));
  }
  const fails = rows.flatMap((r) => (['heed', 'torch', 'webgpu'] as const).flatMap((e) => MEASURES.filter((m) => r[e]?.[m] && !r[e]![m]!.ok).map((m) => `  ${r.name} ${m} ${e}: ${r[e]![m]!.error}`)));
  if (fails.length) console.log('failures:\n' + fails.join('\n'));
  for (const x of largest) {
    const bound = x.exact ? '' : ' (search stopped at its time budget: a lower bound)';
    if (x.layers === 0) console.log(`full fine-tuning at ${x.batch.join('x')}, ${x.family}: ${x.firstFailingLayers === 1 ? 'does not fit even with 1 layer' : 'nothing fits among the depths tried'}`);
    else console.log(`largest full fine-tuning at ${x.batch.join('x')}, ${x.family}: ${x.layers} layers = ${((x.params ?? 0) / 1e6).toFixed(1)}M params, ${x.trainTokPerS ? `${fmt(x.trainTokPerS)} tok/s, ` : ''}peak RSS ${fmt(x.peakRssMb)} MB${x.firstFailingLayers ? `; ${x.firstFailingLayers} layers does not fit` : ''}${bound}`);
  }
  console.log(`total ${elapsedS.toFixed(0)} s`);

  const result = {
    date: new Date().toISOString(), quick, rounds, elapsedS, device: values.device,
    machine: machineInfo(),
    threads, torch: torchVersion, heedEngine: rows.flatMap((r) => Object.values(r.heed)).find((h) => h?.engine)?.engine,
    decode: { batch: 1, promptLen: 32, newTokens: 64, sampling: 'greedy', tokPerS: '1000 / median per-token step time, prefill and compile excluded' },
    shapes: rows, fullFineTuningSearch: { families: { 'smollm2-width': 'SmolLM2-135M shape (hidden 576, 9 heads / 3 KV heads, intermediate 1536, vocab 49152, tied) with fewer layers', 'smollm2-body-vocab8192': 'the same with vocab 8192 (tried at 4x256 only when no smollm2-width depth fits there)' }, step: 'train step = loss + grads + AdamW, 1 warm-up (compile) + 1 timed step', tried: search, largest },
  };
  if (!values['no-save']) {
    const dir = `${HERE}results`;
    mkdirSync(dir, { recursive: true });
    // --device webgpu keeps its own latest file: bench/results/latest.json stays the wasm-vs-PyTorch record
    const tag = gpu ? 'webgpu-' : '';
    const file = `${dir}/${tag}${stamp()}.json`;
    writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
    writeFileSync(`${dir}/${tag}latest.json`, JSON.stringify(result, null, 2) + '\n');
    console.log(`saved ${file} and bench/results/${tag}latest.json`);
  }
}

await main();
