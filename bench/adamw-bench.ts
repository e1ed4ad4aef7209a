/**
 * AdamW update benchmark (not a test): one optimizer update of every tensor of the SmolLM2-135M shape (full fine-tuning,
 * 134.5M parameters, heed's decay mask, clipping on), by each executor of the one chain (src/train/adamw.ts):
 *   js      the host loop the chain compiles to (src/train/host-optimizer.ts without the addon)
 *   native  native/adamw.cc (npm run build:native), 1 thread and all threads
 *   device  the compiled update per tensor on jax-js's wasm engine (moments on the wasm heap: HEED_OPTIMIZER=device)
 * Host executors update arrays in place (no transfers: heed train adds one gradient download and one parameter upload
 * per tensor to each); the device executor's time includes its program launches. Ratios are against the JS loop in
 * the same run; the median of --reps updates (default 3) after one warm-up. Saves bench/results/adamw-latest.json.
 *
 *   node --import tsx bench/adamw-bench.ts [--reps 3] [--no-device] [--no-save]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SMOLLM2_135M } from './shapes.js';
import { HERE, machineInfo, median, stamp } from './common.js';
import { fromHost, initEngine, tree, type Tensor } from '../src/engine/index.js';
import { adamw, chain, clipByGlobalNorm, decays } from '../src/train/adamw.js';
import { nativeAdamw } from '../src/train/host-optimizer.js';
import { parseModelConfig } from '../src/models/config.js';
import { randomParams } from '../src/models/random.js';

const { values } = parseArgs({ options: { reps: { type: 'string', default: '3' }, 'no-device': { type: 'boolean', default: false }, 'no-save': { type: 'boolean', default: false } } });
const reps = Number(values.reps);
const info = await initEngine();
const c = parseModelConfig(SMOLLM2_135M.config);
const params = randomParams(c, 1);
const names = [...params.keys()];
const total = names.reduce((a, k) => a + params.get(k)!.data.length, 0);
const opt = chain(clipByGlobalNorm(1), adamw({ beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, decayMask: decays }));
const host = opt.compileHost();
const grads = new Map(names.map((k) => [k, Float32Array.from(params.get(k)!.data, (x) => x * 1e-3)]));
const state = new Map(names.map((k) => [k, [new Float32Array(params.get(k)!.data.length), new Float32Array(params.get(k)!.data.length)]]));
const sc = (t: number) => opt.scalars({ count: t, lr: 2e-4, gradNorm: 2 });

/** wall and CPU seconds of `run` (median over reps, after one warm-up) */
async function time(run: (t: number) => void | Promise<void>) {
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r <= reps; r++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    await run(r + 1);
    const cu = process.cpuUsage(c0);
    if (r > 0) {
      wall.push((performance.now() - t0) / 1000);
      cpu.push((cu.user + cu.system) / 1e6);
    }
  }
  return { wallS: median(wall), cpuS: median(cpu) };
}

const rows: Record<string, { wallS: number; cpuS: number; note: string }> = {};
rows.js = { ...(await time((t) => names.forEach((k) => host.update(k, params.get(k)!.shape, params.get(k)!.data, grads.get(k)!, state.get(k)!, sc(t))))), note: 'host loop compiled from the chain' };
const nat = await nativeAdamw();
if (nat.addon) {
  for (const th of [...new Set([1, info.threads])]) {
    rows[`native-${th}t`] = { ...(await time((t) => names.forEach((k) => nat.addon!.adamw(params.get(k)!.data, grads.get(k)!, state.get(k)![0], state.get(k)![1], sc(t), host.variant(k, params.get(k)!.shape), th)))), note: `native/adamw.cc, ${th} thread(s)` };
  }
} else console.error(`native AdamW not available: ${nat.reason}`);
if (!values['no-device']) {
  const upd = opt.compile();
  let p: Record<string, Tensor> = Object.fromEntries(names.map((k) => [k, fromHost(params.get(k)!.data, params.get(k)!.shape)]));
  let st = { m: Object.fromEntries(names.map((k) => [k, fromHost(state.get(k)![0], params.get(k)!.shape)])), v: Object.fromEntries(names.map((k) => [k, fromHost(state.get(k)![1], params.get(k)!.shape)])) };
  rows.device = {
    ...(await time(async (t) => {
      const g = Object.fromEntries(names.map((k) => [k, fromHost(grads.get(k)!, params.get(k)!.shape)]));
      const u = await upd.update(p, g, st, sc(t));
      p = u.params;
      st = u.state as typeof st;
    })),
    note: 'compiled update per tensor on the wasm engine (includes uploading the gradients)',
  };
  tree.dispose([p, st]);
  upd.dispose();
}
const base = rows.js.wallS;
console.log(`AdamW update of ${(total / 1e6).toFixed(1)}M parameters (SmolLM2-135M shape, ${names.length} tensors), median of ${reps}; ${machineInfo().cpu}, ${info.threads} threads`);
console.log('| executor | wall s | CPU s | speed vs JS loop (wall) |\n|---|---|---|---|');
for (const [k, r] of Object.entries(rows)) console.log(`| ${k} | ${r.wallS.toFixed(3)} | ${r.cpuS.toFixed(3)} | ${(base / r.wallS).toFixed(2)}× |`);
if (!values['no-save']) {
  mkdirSync(join(HERE, 'results'), { recursive: true });
  const out = join(HERE, 'results', 'adamw-latest.json');
  writeFileSync(out, JSON.stringify({ when: stamp(), machine: machineInfo(), threads: info.threads, parameters: total, tensors: names.length, reps, rows: Object.fromEntries(Object.entries(rows).map(([k, r]) => [k, { ...r, vsJs: base / r.wallS }])) }, null, 2) + '\n');
  console.log(`saved ${join('bench/results', 'adamw-latest.json')}`);
}
process.exit(0);
