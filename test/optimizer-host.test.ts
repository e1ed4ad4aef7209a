/**
 * The optimizer's two executors (src/train/adamw.ts: one chain; src/train/train-step.ts): the host executor
 * (moments and an exact copy of the trainable parameters in Float32Arrays outside the wasm heap, the update a host
 * loop recorded from the chain) and the device executor (moments on the device, a compiled update per tensor)
 * give the same bits — every loss, gradient norm and held-out loss, and the saved parameters and moments — over
 * steps with clipping on some and not others, weight decay on matrices and not on norms or LoRA factors; and a
 * checkpoint written by one resumes on the other exactly (the format is the same).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromHost, initEngine, toHost } from '../src/engine/index.js';
import { validateTrainConfig } from '../src/train/config.js';
import { train } from '../src/train/trainer.js';
import { adamw, chain, clipByGlobalNorm, decays } from '../src/train/adamw.js';
import { optimizerPlace } from '../src/train/train-step.js';
import { nativeAdamw } from '../src/train/host-optimizer.js';
import { existsSync } from 'node:fs';
import { ROOT } from './helpers.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { mulberry32 } from '../src/models/random.js';
import type { TrainerCallback } from '../src/train/callbacks.js';
import { SHARED, TINY, tmp, shortRows } from './helpers.js';

await initEngine();

const DOLLY = shortRows(join(SHARED, 'data/dolly_3k.jsonl'), 96, join(TINY, 'llama-gqa'));
const base = (over: Record<string, unknown> = {}) =>
  validateTrainConfig({
    model: join(TINY, 'llama-gqa'),
    data: DOLLY,
    template: 'chatml',
    max_length: 96,
    truncation: 'drop',
    batch_size: 4,
    steps: 8,
    lr: 1e-2,
    warmup_steps: 2,
    grad_clip: 1.5,
    adamw: { weight_decay: 0.1 },
    eval_every: 4,
    save_every: 4,
    eval_max_rows: 8,
    seed: 5,
    out: tmp('heed-hostopt-'),
    name: 'r',
    ...over,
  });
const metrics = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);

/** train with the optimizer on `place` (HEED_OPTIMIZER, read when the run starts) */
async function runOn(place: 'host' | 'device', cfg: Parameters<typeof train>[0], opts: Parameters<typeof train>[1] = {}) {
  const before = process.env.HEED_OPTIMIZER;
  process.env.HEED_OPTIMIZER = place;
  try {
    assert.equal(optimizerPlace(), place);
    return await train(cfg, { quiet: true, ...opts });
  } finally {
    if (before === undefined) delete process.env.HEED_OPTIMIZER;
    else process.env.HEED_OPTIMIZER = before;
  }
}

/** the full fine-tuning run on the device executor, made once and shared (read only) by two tests below */
let deviceFull: ReturnType<typeof train> | undefined;
const sharedDeviceFull = () => (deviceFull ??= runOn('device', base()));

const pick = (ms: Array<Record<string, number>>) => ms.map((m) => [m.step, m.loss, m.grad_norm, m.eval_loss ?? null]);

test('the default executor: host in Node on the wasm engine; HEED_OPTIMIZER chooses, anything else is refused', () => {
  const before = process.env.HEED_OPTIMIZER;
  try {
    delete process.env.HEED_OPTIMIZER;
    assert.equal(optimizerPlace(), 'host');
    process.env.HEED_OPTIMIZER = 'gpu';
    assert.throws(() => optimizerPlace(), /HEED_OPTIMIZER must be host or device/);
  } finally {
    if (before === undefined) delete process.env.HEED_OPTIMIZER;
    else process.env.HEED_OPTIMIZER = before;
  }
});

test('the host loop equals the compiled device update bit for bit on 100k values of every magnitude (clipped and not, decaying and not)', async () => {
  const opt = chain(clipByGlobalNorm(1), adamw({ beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, decayMask: decays }));
  const dev = opt.compile();
  const host = opt.compileHost();
  const r = mulberry32(11);
  const N = 100_000;
  // values from 1 down to ~1e-12 in magnitude, both signs, some exact zeros: rounding, ε and tiny v all show
  const rnd = () => (r() < 0.01 ? 0 : (r() * 2 - 1) * 10 ** (-12 * r()));
  const mk = (f: () => number) => Float32Array.from({ length: N }, f);
  for (const [name, shape] of [['a.mlp.up_proj.weight', [250, 400]], ['a.input_layernorm.weight', [N]]] as const) {
    const hp = mk(rnd), hm = mk(() => rnd() * 0.1), hv = mk(() => Math.abs(rnd()) * 0.01);
    let dp = fromHost(hp, [...shape]), dm = fromHost(hm, [...shape]), dv = fromHost(hv, [...shape]);
    for (let t = 1; t <= 4; t++) {
      const g = mk(rnd);
      const sc = opt.scalars({ count: t, lr: 3e-3 * t, gradNorm: t % 2 ? 4 : 0.25 }); // clipped on odd steps
      const u = await dev.update({ [name]: dp }, { [name]: fromHost(g, [...shape]) }, { m: { [name]: dm }, v: { [name]: dv } }, sc);
      [dp, dm, dv] = [u.params[name], u.state.m[name], u.state.v[name]];
      host.update(name, shape, hp, g, [hm, hv], sc);
    }
    const got = [await toHost(dp), await toHost(dm), await toHost(dv)];
    for (const [i, want] of [hp, hm, hv].entries()) {
      let differ = 0;
      for (let j = 0; j < N; j++) if (!Object.is(got[i][j], want[j])) differ++;
      assert.equal(differ, 0, `${name} ${['p', 'm', 'v'][i]}: ${differ} of ${N} values differ`);
    }
  }
  assert.match(host.source(true), /f\(pi \* c\d+\)/, 'the decaying variant multiplies p by 1 − lr·wd');
  assert.doesNotMatch(host.source(false), /f\(pi \* c\d+\)/, 'the other does not');
  dev.dispose();
});

const adamwBuilt = existsSync(join(ROOT, 'native/build/Release/heed_adamw.node'));
// .ci/run builds the addon and sets HEED_REQUIRE_NATIVE=1: there a missing addon fails instead of skipping
const requireNative = process.env.HEED_REQUIRE_NATIVE === '1';
test('native AdamW (native/adamw.cc) equals the JS loop bit for bit, threaded, at sizes that split unevenly', { skip: requireNative ? false : process.env.HEED_NATIVE === '0' ? 'HEED_NATIVE=0: the JS loop runs instead' : adamwBuilt ? false : 'native/build/Release/heed_adamw.node is not built (npm run build:native): the JS loop runs instead' }, async () => {
  assert.ok(adamwBuilt, 'HEED_REQUIRE_NATIVE=1 but native/build/Release/heed_adamw.node is not built (npm run build:native)');
  const nat = await nativeAdamw();
  assert.ok(nat.addon, `the built addon is used: ${nat.reason}`);
  const opt = chain(clipByGlobalNorm(0.7), adamw({ beta1: 0.85, beta2: 0.97, eps: 1e-7, weightDecay: 0.05, decayMask: decays }));
  const js = opt.compileHost();
  const r = mulberry32(23);
  const rnd = () => (r() < 0.01 ? 0 : (r() * 2 - 1) * 10 ** (-12 * r()));
  for (const [n, threads, decay] of [[200_003, 2, true], [131_137, 3, false], [77, 2, true]] as const) {
    const a = [rnd, rnd, () => Math.abs(rnd())].map((f) => Float32Array.from({ length: n }, f));
    const b = a.map((x) => x.slice());
    for (let t = 1; t <= 3; t++) {
      const g = Float32Array.from({ length: n }, rnd);
      const sc = opt.scalars({ count: t, lr: 2e-3, gradNorm: t === 2 ? 0.1 : 5 });
      js.update(decay ? 'x.weight' : 'x.norm.weight', decay ? [n, 1] : [n], a[0], g, [a[1], a[2]], sc);
      nat.addon!.adamw(b[0], g, b[1], b[2], sc, decay, threads);
    }
    for (let k = 0; k < 3; k++) {
      let differ = 0;
      for (let i = 0; i < n; i++) if (!Object.is(a[k][i], b[k][i])) differ++;
      assert.equal(differ, 0, `n ${n}, ${threads} threads, decay ${decay}: ${['p', 'm', 'v'][k]} differs in ${differ} values`);
    }
  }
});

for (const [label, over] of [
  ['full fine-tuning (llama-gqa)', {}],
  ['LoRA with dropout (gpt2)', { model: join(TINY, 'gpt2'), lora: { r: 4, alpha: 8, dropout: 0.1 }, lr: 2e-2, grad_clip: 0.9 }],
] as const) {
  test(`host and device executors: identical losses, gradient norms, held-out losses and saved state — ${label}`, async () => {
    const a = await (Object.keys(over).length ? runOn('device', base(over)) : sharedDeviceFull());
    const b = await runOn('host', base(over));
    const ma = metrics(a.run_dir), mb = metrics(b.run_dir);
    assert.equal(ma.length, 8);
    const norms = ma.map((m) => m.grad_norm);
    const clip = (over as { grad_clip?: number }).grad_clip ?? 1.5;
    assert.ok(norms.some((n) => n > clip) && norms.some((n) => n <= clip), `clipping on some steps, not all: ${norms}`);
    assert.ok(ma[7].loss < ma[0].loss, `it trains: ${ma.map((m) => m.loss)}`);
    assert.deepEqual(pick(mb), pick(ma));
    for (const step of [4, 8]) {
      const fa = readFileSync(join(a.run_dir, `step-${step}`, 'optimizer.safetensors'));
      const fb = readFileSync(join(b.run_dir, `step-${step}`, 'optimizer.safetensors'));
      assert.ok(fa.equals(fb), `step ${step}: optimizer.safetensors (parameters, m, v) byte-identical`);
    }
    const st = readSafetensors(join(b.run_dir, 'step-8', 'optimizer.safetensors')).tensors;
    const moved = [...st.keys()].filter((k) => k.startsWith('v.') && st.get(k)!.data.some((x) => x > 0));
    assert.ok(moved.length > 0, 'the second moments were written');
  });
}

test('a checkpoint of the device executor resumes on the host executor (and back) exactly', async () => {
  const full = await sharedDeviceFull();
  for (const [first, then] of [['device', 'host'], ['host', 'device']] as const) {
    const interrupt = { stop: false };
    const stopAt: TrainerCallback = { name: 'stop-at', async onEval(ctx) { if (ctx.step === 4) interrupt.stop = true; } };
    const part = await runOn(first, base(), { interrupt, callbacks: [stopAt] });
    assert.equal(part.steps, 4);
    const resumed = await runOn(then, { resume: part.run_dir });
    assert.equal(resumed.steps, 8);
    assert.deepEqual(pick(metrics(part.run_dir)), pick(metrics(full.run_dir)), `${first} → ${then}`);
    const fa = readFileSync(join(full.run_dir, 'step-8', 'optimizer.safetensors'));
    assert.ok(fa.equals(readFileSync(join(part.run_dir, 'step-8', 'optimizer.safetensors'))), `${first} → ${then}: final state byte-identical`);
  }
});
