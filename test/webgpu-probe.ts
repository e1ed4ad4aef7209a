/**
 * The numbers the WebGPU parity test compares: run once per device in its own process (the engine runs on one
 * device per process), `node --import tsx test/webgpu-probe.ts <wasm|webgpu> <out.json> [arch...]`.
 * For each tiny architecture: full-sequence logits of two sequences (one batch, padded), the gradient of the
 * weighted loss for every parameter, 10 training steps of full fine-tuning and of LoRA through the trainer
 * (loss curves), greedy KV-cache generation of a padded batch, and the same with the rule adapter.
 * Everything goes through the same modules the CLI uses.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initEngine, valueAndGrad, toHost, type DeviceName } from '../src/engine/index.js';
import { loadModel, disposeParams } from '../src/models/load.js';
import { invFreqFor, sequenceLogits } from '../src/models/run.js';
import { weightedLoss } from '../src/train/loss.js';
import { toDeviceBatch } from '../src/train/step.js';
import { validateTrainConfig } from '../src/train/config.js';
import { train } from '../src/train/trainer.js';
import { EngineGenerator } from '../src/decode/generate.js';
import { compileRules, PRESETS } from '../src/decode/rules.js';
import type { Params } from '../src/models/transformer.js';
import { readFileSync } from 'node:fs';
import { ROOT, TINY, TINY_NAMES, tmp } from './helpers.js';

const [device, out, ...only] = process.argv.slice(2);
const names = only.length ? only : TINY_NAMES;
const DATA = join(ROOT, 'test/fixtures/webgpu-sft.jsonl');
const info = await initEngine({ device: device as DeviceName });

const seqs = [
  [5, 40, 41, 42, 43, 44, 45],
  [7, 50, 51, 52, 53],
];
const result: Record<string, unknown> = { device: info.device, archs: {} as Record<string, unknown> };
const timings: Record<string, number> = {};

for (const name of names) {
  const dir = join(TINY, name);
  const model = await loadModel(dir);
  const c = model.config;
  let t0 = performance.now();
  const logits = (await sequenceLogits(c, model.params, seqs)).map((l) => Array.from(l));
  timings[`${name}.logits`] = performance.now() - t0;

  t0 = performance.now();
  const B = 2, T = 7;
  const ids = new Int32Array(B * T);
  const weights = new Float32Array(B * T);
  const segments = new Int32Array(B * T).fill(-1);
  seqs.forEach((s, b) => s.forEach((id, t) => { ids[b * T + t] = id; weights[b * T + t] = t >= 2 ? 1 : 0; segments[b * T + t] = 0; }));
  const batch = toDeviceBatch({ B, T, ids, weights, segments });
  const keys = Object.keys(model.params).sort();
  const [loss, grads] = valueAndGrad((p: Params) => weightedLoss(c, p, batch, invFreqFor(c)))({ ...model.params });
  const g: Record<string, number[]> = {};
  for (const k of keys) g[k] = Array.from(await toHost((grads as Params)[k]));
  const lossValue = (await toHost(loss))[0];
  timings[`${name}.grad`] = performance.now() - t0;

  t0 = performance.now();
  const gen = new EngineGenerator(model);
  const prompts = [[40, 41, 42], [5, 60, 61, 62, 63]];
  const greedy = (await gen.generateIds(prompts, { maxTokens: 8, eosIds: [] })).map((r) => r.ids);
  const rules = compileRules(PRESETS.default, model.tokenizer);
  const ruled = (await gen.generateIds(prompts, { maxTokens: 8, eosIds: [0], logitsProcessors: [rules.processor] })).map((r) => r.ids);
  gen.dispose();
  disposeParams(model.params);
  timings[`${name}.generate`] = performance.now() - t0;

  const curves: Record<string, number[]> = {};
  for (const mode of ['full', 'lora'] as const) {
    t0 = performance.now();
    const cfg = validateTrainConfig({
      model: dir, data: DATA, template: 'plain', max_length: 48, truncation: 'drop', batch_size: 2, steps: 10, lr: 3e-3,
      warmup_steps: 2, eval_every: 100, save_every: 100, seed: 3, out: tmp('heed-webgpu-'), name: mode, device,
      lora: mode === 'lora' ? { r: 4, alpha: 8 } : null,
    });
    const s = await train(cfg, { quiet: true });
    curves[mode] = readFileSync(join(s.run_dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).loss as number);
    timings[`${name}.train-${mode}`] = performance.now() - t0;
  }
  (result.archs as Record<string, unknown>)[name] = { logits, loss: lossValue, grads: g, greedy, ruled, curves };
}
result.timings_ms = timings;
writeFileSync(out, JSON.stringify(result));
process.exit(0);
