/**
 * Issue 16, item 9: LoRA defaults by architecture. `lora: {}` adapts every linear layer of the model's family
 * (resolved from its config.json when the config is validated, written to the run's config.yaml, and named in
 * the PEFT adapter_config's target_modules), with r 16, alpha 32 and lr 5e-3; full fine-tuning keeps lr 2e-4.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { initEngine } from '../src/engine/index.js';
import { validateTrainConfig, FULL_DEFAULT_LR, LORA_DEFAULT_LR } from '../src/train/config.js';
import { train } from '../src/train/trainer.js';
import { defaultLoraTargets, loraModules, peftTargetModules } from '../src/train/lora.js';
import { loadHostModel } from '../src/models/load.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { SHARED, TINY, tmp } from './helpers.js';

await initEngine();

const LLAMA_ALL = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'];
const GPT2_ALL = ['q', 'k', 'v', 'o', 'up', 'down'];
const LLAMA_PEFT = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
const FIXTURES: Array<[string, string[], string[], number]> = [
  // fixture, default targets, PEFT target_modules, adapted modules per layer
  ['llama-gqa', LLAMA_ALL, LLAMA_PEFT, 7],
  ['qwen2', LLAMA_ALL, LLAMA_PEFT, 7],
  ['mistral-window', LLAMA_ALL, LLAMA_PEFT, 7],
  ['gpt2', GPT2_ALL, ['c_attn', 'c_proj', 'c_fc'], 4],
];
// 40 Dolly rows: enough for one step of 2 rows, little to read and tokenize per run
const data = join(tmp('heed-lora-data-'), 'dolly-40.jsonl');
writeFileSync(data, readFileSync(join(SHARED, 'data/dolly_3k.jsonl'), 'utf8').split('\n').slice(0, 40).join('\n') + '\n');
const cfgOf = (model: string, over: Record<string, unknown> = {}) =>
  validateTrainConfig({ model: join(TINY, model), data, template: 'chatml', max_length: 64, truncation: 'truncate-right', batch_size: 2, steps: 1, eval: null, save_every: 1000, out: tmp('heed-lora-def-'), name: 'r', ...over });

test('lora: {} resolves targets from the architecture; r 16, alpha 32, lr 5e-3; explicit values and full fine-tuning keep theirs', () => {
  for (const [fx, targets] of FIXTURES) {
    const c = cfgOf(fx, { lora: {} });
    assert.deepEqual(c.lora?.targets, targets, fx);
    assert.equal(c.lora?.r, 16);
    assert.equal(c.lora?.alpha, 32);
    assert.equal(c.lr, LORA_DEFAULT_LR);
    assert.equal(LORA_DEFAULT_LR, 5e-3);
  }
  const full = cfgOf('gpt2');
  assert.equal(full.lora, null);
  assert.equal(full.lr, FULL_DEFAULT_LR);
  assert.equal(FULL_DEFAULT_LR, 2e-4);
  const own = cfgOf('qwen2', { lora: { r: 4, targets: ['q', 'v'] }, lr: 1e-3 });
  assert.deepEqual(own.lora?.targets, ['q', 'v']);
  assert.equal(own.lora?.r, 4);
  assert.equal(own.lora?.alpha, 32);
  assert.equal(own.lr, 1e-3);
  // a model folder without config.json: left to the trainer (loraModules resolves it from the loaded model)
  const later = validateTrainConfig({ model: tmp('heed-nomodel-'), data: 'x.jsonl', lora: {} }, 'c', tmp());
  assert.equal(later.lora?.targets, undefined);
  for (const [fx, targets] of FIXTURES) {
    const host = loadHostModel(join(TINY, fx));
    assert.deepEqual(defaultLoraTargets(host.config.arch), targets);
    const shape = (n: string) => host.tensors.get(n)!.shape;
    assert.deepEqual(loraModules(host.config, undefined, shape), loraModules(host.config, targets as never, shape), fx);
  }
});

test('PEFT target_modules name exactly the adapted modules (GPT-2 c_proj: attn.c_proj or mlp.c_proj when only one is adapted)', () => {
  assert.deepEqual(peftTargetModules(['h.0.attn.c_attn', 'h.0.attn.c_proj', 'h.0.mlp.c_fc', 'h.0.mlp.c_proj', 'h.1.attn.c_proj', 'h.1.mlp.c_proj']), ['c_attn', 'c_proj', 'c_fc']);
  assert.deepEqual(peftTargetModules(['h.0.attn.c_attn', 'h.0.attn.c_proj', 'h.1.attn.c_proj']), ['c_attn', 'attn.c_proj']);
  assert.deepEqual(peftTargetModules(['h.0.mlp.c_proj']), ['mlp.c_proj']);
  assert.deepEqual(peftTargetModules(['model.layers.0.self_attn.q_proj', 'model.layers.1.self_attn.q_proj', 'model.layers.0.mlp.down_proj']), ['q_proj', 'down_proj']);
});

test('a run with lora: {} adapts every linear layer: config.yaml records the targets, adapter_config.json names them', { timeout: 120_000 }, async () => {
  for (const [fx, targets, peft, perLayer] of FIXTURES) {
    const lines: string[] = [];
    const s = await train(cfgOf(fx, { lora: {} }), { log: (l) => lines.push(l) });
    const saved = YAML.parse(readFileSync(join(s.run_dir, 'config.yaml'), 'utf8'));
    assert.deepEqual(saved.lora.targets, targets, `${fx}: config.yaml`);
    assert.equal(saved.lr, LORA_DEFAULT_LR);
    const layers = loadHostModel(join(TINY, fx)).config.layers;
    assert.ok(lines.some((l) => l.includes(`LoRA r=16 on ${layers * perLayer} modules`)), `${fx}: ${lines.join(' | ')}`);
    const ck = s.last_checkpoint!;
    const ac = JSON.parse(readFileSync(join(ck, 'adapter_config.json'), 'utf8'));
    assert.deepEqual([...ac.target_modules].sort(), [...peft].sort(), `${fx}: target_modules`);
    assert.equal(ac.r, 16);
    assert.equal(ac.lora_alpha, 32);
    assert.equal(ac.fan_in_fan_out, fx === 'gpt2');
    assert.equal(readSafetensors(join(ck, 'adapter_model.safetensors')).tensors.size, 2 * layers * perLayer, `${fx}: A and B per module`);
  }
});
