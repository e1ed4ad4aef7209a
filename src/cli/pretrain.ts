import type { Command } from './main.js';
import { flags, parse, num } from './args.js';
import { nativeNote, startEngine, threadsOption } from './common.js';
import { Progress, clock } from './progress.js';
import { HeedError } from '../errors.js';

const usage =
  'heed pretrain --data <file.txt|file.jsonl> --out <dir> [--tokenizer DIR | --vocab N | --init MODEL_DIR] [--hidden H] [--layers L] [--heads n] [--kv-heads k] [--intermediate I] [--context C] [--steps N] [--batch B] [--seq T] [--lr LR] [--warmup N] [--eval-every N] [--seed S] [--samples N] [--dtype F32|F16] [--threads N] [--quiet]';

const options = flags({
  data: { type: 'string', arg: 'FILE', help: 'plain text (.txt) or JSONL with a "text" field (required)' },
  out: { type: 'string', arg: 'DIR', help: 'the model folder to write (required)' },
  tokenizer: { type: 'string', arg: 'DIR', help: 'use the tokenizer of this folder instead of training one' },
  init: { type: 'string', arg: 'DIR', help: 'continue from this model folder (its shape and tokenizer)' },
  vocab: { type: 'string', arg: 'N', default: '3072', help: 'vocabulary size of the BPE tokenizer trained here (>= 260)' },
  hidden: { type: 'string', arg: 'H', default: '192', help: 'hidden size' },
  layers: { type: 'string', arg: 'L', default: '4', help: 'transformer blocks' },
  heads: { type: 'string', arg: 'n', default: '6', help: 'attention heads' },
  'kv-heads': { type: 'string', arg: 'k', default: '2', help: 'key/value heads (grouped-query attention)' },
  intermediate: { type: 'string', arg: 'I', default: '512', help: 'MLP intermediate size' },
  context: { type: 'string', arg: 'C', default: '512', help: "the model's context length" },
  steps: { type: 'string', arg: 'N', default: '1000', help: 'optimizer steps' },
  batch: { type: 'string', arg: 'B', default: '8', help: 'sequences per step' },
  seq: { type: 'string', arg: 'T', default: '256', help: 'tokens per training sequence' },
  lr: { type: 'string', arg: 'LR', default: '2e-3', help: 'peak learning rate (warmup, then cosine)' },
  warmup: { type: 'string', arg: 'N', default: 'min(100, steps/10)', help: 'warmup steps' },
  'eval-every': { type: 'string', arg: 'N', default: 'min(100, steps)', help: 'held-out loss every N steps' },
  'eval-batches': { type: 'string', arg: 'N', default: '8', help: 'batches per held-out evaluation' },
  samples: { type: 'string', arg: 'N', default: '24', help: 'continuations written and measured at the end (0 = none)' },
  seed: { type: 'string', arg: 'S', default: '1234', help: 'seed of the init and the data order' },
  dtype: { type: 'string', arg: 'F32|F16', default: 'F32', help: 'weights dtype on disk' },
  ...threadsOption,
  quiet: { type: 'boolean', help: 'no progress lines' },
});

export const command: Command = {
  path: ['pretrain'],
  summary: 'pretrain a small Llama base model from scratch on plain text (trains a byte-level BPE tokenizer too)',
  usage,
  options,
  async run(argv) {
    const { values } = parse(argv, options, usage, false);
    if (!values.data) throw new HeedError('missing --data', `usage: ${usage}`);
    if (!values.out) throw new HeedError('missing --out', `usage: ${usage}`);
    const { PRETRAIN_DEFAULTS, pretrain } = await import('../pretrain/pretrain.js');
    const d = PRETRAIN_DEFAULTS;
    const dtype = (values.dtype ?? d.dtype).toUpperCase();
    if (dtype !== 'F32' && dtype !== 'F16') throw new HeedError(`--dtype must be F32 or F16, got "${values.dtype}"`, 'use --dtype F16 to halve the file size');
    const int = (k: keyof typeof values, min = 1) => num(values[k], k, { int: true, min });
    const steps = int('steps') ?? d.steps;
    const opts = {
      ...d,
      data: values.data,
      out: values.out,
      tokenizer: values.tokenizer,
      init: values.init,
      vocab: int('vocab', 260) ?? d.vocab,
      hidden: int('hidden') ?? d.hidden,
      layers: int('layers') ?? d.layers,
      heads: int('heads') ?? d.heads,
      kvHeads: int('kv-heads') ?? d.kvHeads,
      intermediate: int('intermediate') ?? d.intermediate,
      context: int('context', 2) ?? d.context,
      steps,
      batch: int('batch') ?? d.batch,
      seq: int('seq', 2) ?? d.seq,
      lr: num(values.lr, 'lr', { min: 0 }) ?? d.lr,
      warmup: int('warmup', 0) ?? Math.min(d.warmup, Math.floor(steps / 10)),
      evalEvery: int('eval-every') ?? Math.min(d.evalEvery, steps),
      evalBatches: int('eval-batches') ?? d.evalBatches,
      samples: int('samples', 0) ?? d.samples,
      seed: int('seed', 0) ?? d.seed,
      dtype: dtype as 'F32' | 'F16',
    };
    const quiet = !!values.quiet;
    const log = (s: string) => {
      if (!quiet) console.error(s);
    };
    const info = await startEngine(undefined, values.threads);
    log(`engine: ${info.device}, ${info.threads} threads`);
    let bar: Progress | undefined;
    const res = await pretrain(
      opts,
      (p) => {
        bar ??= new Progress('pretrain', p.steps, quiet);
        const fields: Record<string, string | number> = { loss: Number.isFinite(p.loss) ? p.loss : '-', 'held-out': p.heldOut ?? '-', 'tok/s': Math.round(p.tokensPerSec).toString(), lr: p.lr };
        bar.update(p.step, fields, p.phase === 'eval');
      },
      log,
    );
    bar?.done();
    if (!quiet) nativeNote(info);
    const last = res.curve[res.curve.length - 1];
    if (res.samples && !quiet) {
      const { formatSampleReport } = await import('../pretrain/samples.js');
      console.error(formatSampleReport(res.samples));
    }
    console.log(`pretrained ${opts.out}: ${(res.params / 1e6).toFixed(2)}M parameters, ${opts.steps} steps, ${last.tokens} tokens in ${clock(last.seconds)}; held-out loss ${res.firstHeldOut.toFixed(3)} -> ${res.heldOut.toFixed(3)} (curve: ${opts.out}/training.json)`);
    return 0;
  },
};
