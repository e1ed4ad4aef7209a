/**
 * Issue 16, item 9: LoRA visibly learns on the demo model. With the settings of examples/lora-sharegpt.yaml
 * (every linear layer, r 16, alpha 32, lr 5e-3; the mask here is output, held-out loss is on answers) a tiny run on models/base-dolly lowers the held-out loss on
 * output tokens by a stated margin, and by more than twice what the trial's settings (attention only, r 8,
 * alpha 16, lr 2e-3) do at the same budget (that comparison runs with HEED_LORA_TRIAL=1). Same held-out rows
 * and budget for every run. The IFS example (examples/lora-dolly-ifs.yaml: heed's LoRA defaults, its mask and
 * template, read from the file) lowers it too, on the same tiny budget.
 *
 * The data is Alpaca (../shared/data/alpaca_5k.jsonl), not Dolly: base-dolly was pretrained on every Dolly
 * response text (data/pretrain/README.md), so held-out loss on Dolly answers measures memorisation, and any
 * effective tuning raises it (the demo's tuned models too); on Alpaca answers it measures learning.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initEngine } from '../src/engine/index.js';
import { loadTrainConfig, validateTrainConfig } from '../src/train/config.js';
import { train } from '../src/train/trainer.js';
import { ROOT, SHARED, tmp } from './helpers.js';

await initEngine();

/** the held-out loss drop the IFS example's settings must reach in 12 steps (measured 0.0529: 4.6241 → 4.5712; its weighted mask also trains on the unseen Alpaca instructions) */
const IFS_EXAMPLE_MARGIN = 0.03;
const ALL = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'];
const out = tmp('heed-lora-');
// the first 600 Alpaca rows (fewer rows to read and tokenize per run; the 4 empty answers are further down)
const data = join(out, 'alpaca-600.jsonl');
writeFileSync(data, readFileSync(join(SHARED, 'data', 'alpaca_5k.jsonl'), 'utf8').split('\n').slice(0, 600).join('\n') + '\n');
const evalLoss = async (name: string, over: Record<string, unknown>) => {
  const cfg = validateTrainConfig({
    model: join(ROOT, 'models', 'base-dolly'),
    data,
    template: 'plain',
    max_length: 96,
    truncation: 'truncate-right',
    batch_size: 4,
    steps: 12,
    warmup_steps: 2,
    eval: { split: 0.1 },
    eval_max_rows: 16,
    eval_every: 1000,
    save_every: 1000,
    seed: 0,
    out,
    name,
    ...over,
  });
  const s = await train(cfg, { quiet: true });
  return s.final.eval_loss;
};

/** The IFS example's own settings (lora, lr, mask, template, marker loss) on this test's data and budget. */
const exampleLoss = async (file: string) => {
  const cfg = loadTrainConfig(join(ROOT, 'examples', file), [`data=${JSON.stringify(data)}`, 'max_length=96', 'batch_size=4', 'grad_accum=1', 'steps=12', 'warmup_steps=2', 'eval_max_rows=16', 'eval_every=1000', 'save_every=1000', 'seed=0', `out=${JSON.stringify(out)}`, 'name=ifs-example']);
  assert.deepEqual(cfg.lora, { r: 16, alpha: 32, dropout: 0, targets: ALL }, 'the example uses the LoRA defaults: every linear layer, r 16, alpha 32');
  assert.equal(cfg.lr, 5e-3);
  const s = await train(cfg, { quiet: true });
  return s.final.eval_loss;
};

test('LoRA with the example settings lowers held-out loss on base-dolly within 12 steps (and, with HEED_LORA_TRIAL=1, more than twice the trial settings)', { timeout: 300_000 }, async () => {
  const base = await evalLoss('base', { steps: 1, lr: 1e-12, warmup_steps: 0, lora: { r: 16, alpha: 32, targets: ALL } });
  const tuned = await evalLoss('example', { lr: 5e-3, lora: { r: 16, alpha: 32, targets: ALL } });
  const ifsExample = await exampleLoss('lora-dolly-ifs.yaml');
  const trial = process.env.HEED_LORA_TRIAL ? await evalLoss('trial', { lr: 2e-3, lora: { r: 8, alpha: 16, targets: ['q', 'k', 'v', 'o'] } }) : undefined;
  console.log(`held-out loss: base ${base.toFixed(4)}, example settings ${tuned.toFixed(4)} (${(base - tuned).toFixed(4)} lower), IFS example ${ifsExample.toFixed(4)} (${(base - ifsExample).toFixed(4)} lower)${trial === undefined ? '' : `, trial settings ${trial.toFixed(4)} (${(base - trial).toFixed(4)} lower)`}`);
  // measured here: 0.0124 lower with the example settings, 0.0043 with the trial's (HEED_LORA_TRIAL=1 runs both)
  assert.ok(base - tuned >= 0.008, `example settings: held-out loss ${base.toFixed(4)} → ${tuned.toFixed(4)}, expected at least 0.008 lower`);
  assert.ok(base - ifsExample >= IFS_EXAMPLE_MARGIN, `examples/lora-dolly-ifs.yaml settings: held-out loss ${base.toFixed(4)} → ${ifsExample.toFixed(4)}, expected at least ${IFS_EXAMPLE_MARGIN} lower`);
  if (trial !== undefined) assert.ok(base - tuned > 2 * (base - trial), `example settings should learn more than twice what the trial's did: ${(base - tuned).toFixed(4)} vs ${(base - trial).toFixed(4)}`);
});
