/**
 * The IFS response classifier: label 1 = answer-like (a response R), label 0 = continuation-like (Ic or
 * Ic+R). Model: the hashed-feature logistic regression of ../text-classifier.ts with the text statistics and the
 * structure features (first line vs the rest, how the text ends), capped by a language gate (a second logistic
 * regression over the same features plus statistics in buckets of their own): p = min(p_answer, p_language).
 * The main model learns the paper's examples and the echoed instruction; the gate learns language (the paper's
 * texts) vs the other generated negatives (noise, loops, salad, pseudo-English, slices, tiny-dolly generations).
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
import { bigramBitset, binaryMetrics, DEFAULT_FEATURES, TextClassifier, type BinaryMetrics, type FeatureConfig } from '../text-classifier.js';
import { classifierExamples, rowRng, sourceFromRecord, type LabelledText, type SourceRow } from './fragments.js';
import { readModelNegatives, responseVocab, syntheticNegatives, type NoiseText } from './negatives.js';

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
  train: Array<{ text: string; label: 0 | 1; source_id: string; kind: string; weight?: number }>;
  /** training set of the language gate: label 1 = the language texts of `train`, 0 = noise */
  gateTrain: Array<{ text: string; label: 0 | 1; source_id: string; kind: string }>;
  /** the original held-out split (R vs Ic / Ic+R of the held-out rows) */
  test: LabelledText[];
  /** the held-out noise set (label 0): synthetic negatives of the held-out rows + held-out model generations */
  noiseTest: NoiseText[];
  sources: { train: number; test: number };
  /** the known-word list of the training responses (for the `known` statistic) */
  dict: string[];
  /** known bigrams of the training responses */
  bigrams: string[];
}

export interface SplitOptions {
  /** add the project-generated negatives of negatives.ts (default true) */
  noise?: boolean;
  /** generations of a pretrained-only model (label 0); default: the committed data/ifs/negatives file */
  modelNegatives?: NoiseText[];
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

/**
 * Project-generated negatives the main model learns (the instruction given back: language, not an answer); the
 * rest — noise, loops, word salad, pseudo-English, slices of responses, generations of a pretrained-only model —
 * train the gate only, so the main model keeps to the paper's question (answer vs continuation).
 */
export const MAIN_KINDS = new Set<string>(['echo']);

export function ifsSplit(rows: SourceRow[], seed: number, o: SplitOptions = {}): IfsSplit {
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
  const trainRows = rows.filter((r) => !isHeldOut(r.id, seed));
  const noiseTest: NoiseText[] = [];
  const gateTrain: IfsSplit['gateTrain'] = train.map((e) => ({ ...e, label: 1 as const }));
  if (o.noise ?? true) {
    // vocabularies from each side only, so held-out noise never uses words drawn from training rows' order
    const heldRows = rows.filter((r) => isHeldOut(r.id, seed));
    const model = o.modelNegatives ?? readModelNegatives();
    for (const n of [...syntheticNegatives(trainRows, responseVocab(trainRows), seed), ...model.filter((m) => !isHeldOut(m.source_id, seed))]) {
      if (!n.text.trim() || testTexts.has(n.text.trim())) continue;
      // the instruction given back → the main model (not an answer); everything else → the gate (not language)
      if (MAIN_KINDS.has(n.kind)) train.push(n);
      else gateTrain.push(n);
    }
    noiseTest.push(...syntheticNegatives(heldRows, responseVocab(heldRows), seed).filter((n) => n.text.trim()), ...model.filter((m) => isHeldOut(m.source_id, seed)));
  }
  const src = (xs: Array<{ source_id: string }>) => new Set(xs.map((e) => e.source_id)).size;
  return { train, gateTrain, test, noiseTest, sources: { train: src(base), test: src(test) }, dict: buildDict(trainRows), bigrams: buildBigrams(trainRows) };
}

/** Share of a noise set labelled 0 ("not an answer"), overall and per kind. */
export function evaluateNoise(c: TextClassifier, noise: NoiseText[]): { n: number; accuracy: number; by_kind: Record<string, { n: number; accuracy: number }> } {
  const by: Record<string, { n: number; ok: number }> = {};
  let ok = 0;
  for (const e of noise) {
    const good = c.prob(e.text) < c.threshold ? 1 : 0;
    ok += good;
    const b = (by[e.kind] ??= { n: 0, ok: 0 });
    b.n++;
    b.ok += good;
  }
  const by_kind = Object.fromEntries(Object.entries(by).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, { n: v.n, accuracy: v.ok / v.n }]));
  return { n: noise.length, accuracy: noise.length ? ok / noise.length : 0, by_kind };
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
