import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { initEngine, jit, valueAndGrad, toHost, tree, np, type Tensor } from '../src/engine/index.js';
import { loadModel, toDevice, disposeParams } from '../src/models/load.js';
import { tokenNll } from '../src/train/loss.js';
import { toDeviceBatch } from '../src/train/step.js';
import { invFreqFor } from '../src/models/run.js';
import { makeFused, makeSegmented, planGradients, WASM_HEAP_BYTES } from '../src/train/segmented.js';
import { parseModelConfig } from '../src/models/config.js';
import { initLora, loraModules } from '../src/train/lora.js';
import { splitLayerName, type Params } from '../src/models/transformer.js';
import { TINY, TINY_NAMES, maxAbsDiff } from './helpers.js';

await initEngine();

// two packed rows per sequence plus padding (segment -1) at the end of the second sequence
const B = 2, T = 12;
const ids = Int32Array.from({ length: B * T }, (_, i) => 3 + ((i * 37) % 250));
const weights = Float32Array.from({ length: B * T }, (_, i) => (i % 3 === 0 ? 0 : 0.5 + (i % 5) / 4));
const segments = Int32Array.from({ length: B * T }, (_, i) => (i >= B * T - 3 ? -1 : i % T < 7 ? 0 : 1));
const positions = Int32Array.from({ length: B * T }, (_, i) => (i % T < 7 ? i % T : (i % T) - 7));
const batch = () => toDeviceBatch({ B, T, ids, weights, segments, positions });
const NORM = 7.5;

/** The reference: one fused valueAndGrad over the whole model (what the trainer did before). */
async function fused(c: any, trainable: Params, frozen: Params, loraScale?: number) {
  const f = (t: Params, fr: Params, b: any, inv: Tensor) => tokenNll(c, { ...fr, ...t }, b, inv, { loraScale }).mul(b.weights).sum().div(NORM);
  const g = jit(valueAndGrad(f));
  const [l, grads] = g(tree.ref(trainable), tree.ref(frozen), batch(), invFreqFor(c)) as [Tensor, Params];
  const out = { loss: (await toHost(l))[0], grads: {} as Record<string, Float32Array> };
  for (const [k, v] of Object.entries(grads)) out.grads[k] = await toHost(v);
  g.dispose();
  return out;
}

async function segmentedRun(c: any, trainable: Params, frozen: Params, loraScale?: number, headElements?: number, stored = false) {
  const s = makeSegmented(c, { trainable: new Set(Object.keys(trainable)), loraScale, headElements, stored });
  const all = { ...frozen, ...trainable };
  const { loss, grads } = await s.grad(all, batch(), invFreqFor(c), np.array(NORM), 0);
  const out = { loss: (await toHost(loss))[0], grads: {} as Record<string, Float32Array>, lossSum: 0 };
  for (const [k, v] of Object.entries(grads)) out.grads[k] = await toHost(v);
  out.lossSum = (await toHost(await s.lossSum(all, batch(), invFreqFor(c))))[0];
  s.dispose();
  return out;
}

for (const name of TINY_NAMES) {
  test(`segmented (layer-by-layer) loss and gradients equal the fused ones: ${name}, full fine-tuning and LoRA`, async () => {
    const model = await loadModel(join(TINY, name));
    const c = model.config;
    // full fine-tuning: every tensor trainable (tied models get the embedding gradient from both ends)
    const ref = await fused(c, model.params, {});
    // the head in chunks of 5 rows (24 rows: the last chunk is ragged) for the llama models, in one piece otherwise
    const seg = await segmentedRun(c, model.params, {}, undefined, name.startsWith('llama') ? 5 * c.vocabSize : undefined);
    assert.ok(Math.abs(ref.loss - seg.loss) < 1e-5 * Math.max(1, Math.abs(ref.loss)), `${name} loss ${ref.loss} vs ${seg.loss}`);
    assert.ok(Math.abs(seg.lossSum / NORM - ref.loss) < 1e-5 * Math.max(1, Math.abs(ref.loss)), `${name} lossSum ${seg.lossSum / NORM} vs ${ref.loss}`);
    assert.deepEqual(Object.keys(seg.grads).sort(), Object.keys(ref.grads).sort());
    for (const k of Object.keys(ref.grads)) {
      const scale = Math.max(1e-3, ...ref.grads[k].map(Math.abs));
      assert.ok(maxAbsDiff(ref.grads[k], seg.grads[k]) <= 1e-4 * scale, `${name} ${k}: ${maxAbsDiff(ref.grads[k], seg.grads[k])} (scale ${scale})`);
    }
    // LoRA on every projection, with B ≠ 0 so that both factors get gradients
    const host = new Map(Object.entries(model.params).map(([k, v]) => [k, { shape: v.shape }]));
    const mods = loraModules(c, c.arch === 'gpt2' ? ['q', 'o', 'up', 'down'] : ['q', 'k', 'v', 'o', 'gate', 'up', 'down'], (n) => host.get(n)!.shape);
    const lora = initLora(mods, 4, 3);
    for (const [k, t] of lora) if (k.endsWith('lora_B')) t.data.forEach((_, i) => (t.data[i] = 0.05 * Math.sin(i + 1)));
    const adapters = toDevice(lora);
    const lref = await fused(c, adapters, model.params, 2);
    const lseg = await segmentedRun(c, adapters, model.params, 2, name.startsWith('llama') ? 7 * c.vocabSize : undefined);
    assert.ok(Math.abs(lref.loss - lseg.loss) < 1e-5 * Math.max(1, Math.abs(lref.loss)));
    assert.deepEqual(Object.keys(lseg.grads).sort(), [...lora.keys()].sort(), 'LoRA: gradients for the adapters only');
    for (const k of Object.keys(lref.grads)) {
      const scale = Math.max(1e-3, ...lref.grads[k].map(Math.abs));
      assert.ok(maxAbsDiff(lref.grads[k], lseg.grads[k]) <= 1e-4 * scale, `${name} LoRA ${k}`);
    }
    // stored (no recompute: each block's vjp residuals kept from the forward pass): the same numbers, full and LoRA
    for (const [what, r, got] of [
      ['full', ref, await segmentedRun(c, model.params, {}, undefined, undefined, true)],
      ['LoRA', lref, await segmentedRun(c, adapters, model.params, 2, name.startsWith('llama') ? 7 * c.vocabSize : undefined, true)],
    ] as const) {
      assert.ok(Math.abs(r.loss - got.loss) < 1e-5 * Math.max(1, Math.abs(r.loss)), `${name} stored ${what} loss ${r.loss} vs ${got.loss}`);
      assert.ok(Math.abs(got.lossSum / NORM - r.loss) < 1e-5 * Math.max(1, Math.abs(r.loss)));
      assert.deepEqual(Object.keys(got.grads).sort(), Object.keys(r.grads).sort());
      for (const k of Object.keys(r.grads)) {
        const scale = Math.max(1e-3, ...r.grads[k].map(Math.abs));
        assert.ok(maxAbsDiff(r.grads[k], got.grads[k]) <= 1e-4 * scale, `${name} stored ${what} ${k}: ${maxAbsDiff(r.grads[k], got.grads[k])} (scale ${scale})`);
      }
    }
    // LoRA dropout: stored and recomputing layers against the fused engine, same keys (layer l: keyBase + l)
    const o = { trainable: new Set(lora.keys()), loraScale: 2, loraDropout: 0.3, loraModules: [...new Set(mods.map((m) => splitLayerName(m.name)!.sub))] };
    const dropRun = async (e: ReturnType<typeof makeFused>) => {
      const { loss, grads } = await e.grad({ ...model.params, ...adapters }, batch(), invFreqFor(c), np.array(NORM), 11);
      const out = { loss: (await toHost(loss))[0], grads: {} as Record<string, Float32Array> };
      for (const [k, v] of Object.entries(grads)) out.grads[k] = await toHost(v);
      e.dispose();
      return out;
    };
    const dref = await dropRun(makeFused(c, o));
    assert.ok(Math.abs(dref.loss - lref.loss) > 1e-6, 'dropout changes the loss');
    for (const stored of [false, true]) {
      const d = await dropRun(makeSegmented(c, { ...o, stored }));
      assert.ok(Math.abs(dref.loss - d.loss) < 1e-5 * Math.max(1, Math.abs(dref.loss)), `${name} dropout stored=${stored} loss ${dref.loss} vs ${d.loss}`);
      for (const k of Object.keys(dref.grads)) {
        const scale = Math.max(1e-3, ...dref.grads[k].map(Math.abs));
        assert.ok(maxAbsDiff(dref.grads[k], d.grads[k]) <= 1e-4 * scale, `${name} dropout stored=${stored} ${k}`);
      }
    }
    disposeParams(adapters);
    disposeParams(model.params);
  });
}

test('checkpointing: auto — fused for small models, stored where the estimated activations fit the heap, else layers', () => {
  const smol = (layers: number) => parseModelConfig({ model_type: 'llama', vocab_size: 49152, hidden_size: 576, num_hidden_layers: layers, num_attention_heads: 9, num_key_value_heads: 3, intermediate_size: 1536, max_position_embeddings: 8192, rms_norm_eps: 1e-5, rope_theta: 1e5, tie_word_embeddings: true });
  const w = 4 * 134.5e6;
  const plan = (layers: number, B: number, T: number, small = false, trainableBytes = 4 * 4.9e6) => planGradients({ config: smol(layers), small, weightBytes: w, trainableBytes, optimizerOnDevice: false, B, T });
  assert.equal(plan(4, 1, 64, true).mode, 'fused');
  const a = plan(30, 1, 256);
  assert.equal(a.mode, 'stored');
  assert.ok(a.storedBytes > w && a.storedBytes < a.budgetBytes && a.budgetBytes < WASM_HEAP_BYTES);
  // the estimate grows with the tokens of a micro-batch and with the layers: long sequences fall back to recomputing
  assert.ok(plan(30, 4, 256).storedBytes > a.storedBytes && plan(15, 1, 256).storedBytes < a.storedBytes);
  assert.equal(plan(30, 8, 2048).mode, 'layers');
});
