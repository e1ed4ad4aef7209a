/**
 * Evaluation-speed benchmark (not a test): the in-process engine vs llama.cpp (node-llama-cpp 3.21.1, CPU) on the
 * same weights — the shipped models and the SmolLM2-135M shape (random weights made by heed, the SmolLM2
 * tokenizer) exported to f32 GGUF (and q8_0 for reference):
 *  - batch-1 greedy decode tokens/s (one warm-up run, then timed; the prefill is included, EOS ignored);
 *  - IFS responses/s (heed's scoreIfs, variant C, greedy, batched) and the IFS value each backend gives.
 *   npm run bench:eval -- [--models base-dolly,tiny-dolly,smollm2] [--tokens 64] [--prompts 48] [--ifs-tokens 32]
 *                         [--batch 16] [--layers 30] [--threads N] [--skip-ifs]
 * Writes bench/results/eval-bench.json (ratios are llama.cpp / engine, measured in the same run).
 */
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { initEngine } from '../src/engine/index.js';
import { parseModelConfig, parameterCount } from '../src/models/config.js';
import { randomParams } from '../src/models/random.js';
import { disposeParams, loadModel, saveHostModel } from '../src/models/load.js';
import { EngineGenerator, type TextGenerator } from '../src/decode/generate.js';
import { exportGguf, type GgufDtype } from '../src/export/gguf.js';
import { openLlamaCpp, NODE_LLAMA_CPP_VERSION } from '../src/backends/llamacpp.js';
import { loadIfsClassifier } from '../src/eval/ifs/classifier.js';
import { loadPromptSet } from '../src/eval/ifs/prompts.js';
import { budgetSubset, scoreIfs } from '../src/eval/ifs/score.js';
import { repoPath } from '../src/eval/jsonl.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

const { values } = parseArgs({ options: { models: { type: 'string' }, tokens: { type: 'string' }, prompts: { type: 'string' }, 'ifs-tokens': { type: 'string' }, batch: { type: 'string' }, layers: { type: 'string' }, threads: { type: 'string' }, 'skip-ifs': { type: 'boolean' } } });
const models = (values.models ?? 'tiny-dolly,base-dolly,smollm2').split(',');
const nTokens = Number(values.tokens ?? 64);
const nPrompts = Number(values.prompts ?? 48);
const ifsTokens = Number(values['ifs-tokens'] ?? 32);
const batch = Number(values.batch ?? 16);
const layers = Number(values.layers ?? 30);
const threads = values.threads ? Number(values.threads) : Math.max(1, availableParallelism() - 1);
const engine = await initEngine({ threads });
const work = mkdtempSync(join(tmpdir(), 'heed-eval-bench-'));
const clf = loadIfsClassifier();
const ifsPrompts = budgetSubset(loadPromptSet().prompts, nPrompts);
const log = (s: string) => console.error(s);

async function decodeSpeed(gen: TextGenerator & { generateIds(ids: number[][], o: object): Promise<Array<{ ids: number[] }>> }, ids: number[]): Promise<{ tokens_per_s: number; seconds: number; ids: number[] }> {
  await gen.generateIds([ids], { maxTokens: 4, eosIds: [] }); // warm-up (compiles the engine's programs)
  const t0 = performance.now();
  const [r] = await gen.generateIds([ids], { maxTokens: nTokens, eosIds: [] });
  const s = (performance.now() - t0) / 1000;
  return { tokens_per_s: r.ids.length / s, seconds: s, ids: r.ids };
}

async function ifsSpeed(gen: TextGenerator, fits: (p: string) => boolean) {
  const t0 = performance.now();
  const res = await scoreIfs(gen, clf, ifsPrompts, { variants: ['C'], maxTokens: ifsTokens, batchSize: batch, fits });
  const s = (performance.now() - t0) / 1000;
  return { responses_per_s: res.responses.length / s, seconds: s, responses: res.responses.length, ifs: res.scores[0].ifs.value, texts: res.responses.map((r) => r.response) };
}

const rows: unknown[] = [];
for (const name of models) {
  let dir: string;
  if (name === 'smollm2') {
    const raw = { model_type: 'llama', vocab_size: 49152, hidden_size: 576, num_hidden_layers: layers, num_attention_heads: 9, num_key_value_heads: 3, intermediate_size: 1536, max_position_embeddings: 2048, rms_norm_eps: 1e-5, rope_theta: 100000, tie_word_embeddings: true, hidden_act: 'silu', bos_token_id: 0, eos_token_id: 0 };
    dir = join(work, 'smollm2');
    saveHostModel(dir, { raw, tensors: randomParams(parseModelConfig(raw), 0, { exactNorms: true }) }, { fromDir: repoPath('..', 'shared', 'tokenizers', 'SmolLM2-135M-Instruct') });
  } else dir = repoPath('models', name);
  log(`== ${name}`);
  const model = await loadModel(dir);
  const eg = new EngineGenerator(model);
  const prompt = model.tokenizer.encode('The history of the city begins with a small river, and the people who lived there', { addSpecialTokens: true });
  const fitsEngine = (p: string) => model.tokenizer.encode(p, { addSpecialTokens: true }).length + ifsTokens <= model.config.maxPositions;
  const row: Record<string, unknown> = { model: name, params: parameterCount(model.config), prompt_tokens: prompt.length, decode_tokens: nTokens };
  const e = await decodeSpeed(eg, prompt);
  log(`engine decode ${e.tokens_per_s.toFixed(1)} tok/s`);
  const ei = values['skip-ifs'] ? undefined : await ifsSpeed(eg, fitsEngine);
  if (ei) log(`engine IFS ${ei.responses_per_s.toFixed(2)} responses/s (IFS ${ei.ifs})`);
  row.engine = { decode_tokens_per_s: e.tokens_per_s, ifs_responses_per_s: ei?.responses_per_s, ifs: ei?.ifs };
  eg.dispose();
  for (const dtype of ['f32', 'q8_0'] as GgufDtype[]) {
    const file = join(work, `${name}-${dtype}.gguf`);
    const t0 = performance.now();
    exportGguf(dir, file, { dtype });
    const exportS = (performance.now() - t0) / 1000;
    const be = await openLlamaCpp(file, { threads });
    const l = await decodeSpeed(be.gen as unknown as EngineGenerator, prompt);
    log(`llama.cpp ${dtype} decode ${l.tokens_per_s.toFixed(1)} tok/s (${(l.tokens_per_s / e.tokens_per_s).toFixed(2)}x engine)`);
    const li = values['skip-ifs'] || dtype !== 'f32' ? undefined : await ifsSpeed(be.gen, (p) => be.fits(p, ifsTokens));
    if (li) log(`llama.cpp ${dtype} IFS ${li.responses_per_s.toFixed(2)} responses/s (IFS ${li.ifs}; ${li.texts.filter((t, i) => t === ei?.texts[i]).length}/${li.texts.length} responses identical)`);
    row[`llamacpp_${dtype}`] = {
      export_seconds: exportS,
      decode_tokens_per_s: l.tokens_per_s, decode_ratio_vs_engine: l.tokens_per_s / e.tokens_per_s, greedy_identical: JSON.stringify(l.ids) === JSON.stringify(e.ids),
      ifs_responses_per_s: li?.responses_per_s, ifs_ratio_vs_engine: li && ei ? li.responses_per_s / ei.responses_per_s : undefined, ifs: li?.ifs,
      ifs_responses_identical: li && ei ? li.texts.filter((t, i) => t === ei.texts[i]).length : undefined,
    };
    await be.dispose();
  }
  disposeParams(model.params);
  rows.push(row);
}
rmSync(work, { recursive: true, force: true });
const out = {
  date: new Date().toISOString(), node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model, threads, engine, node_llama_cpp: NODE_LLAMA_CPP_VERSION,
  settings: { decode: `batch 1, greedy, ${nTokens} tokens after one warm-up`, ifs: `variant C, ${ifsPrompts.length} prompts, ${ifsTokens} tokens, batch ${batch}, greedy`, smollm2_layers: layers, llamacpp: 'CPU, f32 KV cache and no flash attention for f32 files (exact), f16 KV for q8_0' },
  rows,
};
console.log(JSON.stringify(out, null, 2));
mkdirSync(repoPath('bench', 'results'), { recursive: true });
writeFileSync(repoPath('bench', 'results', 'eval-bench.json'), JSON.stringify(out, null, 2) + '\n');
process.exit(0);
