/**
 * The native GEMM route under jax-js (src/engine/native.ts): with the addon built (`npm run build:native`), the
 * engine runs its matmul kernels natively by default; these tests compare that path with jax-js's own wasm kernels
 * (HEED_NATIVE=0) in child processes of this file (one engine per process):
 * - logits of every tiny architecture within 1e-4, and the loss and every gradient of a packed batch within
 *   |Δ| ≤ 1e-4 · max|g| + 1e-6 per tensor, also for the layer-by-layer gradients (SwiGLU's silu(gate)·(x·W_upᵀ) is
 *   one kernel there: the product with an elementwise epilogue, claimed natively) and for hand-made epilogues
 *   (softplus, sqrt/max, casts after a product);
 * - a short training run's (8 steps) loss curve within 1e-4 of the wasm one (not identical: the native kernels ran);
 * - a run killed with SIGKILL mid-run on the native path and resumed gives exactly (bit for bit) the losses of its
 *   uninterrupted native run.
 * Without the addon the tests are skipped with the reason (counted); HEED_REQUIRE_NATIVE=1 (set by .ci/run, which
 * builds the addon) makes that a failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadNativeGemm, lastReason } from '../native/load.mjs';
import { SHARED, TINY, TINY_NAMES, tmp } from './helpers.js';

const SELF = fileURLToPath(import.meta.url);
const DOLLY = join(SHARED, 'data/dolly_3k.jsonl');

const STEPS = 8;
/** the short run: llama-gqa (GQA attention, causal mask epilogue) on 160 Dolly rows, checkpoints every 4 steps */
const trainConfig = (out: string, data: string) => ({
  model: join(TINY, 'llama-gqa'),
  data,
  template: 'chatml',
  max_length: 64,
  truncation: 'truncate-right',
  batch_size: 4,
  steps: STEPS,
  lr: 3e-3,
  warmup_steps: 2,
  eval_every: 2,
  save_every: 4,
  eval_max_rows: 8,
  seed: 3,
  out,
  name: 'r',
});

type Route = { enabled: boolean; claimed: number; fallback: Record<string, number> };
type Engine = { kernels: string; native?: { active: boolean; reason: string; claimed: number; fallback: Record<string, number>; epilogues: Record<string, number>; isa: string | null; elementwise: Route; reductions: Route } };
interface ChildOut {
  engine: Engine;
  values?: Record<string, number[]>;
  losses?: number[];
  evalLosses?: number[];
  runDir?: string;
  /** kernels left to wasm during the numbers part */
  numbersFallback?: Record<string, number>;
  /** claimed kernels by epilogue kind, and the elementwise ones during the segmented gradients / the hand-made cases */
  epilogues?: Record<string, number>;
  segmentedElementwise?: number;
  /** llama-gqa's logits with every kernel in the workers (HEED_INLINE_WORK 0) equal those with small ones inline */
  inlineOffSame?: boolean;
  inlinedWhileOff?: number;
  handElementwise?: number;
  /** standalone elementwise kernels and reductions run natively during the layer-by-layer gradients */
  segmentedEw?: number;
  segmentedReductions?: number;
  ewFallback?: Record<string, number>;
  reductionFallback?: Record<string, number>;
}

// ------------------------------------------------------------------------------------------------ children
async function child(mode: string, outFile: string): Promise<void> {
  const { initEngine, jit, valueAndGrad, toHost, tree } = await import('../src/engine/index.js');
  const engine = (await initEngine()) as unknown as Engine;
  const out: ChildOut = { engine };
  const metrics = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  if (mode === 'numbers' || mode === 'all') {
    const { loadModel, disposeParams } = await import('../src/models/load.js');
    const { invFreqFor, sequenceLogits } = await import('../src/models/run.js');
    const { weightedLoss } = await import('../src/train/loss.js');
    const { toDeviceBatch } = await import('../src/train/step.js');
    const values: Record<string, number[]> = {};
    for (const name of TINY_NAMES) {
      const model = await loadModel(join(TINY, name));
      const c = model.config;
      const lg = await sequenceLogits(c, model.params, [[5, 9, 33, 70, 2, 101, 44, 8, 9, 12, 200, 3], [7, 7, 1, 250, 18]]);
      values[`${name} logits`] = lg.flatMap((r) => Array.from(r));
      const B = 2, T = 10;
      const ids = Int32Array.from({ length: B * T }, (_, i) => 3 + ((i * 37) % 250));
      const weights = Float32Array.from({ length: B * T }, (_, i) => (i % 3 === 0 ? 0 : 1));
      const segments = Int32Array.from({ length: B * T }, (_, i) => (i % T < 6 ? 0 : 1)); // two packed rows per sequence
      const positions = Int32Array.from({ length: B * T }, (_, i) => (i % T < 6 ? i % T : (i % T) - 6));
      const f = jit(valueAndGrad((p: Record<string, any>, b: any, fr: any) => weightedLoss(c, p, b, fr)));
      const [loss, grads] = f(tree.ref(model.params), toDeviceBatch({ B, T, ids, weights, segments, positions }), invFreqFor(c)) as [any, Record<string, any>];
      values[`${name} loss`] = Array.from(await toHost(loss));
      for (const k of Object.keys(grads).sort()) values[`${name} grad ${k}`] = Array.from(await toHost(grads[k]));
      disposeParams(model.params);
    }
    // the layer-by-layer gradients (what the trainer runs from 8 layers): jax-js fuses SwiGLU's silu(gate)·(x·W_upᵀ)
    // into the up-projection's kernel there, an elementwise epilogue after the product
    const elementwise = () => Object.entries(engine.native?.epilogues ?? {}).reduce((n, [k, v]) => n + (k.startsWith('elementwise') ? v : 0), 0);
    const { makeSegmented } = await import('../src/train/segmented.js');
    const { np, nn, fromHost } = await import('../src/engine/index.js');
    let e0 = elementwise();
    const ew0 = engine.native?.elementwise.claimed ?? 0, red0 = engine.native?.reductions.claimed ?? 0;
    // every kernel to the workers here (the tiny layer's are all small enough for the main thread otherwise), so that
    // the elementwise / reduction route takes every one it can
    const { setInlineWork: setInline } = await import('../src/engine/native.js');
    if (engine.kernels === 'native') setInline(0);
    {
      const model = await loadModel(join(TINY, 'llama-gqa'));
      const c = model.config;
      const B = 2, T = 12;
      const ids = Int32Array.from({ length: B * T }, (_, i) => 3 + ((i * 53) % 250));
      const weights = Float32Array.from({ length: B * T }, (_, i) => (i % 4 === 0 ? 0 : 1));
      const segments = Int32Array.from({ length: B * T }, (_, i) => (i % T < 7 ? 0 : 1));
      const positions = Int32Array.from({ length: B * T }, (_, i) => (i % T < 7 ? i % T : (i % T) - 7));
      const seg = makeSegmented(c, { trainable: new Set(Object.keys(model.params)) });
      const { loss, grads } = await seg.grad(model.params, toDeviceBatch({ B, T, ids, weights, segments, positions }), invFreqFor(c), np.array(5.5), 0);
      values['llama-gqa segmented loss'] = Array.from(await toHost(loss));
      for (const k of Object.keys(grads).sort()) values[`llama-gqa segmented grad ${k}`] = Array.from(await toHost(grads[k]));
      seg.dispose();
      disposeParams(model.params);
    }
    if (engine.kernels === 'native') setInline(Number(process.env.HEED_INLINE_WORK ?? 16384));
    out.segmentedElementwise = elementwise() - e0;
    out.segmentedEw = (engine.native?.elementwise.claimed ?? 0) - ew0;
    out.segmentedReductions = (engine.native?.reductions.claimed ?? 0) - red0;
    // hand-made epilogues: each jitted function is one multiply-reduce kernel with its elementwise tail fused (jax-js
    // 0.1.25; a Where over the product or tanh are not fused, so the op table is tested in test/native-gemm.test.ts)
    const M = 24, K = 40, N = 36;
    const data = (n: number, seed: number, scale: number) => Float32Array.from({ length: n }, (_, i) => scale * Math.sin(seed * 12.9898 + i * 78.233) * Math.cos(i * 0.37 + seed));
    const mm = (x: any, w: any) => np.matmul(x, w.transpose());
    const cases: [string, (x: any, w: any, g: any, b: any) => any][] = [
      ['silu(G)·(x·Wᵀ)', (x, w, g) => nn.silu(g).mul(mm(x, w))],
      ['log(1 + exp(x·Wᵀ + b))·G', (x, w, g, b) => np.log(np.exp(mm(x, w).add(b)).add(1)).mul(g)],
      ['sqrt(max(x·Wᵀ, 0) + G²)', (x, w, g) => np.sqrt(np.maximum(mm(x, w), 0).add(g.ref.mul(g)))],
      ['(G < b) as float32 · (x·Wᵀ)', (x, w, g, b) => np.less(g, b).astype(np.float32).mul(mm(x, w))],
    ];
    e0 = elementwise();
    for (const [name, fn] of cases) {
      const f = jit(fn as never) as (...a: unknown[]) => unknown;
      const y = f(fromHost(data(M * K, 1, 1), [M, K]), fromHost(data(N * K, 2, 0.7), [N, K]), fromHost(data(M * N, 3, 4), [M, N]), fromHost(data(N, 4, 2), [N]));
      values[`epilogue ${name}`] = Array.from(await toHost(y as never));
    }
    out.handElementwise = elementwise() - e0;
    // small kernels run on the main thread (HEED_INLINE_WORK): the same wasm code, so the same bits as in a worker
    if (engine.kernels === 'native') {
      const { setInlineWork, setNativeElementwise } = await import('../src/engine/native.js');
      const inl0 = (engine.native as { inlined?: number }).inlined ?? 0;
      // small elementwise kernels would otherwise go to the native route in the workers (other bits): wasm there too
      const ewWas = engine.native!.elementwise.enabled;
      setNativeElementwise(false);
      setInlineWork(0);
      const model = await loadModel(join(TINY, 'llama-gqa'));
      const lg = await sequenceLogits(model.config, model.params, [[5, 9, 33, 70, 2, 101, 44, 8, 9, 12, 200, 3], [7, 7, 1, 250, 18]]);
      out.inlineOffSame = JSON.stringify(lg.flatMap((r) => Array.from(r))) === JSON.stringify(values['llama-gqa logits']);
      out.inlinedWhileOff = ((engine.native as { inlined?: number }).inlined ?? 0) - inl0;
      setInlineWork(16384);
      setNativeElementwise(ewWas);
      disposeParams(model.params);
    }
    out.values = values;
    out.numbersFallback = { ...engine.native?.fallback };
    out.epilogues = { ...engine.native?.epilogues };
    out.ewFallback = { ...engine.native?.elementwise.fallback };
    out.reductionFallback = { ...engine.native?.reductions.fallback };
  }
  if (mode === 'train' || mode === 'kill' || mode === 'all') {
    const { validateTrainConfig } = await import('../src/train/config.js');
    const { train } = await import('../src/train/trainer.js');
    const dir = process.env.HEED_NATIVE_RUN_OUT ?? tmp('heed-native-');
    // kill: SIGKILL itself mid-run (after the step-4 checkpoint, at step 6), as a crash or `kill -9` would
    const killer = { name: 'kill', async onEval(ctx: { step: number }) { if (mode === 'kill' && ctx.step === 6) process.kill(process.pid, 'SIGKILL'); } };
    const s = await train(validateTrainConfig(trainConfig(dir, process.env.HEED_NATIVE_DATA!)), { quiet: true, callbacks: [killer] });
    out.runDir = s.run_dir;
  } else if (mode === 'resume') {
    const { train } = await import('../src/train/trainer.js');
    const s = await train({ resume: process.env.HEED_NATIVE_RESUME! }, { quiet: true });
    out.runDir = s.run_dir;
  } else if (mode !== 'numbers' && mode !== 'all') throw new Error(`unknown child mode ${mode}`);
  if (out.runDir) {
    const m = metrics(out.runDir);
    out.losses = m.filter((r) => r.loss !== undefined).map((r) => r.loss);
    out.evalLosses = m.filter((r) => r.eval_loss !== undefined).map((r) => r.eval_loss);
  }
  writeFileSync(outFile, JSON.stringify(out));
}

if (process.env.HEED_NATIVE_CHILD) {
  await child(process.env.HEED_NATIVE_CHILD, process.env.HEED_NATIVE_OUT!);
  process.exit(0);
}

// ------------------------------------------------------------------------------------------------ tests
const addon = loadNativeGemm({ quiet: true });
const required = process.env.HEED_REQUIRE_NATIVE === '1';
const skip = addon || required ? false : `native addon not built (${lastReason()}): run npm run build:native`;

/** run this file as a child in `mode`; resolves with its output (or null and the exit signal when it was killed) */
function runChild(mode: string, env: Record<string, string>): Promise<{ out: ChildOut | null; code: number | null; signal: string | null; stderr: string }> {
  const outFile = join(tmp('heed-native-out-'), 'out.json');
  const e: Record<string, string | undefined> = { ...process.env, HEED_NATIVE_CHILD: mode, HEED_NATIVE_OUT: outFile, ...env };
  delete e.NODE_TEST_CONTEXT; // the child is a script, not a test file
  const p = spawn(process.execPath, ['--import', 'tsx', SELF], { env: e, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  p.stderr.on('data', (d) => (stderr += d));
  return new Promise((res) => p.on('exit', (code, signal) => res({ out: existsSync(outFile) ? (JSON.parse(readFileSync(outFile, 'utf8')) as ChildOut) : null, code, signal, stderr })));
}

const dataDir = tmp('heed-native-data-');
const DATA = join(dataDir, 'rows.jsonl');
writeFileSync(DATA, readFileSync(DOLLY, 'utf8').split('\n').slice(0, 160).join('\n') + '\n');
const NATIVE = { HEED_NATIVE: '1', HEED_THREADS: '2', HEED_NATIVE_DATA: DATA };
const WASM = { HEED_NATIVE: '0', HEED_THREADS: '2', HEED_NATIVE_DATA: DATA };
/** one native and one wasm child (numbers + the short run each), shared by the two tests below */
let pair: ReturnType<typeof both> | undefined;
const both = () => Promise.all([runChild('all', NATIVE), runChild('all', WASM)]);

function assertNative(o: ChildOut | null, stderr: string): asserts o is ChildOut {
  assert.ok(o, `the native child wrote no result: ${stderr.slice(-2000)}`);
  assert.equal(o.engine.kernels, 'native', `the route is off: ${o.engine.native?.reason}`);
  assert.ok(o.engine.native!.claimed > 0, 'no matmul kernel ran natively');
}

test('the native route is available when required (HEED_REQUIRE_NATIVE=1)', { skip: required ? false : skip }, () => {
  assert.ok(addon, `HEED_REQUIRE_NATIVE=1 but the addon does not load: ${lastReason()}`);
});

test('native kernels: logits of every tiny architecture within 1e-4 of wasm; loss and gradients within 1e-4 relative', { skip }, async () => {
  assert.ok(addon, `the addon does not load: ${lastReason()}`);
  const [n, w] = await (pair ??= both());
  assertNative(n.out, n.stderr);
  assert.ok(w.out, `the wasm child wrote no result: ${w.stderr.slice(-2000)}`);
  assert.equal(w.out.engine.kernels, 'wasm');
  assert.equal(w.out.engine.native?.reason, 'HEED_NATIVE=0');
  const nv = n.out.values!, wv = w.out.values!;
  assert.deepEqual(Object.keys(nv), Object.keys(wv));
  let differs = false;
  for (const k of Object.keys(wv)) {
    const a = nv[k], b = wv[k];
    assert.equal(a.length, b.length, k);
    let d = 0, scale = 0;
    for (let i = 0; i < b.length; i++) {
      d = Math.max(d, Math.abs(a[i] - b[i]));
      scale = Math.max(scale, Math.abs(b[i]));
      if (a[i] !== b[i]) differs = true;
    }
    const tol = k.endsWith(' logits') ? 1e-4 : 1e-4 * scale + 1e-6;
    assert.ok(d <= tol, `${k}: max abs diff ${d} > ${tol}`);
  }
  assert.ok(differs, 'native and wasm results are bit-identical everywhere: the native kernels did not run');
  // every architecture's products were claimed except the loss's softmax-gradient reduction (not a product)
  const fb = n.out.numbersFallback!;
  assert.ok(Object.keys(fb).every((r) => r === 'operands not two plain views'), `unexpected fallbacks: ${JSON.stringify(fb)}`);
  // elementwise epilogues ran natively: SwiGLU's up-projection in the layer-by-layer gradients, every hand-made case
  assert.ok(n.out.segmentedElementwise! >= 2, `SwiGLU's up-projection (2 layers) was not claimed natively: ${JSON.stringify(n.out.epilogues)}`);
  assert.equal(n.out.handElementwise, 4, `the hand-made epilogues were not all claimed: ${JSON.stringify(n.out.epilogues)}`);
  // small kernels ran on the main thread, and running them in the workers instead gives the same bits
  assert.ok((n.out.engine.native as { inlined?: number }).inlined! > 0, 'no small kernel ran on the main thread');
  assert.equal(n.out.inlinedWhileOff, 0);
  assert.equal(n.out.inlineOffSame, true, 'logits differ between small kernels on the main thread and in the workers');
  assert.ok(Object.keys(n.out.epilogues!).some((k) => k.startsWith('elementwise (') && k.includes('Exp')), JSON.stringify(n.out.epilogues));
  // standalone elementwise kernels and reductions with work wasm has no SIMD code for (softmax's exp, SiLU and its
  // gradient, the loss's logsumexp, divisions) ran natively in the layer-by-layer gradients (every kernel sent to the
  // workers there), and none fell back to wasm for a reason other than that choice or an integer output
  assert.equal(n.out.engine.native!.elementwise.enabled, true);
  assert.ok(n.out.segmentedEw! >= 1, `no standalone elementwise kernel ran natively: ${n.out.segmentedEw}, wasm ${JSON.stringify(n.out.ewFallback)}`);
  assert.ok(n.out.segmentedReductions! >= 1, `no reduction ran natively: ${n.out.segmentedReductions}, wasm ${JSON.stringify(n.out.reductionFallback)}`);
  const odd = Object.keys({ ...n.out.ewFallback, ...n.out.reductionFallback }).filter((r) => !/dtype|wasm SIMD/.test(r));
  assert.deepEqual(odd, [], `elementwise / reduction kernels left to wasm: ${JSON.stringify({ ew: n.out.ewFallback, red: n.out.reductionFallback })}`);
  assert.equal(w.out.engine.native!.elementwise.claimed, 0);
});

test('native kernels: a short training run follows the wasm loss curve; kill -9 + resume on native is bit-identical', { skip }, async () => {
  assert.ok(addon, `the addon does not load: ${lastReason()}`);
  const [n, w] = await (pair ??= both());
  assertNative(n.out, n.stderr);
  assert.ok(w.out, `the wasm child wrote no result: ${w.stderr.slice(-2000)}`);
  const nl = n.out.losses!, wl = w.out.losses!;
  assert.equal(nl.length, STEPS);
  assert.equal(wl.length, STEPS);
  for (let i = 0; i < STEPS; i++) assert.ok(Math.abs(nl[i] - wl[i]) <= 1e-4, `step ${i + 1}: native loss ${nl[i]} vs wasm ${wl[i]}`);
  assert.ok(nl[STEPS - 1] < nl[0], `the loss did not drop: ${nl}`);
  assert.ok(nl.some((x, i) => x !== wl[i]), 'native and wasm loss curves are bit-identical: the native kernels did not run');
  for (let i = 0; i < n.out.evalLosses!.length; i++) assert.ok(Math.abs(n.out.evalLosses![i] - w.out.evalLosses![i]) <= 1e-4);

  // the same run on the native path, killed (SIGKILL) at step 6, then resumed from its step-4 checkpoint
  const out = tmp('heed-native-kill-');
  const k = await runChild('kill', { ...NATIVE, HEED_NATIVE_RUN_OUT: out });
  assert.equal(k.signal, 'SIGKILL', `the run was not killed (exit ${k.code}): ${k.stderr.slice(-1000)}`);
  const runDir = join(out, 'r');
  assert.ok(existsSync(join(runDir, 'step-4')), 'no step-4 checkpoint before the kill');
  const r = await runChild('resume', { ...NATIVE, HEED_NATIVE_RESUME: runDir });
  assertNative(r.out, r.stderr);
  assert.deepEqual(r.out.losses, nl, 'the resumed native run differs from the uninterrupted native run');
  assert.deepEqual(r.out.evalLosses, n.out.evalLosses);
});
