import type { Command } from './main.js';
import { flags, parse } from './args.js';
import { HeedError } from '../errors.js';
import { exportGguf, GGUF_DTYPES, type GgufDtype } from '../export/gguf.js';

const usage = 'heed export gguf <model-dir> <out.gguf> [--dtype f32|f16|q8_0] [--pre <tokenizer.ggml.pre>] [--name <general.name>] [--context N]';

const options = flags({
  dtype: { type: 'string', arg: 'f32|f16|q8_0', default: 'f32', help: 'tensor type in the file' },
  pre: { type: 'string', arg: 'NAME', default: 'chosen from the tokenizer', help: "llama.cpp's tokenizer.ggml.pre (pre-tokenizer name)" },
  name: { type: 'string', arg: 'NAME', default: 'the folder name', help: 'general.name in the file' },
  context: { type: 'string', arg: 'N', default: "the model's max_position_embeddings", help: '<arch>.context_length in the file (a Mistral sliding window must cover it)' },
});

export const command: Command = {
  path: ['export', 'gguf'],
  summary: 'write a model folder as one GGUF file for llama.cpp / Ollama (llama, qwen2, gpt2; f32, f16 or q8_0)',
  usage,
  options,
  async run(argv) {
    const { values, positionals } = parse(argv, options, usage);
    const [dir, out] = positionals;
    if (!dir || !out || positionals.length > 2) throw new HeedError('expected a model folder and an output file', `usage: ${usage}`);
    const dtype = (values.dtype ?? 'f32') as GgufDtype;
    if (!GGUF_DTYPES.includes(dtype)) throw new HeedError(`--dtype ${values.dtype} is not supported`, `use one of ${GGUF_DTYPES.join(', ')}`);
    if (!out.endsWith('.gguf')) throw new HeedError(`${out}: the output file should end in .gguf`, `usage: ${usage}`);
    const context = values.context === undefined ? undefined : Number(values.context);
    if (context !== undefined && !(Number.isInteger(context) && context > 0)) throw new HeedError(`--context ${values.context} is not a positive whole number`, `usage: ${usage}`);
    const t0 = Date.now();
    const r = exportGguf(dir, out, { dtype, pre: values.pre, name: values.name, context });
    console.log(`wrote ${out}: ${r.arch}, ${r.tensors} tensors, ${r.dtype}, ${(r.bytes / 1e6).toFixed(1)} MB, tokenizer ${r.tokenizer === 'llama' ? 'llama (SentencePiece)' : `gpt2, pre ${r.pre}`} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    for (const n of r.notes) console.log(`note: ${n}`);
  },
};
