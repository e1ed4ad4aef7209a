/**
 * IFS benchmark (not a test): throughput of `heed ifs` scoring (responses/s) with batched greedy generation on
 * the SmolLM2-135M shape (random weights, the SmolLM2 tokenizer), and the IFS classifier's speed (texts/s).
 *   npm run bench:ifs -- [--prompts 200] [--max-tokens 64] [--batch 16] [--layers 30] [--threads N]
 * Writes bench/results/ifs-bench.json. Random weights never emit EOS early in practice, so every response
 * runs to --max-tokens: this measures the full budget.
 */
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { initEngine } from '../src/engine/index.js';
import { parseModelConfig, parameterCount } from '../src/models/config.js';
import { randomParams } from '../src/models/random.js';
import { toDevice } from '../src/models/load.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { EngineGenerator } from '../src/decode/generate.js';
import { loadIfsClassifier } from '../src/eval/ifs/classifier.js';
import { loadPromptSet } from '../src/eval/ifs/prompts.js';
import { budgetSubset, scoreIfs } from '../src/eval/ifs/score.js';
import { repoPath } from '../src/eval/jsonl.js';

const { values } = parseArgs({ options: { prompts: { type: 'string' }, 'max-tokens': { type: 'string' }, batch: { type: 'string' }, layers: { type: 'string' }, threads: { type: 'string' }, variant: { type: 'string' } } });
const nPrompts = Number(values.prompts ?? 200);
const maxTokens = Number(values['max-tokens'] ?? 64);
const batch = Number(values.batch ?? 16);
const layers = Number(values.layers ?? 30);
const variant = (values.variant ?? 'C') as 'A' | 'B' | 'C';
const engine = await initEngine({ threads: values.threads ? Number(values.threads) : undefined });

// classifier speed
const clf = loadIfsClassifier();
const { prompts: all } = loadPromptSet();
const texts = all.map((p) => p.instruction);
let t0 = performance.now();
let reps = 0;
while (performance.now() - t0 < 2000) {
  for (const t of texts) clf.prob(t);
  reps++;
}
const clfSecs = (performance.now() - t0) / 1000;
const textsPerS = (reps * texts.length) / clfSecs;
const meanChars = texts.reduce((a, t) => a + t.length, 0) / texts.length;
console.error(`classifier: ${textsPerS.toFixed(0)} texts/s (mean ${meanChars.toFixed(0)} chars)`);

// generation throughput on the SmolLM2-135M shape
const raw = { model_type: 'llama', vocab_size: 49152, hidden_size: 576, num_hidden_layers: layers, num_attention_heads: 9, num_key_value_heads: 3, intermediate_size: 1536, max_position_embeddings: 8192, rms_norm_eps: 1e-5, rope_theta: 100000, tie_word_embeddings: true, hidden_act: 'silu' };
const config = parseModelConfig(raw);
const tokenizer = loadTokenizer(join(repoPath('..', 'shared', 'tokenizers', 'SmolLM2-135M-Instruct')));
const params = toDevice(randomParams(config, 0, { exactNorms: true }));
const gen = new EngineGenerator({ config, params, tokenizer });
const prompts = budgetSubset(all, nPrompts);
let lastLog = 0;
t0 = performance.now();
const res = await scoreIfs(gen, clf, prompts, {
  variants: [variant], maxTokens, batchSize: batch,
  onProgress: (d, t) => {
    if (performance.now() - lastLog > 10_000) (lastLog = performance.now()), console.error(`  ${d}/${t} ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  },
});
const secs = (performance.now() - t0) / 1000;
const tokens = res.responses.reduce((a, r) => a + r.tokens, 0);
const out = {
  date: new Date().toISOString(), node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model, engine,
  shape: { name: layers === 30 ? 'smollm2-135M' : `smollm2-135M-shape-${layers}-layers`, params: parameterCount(config), config: raw },
  ifs: { prompts: prompts.length, variant, max_tokens: maxTokens, batch, decoding: 'greedy', seconds: secs, responses_per_s: res.responses.length / secs, generated_tokens: tokens, tokens_per_s: tokens / secs, ifs: res.scores[0].ifs.value },
  classifier: { texts_per_s: textsPerS, mean_chars: meanChars, model: 'hashed-feature logistic regression (statistics + structure features) capped by a language gate, host JS' },
};
console.log(JSON.stringify(out, null, 2));
mkdirSync(repoPath('bench', 'results'), { recursive: true });
writeFileSync(repoPath('bench', 'results', 'ifs-bench.json'), JSON.stringify(out, null, 2) + '\n');
process.exit(0);
