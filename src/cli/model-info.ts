import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from './main.js';
import { flags, parse } from './args.js';
import { HeedError } from '../errors.js';
import { readModelConfig, parameterCount } from '../models/config.js';
import { matchTensors } from '../models/load.js';
import { loadHfWeights } from '../io/hf-weights.js';
import { loadTokenizer } from '../io/tokenizer.js';

const usage = 'heed model info <dir> [--json]';

const options = flags({ json: { type: 'boolean', help: 'print the description as JSON' } });

export const command: Command = {
  path: ['model', 'info'],
  summary: 'describe a Hugging Face model folder: architecture, parameters, dtype, vocab, context, chat template',
  usage,
  options,
  async run(argv) {
    const { values, positionals } = parse(argv, options, usage);
    const dir = positionals[0];
    if (!dir) throw new HeedError('missing model folder', `usage: ${usage}`);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new HeedError(`${dir}: not a folder`, 'pass a Hugging Face model folder');
    const { config, raw } = readModelConfig(dir);
    const w = loadHfWeights(dir);
    const m = matchTensors(config, w.tensors, w.dtypes, dir);
    const dtypes = [...new Set(m.dtypes.values())].sort();
    const hasTok = existsSync(join(dir, 'tokenizer.json'));
    const tok = hasTok ? loadTokenizer(dir) : undefined;
    const info = {
      folder: dir,
      architecture: config.arch === 'gpt2' ? 'gpt2' : `${config.modelType} (Llama family)`,
      model_type: config.modelType,
      parameters: parameterCount(config),
      dtype: dtypes.join(', '),
      vocab_size: config.vocabSize,
      tokenizer_vocab: tok?.vocabSize ?? null,
      context_length: config.maxPositions,
      layers: config.layers,
      hidden_size: config.hidden,
      heads: config.heads,
      kv_heads: config.arch === 'llama' ? config.kvHeads : config.heads,
      head_dim: config.headDim,
      intermediate_size: config.intermediate,
      tied_embeddings: config.tieEmbeddings,
      rope: config.arch === 'llama' ? { theta: config.ropeTheta, scaling: config.ropeScaling?.type ?? null } : null,
      chat_template: tok?.chatTemplate !== undefined,
      bos: tok?.bosToken ?? null,
      eos: tok?.eosToken ?? null,
      weight_files: w.files.map((f) => f.split('/').pop()),
      torch_dtype: raw.torch_dtype ?? null,
    };
    if (values.json) {
      console.log(JSON.stringify(info, null, 2));
      return 0;
    }
    const fmtN = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}K` : String(n));
    const rows: Array<[string, string]> = [
      ['folder', dir],
      ['architecture', info.architecture],
      ['parameters', `${fmtN(info.parameters)} (${info.parameters.toLocaleString('en-US')})`],
      ['dtype', info.dtype],
      ['vocab', `${info.vocab_size}${tok ? ` (tokenizer: ${tok.vocabSize})` : ' (no tokenizer.json)'}`],
      ['context length', String(info.context_length)],
      ['layers × hidden', `${info.layers} × ${info.hidden_size} (heads ${info.heads}, kv heads ${info.kv_heads}, head dim ${info.head_dim}, mlp ${info.intermediate_size})`],
      ['tied embeddings', info.tied_embeddings ? 'yes' : 'no'],
      ...(info.rope ? [['rope', `theta ${info.rope.theta}${info.rope.scaling ? `, scaling ${info.rope.scaling}` : ''}`] as [string, string]] : []),
      ['chat template', info.chat_template ? 'yes' : 'no'],
      ['special tokens', `bos ${JSON.stringify(info.bos)}, eos ${JSON.stringify(info.eos)}`],
      ['weights', info.weight_files.join(', ')],
    ];
    const w0 = Math.max(...rows.map((r) => r[0].length));
    for (const [k, v] of rows) console.log(`${k.padEnd(w0)}  ${v}`);
    return 0;
  },
};
