/**
 * Training benchmark (not a test): what `heed train` does per optimizer step — src/train/trainer.ts `train()`
 * with its gradients (src/train/segmented.ts: layer by layer, or one fused program for small models under the
 * default `checkpointing: auto`), gradient norm + clipping and per-tensor AdamW —
 * on LIMA rows (chatml, packed, every micro-batch B x T), against the same step in PyTorch in the same run.
 *
 *   npm run bench:train                          # all cases + full-fine-tuning search (long: ~30-60 min on 2 cores)
 *   npm run bench:train -- --quick               # fewer steps, no search, no 4x256 LoRA case
 *   npm run bench:train -- --cases probe,llama --no-torch --no-save
 *   npm run bench:train -- --quick --native both --save-as train-native-DATE.json   # wasm and native kernels, same run
 *   other flags: --search-budget S (default 900), --idle-wait S (default 20), --keep-tmp, --checkpointing auto|layers|stored|off
 *   (the trainer's key; default: the trainer's default), --native on|off|both (matmul kernels: the engine's default
 *   [native when the addon is built], HEED_NATIVE=0, or each heed case twice: wasm first, then native), --save-as NAME
 *   (results file under bench/results/; train-latest.json is then left alone), --profile (time every kernel of each
 *   heed step by kind: bench/kernel-profile.ts); HEED_THREADS sets the
 *   thread count of both engines (default: all cores), HEED_BENCH_PYTHON the python with torch
 *
 * Each heed case runs in its own child process (peak RSS per case; "Allocation exceeds the 4 GiB memory32
 * limit" is recorded as "does not fit"): a random-weight Hugging Face folder is written to a temp dir by
 * another child first (so that generating the weights does not count in the trainer's RSS), then the child
 * calls train() with eval: null and a callback that timestamps every step and ends the run at the last step,
 * before the trainer writes its final checkpoint. Step times come from metrics.jsonl (tokens_per_s); the first
 * steps (compilation) are dropped. Every run also records the machine's FP32 FMA peak and PyTorch's (and the native
 * addon's) own sgemm GFLOP/s at a training shape, measured at its start and end, and per case the model FLOPs of a
 * step (bench/flops.ts) with each engine's model FLOP/s and share of that peak. See bench/README.md, "Training benchmark".
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LLAMA_30M, PROBE, QWEN25_05B, SMOLLM2_135M, smollm2Config } from './shapes.js';
import { HERE, PYTHON, ROOT, TRAIN_SGEMM, benchThreads, busyCpuS, childMain, fmt, linearGemms, machineInfo, makeLog, markdownTable, measuredFmaPeak, median, nativeSgemm, peakRssMb, runProcess, runTorch, stamp, torchAvailable, torchSgemm, waitIdle, type ChildResult, type FmaPeak, type SgemmResult } from './common.js';
import { flopRate, matmulParamsOf, trainFlopsPerToken, type StepFlops } from './flops.js';
import { PROFILE_HEAD } from './kernel-profile.js';

const LIMA = join(ROOT, '..', 'shared', 'data', 'lima.jsonl');
const SMOL_TOKENIZER = join(ROOT, '..', 'shared', 'tokenizers', 'SmolLM2-135M-Instruct', 'tokenizer.json');
const BYTE_TOKENIZER_DIR = join(ROOT, 'models/tiny-dolly');
const LORA_TARGETS = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'];
/** the optimizer settings of every case, on both sides (heed train's defaults, constant lr) */
const ADAMW = { lr: 2e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };
const GRAD_CLIP = 1.0;

type TokenizerKind = 'smollm2' | 'byte';
interface LoraSpec {
  r: number;
  alpha: number;
  targets: string[];
}

/** one benchmark case (a table row) */
interface TrainCase {
  id: string;
  /** selection key for --cases (a case matches when its id or group starts with a given string) */
  group: string;
  shape: string;
  note: string;
  config: Record<string, unknown>;
  tokenizer: TokenizerKind;
  batch: [number, number];
  lora: LoraSpec | null;
  /** steps dropped (compilation), steps timed at least / at most, seconds of timed steps after which to stop */
  drop: number;
  minTimed: number;
  maxTimed: number;
  budgetS: number;
  torch: boolean;
  timeoutS: number;
}

/** what the heed child is asked to do: the case's batch, adapter and timing plan, plus where and how */
interface TrainSpec extends Pick<TrainCase, 'batch' | 'lora' | 'drop' | 'minTimed' | 'maxTimed' | 'budgetS'> {
  modelDir: string;
  outDir: string;
  threads: number;
  /** the trainer's `checkpointing` key (auto | layers | stored | off); undefined: its default */
  checkpointing?: string;
  /** --profile: time every kernel by kind (bench/kernel-profile.ts) */
  profile?: boolean;
}

interface MakeModelSpec {
  config: Record<string, unknown>;
  dir: string;
  tokenizer: TokenizerKind;
  seed: number;
}

// ---------------------------------------------------------------------------------------------------------
// children
// ---------------------------------------------------------------------------------------------------------

/** write a random-weight Hugging Face folder (config.json, model.safetensors, tokenizer files) */
async function makeModelChild(spec: MakeModelSpec): Promise<ChildResult> {
  const { parseModelConfig, parameterCount } = await import('../src/models/config.js');
  const { randomParams } = await import('../src/models/random.js');
  const { saveHostModel } = await import('../src/models/load.js');
  const t0 = performance.now();
  const c = parseModelConfig(spec.config);
  saveHostModel(spec.dir, { raw: spec.config, tensors: randomParams(c, spec.seed, { exactNorms: true }) }, { dtype: 'F32' });
  if (spec.tokenizer === 'smollm2') {
    copyFileSync(SMOL_TOKENIZER, join(spec.dir, 'tokenizer.json'));
    // the shared folder has tokenizer.json only; SmolLM2-Instruct's special tokens (no BOS: chatml starts with <|im_start|>)
    writeFileSync(join(spec.dir, 'tokenizer_config.json'), JSON.stringify({ bos_token: null, eos_token: '<|im_end|>', pad_token: '<|im_end|>', model_max_length: 8192 }, null, 2) + '\n');
  } else {
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(BYTE_TOKENIZER_DIR, f), join(spec.dir, f));
  }
  return { ok: true, params: parameterCount(c), makeS: (performance.now() - t0) / 1000, peakRssMb: peakRssMb() };
}

class BenchDone extends Error {}

/** current and peak RSS of this process from /proc/self/status (MB), else maxRSS */
function rssNow(): { rssMb?: number; hwmMb: number } {
  try {
    const s = readFileSync('/proc/self/status', 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1]);
    return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024 };
  } catch {
    return { hwmMb: peakRssMb() };
  }
}

/** run heed's train() on the folder and read its per-step metrics */
async function trainChild(spec: TrainSpec): Promise<ChildResult> {
  const { initEngine } = await import('../src/engine/index.js');
  const { validateTrainConfig } = await import('../src/train/config.js');
  const { train } = await import('../src/train/trainer.js');
  const prof = spec.profile ? await import('./kernel-profile.js') : undefined;
  await prof?.installProfiler(spec.threads);
  const info = await initEngine({ threads: spec.threads });
  await prof?.attachProfiler();
  const [B, T] = spec.batch;
  const maxSteps = spec.drop + spec.maxTimed + 1;
  const cfg = validateTrainConfig(
    {
      model: spec.modelDir, data: LIMA, template: 'chatml', mask: 'output', packing: true, max_length: T, batch_size: B, grad_accum: 1,
      steps: maxSteps, lr: ADAMW.lr, schedule: 'constant', adamw: { beta1: ADAMW.beta1, beta2: ADAMW.beta2, eps: ADAMW.eps, weight_decay: ADAMW.weightDecay },
      grad_clip: GRAD_CLIP, eval: null, eval_every: 1, save_every: 1_000_000, seed: 0, name: 'run', out: spec.outDir,
      lora: spec.lora ? { ...spec.lora, dropout: 0 } : null,
      ...(spec.checkpointing ? { checkpointing: spec.checkpointing } : {}),
    },
    'train-bench',
    spec.outDir,
  );
  // eval_every 1 with eval: null makes the trainer call onEval after every step and do nothing else (no eval rows,
  // no best checkpoint). The callback timestamps the step and ends the run (by throwing) before the trainer's
  // final checkpoint, once enough steps are timed.
  const marks: { step: number; t: number; rssMb?: number; hwmMb: number; gemmMs: number; cpuMs: number }[] = [];
  const cpuMs = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const logs: string[] = [];
  const tStart = performance.now();
  const cb = {
    name: 'train-bench',
    async onEval(ctx: { step: number }) {
      marks.push({ step: ctx.step, t: performance.now(), ...rssNow(), gemmMs: info.native?.gemmMs ?? 0, cpuMs: cpuMs() });
      // seconds of the steps after the dropped ones (from the end of step `drop` to now)
      const from = spec.drop > 0 ? marks[spec.drop - 1]?.t : tStart;
      const timedS = from === undefined ? 0 : (performance.now() - from) / 1000;
      // the last step's own metrics line is not written (the run ends inside its onEval): it is the +1
      if (ctx.step >= maxSteps || (ctx.step >= spec.drop + spec.minTimed + 1 && timedS > spec.budgetS)) throw new BenchDone();
    },
  };
  try {
    await train(cfg, { quiet: true, callbacks: [cb], log: (s) => logs.push(s) });
  } catch (e) {
    if (!(e instanceof BenchDone)) {
      // say how far it got (an out-of-memory failure in step 1 or after several steps reads differently)
      const err = e instanceof Error ? e : new Error(String(e));
      err.message += ` (${marks.length ? `after ${marks.length} completed step${marks.length > 1 ? 's' : ''}` : 'before the first step completed'}; RSS high-water ${fmt(rssNow().hwmMb)} MB)`;
      throw err;
    }
  }
  const recs = readFileSync(join(spec.outDir, 'run', 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, number>);
  // step ms from tokens_per_s (the trainer's own timing: micro-batch gradients + norm + AdamW dispatch); jax-js runs
  // a step's queued AdamW kernels when the next step first waits, so step k's time includes step k-1's update
  let prevTok = 0;
  const steps = recs.map((r) => {
    const ntok = r.tokens - prevTok;
    prevTok = r.tokens;
    return { step: r.step, ms: (1000 * ntok) / r.tokens_per_s, fill: ntok / (B * T), loss: r.loss, gradNorm: r.grad_norm, realTokPerS: r.tokens_per_s };
  });
  const timed = steps.filter((s) => s.step > spec.drop);
  if (!timed.length) throw new Error(`no timed step (metrics.jsonl has ${recs.length} records)`);
  const md = median(timed.map((s) => s.ms));
  // wall time between consecutive steps' callbacks (everything the loop does, the deferred AdamW included)
  const wall = marks.slice(1).map((m, i) => ({ step: m.step, ms: m.t - marks[i].t, gemmMs: (m.gemmMs - marks[i].gemmMs) / info.threads, cpuMs: m.cpuMs - marks[i].cpuMs })).filter((w) => w.step > spec.drop);
  // --profile: each timed step's window between step callbacks, by kernel kind
  const profSteps = prof ? marks.slice(1).map((m, i) => ({ step: m.step, p: prof.profileWindow(marks[i].t, m.t) })).filter((x) => x.step > spec.drop) : [];
  const profile = prof && profSteps.length ? { steps: profSteps.map((x) => ({ step: x.step, ...x.p })), median: prof.medianProfile(profSteps.map((x) => x.p)), rows: prof.profileRows(prof.medianProfile(profSteps.map((x) => x.p))) } : undefined;
  const trainable = /([\d,]+) (?:trainable )?parameters/.exec(logs.find((l) => /parameters/.test(l)) ?? '')?.[1];
  const last = marks[marks.length - 1];
  return {
    ok: true,
    engine: `heed train (@jax-js/jax ${info.version}, ${info.device}${info.relaxedSimd ? ', relaxed SIMD' : ''}, ${info.kernels === 'native' ? `native GEMM kernels (${info.native?.isa})` : 'wasm kernels'}, segmented grads)`,
    gradients: logs.find((l) => l.startsWith('gradients: '))?.slice('gradients: '.length),
    version: info.version, threads: info.threads, batch: spec.batch,
    // which matmul kernels ran: the native addon's ISA, why the route was off, kernels claimed / left to wasm, and the
    // native GEMM wall time per timed step (worker time / threads) beside the step's wall time
    kernels: info.kernels, channel: info.channel, nativeIsa: info.native?.isa ?? null, nativeReason: info.native?.reason || undefined,
    nativeClaimed: info.native?.claimed, nativeFallback: info.native?.fallback,
    gemmMsPerStep: info.kernels === 'native' ? median(wall.map((w) => w.gemmMs)) : undefined,
    // CPU time of the whole process (all threads) between step callbacks: less sensitive to other load than wall time
    cpuMedianMs: median(wall.map((w) => w.cpuMs)),
    trainableParams: trainable ? Number(trainable.replace(/,/g, '')) : undefined,
    tokPerS: (B * T) / (md / 1000), medianMs: md, timesMs: timed.map((s) => s.ms),
    realTokPerS: median(timed.map((s) => s.realTokPerS)), fill: median(steps.map((s) => s.fill)),
    wallMedianMs: median(wall.map((w) => w.ms)), wallTimesMs: wall.map((w) => w.ms),
    firstMs: steps[0]?.ms, setupMs: marks[0].t - tStart - (steps[0]?.ms ?? 0),
    loss: steps.map((s) => s.loss), gradNorm: steps.map((s) => s.gradNorm), stepsRun: last.step,
    rssAtStepsMb: marks.map((m) => Math.round(m.rssMb ?? NaN)), peakRssMb: Math.max(last.hwmMb, peakRssMb()),
    log: logs.filter((l) => /^(model|plan|data)/.test(l)),
    profile,
  };
}

// ---------------------------------------------------------------------------------------------------------
// parent
// ---------------------------------------------------------------------------------------------------------

const SELF = fileURLToPath(import.meta.url);
const runChild = (flag: string, spec: object, timeoutS: number, threads: number, env: Record<string, string> = {}) =>
  runProcess(process.execPath, [...process.execArgv, SELF, flag, JSON.stringify(spec)], { ...process.env, HEED_THREADS: String(threads), ...env }, timeoutS);

function cases(quick: boolean): TrainCase[] {
  const lora16: LoraSpec = { r: 16, alpha: 32, targets: LORA_TARGETS };
  const small = quick ? { drop: 2, minTimed: 3, maxTimed: 3, budgetS: 30 } : { drop: 2, minTimed: 3, maxTimed: 8, budgetS: 60 };
  const big = quick ? { drop: 1, minTimed: 2, maxTimed: 2, budgetS: 60 } : { drop: 1, minTimed: 2, maxTimed: 5, budgetS: 120 };
  const probe = { drop: 1, minTimed: 1, maxTimed: 1, budgetS: 0 };
  const out: TrainCase[] = [
    { id: 'probe-4.2M-full-8x128', group: 'probe', shape: PROBE.name, note: PROBE.note, config: PROBE.config, tokenizer: 'byte', batch: [8, 128], lora: null, ...small, torch: true, timeoutS: 600 },
    { id: 'llama-30M-full-4x256', group: 'llama', shape: LLAMA_30M.name, note: LLAMA_30M.note, config: LLAMA_30M.config, tokenizer: 'byte', batch: [4, 256], lora: null, ...small, torch: true, timeoutS: 900 },
    { id: 'smollm2-135M-lora16-1x256', group: 'smollm2-lora', shape: SMOLLM2_135M.name, note: SMOLLM2_135M.note, config: SMOLLM2_135M.config, tokenizer: 'smollm2', batch: [1, 256], lora: lora16, ...big, torch: true, timeoutS: 1200 },
  ];
  if (!quick) out.push({ id: 'smollm2-135M-lora16-4x256', group: 'smollm2-lora', shape: SMOLLM2_135M.name, note: SMOLLM2_135M.note, config: SMOLLM2_135M.config, tokenizer: 'smollm2', batch: [4, 256], lora: lora16, ...big, minTimed: 2, maxTimed: quick ? 2 : 3, torch: true, timeoutS: 1800 });
  for (const T of [128, 256]) out.push({ id: `qwen2.5-0.5B-lora16-1x${T}`, group: 'qwen-lora', shape: QWEN25_05B.name, note: QWEN25_05B.note, config: QWEN25_05B.config, tokenizer: 'smollm2', batch: [1, T], lora: lora16, ...probe, torch: true, timeoutS: 1200 });
  if (!quick) out.push({ id: 'qwen2.5-0.5B-lora16-4x256', group: 'qwen-lora', shape: QWEN25_05B.name, note: QWEN25_05B.note, config: QWEN25_05B.config, tokenizer: 'smollm2', batch: [4, 256], lora: lora16, ...probe, torch: true, timeoutS: 1800 });
  return out;
}

interface CaseResult {
  id: string;
  shape: string;
  note: string;
  config: Record<string, unknown>;
  params: number;
  trainableParams: number;
  batch: [number, number];
  lora: LoraSpec | null;
  heed?: ChildResult;
  /** with --native both: the same case on jax-js's wasm kernels (HEED_NATIVE=0), run just before `heed` */
  heedWasm?: ChildResult;
  torch?: ChildResult;
  ratio?: number;
  ratioWasm?: number;
  /** heed (native) tok/s over heedWasm tok/s */
  nativeSpeedup?: number;
  model?: ChildResult;
  /** model FLOPs of one step (bench/flops.ts: per token x B·T) and each engine's model FLOP/s, also as a share of the FMA peak */
  flops?: StepFlops & { matmulParams: number; perStep: number };
  heedGflops?: number;
  heedPeakShare?: number;
  heedWasmGflops?: number;
  heedWasmPeakShare?: number;
  torchGflops?: number;
  torchPeakShare?: number;
}

interface SearchProbe {
  layers: number;
  params: number;
  batch: [number, number];
  fits: boolean;
  tokPerS?: number;
  peakRssMb?: number;
  firstMs?: number;
  loss?: number[];
  error?: string;
  wallS?: number;
}

/** a pair during which other processes used more than this share of the cores gets a '*' */
const BUSY = 0.15;
const otherOf = (r?: ChildResult) => (typeof r?.otherCpu === 'number' ? r.otherCpu : 0);
function cell(r: ChildResult | undefined, skipped = 'skipped'): string {
  if (!r) return skipped;
  if (r.ok) return fmt(r.tokPerS);
  if (r.doesNotFit) return 'does not fit';
  if (r.timedOut) return 'timeout';
  return 'error';
}
const mb = (r?: ChildResult) => (r?.ok || r?.peakRssMb ? fmt(r?.peakRssMb) : '—');
const millions = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : `${(n / 1e3).toFixed(0)}K`);

function table(rows: CaseResult[]): string {
  const both = rows.some((r) => r.heedWasm);
  const head = ['case', 'params', 'trainable', 'batch B×T', 'heed tok/s', ...(both ? ['heed wasm tok/s', 'native / wasm (wall)', 'native / wasm (CPU time)', 'GEMM share (native)'] : []), 'torch tok/s', 'ratio', ...(both ? ['ratio wasm'] : []), 'model GFLOP/step', 'heed GFLOP/s (% peak)', ...(both ? ['heed wasm GFLOP/s (% peak)'] : []), 'torch GFLOP/s (% peak)', 'peak RSS MB heed / torch', 'compile s (heed)'];
  const rate = (g?: number, share?: number) => (g === undefined ? '—' : `${fmt(g, g < 10 ? 1 : 0)} (${share === undefined ? '?' : `${fmt(100 * share, share < 0.1 ? 1 : 0)}%`})`);
  const lines = rows.map((r) => {
    const star = (x: number | undefined, other?: ChildResult) => {
      const t = fmt(x, 2);
      return t !== '—' && Math.max(otherOf(other), otherOf(r.torch)) > BUSY ? t + '*' : t;
    };
    const ratio = star(r.ratio, r.heed);
    const compileS = r.heed?.ok && typeof r.heed.firstMs === 'number' ? (r.heed.firstMs - (r.heed.medianMs ?? 0)) / 1000 : null;
    // the first step minus the median: below zero when the timed steps ran slower than the first (noise), shown as ≈0
    const compile = compileS === null ? '—' : compileS < 0 ? '≈0' : fmt(compileS, 1);
    const share = r.heed?.ok && typeof r.heed.gemmMsPerStep === 'number' && r.heed.wallMedianMs ? `${((100 * (r.heed.gemmMsPerStep as number)) / (r.heed.wallMedianMs as number)).toFixed(0)}%` : '—';
    const cpu = (x?: ChildResult) => (x?.ok && typeof x.cpuMedianMs === 'number' ? (x.cpuMedianMs as number) : undefined);
    const cpuRatio = cpu(r.heed) && cpu(r.heedWasm) ? cpu(r.heedWasm)! / cpu(r.heed)! : undefined;
    const extra = both ? [cell(r.heedWasm, '—'), fmt(r.nativeSpeedup, 2), fmt(cpuRatio, 2), share] : [];
    const flop = [r.flops ? fmt(r.flops.perStep / 1e9, 1) : '—', rate(r.heedGflops, r.heedPeakShare), ...(both ? [rate(r.heedWasmGflops, r.heedWasmPeakShare)] : []), rate(r.torchGflops, r.torchPeakShare)];
    return [r.id, millions(r.params), millions(r.trainableParams), r.batch.join('×'), cell(r.heed), ...extra, cell(r.torch, r.torch === undefined ? '—' : 'skipped'), ratio, ...(both ? [star(r.ratioWasm, r.heedWasm)] : []), ...flop, `${mb(r.heed)} / ${mb(r.torch)}`, compile];
  });
  return markdownTable(head, lines);
}

async function main() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: process.env.HEED_BENCH_QUICK === '1' },
      cases: { type: 'string' },
      'no-torch': { type: 'boolean', default: false },
      'no-search': { type: 'boolean', default: false },
      'no-save': { type: 'boolean', default: false },
      'search-budget': { type: 'string', default: '900' },
      'idle-wait': { type: 'string', default: process.env.HEED_BENCH_IDLE_WAIT ?? '20' },
      'keep-tmp': { type: 'boolean', default: false },
      checkpointing: { type: 'string' },
      native: { type: 'string', default: 'on' },
      'save-as': { type: 'string' },
      profile: { type: 'boolean', default: false },
      child: { type: 'string' },
      'make-model': { type: 'string' },
    },
  });
  if (values['make-model']) return childMain(() => makeModelChild(JSON.parse(values['make-model']!) as MakeModelSpec));
  if (values.child) return childMain(() => trainChild(JSON.parse(values.child!) as TrainSpec));

  const quick = values.quick!;
  const nativeMode = values.native!;
  if (!['on', 'off', 'both'].includes(nativeMode)) throw new Error(`--native ${nativeMode}: use on, off or both`);
  const saveAs = values['save-as'];
  if (saveAs !== undefined && !/^[\w.-]+\.json$/.test(saveAs)) throw new Error(`--save-as ${saveAs}: a file name ending in .json (saved under bench/results/)`);
  const t0 = performance.now();
  const loadAvgAtStart = os.loadavg();
  const log = makeLog(t0);
  const threads = benchThreads();
  const idleWait = Number(values['idle-wait']);
  const all = cases(quick);
  const wanted = values.cases?.split(',').map((s) => s.trim()).filter(Boolean);
  const matches = (key: string) => !wanted || wanted.some((w) => key.startsWith(w));
  const selected = all.filter((c) => matches(c.id) || matches(c.group));
  const runSearch = !quick && !values['no-search'] && (!wanted || wanted.some((w) => 'full-search'.startsWith(w) || w === 'search'));
  if (wanted && !selected.length && !runSearch) throw new Error(`--cases ${values.cases}: no case matches; cases: ${all.map((c) => c.id).join(', ')}, full-search`);
  for (const f of [LIMA, SMOL_TOKENIZER, join(BYTE_TOKENIZER_DIR, 'tokenizer.json')]) if (!existsSync(f)) throw new Error(`${f} not found (the benchmark trains on LIMA rows with these tokenizers)`);
  const torchVersion = values['no-torch'] ? null : await torchAvailable();
  if (!values['no-torch'] && !torchVersion) console.log(`note: ${PYTHON} has no usable torch: PyTorch columns are skipped (Debian: apt-get install python3-torch libopenblas0-openmp)`);
  log(`threads ${threads}, torch ${torchVersion ?? 'absent'}, cases ${selected.map((c) => c.id).join(', ')}${runSearch ? ', full-search' : ''}${quick ? ' (quick)' : ''}`);

  // the machine's ceiling and PyTorch's own sgemm speed, measured in this run (issue 17: every result records the CPU
  // model, PyTorch's sgemm GFLOP/s and heed's share of the FMA peak beside the ratio)
  // @ts-ignore -- plain ESM JavaScript next to the addon, typed by its JSDoc
  const { loadNativeGemm, ADDON_PATH } = (await import('../native/load.mjs')) as { loadNativeGemm: (o?: { quiet?: boolean; file?: string }) => Parameters<typeof nativeSgemm>[0] & { fmaPeak(iters?: number): number } | null; ADDON_PATH: string };
  const addon = loadNativeGemm({ quiet: true, file: ADDON_PATH }); // the peak and the native sgemm, whatever HEED_NATIVE says
  // the per-core peak: the best of the readings at the start and the end of the run (each best of 5)
  const peakReadings: (number | undefined)[] = [];
  const peak: FmaPeak & { threads: number; totalGflops?: number; readingsPerCore?: (number | undefined)[] } = { ...measuredFmaPeak(addon, 5), threads };
  const setPeak = (p: FmaPeak) => {
    peakReadings.push(p.measuredPerCore);
    Object.assign(peak, p, { perCore: Math.max(p.perCore ?? 0, peak.perCore ?? 0) || undefined, measuredPerCore: Math.max(0, ...peakReadings.map((x) => x ?? 0)) || undefined, readingsPerCore: [...peakReadings] });
    peak.totalGflops = peak.perCore ? +(peak.perCore * threads).toFixed(1) : undefined;
  };
  setPeak(peak);
  const sgemmGemms = linearGemms(TRAIN_SGEMM.inDim, TRAIN_SGEMM.outDim, TRAIN_SGEMM.tokens);
  const sgemmTotal = (gs: SgemmResult[]) => {
    const flop = gs.reduce((a, g) => a + 2 * g.M * g.N * g.K, 0);
    const ms = gs.reduce((a, g) => a + Math.min(...g.ms), 0);
    const gflops = +(flop / ms / 1e6).toFixed(1);
    return { gflops, peakShare: peak.totalGflops ? +(gflops / peak.totalGflops).toFixed(3) : undefined };
  };
  const measureSgemm = async (when: 'start' | 'end') => {
    const idle = idleWait > 0 ? await waitIdle(idleWait) : undefined;
    const b0 = busyCpuS();
    const w0 = performance.now();
    const t = torchVersion ? await torchSgemm(sgemmGemms, threads) : `no torch${values['no-torch'] ? ' (--no-torch)' : ''}`;
    const n = addon ? nativeSgemm(addon, sgemmGemms, threads) : undefined;
    const b1 = busyCpuS();
    const wallS = (performance.now() - w0) / 1000;
    const torch = typeof t === 'string' ? { error: t } : { blas: t.blas, ...sgemmTotal(t.gemms), gemms: t.gemms };
    const native = n ? { isa: (addon as unknown as { info(): { isa: string } }).info().isa, ...sgemmTotal(n), gemms: n } : { error: 'native addon not built (npm run build:native)' };
    // all cores busy (this process, torch's child and others) while it ran: a quiet measurement reads about threads / cores
    const busyShare = b0 !== undefined && b1 !== undefined ? +((b1 - b0) / (wallS * os.cpus().length)).toFixed(2) : undefined;
    return { when, shape: TRAIN_SGEMM.layer, threads, torch, native, wallS: +wallS.toFixed(1), busyShare, loadAvg: os.loadavg().map((x) => +x.toFixed(2)), ...idle };
  };
  const sgemm = [await measureSgemm('start')];
  const sgemmLine = (m: (typeof sgemm)[number]) => `sgemm at ${m.shape} (fwd, dX, dW, each the best of up to 5 calls), ${threads} threads: PyTorch ${'gflops' in m.torch ? `${fmt(m.torch.gflops)} GFLOP/s (${m.torch.peakShare === undefined ? '?' : fmt(100 * m.torch.peakShare)}% of peak; ${(m.torch.blas ?? []).join(', ') || 'BLAS ?'})` : m.torch.error}; native addon ${'gflops' in m.native ? `${fmt(m.native.gflops)} GFLOP/s (${m.native.peakShare === undefined ? '?' : fmt(100 * m.native.peakShare)}%, ${m.native.isa})` : m.native.error}`;
  log(`FP32 FMA peak ${fmt(peak.perCore, 1)} GFLOP/s per core x ${threads} threads = ${fmt(peak.totalGflops)} GFLOP/s (${peak.note})`);
  log(sgemmLine(sgemm[0]));

  const tmp = mkdtempSync(join(os.tmpdir(), 'heed-train-bench-'));
  const cleanup = () => {
    if (!values['keep-tmp']) rmSync(tmp, { recursive: true, force: true });
  };
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));

  const { parseModelConfig, parameterCount, expectedShapes } = await import('../src/models/config.js');
  const { loraModules } = await import('../src/train/lora.js');
  const trainableOf = (config: Record<string, unknown>, lora: LoraSpec | null) => {
    const c = parseModelConfig(config);
    if (!lora) return parameterCount(c);
    const shapes = expectedShapes(c);
    return loraModules(c, lora.targets as never, (n) => shapes.get(n)!).reduce((a, m) => a + lora.r * (m.inDim + m.outDim), 0);
  };

  // model FLOPs of a case's step (bench/flops.ts) and each engine's model FLOP/s over its median step time
  const caseFlops = (c: TrainCase, row: CaseResult): Partial<CaseResult> => {
    const mc = parseModelConfig(c.config);
    const matmulParams = matmulParamsOf(expectedShapes(mc));
    const [B, T] = c.batch;
    const f = trainFlopsPerToken({ matmulParams, loraParams: c.lora ? row.trainableParams : 0, attention: { layers: mc.layers, seqLen: T, attnDim: mc.heads * mc.headDim } });
    const perStep = f.perToken * B * T;
    const at = (r?: ChildResult) => (r?.ok && typeof r.medianMs === 'number' ? flopRate(perStep, r.medianMs, peak.totalGflops) : undefined);
    const h = at(row.heed), hw = at(row.heedWasm), t = at(row.torch);
    const r3 = (x?: number) => (x === undefined ? undefined : +x.toFixed(3));
    return { flops: { ...f, matmulParams, perStep }, heedGflops: r3(h?.gflops), heedPeakShare: r3(h?.peakShare), heedWasmGflops: r3(hw?.gflops), heedWasmPeakShare: r3(hw?.peakShare), torchGflops: r3(t?.gflops), torchPeakShare: r3(t?.peakShare) };
  };

  // model folders: one per distinct (config, tokenizer), removed once no later case needs it
  let nModels = 0;
  let current: { key: string; dir: string; res: ChildResult } | undefined;
  const modelFor = async (config: Record<string, unknown>, tokenizer: TokenizerKind): Promise<{ dir: string; res: ChildResult }> => {
    const key = JSON.stringify([config, tokenizer]);
    if (current?.key === key) return current;
    if (current) rmSync(current.dir, { recursive: true, force: true });
    const dir = join(tmp, `model-${nModels++}`);
    const res = await runChild('--make-model', { config, dir, tokenizer, seed: 0 } satisfies MakeModelSpec, 900, threads);
    current = { key, dir, res };
    return current;
  };
  let nRuns = 0;
  const runHeed = async (c: { config: Record<string, unknown>; tokenizer: TokenizerKind; batch: [number, number]; lora: LoraSpec | null; drop: number; minTimed: number; maxTimed: number; budgetS: number; timeoutS: number }, env: Record<string, string> = nativeMode === 'off' ? { HEED_NATIVE: '0' } : {}): Promise<{ heed: ChildResult; model: ChildResult }> => {
    const m = await modelFor(c.config, c.tokenizer);
    if (!m.res.ok) return { heed: { ok: false, error: `writing the model folder failed: ${m.res.error}`, doesNotFit: false }, model: m.res };
    const outDir = join(tmp, `run-${nRuns++}`);
    mkdirSync(outDir, { recursive: true });
    const idle = idleWait > 0 ? await waitIdle(idleWait) : undefined;
    const spec: TrainSpec = { modelDir: m.dir, outDir, batch: c.batch, lora: c.lora, drop: c.drop, minTimed: c.minTimed, maxTimed: c.maxTimed, budgetS: c.budgetS, threads, checkpointing: values.checkpointing, profile: values.profile || undefined };
    const r = await runChild('--child', spec, c.timeoutS, threads, env);
    rmSync(outDir, { recursive: true, force: true });
    if (idle) Object.assign(r, idle);
    return { heed: r, model: m.res };
  };
  const other = (r: ChildResult) => (typeof r.otherCpu === 'number' ? `, other processes used ${(100 * r.otherCpu).toFixed(0)}% of the cores` : '');

  const rows: CaseResult[] = [];
  for (const c of selected) {
    const row: CaseResult = { id: c.id, shape: c.shape, note: c.note, config: c.config, params: parameterCount(parseModelConfig(c.config)), trainableParams: trainableOf(c.config, c.lora), batch: c.batch, lora: c.lora };
    rows.push(row);
    if (nativeMode === 'both') {
      row.heedWasm = (await runHeed(c, { HEED_NATIVE: '0' })).heed;
      log(`${c.id} heed (wasm kernels): ${row.heedWasm.ok ? `${fmt(row.heedWasm.tokPerS)} tok/s (median step ${fmt(row.heedWasm.medianMs)} ms)` : row.heedWasm.error}${other(row.heedWasm)}`);
    }
    const { heed, model } = await runHeed(c);
    row.heed = heed;
    row.model = model;
    log(`${c.id} heed: ${heed.ok ? `${fmt(heed.tokPerS)} tok/s (median step ${fmt(heed.medianMs)} ms, first ${fmt(heed.firstMs)} ms), peak RSS ${fmt(heed.peakRssMb)} MB, loss ${(heed.loss ?? []).map((x) => x.toFixed(3)).join(' ')}` : heed.error} (${fmt(heed.wallS, 1)} s${other(heed)})`);
    if (c.torch && torchVersion) {
      const idle = idleWait > 0 ? await waitIdle(idleWait) : undefined;
      const spec = { measure: 'train', config: c.config, batch: c.batch, warmup: c.drop, iters: Math.max(2, c.maxTimed), budgetS: c.budgetS, threads, promptLen: 32, newTokens: 64, seed: 0, adamw: ADAMW, gradClip: GRAD_CLIP, lora: c.lora };
      const r = await runTorch(spec, c.timeoutS);
      if (idle) Object.assign(r, idle);
      row.torch = r;
      log(`${c.id} torch: ${r.ok ? `${fmt(r.tokPerS)} tok/s (median step ${fmt(r.medianMs)} ms), peak RSS ${fmt(r.peakRssMb)} MB, loss ${(r.loss ?? []).map((x) => x.toFixed(3)).join(' ')}` : r.error} (${fmt(r.wallS, 1)} s${other(r)})`);
    }
    if (row.heed?.ok && row.torch?.ok && row.heed.tokPerS && row.torch.tokPerS) row.ratio = row.heed.tokPerS / row.torch.tokPerS;
    if (row.heedWasm?.ok && row.torch?.ok && row.heedWasm.tokPerS && row.torch.tokPerS) row.ratioWasm = row.heedWasm.tokPerS / row.torch.tokPerS;
    if (row.heedWasm?.ok && row.heed?.ok && row.heedWasm.tokPerS && row.heed.tokPerS) row.nativeSpeedup = row.heed.tokPerS / row.heedWasm.tokPerS;
  }

  // largest full fine-tuning: SmolLM2-135M width with its 49,152 vocabulary, bisecting on the depth at 1x256
  const search: SearchProbe[] = [];
  let largest: { layers: number; firstFailingLayers: number | null; exact: boolean; params?: number; tokPerS?: number; peakRssMb?: number } | undefined;
  const searchBatch: [number, number] = [1, 256];
  if (runSearch) {
    const deadline = performance.now() + Number(values['search-budget']) * 1000;
    const known = new Map<number, boolean>();
    const probe = async (L: number): Promise<boolean> => {
      if (known.has(L)) return known.get(L)!;
      const config = smollm2Config(L);
      const params = parameterCount(parseModelConfig(config));
      const { heed: r } = await runHeed({ config, tokenizer: 'smollm2', batch: searchBatch, lora: null, drop: 1, minTimed: 1, maxTimed: 1, budgetS: 0, timeoutS: 900 });
      known.set(L, r.ok);
      search.push({ layers: L, params, batch: searchBatch, fits: r.ok, tokPerS: r.tokPerS, peakRssMb: r.peakRssMb, firstMs: r.firstMs, loss: r.loss, error: r.ok ? undefined : r.error, wallS: r.wallS });
      log(`full-FT search: ${L} layers (${millions(params)}) at ${searchBatch.join('x')}: ${r.ok ? `fits, ${fmt(r.tokPerS)} tok/s, peak RSS ${fmt(r.peakRssMb)} MB` : r.error} (${fmt(r.wallS, 1)} s)`);
      return r.ok;
    };
    // the whole model first (it may simply fit), then 1, then bisect
    let lo = 0;
    let bad = 31;
    if (await probe(30)) lo = 30;
    else {
      bad = 30;
      if (performance.now() < deadline) (await probe(1)) ? (lo = 1) : (bad = 1);
    }
    while (bad - lo > 1 && performance.now() < deadline) {
      const mid = Math.floor((lo + bad) / 2);
      if (await probe(mid)) lo = mid;
      else bad = mid;
    }
    const best = search.find((p) => p.layers === lo && p.fits);
    largest = { layers: lo, firstFailingLayers: bad <= 30 ? bad : null, exact: bad - lo === 1, params: best?.params, tokPerS: best?.tokPerS, peakRssMb: best?.peakRssMb };
  }
  if (current) rmSync(current.dir, { recursive: true, force: true });
  setPeak(measuredFmaPeak(addon, 5));
  sgemm.push(await measureSgemm('end'));
  // shares of the run's peak (known now: the best reading) for both sgemm measurements and every case
  for (const m of sgemm) for (const x of [m.torch, m.native]) if ('gflops' in x && peak.totalGflops) x.peakShare = +(x.gflops / peak.totalGflops).toFixed(3);
  for (const row of rows) Object.assign(row, caseFlops(selected.find((c) => c.id === row.id)!, row));
  log(`end of run: ${sgemmLine(sgemm[1])}`);

  const elapsedS = (performance.now() - t0) / 1000;
  console.log(`\nheed train vs PyTorch, training tokens/s (B·T / median step time; ratio = heed / torch); threads ${threads}; ${os.cpus()[0]?.model ?? 'cpu'}`);
  console.log(`FP32 FMA peak ${fmt(peak.perCore, 1)} GFLOP/s per core x ${threads} = ${fmt(peak.totalGflops)} GFLOP/s (${peak.measuredPerCore ? `measured by the native addon, best of the readings ${peak.readingsPerCore?.map((x) => fmt(x, 1)).join(' and ')} at the start and end` : 'nominal, from /proc/cpuinfo: build the addon to measure it'}); ${sgemmLine(sgemm[0])}; at the end: PyTorch ${'gflops' in sgemm[1].torch ? `${fmt(sgemm[1].torch.gflops)} GFLOP/s` : '—'}`);
  console.log(table(rows));
  console.log(`  model FLOPs per token (bench/flops.ts; no activation recompute counted): ${[...new Set(rows.map((r) => r.flops?.formula).filter(Boolean))].join('; ')}; N = parameters in matrix products; GFLOP/s = model FLOPs per step / median step time, % of the FMA peak of ${threads} threads`);
  if (rows.some((r) => r.ratio !== undefined && Math.max(otherOf(r.heed), otherOf(r.torch)) > BUSY)) console.log(`  * other processes used more than ${100 * BUSY}% of the cores while this pair ran: timings are skewed (PyTorch's OpenMP threads suffer most), so this ratio is unreliable`);
  console.log(`  step: LIMA rows, chatml, output mask, packed to T, AdamW lr ${ADAMW.lr} (betas ${ADAMW.beta1}/${ADAMW.beta2}, wd ${ADAMW.weightDecay}), grad clip ${GRAD_CLIP}; LoRA r=16 alpha 32 on q,k,v,o,gate,up,down`);
  for (const r of rows.filter((x) => x.heed?.ok)) {
    const h = r.heed!;
    console.log(`  ${r.id}: heed ${(h.timesMs as number[]).length} timed step(s) (median ${fmt(h.medianMs)} ms, wall between steps ${fmt(h.wallMedianMs as number)} ms), first step ${fmt((h.firstMs ?? 0) / 1000, 1)} s, set-up ${fmt((h.setupMs as number) / 1000, 1)} s, fill ${fmt(100 * (h.fill as number))}%, loss ${(h.loss ?? []).map((x) => x.toFixed(3)).join(' ')}`);
  }
  for (const r of rows.filter((x) => x.heed?.ok && x.heed.profile)) {
    const p = r.heed!.profile as { median: { wallMs: number; wasmMatmulReasons: Record<string, number> }; rows: string[][]; steps: unknown[] };
    console.log(`\n${r.id}: where a heed step goes (--profile: the median of ${p.steps.length} step windows, ${fmt(p.median.wallMs)} ms; compute = the slowest worker of each kernel)`);
    console.log(markdownTable(PROFILE_HEAD, p.rows));
    const why = Object.entries(p.median.wasmMatmulReasons).map(([k, n]) => `${k} ${n}`).join(', ');
    if (why) console.log(`  wasm multiply-reduce kernels by reason: ${why}`);
    if (typeof r.heed!.gemmMsPerStep === 'number') console.log(`  cross-check: the engine's own native GEMM time (engineInfo().native.gemmMs, all workers / threads) ${fmt(r.heed!.gemmMsPerStep as number)} ms per step; heed's median step with the hook ${fmt(r.heed!.medianMs)} ms`);
  }
  const fails = rows.flatMap((r) => (['heed', 'torch'] as const).filter((e) => r[e] && !r[e]!.ok).map((e) => `  ${r.id} ${e}: ${r[e]!.error}`));
  if (fails.length) console.log('failures:\n' + fails.join('\n'));
  if (largest) {
    const bound = largest.exact ? '' : ' (search stopped at its time budget: a lower bound)';
    if (largest.layers === 0) console.log(`full fine-tuning at ${searchBatch.join('x')}, SmolLM2 width (vocab 49,152): ${largest.firstFailingLayers === 1 ? 'does not fit even with 1 layer' : 'nothing fits among the depths tried'}`);
    else console.log(`largest full fine-tuning at ${searchBatch.join('x')}, SmolLM2 width (vocab 49,152): ${largest.layers} layers = ${millions(largest.params ?? 0)} params, ${fmt(largest.tokPerS)} tok/s, peak RSS ${fmt(largest.peakRssMb)} MB${largest.firstFailingLayers ? `; ${largest.firstFailingLayers} layers do not fit` : ''}${bound}`);
  }
  console.log(`total ${elapsedS.toFixed(0)} s`);

  const result = {
    date: new Date().toISOString(), quick, elapsedS, machine: machineInfo(), threads, torch: torchVersion,
    fmaPeak: peak, sgemm,
    heedEngine: rows.find((r) => r.heed?.engine)?.heed?.engine,
    native: { mode: nativeMode, kernels: rows.find((r) => r.heed?.kernels)?.heed?.kernels, isa: rows.find((r) => r.heed?.nativeIsa)?.heed?.nativeIsa ?? null, loadAvgAtStart, loadAvgAtEnd: os.loadavg() },
    step: {
      what: 'heed: src/train/trainer.ts train() (segmented gradients, grad norm + clipping, per-tensor AdamW) on LIMA rows (template chatml, mask output, packing, max_length T, batch_size B); torch: the same model in bench/torch_bench.py, cross-entropy on random ids (B x T), backward, clip_grad_norm_, AdamW',
      adamw: ADAMW, gradClip: GRAD_CLIP, data: relative(ROOT, LIMA), checkpointing: values.checkpointing ?? 'trainer default (auto: one fused program below 8 layers and 20M parameters, else layer by layer with stored activations where the estimate fits the heap, else recomputing)',
      tokPerS: 'B*T / median step time; heed step time = tokens / tokens_per_s of metrics.jsonl, first `drop` steps excluded; realTokPerS counts non-padding tokens only',
    },
    cases: rows,
    fullFineTuningSearch: runSearch ? { family: 'SmolLM2-135M width (hidden 576, 9 heads / 3 KV heads, intermediate 1536, vocab 49152, tied) with 1..30 layers', batch: searchBatch, steps: '3 (1 dropped, 1 timed, 1 ending the run)', tried: search, largest } : null,
  };
  if (!values['no-save']) {
    const dir = `${HERE}results`;
    mkdirSync(dir, { recursive: true });
    const file = `${dir}/${saveAs ?? `train-${stamp()}.json`}`;
    // the trainer's log lines name files by absolute path: committed results name them relative to the repository
    const text = JSON.stringify(result, null, 2).split(tmp + '/').join('<tmp>/').split(join(ROOT, '..') + '/').join('../').split(ROOT + '/').join('') + '\n';
    writeFileSync(file, text);
    if (saveAs === undefined) writeFileSync(`${dir}/train-latest.json`, text);
    console.log(`saved ${file}${saveAs === undefined ? ' and bench/results/train-latest.json' : ''}`);
  }
}

await main();
