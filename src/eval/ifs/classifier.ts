/**
 * The shipped IFS classifiers — the response classifier (label 1 = answer-like, 0 = continuation-like; IFS) and
 * the pair classifier (the same, seeing the prompt too; IFS-pair) — with their file locations, the source rows
 * they are trained from and the feature configs they share. Training and the held-out-source report:
 * heldout.ts; the examples: pairs.ts; the model: ../text-classifier.ts.
 */
import { existsSync } from 'node:fs';
import { HeedError } from '../../errors.js';
import { readJsonlRows, repoPath } from '../jsonl.js';
import { bigramBitset, DEFAULT_FEATURES, TextClassifier, type FeatureConfig } from '../text-classifier.js';
import { sourceFromRecord, type SourceRow } from './fragments.js';

export const DEFAULT_CLASSIFIER_PATH = repoPath('data/ifs/classifier.safetensors');
export const DEFAULT_PAIR_CLASSIFIER_PATH = repoPath('data/ifs/pair-classifier.safetensors');
/** The held-out-source report written by `heed ifs train-classifier` (src/eval/ifs/heldout.ts). */
export const DEFAULT_EVAL_PATH = repoPath('data/ifs/classifier-eval.json');
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

let cachedPair: TextClassifier | undefined;

/** The shipped pair classifier (sees the prompt too: `prob(text, prompt)`), or the file at `path`. */
export function loadIfsPairClassifier(path?: string): TextClassifier {
  if (!path && cachedPair) return cachedPair;
  const p = path ?? DEFAULT_PAIR_CLASSIFIER_PATH;
  if (!existsSync(p)) throw new HeedError(`${p}: IFS pair classifier not found`, 'run `heed ifs train-classifier` to build it, or pass --pair-classifier <file>');
  const c = TextClassifier.load(p);
  if (!c.cfg.pair) throw new HeedError(`${p}: not a pair classifier (no pair features in its config)`, 'point at a file written by `heed ifs train-classifier --pair-out`');
  if (!path) cachedPair = c;
  return c;
}

/** Read source rows from conversation files; bad rows are counted per file. */
export function readSources(files: string[], o: { needResponse?: boolean } = {}): { rows: SourceRow[]; bad: Array<{ file: string; line: number; error: string }> } {
  const rows: SourceRow[] = [];
  const bad: Array<{ file: string; line: number; error: string }> = [];
  for (const file of files) {
    for (const r of readJsonlRows(file)) {
      if (!r.value) {
        bad.push({ file, line: r.line, error: r.error! });
        continue;
      }
      const s = sourceFromRecord(r.value, `${file}:${r.line}`, o.needResponse ?? true);
      if ('error' in s) bad.push({ file, line: r.line, error: s.error });
      else rows.push(s);
    }
  }
  return { rows, bad };
}

/** Cut to the first `n` characters at a word boundary (never empty). */
export function cutChars(text: string, n: number): string {
  const t = text.trim();
  if (t.length <= n) return t;
  const sp = t.lastIndexOf(' ', n);
  return t.slice(0, sp > n / 2 ? sp : n);
}

/** Word bigrams (lower case, letters only, as the classifier tokenizes) seen in at least `minCount` training responses. */
export function buildBigrams(rows: SourceRow[], minCount = 2): string[] {
  const c = new Map<string, number>();
  for (const r of rows) {
    const ws = r.response.toLowerCase().match(/[\p{L}\p{M}]+|\p{N}+|[^\s\p{L}\p{M}\p{N}]/gu) ?? [];
    const seen = new Set<string>();
    for (let i = 0; i + 1 < ws.length; i++) if (/^\p{L}+$/u.test(ws[i]) && /^\p{L}+$/u.test(ws[i + 1])) seen.add(`${ws[i]} ${ws[i + 1]}`);
    for (const b of seen) c.set(b, (c.get(b) ?? 0) + 1);
  }
  return [...c].filter(([, n]) => n >= minCount).map(([b]) => b).sort();
}

/** Words (lower case, letters only) seen in at least `minCount` training responses, sorted. */
export function buildDict(rows: SourceRow[], minCount = 3): string[] {
  const c = new Map<string, number>();
  for (const r of rows) for (const w of new Set(r.response.toLowerCase().match(/[\p{L}\p{M}]+/gu) ?? [])) c.set(w, (c.get(w) ?? 0) + 1);
  return [...c].filter(([, n]) => n >= minCount).map(([w]) => w).sort();
}

export const IFS_FEATURES: FeatureConfig = { ...DEFAULT_FEATURES, stats: true, structure: true };

/** The IFS feature config with the known-word list of the training split. */
export function ifsFeatures(dict: string[]): FeatureConfig {
  return { ...IFS_FEATURES, dict: dict.join(' ') };
}

export const BIGRAM_BITS = 1 << 18;

/**
 * The language gate's features: those of the main model (2^17 buckets) and, in 2^12 buckets of their own, the
 * text statistics again with the known-bigram statistic (`only: 'stats'`).
 */
export function gateFeatures(dict: string[], bigrams: string[]): FeatureConfig {
  const stats: FeatureConfig = { buckets: 1 << 12, maxChars: DEFAULT_FEATURES.maxChars, charChars: 0, maxFeatures: 64, stats: true, only: 'stats', dict: dict.join(' '), bigrams: bigramBitset(bigrams, BIGRAM_BITS) };
  const main = ifsFeatures(dict);
  return { ...main, buckets: main.buckets + stats.buckets, maxFeatures: main.maxFeatures + stats.maxFeatures, extra: stats };
}
