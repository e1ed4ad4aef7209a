/**
 * One held-out fold of the IFS classifiers with given training options, for the experiment scripts
 * (scripts/ifs-mlp.ts, scripts/ifs-augment.ts): trains on the fold's training sources, stores each classifier in a
 * temporary folder and reads it back (as the shipped files are read), evaluates on the held-out source, and returns
 * the report beside the committed one of the same fold (data/ifs/classifier-eval.json) and the seconds it took.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { readSources, DEFAULT_TRAIN_FILES, DEFAULT_EVAL_PATH } from '../src/eval/ifs/classifier.js';
import { evaluateFold, FOLDS, type FoldReport } from '../src/eval/ifs/heldout.js';
import { TextClassifier } from '../src/eval/text-classifier.js';

type FoldOptions = Omit<NonNullable<Parameters<typeof evaluateFold>[2]>, 'store' | 'log'>;

export async function runFold(fold: number, opts: FoldOptions): Promise<{ rep: FoldReport; base: FoldReport; secs: number }> {
  const { rows } = readSources(DEFAULT_TRAIN_FILES);
  const dir = mkdtempSync(join(tmpdir(), 'heed-ifs-fold-'));
  const t0 = performance.now();
  let rep: FoldReport;
  try {
    rep = await evaluateFold(rows, FOLDS[fold], {
      ...opts,
      log: (s) => console.error(s),
      store: (c) => {
        const p = join(dir, 'fold.safetensors');
        c.save(p);
        return TextClassifier.load(p);
      },
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const secs = (performance.now() - t0) / 1000;
  const base = (JSON.parse(readFileSync(DEFAULT_EVAL_PATH, 'utf8')) as { folds: FoldReport[] }).folds[fold];
  return { rep, base, secs };
}
