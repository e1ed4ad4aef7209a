/**
 * LoRA into GGUF: mergeLoraTensors (W + scale·B·A) gives the LoRA forward's logits in-process (llama and GPT-2's
 * Conv1D layout); the merged export in llama.cpp gives the LoRA model's greedy tokens; and a LoRA run with
 * `early_stopping.ifs.engine: llama.cpp` measures the in-process engine's IFS at every evaluation. The llama.cpp
 * parts are skipped without node-llama-cpp unless HEED_REQUIRE_LLAMA_CPP=1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { initEngine } from '../src/engine/index.js';
import { EngineGenerator } from '../src/decode/generate.js';
import { HeedError } from '../src/errors.js';
import { exportGgufFrom } from '../src/export/gguf.js';
import { hasNodeLlamaCpp, openLlamaCpp } from '../src/backends/llamacpp.js';
import { disposeParams, loadHostModel, toDevice, type Model } from '../src/models/load.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import type { HostTensor } from '../src/io/safetensors.js';
import { mulberry32 } from '../src/models/random.js';
import { initLora, loraModules, mergeLoraTensors } from '../src/train/lora.js';
import { ROOT, TINY, tmp, maxAbsDiff, shortRows } from './helpers.js';
import { compare, logprobDiff } from './gguf-compare.js';

const have = await hasNodeLlamaCpp();
const skipLlama = have ? false : process.env.HEED_REQUIRE_LLAMA_CPP === '1' ? false : 'node-llama-cpp is not installed (npm i -E node-llama-cpp@3.21.1)';
await initEngine();

const SCALE = 2; // alpha / r = 8 / 4

/** base tensors + adapters with a random (non-zero) B, so the adapters change the outputs */
function withAdapters(dir: string, targets: Array<'q' | 'k' | 'v' | 'o' | 'up' | 'down' | 'gate'>) {
  const host = loadHostModel(dir);
  const mods = loraModules(host.config, targets, (n) => host.tensors.get(n)!.shape);
  const ad = initLora(mods, 4, 3);
  const rand = mulberry32(11);
  for (const [k, t] of ad) if (k.endsWith('.lora_B')) ad.set(k, { shape: t.shape, data: Float32Array.from(t.data, () => (2 * rand() - 1) * 0.3) });
  return { host, all: new Map<string, HostTensor>([...host.tensors, ...ad]) };
}

async function lastLogits(m: ConstructorParameters<typeof EngineGenerator>[0], ids: number[][]): Promise<Float32Array[]> {
  const eg = new EngineGenerator(m);
  const s = eg.session();
  const out = await s.prefill(ids, { maxTokens: 1 });
  s.dispose();
  eg.dispose();
  return out;
}

const PROMPTS = ['The river runs', 'What is music?', 'A small city and its school', '<|im_start|>user\nTell me about water.<|im_end|>\n<|im_start|>assistant\n', 'history of the first people', 'How light travels'];

test('mergeLoraTensors: the merged weights give the LoRA forward\'s logits (llama q/k/v/o/gate/up/down; GPT-2 Conv1D c_attn/c_proj/c_fc)', async () => {
  for (const [name, targets] of [['llama-gqa', ['q', 'k', 'v', 'o', 'gate', 'up', 'down']], ['gpt2', ['q', 'o', 'up', 'down']]] as const) {
    const dir = join(TINY, name);
    const { host, all } = withAdapters(dir, [...targets]);
    const tok = loadTokenizer(dir);
    const ids = PROMPTS.map((p) => tok.encode(p));
    const merged = mergeLoraTensors(host.config, all, SCALE);
    assert.ok(![...merged.keys()].some((k) => k.includes('lora_')), 'no adapter tensors left');
    assert.equal(merged.size, host.tensors.size);
    assert.equal(all.get('h.0.attn.c_attn.weight') ?? all.get('model.layers.0.self_attn.q_proj.weight'), host.tensors.get('h.0.attn.c_attn.weight') ?? host.tensors.get('model.layers.0.self_attn.q_proj.weight'), 'the input map is not modified');
    const pl = toDevice(all), pm = toDevice(merged), pb = toDevice(host.tensors);
    const lora = await lastLogits({ config: host.config, params: pl, tokenizer: tok, loraScale: SCALE }, ids);
    const mer = await lastLogits({ config: host.config, params: pm, tokenizer: tok }, ids);
    const base = await lastLogits({ config: host.config, params: pb, tokenizer: tok }, ids);
    let d = 0, changed = 0;
    for (let i = 0; i < ids.length; i++) {
      d = Math.max(d, maxAbsDiff(lora[i], mer[i]));
      changed = Math.max(changed, maxAbsDiff(lora[i], base[i]));
    }
    assert.ok(d < 1e-4, `${name}: merged vs LoRA logits differ by ${d}`);
    assert.ok(changed > 0.1, `${name}: the adapters change the logits (${changed})`);
    console.log(`# ${name}: merged vs LoRA forward max |Δ logit| ${d.toExponential(2)} (adapters move the logits by up to ${changed.toFixed(2)})`);
    for (const p of [pl, pm, pb]) disposeParams(p);
  }
  // adapters that do not fit the weights: one-line errors
  const { host, all } = withAdapters(join(TINY, 'llama-gqa'), ['q']);
  const bad = new Map(all);
  bad.set('model.layers.0.self_attn.q_proj.lora_B', { shape: [7, 4], data: new Float32Array(28) });
  assert.throws(() => mergeLoraTensors(host.config, bad, SCALE), (e: unknown) => e instanceof HeedError && /do not fit the weight/.test(e.message));
  bad.delete('model.layers.0.self_attn.q_proj.lora_B');
  assert.throws(() => mergeLoraTensors(host.config, bad, SCALE), (e: unknown) => e instanceof HeedError && /lora_A without lora_B/.test(e.message));
});

test('a merged LoRA model exported to GGUF runs in llama.cpp like the LoRA model in-process (greedy tokens, log-probs)', { skip: skipLlama }, async () => {
  const dir = join(ROOT, 'models/base-dolly');
  const { host, all } = withAdapters(dir, ['q', 'v', 'up', 'down']);
  const tok = loadTokenizer(dir);
  const out = join(tmp('heed-lora-gguf-'), 'm.gguf');
  exportGgufFrom(host.config, mergeLoraTensors(host.config, all, SCALE), dir, out);
  const params = toDevice(all);
  const model = { config: host.config, params, tokenizer: tok, loraScale: SCALE } as unknown as Model;
  const be = await openLlamaCpp(out);
  try {
    const ids = PROMPTS.map((p) => tok.encode(p, { addSpecialTokens: true }));
    const r = await compare(model, be, ids);
    assert.equal(r.same, ids.length, 'greedy tokens identical');
    assert.ok(r.diff < 1e-4, `max |Δ log p| ${r.diff}`);
    // the adapters matter: the base model's logits are far from these
    const baseP = toDevice(host.tensors);
    const b = await lastLogits({ config: host.config, params: baseP, tokenizer: tok }, ids);
    const l = await lastLogits({ config: host.config, params, tokenizer: tok, loraScale: SCALE }, ids);
    disposeParams(baseP);
    assert.ok(logprobDiff(l, b) > 0.05, 'the adapters change the model');
    console.log(`# base-dolly + random LoRA (r 4, scale 2) merged → f32 GGUF: greedy ${r.same}/${ids.length} identical, max |Δ log p| ${r.diff.toExponential(2)}`);
  } finally {
    await be.dispose();
    disposeParams(params);
  }
});

test('LoRA run with early_stopping.ifs.engine: llama.cpp gives the in-process engine\'s IFS at every evaluation', { skip: skipLlama }, async () => {
  const { validateTrainConfig } = await import('../src/train/config.js');
  const { train } = await import('../src/train/trainer.js');
  const cfg = (engine: string) => validateTrainConfig({ model: join(ROOT, 'models/tiny-dolly'), data: shortRows(join(ROOT, '..', 'shared', 'data', 'dolly_3k.jsonl'), 64, join(ROOT, 'models/tiny-dolly')) /* the rows that can fit max_length 64: the same run (helpers.ts) */, template: 'chatml', max_length: 64, truncation: 'drop', batch_size: 2, steps: 4, lr: 3e-2, eval_every: 2, save_every: 100, eval_max_rows: 4, seed: 1, lora: { r: 4, alpha: 8 }, out: tmp('heed-runs-lora-es-'), name: engine, early_stopping: { ifs: { budget: 8, max_tokens: 12, engine, measure_only: true, exclude_overlap: false } } });
  const ifs = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => m.ifs !== undefined);
  const responses = (dir: string, step: number) => readFileSync(join(dir, 'ifs', `step-${step}.jsonl`), 'utf8').trim().split('\n').map((l) => JSON.parse(l).response as string);
  let t = performance.now();
  const ra = (await train(cfg('engine'), { quiet: true })).run_dir;
  const engineS = (performance.now() - t) / 1000;
  t = performance.now();
  const rb = (await train(cfg('llama.cpp'), { quiet: true })).run_dir;
  const llamaS = (performance.now() - t) / 1000;
  const a = ifs(ra), b = ifs(rb);
  assert.equal(a.length, 2);
  assert.deepEqual(b.map((m) => [m.step, m.ifs, m.ifs_partial, m.ifs_full]), a.map((m) => [m.step, m.ifs, m.ifs_partial, m.ifs_full]));
  assert.ok(b.every((m) => m.ifs_eval_seconds > 0));
  // the responses themselves are the engine's, and they move with the adapters (a base-weights export would not)
  for (const step of [2, 4]) assert.deepEqual(responses(rb, step), responses(ra, step), `step ${step}: llama.cpp responses = engine responses`);
  assert.notDeepEqual(responses(ra, 4), responses(ra, 2), 'the adapters changed the responses between the evaluations');
  console.log(`# LoRA r=4 4-step run, 2 IFS evaluations (8 prompts x 12 tokens): IFS ${a.map((m) => m.ifs).join(', ')} both; engine ${engineS.toFixed(1)} s, llama.cpp ${llamaS.toFixed(1)} s (evaluations ${b.map((m) => m.ifs_eval_seconds.toFixed(2)).join(', ')} s, merge + export included)`);
});
