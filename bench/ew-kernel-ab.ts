/**
 * Per-kernel A/B of the native elementwise / reduction route (issue 17, not a test):
 * `nice -n 10 node --import tsx bench/ew-kernel-ab.ts [--layers 1] [--reps 3] [--mode 1|all]`.
 * One process, the Llama-30M shape (random weights, `--layers` layers, batch 4×256), the layer-by-layer gradients
 * (what `heed train` runs); steps alternate route on (`--mode`: 1 = the default choice, where wasm has no SIMD code;
 * all = every kernel it compiles) and off (`setNativeElementwise`), A B A B…, so both see the same machine load.
 * Every kernel's wall time (first post → last reply) is summed by kernel hash; the output lists, per plan kind
 * (elementwise / reduce / left to wasm by reason), the summed time on and off, and the kernels that gained or lost
 * most, with their jax-js expression. Saves bench/results/ew-kernel-ab-latest.json (CPU model, load average).
 */
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { HERE, ROOT, machineInfo } from './common.js';

const { values } = parseArgs({ options: { layers: { type: 'string', default: '1' }, reps: { type: 'string', default: '3' }, mode: { type: 'string', default: '1' }, top: { type: 'string', default: '8' } } });
const L = Number(values.layers), REPS = Number(values.reps), TOP = Number(values.top);
const mode = values.mode === 'all' ? 'all' : true;
if (!(L >= 1 && REPS >= 1)) throw new Error('--layers and --reps: positive integers');

const { installNodeWorkers } = await import('../src/engine/node-workers.js');
installNodeWorkers(2);
const g = globalThis as unknown as { Worker: new (u: unknown, o?: unknown) => { postMessage(m: unknown): void } };
const byHash = new Map<string, number>();
let cur: { hash: string; t: number; left: number } | null = null;
const Base = g.Worker;
class TimedWorker extends Base {
  constructor(u: unknown, o?: unknown) {
    super(u, o);
    let h: ((e: unknown) => void) | null = null;
    const wrapped = (e: unknown) => {
      if (cur && --cur.left === 0) {
        byHash.set(cur.hash, (byHash.get(cur.hash) ?? 0) + performance.now() - cur.t);
        cur = null;
      }
      h?.(e);
    };
    Object.defineProperty(this, 'onmessage', { configurable: true, get: () => (h ? wrapped : null), set: (f) => (h = f) });
  }
  override postMessage(m: unknown): void {
    const k = m as { type?: string; kernelHash?: string };
    if (k?.type === 'kernel' && k.kernelHash !== undefined) {
      if (!cur || cur.hash !== k.kernelHash || cur.left === 0) cur = { hash: k.kernelHash, t: performance.now(), left: 0 };
      cur.left++;
    }
    super.postMessage(m);
  }
}
g.Worker = TimedWorker;

const E = await import('../src/engine/index.js');
const N = await import('../src/engine/native.js');
const info = await E.initEngine({ threads: 2 });
if (info.kernels !== 'native' || !info.native?.elementwise.enabled) throw new Error(`the native elementwise route is off: ${info.native?.reason || 'HEED_NATIVE_ELEMENTWISE=0 or an old addon (npm run build:native)'}`);
const texts = new Map<string, { kind: string; text: string }>();
{
  const url = new URL('backend-CnjgxpXq.js', import.meta.resolve('@jax-js/jax'));
  const chunk = (await import(url.href)) as Parameters<typeof N.planKernel>[1] & { s: (d: string) => { dispatch: (e: unknown, i: unknown, o: unknown) => unknown } };
  const be = chunk.s('wasm');
  const d = be.dispatch.bind(be);
  be.dispatch = (exe: unknown, i: unknown, o: unknown) => {
    const x = exe as { data?: { program?: { kernelHash?: string } }; source?: unknown };
    const h = x.data?.program?.kernelHash;
    if (h && !texts.has(h) && x.source && typeof (x.source as { exp?: unknown }).exp === 'object') {
      let kind: string;
      try {
        const gp = N.planKernel(x.source as never, chunk, '');
        if (gp && typeof gp === 'object') kind = 'product (native GEMM)';
        else {
          const p = N.planOther(x.source as never, '', { chunk, all: mode === 'all' });
          kind = typeof p === 'string' ? `wasm: ${p}` : p.kind;
        }
      } catch (e) {
        kind = `error: ${(e as Error).message}`;
      }
      texts.set(h, { kind, text: String(x.source).replace(/\s+/g, ' ').slice(0, 400) });
    }
    return d(exe, i, o);
  };
}
const { parseModelConfig } = await import('../src/models/config.js');
const { randomParams } = await import('../src/models/random.js');
const { saveHostModel, loadModel } = await import('../src/models/load.js');
const { invFreqFor } = await import('../src/models/run.js');
const { toDeviceBatch } = await import('../src/train/step.js');
const { makeSegmented } = await import('../src/train/segmented.js');
const { LLAMA_30M } = await import('./shapes.js');
const B = 4, T = 256;
const raw = { ...LLAMA_30M.config, num_hidden_layers: L };
const dir = mkdtempSync(join(os.tmpdir(), 'heed-ew-ab-'));
saveHostModel(dir, { raw, tensors: randomParams(parseModelConfig(raw), 1, { exactNorms: true }) }, { dtype: 'F32' });
for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(ROOT, 'models/tiny-dolly', f), join(dir, f));
const model = await loadModel(dir);
const c = model.config;
const ids = Int32Array.from({ length: B * T }, (_, i) => 3 + ((i * 37) % 8000));
const weights = new Float32Array(B * T).fill(1);
const segments = Int32Array.from({ length: B * T }, (_, i) => (i % T < 100 ? 0 : 1));
const positions = Int32Array.from({ length: B * T }, (_, i) => (i % T < 100 ? i % T : (i % T) - 100));
const seg = makeSegmented(c, { trainable: new Set(Object.keys(model.params)) });
const step = async () => {
  const { loss, grads } = await seg.grad(model.params, toDeviceBatch({ B, T, ids, weights, segments, positions }), invFreqFor(c), E.np.array(5.5), 0);
  const l = (await E.toHost(loss))[0];
  for (const k of Object.keys(grads)) grads[k].dispose();
  return l;
};
const per = { on: new Map<string, number>(), off: new Map<string, number>() };
const steps: { mode: string; ms: number; loss: number; load: number[] }[] = [];
N.setNativeElementwise(mode);
await step(); // compile
N.setNativeElementwise(false);
await step();
for (let r = 0; r < REPS; r++)
  for (const m of ['on', 'off'] as const) {
    N.setNativeElementwise(m === 'on' ? mode : false);
    byHash.clear();
    const t0 = performance.now();
    const loss = await step();
    const ms = performance.now() - t0;
    steps.push({ mode: m, ms, loss, load: os.loadavg() });
    for (const [h, x] of byHash) per[m].set(h, (per[m].get(h) ?? 0) + x);
    console.error(`${m}: step ${ms.toFixed(0)} ms, loss ${loss}, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  }
const rows = [...per.on].map(([h, on]) => ({ hash: h, on, off: per.off.get(h) ?? 0, ...(texts.get(h) ?? { kind: '?', text: '' }) }));
const kinds: Record<string, { on: number; off: number; kernels: number }> = {};
for (const r of rows) {
  const k = (kinds[r.kind.startsWith('wasm: ') ? 'left to wasm' : r.kind] ??= { on: 0, off: 0, kernels: 0 });
  k.on += r.on;
  k.off += r.off;
  k.kernels++;
}
console.log(`\nLlama-30M shape, ${L} layer(s), 4×256, layer-by-layer gradients; ${REPS} steps each way, interleaved; ${machineInfo().cpu}`);
console.log('| plan kind | distinct kernels | kernel wall ms, route on | route off | on / off |\n|---|---|---|---|---|');
for (const [k, v] of Object.entries(kinds)) console.log(`| ${k} | ${v.kernels} | ${v.on.toFixed(0)} | ${v.off.toFixed(0)} | ${(v.on / v.off).toFixed(2)} |`);
const med = (m: string) => { const s = steps.filter((x) => x.mode === m).map((x) => x.ms).sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]; };
console.log(`step median on ${med('on').toFixed(0)} ms, off ${med('off').toFixed(0)} ms (on / off ${(med('on') / med('off')).toFixed(2)})`);
const claimed = rows.filter((r) => r.kind === 'elementwise' || r.kind === 'reduce').sort((a, b) => a.on / a.off - b.on / b.off);
for (const r of [...claimed.slice(0, TOP), ...claimed.slice(-TOP)]) console.log(`  ${r.kind} on ${r.on.toFixed(1)} off ${r.off.toFixed(1)} (×${(r.off / r.on).toFixed(2)} faster): ${r.text.slice(0, 200)}`);
const out = join(HERE, 'results', 'ew-kernel-ab-latest.json');
writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), machine: machineInfo(), layers: L, reps: REPS, mode, steps, kinds, kernels: rows.sort((a, b) => b.off - a.off) }, null, 1) + '\n');
console.log(`saved ${out.slice(ROOT.length)}`);
process.exit(0);
