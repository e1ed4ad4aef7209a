import type { Command } from './main.js';
import { flags, parse, num } from './args.js';
import { threadsOption } from './common.js';
import { HeedError } from '../errors.js';

const usage = 'heed ifs train-classifier [--data F ...] [--out data/ifs/classifier.safetensors] [--pair-out data/ifs/pair-classifier.safetensors] [--report data/ifs/classifier-eval.json] [--no-eval] [--seed S] [--epochs N] [--lr X] [--json]';

const options = flags({
  data: { type: 'string', multiple: true, arg: 'FILE', default: '../shared/data/{lima,dolly_3k,alpaca_5k}.jsonl', help: 'conversation files to train on' },
  out: { type: 'string', short: 'o', arg: 'FILE', default: 'data/ifs/classifier.safetensors', help: 'the response classifier to write' },
  'pair-out': { type: 'string', arg: 'FILE', default: 'data/ifs/pair-classifier.safetensors', help: 'the pair classifier (prompt + response) to write' },
  report: { type: 'string', arg: 'FILE', default: 'data/ifs/classifier-eval.json', help: 'the held-out report to write' },
  'no-eval': { type: 'boolean', help: 'skip the held-out folds (faster; no report)' },
  seed: { type: 'string', arg: 'S', default: '0', help: 'seed of the pairs, splits and training' },
  epochs: { type: 'string', arg: 'N', help: 'training epochs (default: the trainer\'s)' },
  lr: { type: 'string', arg: 'X', help: 'learning rate (default: the trainer\'s)' },
  ...threadsOption,
  json: { type: 'boolean', help: 'print the result as JSON' },
});

export const command: Command = {
  path: ['ifs', 'train-classifier'],
  summary: 'train the IFS response and pair classifiers on every pair type and report them on held-out sources',
  usage,
  options,
  async run(argv) {
    const { values } = parse(argv, options, usage, false);
    const { readSources, DEFAULT_TRAIN_FILES, DEFAULT_CLASSIFIER_PATH, DEFAULT_PAIR_CLASSIFIER_PATH, DEFAULT_EVAL_PATH } = await import('../eval/ifs/classifier.js');
    const { trainIfsModels, evaluateFold, FOLDS, formatFoldReports, TARGETS } = await import('../eval/ifs/heldout.js');
    const { TextClassifier } = await import('../eval/text-classifier.js');
    const { DEFAULT_TRAIN } = await import('../eval/train-classifier.js');
    const { startEngine } = await import('./common.js');
    const { existsSync, writeFileSync, mkdtempSync, rmSync } = await import('node:fs');
    const { join, basename } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const files = values.data ?? DEFAULT_TRAIN_FILES;
    const missing = files.filter((f) => !existsSync(f));
    if (missing.length) throw new HeedError(`training data not found: ${missing.join(', ')}`, 'pass --data <conversations.jsonl> (messages rows); the defaults are ../shared/data/{lima,dolly_3k,alpaca_5k}.jsonl beside the checkout');
    const seed = num(values.seed, 'seed', { int: true, min: 0 }) ?? 0;
    const train = { epochs: num(values.epochs, 'epochs', { int: true, min: 1 }) ?? DEFAULT_TRAIN.epochs, lr: num(values.lr, 'lr', { min: 0 }) ?? DEFAULT_TRAIN.lr };
    await startEngine('wasm', values.threads);
    const { rows, bad } = readSources(files);
    if (bad.length) console.error(`[${bad.length} bad row(s) skipped; first: ${bad[0].file}:${bad[0].line}: ${bad[0].error}]`);
    const log = (s: string) => console.error(s);
    const meta = { data: files.map((f) => basename(f)).join(','), model: 'hashed-feature logistic regression over canonical text (response; pair: + prompt and style features and a 32-unit ReLU head over the engineered features) capped by a language gate', pair_types: 'I,R=1 Ip,R=1 Ip,clarify=1 (templates) Ip,Ic=0 I,Ic=0 (next instruction) Ip,Ic+R=0 I,Ic+R=0; joins space/newline/blank; see src/eval/ifs/pairs.ts' };
    const t0 = performance.now();
    const m = await trainIfsModels(rows, { seed, train, meta, log });
    const out = values.out ?? DEFAULT_CLASSIFIER_PATH;
    const pairOut = values['pair-out'] ?? DEFAULT_PAIR_CLASSIFIER_PATH;
    const counts = { ...m.counts };
    const withCounts = (c: InstanceType<typeof TextClassifier>) => new TextClassifier(c.w, c.b, c.cfg, { ...c.meta, train: counts }, c.threshold, c.gate, c.mlp);
    withCounts(m.response).save(out);
    withCounts(m.pair).save(pairOut);
    log(`[wrote ${out} and ${pairOut} in ${((performance.now() - t0) / 1000).toFixed(1)} s]`);
    let folds: Awaited<ReturnType<typeof evaluateFold>>[] = [];
    if (!values['no-eval']) {
      const dir = mkdtempSync(join(tmpdir(), 'heed-ifs-'));
      try {
        for (const fold of FOLDS) {
          log(`[fold ${fold.name}]`);
          // measured on the weights as stored (F16): each fold model goes through a file
          folds.push(await evaluateFold(rows, fold, { seed, train, log, store: (c) => {
            const p = join(dir, 'fold.safetensors');
            c.save(p);
            return TextClassifier.load(p);
          } }));
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      const report = values.report ?? DEFAULT_EVAL_PATH;
      writeFileSync(report, JSON.stringify({ targets: TARGETS, seed, data: meta.data, folds }, null, 1) + '\n');
      log(`[wrote ${report}; ${((performance.now() - t0) / 1000).toFixed(1)} s in all]`);
    }
    if (values.json) console.log(JSON.stringify({ out, pair_out: pairOut, train: counts, targets: TARGETS, folds }, null, 2));
    else {
      console.log(`wrote ${out}, ${pairOut}`);
      if (folds.length) console.log(formatFoldReports(folds));
    }
    return 0;
  },
};
