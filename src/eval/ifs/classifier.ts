/**
 * The IFS response classifier: label 1 = answer-like (a response R), label 0 = continuation-like (Ic or
 * Ic+R). Model: the hashed-feature logistic regression of ../text-classifier.ts.
 *
 * Training data (`heed ifs train-classifier`, defaults): the LIMA, Dolly and Alpaca subsets of ../shared/data
 * (lima.jsonl, dolly_3k.jsonl, alpaca_5k.jsonl). Each usable row gives R (1) and Ic or Ic+R (0) as in
 * fragments.ts. Split by source row: a row is held out when FNV(seed, id) mod 10 == 0 (10 %), so the R and the
 * negative of one row are always on the same side; training texts that also occur verbatim in the held-out
 * split are dropped from training. Augmentation (training split only): every example also appears cut to its
 * first 40..400 characters (at a word boundary), because generated responses are cut at --max-tokens.
 * Held-out metrics are reported on the full texts and on texts cut to their first 200 characters.
 */
import { existsSync } from 'node:fs';
import { HeedError } from '../../errors.js';
import { Prng } from '../../data/prng.js';
import { readJsonlRows, repoPath } from '../jsonl.js';
import { binaryMetrics, DEFAULT_FEATURES, TextClassifier, type BinaryMetrics, type FeatureConfig } from '../text-classifier.js';
import { classifierExamples, rowRng, sourceFromRecord, type LabelledText, type SourceRow } from './fragments.js';

export const DEFAULT_CLASSIFIER_PATH = repoPath('data/ifs/classifier.safetensors');
export const DEFAULT_TRAIN_FILES = ['lima.jsonl', 'dolly_3k.jsonl', 'alpaca_5k.jsonl'].map((f) => repoPath('..', 'shared', 'data', f));
export const IFS_LABELS: [string, string] = ['continuation', 'answer'];

let cached: TextClassifier | undefined;

/** The shipped classifier (or the file at `path`). */
export function loadIfsClassifier(path?: string): TextClassifier {
  if (!path && cached) return cached;
  const p = path ?? DEFAULT_CLASSIFIER_PATH;
  if (!existsSync(p)) throw new HeedError(`${p}: IFS classifier not found`, 'run `heed ifs train-classifier` to build it, or pass --classifier <file>');
  const c = TextClassifier.load(p);
  if (!path) cached = c;
  return c;
}

/** Read source rows from conversation files; bad rows are counted per file. */
export function readSources(files: string[]): { rows: SourceRow[]; bad: Array<{ file: string; line: number; error: string }> } {
  const rows: SourceRow[] = [];
  const bad: Array<{ file: string; line: number; error: string }> = [];
  for (const file of files) {
    for (const r of readJsonlRows(file)) {
      if (!r.value) {
        bad.push({ file, line: r.line, error: r.error! });
        continue;
      }
      const s = sourceFromRecord(r.value, `${file}:${r.line}`);
      if ('error' in s) bad.push({ file, line: r.line, error: s.error });
      else rows.push(s);
    }
  }
  return { rows, bad };
}

export function isHeldOut(id: string, seed: number): boolean {
  return rowRng(seed ^ 0x2545f491, id).int(0, 9) === 0;
}

/** Cut to the first `n` characters at a word boundary (never empty). */
export function cutChars(text: string, n: number): string {
  const t = text.trim();
  if (t.length <= n) return t;
  const sp = t.lastIndexOf(' ', n);
  return t.slice(0, sp > n / 2 ? sp : n);
}

export interface IfsSplit {
  train: Array<LabelledText & { weight?: number }>;
  test: LabelledText[];
  sources: { train: number; test: number };
}

export function ifsSplit(rows: SourceRow[], seed: number): IfsSplit {
  const ex = classifierExamples(rows, seed);
  const test = ex.filter((e) => isHeldOut(e.source_id, seed));
  const testTexts = new Set(test.map((e) => e.text.trim()));
  const base = ex.filter((e) => !isHeldOut(e.source_id, seed) && !testTexts.has(e.text.trim()));
  const rng = new Prng(seed ^ 0x9e3779b9);
  const train: IfsSplit['train'] = [];
  for (const e of base) {
    train.push(e);
    train.push({ ...e, text: cutChars(e.text, rng.int(40, 400)) });
  }
  const src = (xs: LabelledText[]) => new Set(xs.map((e) => e.source_id)).size;
  return { train, test, sources: { train: src(base), test: src(test) } };
}

export interface HeldOutReport {
  full: BinaryMetrics;
  cut200: BinaryMetrics;
}

export function evaluateIfsClassifier(c: TextClassifier, test: LabelledText[]): HeldOutReport {
  const labels = test.map((e) => e.label);
  return {
    full: binaryMetrics(labels, test.map((e) => c.prob(e.text))),
    cut200: binaryMetrics(labels, test.map((e) => c.prob(cutChars(e.text, 200)))),
  };
}

export const IFS_FEATURES: FeatureConfig = DEFAULT_FEATURES;
