/**
 * Issue 16, item 2: the tuned folder remembers how it was trained — the template as chat_template
 * (rendering exactly as in training), the base model relatively and by name, final/best exports without
 * optimizer state (checkpoints keep it, with a manifest that verifies), and --chat advice that exists.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { initEngine } from '../src/engine/index.js';
import { validateTrainConfig } from '../src/train/config.js';
import { train } from '../src/train/trainer.js';
import { verifyManifest } from '../src/train/checkpoint.js';
import { loadTokenizer, HeedTokenizer } from '../src/io/tokenizer.js';
import { DataPipeline } from '../src/data/pipeline.js';
import { HeedError } from '../src/errors.js';
import type { Conversation } from '../src/data/types.js';
import { ROOT, TINY } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'heed-tuned-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
const BASE = join(ROOT, 'models', 'base-dolly');
const text = (p: DataPipeline, c: Conversation) => p.prepare(c).pieces.map((x) => x.text).join('');
const conv = (sys: boolean): Conversation => ({
  id: 'x',
  line: 1,
  messages: [...(sys ? [{ role: 'system' as const, content: 'Be brief.' }] : []), { role: 'user', content: 'Name a colour.' }, { role: 'assistant', content: 'Blue, "sky"\tand\nsea.' }],
});

test('every built-in template saved as jinja renders exactly as in training (and the generation prompt is its prefix)', () => {
  const tok = loadTokenizer(BASE);
  for (const name of ['chatml', 'tulu', 'alpaca', 'plain']) {
    const p = new DataPipeline(tok, { template: name });
    const jinja = p.template.jinja();
    for (const sys of [false, true]) {
      const c = conv(sys);
      const want = text(p, c);
      assert.equal(tok.applyChatTemplate(c.messages, { template: jinja, addGenerationPrompt: false }), want, `${name} (system ${sys})`);
      const prompt = tok.applyChatTemplate(c.messages.slice(0, -1), { template: jinja, addGenerationPrompt: true });
      const reply = c.messages.at(-1)!.content;
      assert.ok(want.startsWith(prompt) && want.slice(prompt.length).startsWith(reply.trim().slice(0, 4)), `${name}: the generation prompt ${JSON.stringify(prompt)} leads into the reply in ${JSON.stringify(want)}`);
    }
  }
});

test('a LoRA run exports final/ without optimizer state; the folder has chat_template and a relative base model', async () => {
  await initEngine();
  const data = join(tmp, 'sg.jsonl');
  writeFileSync(data, Array.from({ length: 16 }, (_, i) => JSON.stringify({ conversations: [{ from: 'human', value: `What is ${i} plus 1?` }, { from: 'gpt', value: `${i + 1}.` }] })).join('\n') + '\n');
  const model = join(TINY, 'qwen2');
  const cfg = validateTrainConfig({ model, data, template: 'chatml', max_length: 64, batch_size: 4, steps: 4, save_every: 2, eval_every: 2, eval: null, lr: 1e-3, lora: { r: 2, alpha: 4 }, out: join(tmp, 'runs'), name: 'own' });
  const s = await train(cfg, { quiet: true });
  const final = join(tmp, 'runs', 'own', 'final');
  assert.equal(s.exports?.final, final);
  for (const f of ['optimizer.safetensors', 'trainer_state.json', 'manifest.json']) {
    assert.ok(!existsSync(join(final, f)), `final/ has no ${f}`);
    assert.ok(existsSync(join(tmp, 'runs', 'own', 'step-4', f)), `step-4 keeps ${f}`);
  }
  assert.equal(verifyManifest(join(tmp, 'runs', 'own', 'step-4')), null, 'the checkpoint manifest covers the patched tokenizer_config.json');
  for (const f of ['model.safetensors', 'config.json', 'tokenizer.json', 'adapter_model.safetensors']) assert.ok(existsSync(join(final, f)), f);

  const tok = loadTokenizer(final);
  assert.ok(tok.chatTemplate, 'chat_template saved');
  const p = new DataPipeline(loadTokenizer(model), { template: 'chatml' });
  const c = conv(false);
  assert.equal(tok.applyChatTemplate(c.messages, { addGenerationPrompt: false }), text(p, c));

  const rec = JSON.parse(readFileSync(join(final, 'heed_training.json'), 'utf8'));
  assert.equal(rec.base_model.name, 'qwen2');
  assert.equal(rec.template, 'chatml');
  assert.equal(rec.format, 'sharegpt');
  assert.ok(!rec.base_model.path.startsWith('/'), 'relative');
  assert.equal(resolve(final, rec.base_model.path), model);
  const ac = JSON.parse(readFileSync(join(final, 'adapter_config.json'), 'utf8'));
  assert.equal(resolve(final, ac.base_model_name_or_path), model);
  for (const f of ['heed_training.json', 'adapter_config.json', 'tokenizer_config.json', 'config.json']) assert.ok(!readFileSync(join(final, f), 'utf8').includes(tmp), `${f}: no absolute path of this machine`);
});

test('--chat on a folder without a chat template: the advice names no flag that generate lacks', () => {
  const tok = loadTokenizer(BASE) as HeedTokenizer;
  const bare = Object.create(tok, { chatTemplate: { value: undefined } }) as HeedTokenizer;
  assert.throws(
    () => bare.applyChatTemplate([{ role: 'user', content: 'hi' }]),
    (e: unknown) => e instanceof HeedError && /omit --chat/.test(e.fix ?? '') && !/--template/.test(e.fix ?? ''),
  );
});
