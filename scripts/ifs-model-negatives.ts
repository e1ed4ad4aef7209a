/**
 * Generations of a pretrained-only model, used as label-0 ("not an answer") examples for the IFS classifier
 * (data/ifs/negatives/tiny-dolly.jsonl). models/tiny-dolly continues text and does not follow instructions;
 * its outputs (pseudo-English, repetition loops) are what weak models emit.
 *
 * Prompts: instructions of ../shared/data/alpaca_5k.jsonl (never the IFS prompt set, which is Dolly), half of
 * them cut to a partial instruction (the IFS fragment rule), wrapped in IFS variants A/B/C by turn. Decoding
 * cycles temperature 0 / 0.8 / 1.0 (seed = the batch index), at most 64 new tokens, batches of 16.
 * Deterministic (the wasm engine is); the output is committed, so training the classifier needs no model run.
 *
 * With `--adapter rules` the rule adapter (docs/rules.md) decodes: the model then emits short "- item" lists of
 * pseudo-words that end early — still not answers.
 *
 * Reproduce: node --import tsx scripts/ifs-model-negatives.ts [--model models/tiny-dolly] [--n 480] [--out data/ifs/negatives/tiny-dolly.jsonl]
 *            node --import tsx scripts/ifs-model-negatives.ts --adapter rules --skip 480 --n 240 --out data/ifs/negatives/tiny-dolly-rules.jsonl
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { initEngine } from '../src/engine/index.js';
import { loadModel } from '../src/models/load.js';
import { EngineGenerator } from '../src/decode/generate.js';
import { readSources } from '../src/eval/ifs/classifier.js';
import { rowRng, shiftedCut, wordCount } from '../src/eval/ifs/fragments.js';
import { wrapPrompt, type Variant } from '../src/eval/ifs/score.js';

const arg = (k: string, d: string) => { const i = process.argv.indexOf(k); return i > 0 ? process.argv[i + 1] : d; };
const MODEL = arg('--model', 'models/tiny-dolly');
const N = Number(arg('--n', '480'));
const OUT = arg('--out', 'data/ifs/negatives/tiny-dolly.jsonl');
const DATA = arg('--data', '../shared/data/alpaca_5k.jsonl');
/** `--adapter rules[:preset]`: decode with the rule adapter (short list-like pseudo-answers) */
const ADAPTER = arg('--adapter', '');
/** skip the first K usable instructions (so a second file uses other prompts) */
const SKIP = Number(arg('--skip', '0'));
const B = 16;
const TEMPS = [0, 0.8, 1.0];
const VARIANTS: Variant[] = ['A', 'B', 'C'];

await initEngine({ device: 'wasm', threads: Number(process.env.HEED_THREADS ?? 1) });
const model = await loadModel(MODEL);
const gen = new EngineGenerator(model);
const ctx = model.config.maxPositions;
const eos = new Set(model.tokenizer.eosIds);
const { loadRules, compileRules } = await import('../src/decode/rules.js');
const processors = ADAPTER ? [compileRules(loadRules(ADAPTER.replace(/^rules:?/, '')), model.tokenizer).processor] : [];
const { rows } = readSources([DATA]);
const items: Array<{ id: string; kind: string; variant: Variant; prompt: string }> = [];
let skipped = 0;
for (const r of rows) {
  if (items.length >= N) break;
  if (wordCount(r.instruction) >= 3 && r.instruction.length <= 300 && skipped++ < SKIP) continue;
  if (wordCount(r.instruction) < 3 || r.instruction.length > 300) continue;
  const rng = rowRng(0x7ea5, r.id);
  const partial = rng.next() < 0.5;
  const p = partial ? shiftedCut(r.instruction, rng).partial : r.instruction;
  const variant = VARIANTS[items.length % 3];
  const prompt = wrapPrompt(p, variant);
  if (model.tokenizer.encode(prompt, { addSpecialTokens: true }).length + 64 > ctx) continue;
  items.push({ id: r.id, kind: partial ? 'partial' : 'full', variant, prompt });
}
// The engine's memory grows with every prompt shape it compiles, so batches run in child processes of
// CHUNK batches each (`--batches a:b`); the parent collects their lines in order.
const CHUNK = 6;
const range = arg('--batches', '');
if (!range) {
  const { spawnSync } = await import('node:child_process');
  const nb = Math.ceil(items.length / B);
  const out: string[] = [];
  for (let a = 0; a < nb; a += CHUNK) {
    const r = spawnSync(process.execPath, [...process.execArgv, process.argv[1], ...process.argv.slice(2), '--batches', `${a}:${Math.min(nb, a + CHUNK)}`], { encoding: 'utf8', maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'inherit'] });
    if (r.status !== 0) throw new Error(`batches ${a}.. failed (exit ${r.status})`);
    out.push(...r.stdout.split('\n').filter(Boolean));
    process.stderr.write(`${Math.min(items.length, (a + CHUNK) * B)}/${items.length}\n`);
  }
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, out.join('\n') + '\n');
  console.log(`wrote ${out.length} generations of ${MODEL} to ${OUT}`);
  process.exit(0);
}
const [ba, bb] = range.split(':').map(Number);
const out: string[] = [];
for (let bi = ba; bi < bb; bi++) {
  const s = bi * B;
  const batch = items.slice(s, s + B);
  const temperature = TEMPS[bi % TEMPS.length];
  // EOS is handled here (generation runs the full 64 tokens, the text is cut at the first EOS): the engine
  // generator cannot decode a row whose first token is EOS (empty id list)
  const gens = await gen.generate(batch.map((x) => x.prompt), { maxTokens: 64, temperature, seed: bi, eosIds: [-1], logitsProcessors: processors });
  gens.forEach((g, i) => {
    const x = batch[i];
    const e = g.ids.findIndex((id) => eos.has(id));
    const ids = e < 0 ? g.ids : g.ids.slice(0, e);
    const text = ids.length ? model.tokenizer.decode(ids, { skipSpecialTokens: true }) : '';
    if (text.trim()) out.push(JSON.stringify({ id: `${x.id}#${x.variant}`, source_id: x.id, kind: x.kind, variant: x.variant, temperature, seed: bi, ...(ADAPTER ? { adapter: ADAPTER } : {}), text }));
  });
}
if (out.length) console.log(out.join('\n'));
