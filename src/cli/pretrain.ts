import type { Command } from './main.js';
import { parse, num } from './args.js';
import { startEngine } from './common.js';
import { Progress, clock } from './progress.js';
import { HeedError } from '../errors.js';

const usage =
  'heed pretrain --data <file.txt|file.jsonl> --out <dir> [--tokenizer DIR | --vocab N | --init MODEL_DIR] [--hidden H] [--layers L] [--heads n] [--kv-heads k] [--intermediate I] [--context C] [--steps N] [--batch B] [--seq T] [--lr LR] [--warmup N] [--eval-every N] [--seed S] [--samples N] [--dtype F32|F16] [--threads N] [--quiet]';

export const command: Command = {
  path: ['pretrain'],
  summary: 'pretrain a small Llama base model from scratch on plain text (trains a byte-level BPE tokenizer too)',
  usage,
  async run(argv) {
    const { values } = parse(
      argv,
      {
        data: { type: 'string' },
        out: { type: 'string' },
        tokenizer: { type: 'string' },
        init: { type: 'string' },
        vocab: { type: 'string' },
        hidden: { type: 'string' },
        layers: { type: 'string' },
        heads: { type: 'string' },
        'kv-heads': { type: 'string' },
        intermediate: { type: 'string' },
        context: { type: 'string' },
        steps: { type: 'string' },
        batch: { type: 'string' },
        seq: { type: 'string' },
        lr: { type: 'string' },
        warmup: { type: 'string' },
        'eval-every': { type: 'string' },
        'eval-batches': { type: 'string' },
        samples: { type: 'string' },
        seed: { type: 'string' },
        dtype: { type: 'string' },
        threads: { type: 'string' },
        quiet: { type: 'boolean' },
      },
      usage,
      false,
    );
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
        const fields: Record<string, string | number> = { loss: Number.isFinite(p.loss) ? p.loss : '-', 'held-out': p.heldOut ?? '-', 'tok/s': p.tokensPerSec, lr: p.lr };
        bar.update(p.step, fields, p.phase === 'eval');
      },
      log,
    );
    bar?.done();
    const last = res.curve[res.curve.length - 1];
    if (res.samples && !quiet) {
      const { formatSampleReport } = await import('../pretrain/samples.js');
      console.error(formatSampleReport(res.samples));
    }
    console.log(`pretrained ${opts.out}: ${(res.params / 1e6).toFixed(2)}M parameters, ${opts.steps} steps, ${last.tokens} tokens in ${clock(last.seconds)}; held-out loss ${res.firstHeldOut.toFixed(3)} -> ${res.heldOut.toFixed(3)} (curve: ${opts.out}/training.json)`);
    return 0;
  },
};
