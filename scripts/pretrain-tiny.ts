/**
 * Pretrains the small byte-level Llama that the repo ships as its embedded default (models/tiny-dolly):
 * plain text (the response texts of the Dolly subset, CC BY-SA 3.0 — not instruction-formatted), random
 * windows, AdamW with warmup + cosine decay. Reproduce: node --import tsx scripts/pretrain-tiny.ts [--steps N]
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { initEngine, toHost } from '../src/engine/index.js';
import { parseModelConfig } from '../src/models/config.js';
import { randomParams, mulberry32 } from '../src/models/random.js';
import { toDevice, toHostTensors, saveHostModel } from '../src/models/load.js';
import { makeTrainer, toDeviceBatch } from '../src/train/step.js';
import { adamw, chain, decays } from '../src/train/adamw.js';
import { byteLevelTokenizerJson } from '../src/io/byte-tokenizer.js';
import { loadTokenizer } from '../src/io/tokenizer.js';

const arg = (k: string, d: string) => { const i = process.argv.indexOf(k); return i > 0 ? process.argv[i + 1] : d; };
const STEPS = Number(arg('--steps', '1500'));
const OUT = arg('--out', 'models/tiny-dolly');
const DATA = arg('--data', '../shared/data/dolly_3k.jsonl');
const B = 8, T = 128, LR = 3e-3, WARM = 50;

const raw = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 272, hidden_size: 128, intermediate_size: 384,
  num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 512, rms_norm_eps: 1e-5,
  rope_theta: 10000, tie_word_embeddings: true, hidden_act: 'silu', bos_token_id: 0, eos_token_id: 0, torch_dtype: 'float32',
};
const config = parseModelConfig(raw);
mkdirSync(OUT, { recursive: true });
writeFileSync(join(OUT, 'tokenizer.json'), JSON.stringify(byteLevelTokenizerJson({ specials: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'] })));
writeFileSync(join(OUT, 'tokenizer_config.json'), JSON.stringify({ bos_token: null, eos_token: '<|endoftext|>', pad_token: '<|endoftext|>', model_max_length: 512 }, null, 2) + '\n');
writeFileSync(join(OUT, 'generation_config.json'), JSON.stringify({ eos_token_id: 0 }, null, 2) + '\n');
const tok = loadTokenizer(OUT);

// corpus: every assistant response, separated by EOS; the last 5% of documents held out
const docs = readFileSync(DATA, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).messages.filter((m: { role: string }) => m.role === 'assistant').map((m: { content: string }) => m.content).join('\n'));
const cut = Math.floor(docs.length * 0.95);
const enc = (ds: string[]) => Int32Array.from(ds.flatMap((d) => [...tok.encode(d), 0]));
const train = enc(docs.slice(0, cut));
const held = enc(docs.slice(cut));
console.log(`corpus: ${docs.length} documents, ${train.length} train tokens, ${held.length} held-out tokens`);

await initEngine();
const rand = mulberry32(1234);
const window = (src: Int32Array) => { const ids = new Int32Array(B * T); for (let b = 0; b < B; b++) { const s = Math.floor(rand() * (src.length - T)); ids.set(src.subarray(s, s + T), b * T); } return ids; };
const opt = chain(adamw({ beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, decayMask: decays }));
const tr = makeTrainer(config, opt);
let p = toDevice(randomParams(config, 42, { std: 0.02, exactNorms: true })), st = opt.init(p);
const weights = new Float32Array(B * T).fill(1);
const heldBatches = Array.from({ length: 8 }, (_, i) => { const ids = new Int32Array(B * T); for (let b = 0; b < B; b++) { const s = ((i * B + b) * 997) % (held.length - T); ids.set(held.subarray(s, s + T), b * T); } return ids; });
const heldLoss = async () => { let s = 0; for (const ids of heldBatches) s += (await toHost(tr.evalLoss(p, toDeviceBatch({ B, T, ids, weights }))))[0]; return s / heldBatches.length; };
const curve: Array<{ step: number; loss: number; heldOut?: number }> = [];
const t0 = performance.now();
for (let step = 1; step <= STEPS; step++) {
  const lr = step <= WARM ? (LR * step) / WARM : 0.1 * LR + 0.9 * LR * 0.5 * (1 + Math.cos((Math.PI * (step - WARM)) / (STEPS - WARM)));
  const out = tr.step(p, st, toDeviceBatch({ B, T, ids: window(train), weights }), { lr, count: step });
  p = out.p; st = out.state;
  const loss = (await toHost(out.loss))[0];
  if (step % 100 === 0 || step === 1 || step === STEPS) {
    const h = await heldLoss();
    curve.push({ step, loss, heldOut: h });
    const el = (performance.now() - t0) / 1000;
    console.log(`step ${step}/${STEPS} loss ${loss.toFixed(3)} held-out ${h.toFixed(3)} ${((step * B * T) / el).toFixed(0)} tok/s ETA ${((el / step) * (STEPS - step)).toFixed(0)} s`);
  }
}
saveHostModel(OUT, { raw, tensors: await toHostTensors(p) }, { dtype: 'F32' });
writeFileSync(join(OUT, 'training.json'), JSON.stringify({ corpus: 'databricks-dolly-15k (AlpaGasus subset) response texts, CC BY-SA 3.0', steps: STEPS, batch: [B, T], lr: LR, seconds: (performance.now() - t0) / 1000, curve }, null, 2) + '\n');
writeFileSync(join(OUT, 'README.md'), `# tiny-dolly\n\nA ${(0.82).toFixed(2)}M-parameter byte-level Llama pretrained by \`scripts/pretrain-tiny.ts\` on the response texts of the\nDolly subset in \`../shared/data/dolly_3k.jsonl\` (databricks-dolly-15k, CC BY-SA 3.0; the weights are a derivative under the same licence).\nPlain text, not instruction-formatted: it continues text; it does not follow instructions. Training curve: training.json.\n`);
console.log(`saved ${OUT}`);
process.exit(0);
