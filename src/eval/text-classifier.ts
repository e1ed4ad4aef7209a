/**
 * A small binary text classifier: logistic regression over hashed features (word unigrams and bigrams,
 * character 3-grams of the opening, and "how does the text start" features), trained with project code on the
 * engine (jit + valueAndGrad + the project's AdamW) and scored on the host with plain JavaScript (no engine
 * needed to classify). Used by IFS (answer-like vs continuation-like) and the ObjecQA judge.
 *
 * p(label 1 | text) = σ(b + Σ_f w[h(f)]·x_f), h = FNV-1a 32-bit mod `buckets`.
 * Feature values: bag features (unigrams, bigrams, char 3-grams) are counted and scaled by 1/√(number of bag
 * features in the text); start features ("first token is X", "first two tokens are X Y", the class of the
 * first character, a lower-case start) have value 1; one length feature (log2 of the token count) has value 1.
 * Weights are stored as safetensors (`w` [buckets], `b` [1]) with the feature config in the metadata.
 */
import { HeedError } from '../errors.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';

export interface FeatureConfig {
  buckets: number;
  /** characters of the (trimmed) text that are featurised */
  maxChars: number;
  /** characters of the opening that contribute char 3-grams */
  charChars: number;
  /** features per text kept (start features first); fixed so training compiles once */
  maxFeatures: number;
}

export const DEFAULT_FEATURES: FeatureConfig = { buckets: 1 << 17, maxChars: 600, charChars: 120, maxFeatures: 384 };

export interface Features {
  idx: Int32Array;
  val: Float32Array;
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

const TOKEN_RE = /[\p{L}\p{M}]+|\p{N}+|[^\s\p{L}\p{M}\p{N}]/gu;

function charClass(c: string | undefined): string {
  if (c === undefined) return 'none';
  if (/\p{Lu}/u.test(c)) return 'upper';
  if (/\p{Ll}/u.test(c)) return 'lower';
  if (/\p{N}/u.test(c)) return 'digit';
  return `punct:${c}`;
}

/** Hashed features of one text (see the module comment). */
export function featurize(text: string, cfg: FeatureConfig): Features {
  const t = text.trim().slice(0, cfg.maxChars);
  const toks = t.match(TOKEN_RE) ?? [];
  const lower = toks.map((x) => x.toLowerCase());
  const start = new Map<number, number>();
  const bag = new Map<number, number>();
  const add = (m: Map<number, number>, f: string, v = 1) => {
    const h = fnv1a(f) % cfg.buckets;
    m.set(h, (m.get(h) ?? 0) + v);
  };
  add(start, `s0:${toks[0] ?? ''}`);
  add(start, `s1:${lower.slice(0, 2).join(' ')}`);
  add(start, `s2:${lower.slice(0, 3).join(' ')}`);
  add(start, `c0:${charClass(t[0])}`);
  add(start, `len:${Math.floor(Math.log2(1 + toks.length))}`);
  const lines = t.split('\n');
  const firstLine = lines[0];
  const fl = (firstLine.match(TOKEN_RE) ?? []).map((x) => x.toLowerCase());
  const more = lines.length > 1 && lines.slice(1).some((l) => l.trim());
  const l0end = charClass(firstLine.trimEnd().slice(-1));
  add(start, `l0end:${l0end}`);
  add(start, `l0end+more:${l0end}:${more}`);
  add(start, `l0len:${Math.floor(Math.log2(1 + fl.length))}:${more}`);
  add(start, `l0last:${fl.slice(-2).join(' ')}`);
  for (const w of new Set(fl.slice(0, 24))) add(start, `f:${w}`, 0.25);
  for (let i = 0; i < Math.min(6, lower.length); i++) add(start, `o${i}:${lower[i]}`, 0.5);
  let nBag = 0;
  for (let i = 0; i < lower.length; i++) {
    add(bag, `w:${lower[i]}`);
    nBag++;
    if (i + 1 < lower.length) {
      add(bag, `b:${lower[i]} ${lower[i + 1]}`);
      nBag++;
    }
  }
  const opening = ` ${t.slice(0, cfg.charChars).toLowerCase()} `;
  for (let i = 0; i + 3 <= opening.length; i++) {
    add(bag, `c:${opening.slice(i, i + 3)}`);
    nBag++;
  }
  const scale = nBag > 0 ? 1 / Math.sqrt(nBag) : 0;
  const idx: number[] = [];
  const val: number[] = [];
  for (const [h, v] of start) idx.push(h), val.push(v);
  for (const [h, v] of bag) {
    if (idx.length >= cfg.maxFeatures) break;
    idx.push(h);
    val.push(v * scale);
  }
  return { idx: Int32Array.from(idx), val: Float32Array.from(val) };
}

export interface ClassifierMeta {
  /** what label 1 and label 0 mean, e.g. ["continuation", "answer"] */
  labels: [string, string];
  task: string;
  [k: string]: unknown;
}

export class TextClassifier {
  constructor(
    readonly w: Float32Array,
    readonly b: number,
    readonly cfg: FeatureConfig,
    readonly meta: ClassifierMeta,
    readonly threshold = 0.5,
  ) {
    if (w.length !== cfg.buckets) throw new HeedError(`classifier weights have ${w.length} buckets, config says ${cfg.buckets}`, 'rebuild the classifier file');
  }

  /** P(label 1). */
  prob(text: string): number {
    const f = featurize(text, this.cfg);
    let z = this.b;
    for (let i = 0; i < f.idx.length; i++) z += this.w[f.idx[i]] * f.val[i];
    return 1 / (1 + Math.exp(-z));
  }

  classify(text: string): { label: 0 | 1; name: string; prob: number } {
    const p = this.prob(text);
    const label = p >= this.threshold ? 1 : 0;
    return { label, name: this.meta.labels[label], prob: p };
  }

  save(path: string): void {
    writeSafetensors(
      path,
      [
        ['w', { shape: [this.w.length], data: this.w }],
        ['b', { shape: [1], data: Float32Array.of(this.b) }],
      ],
      { dtype: 'F16', metadata: { heed_classifier: JSON.stringify({ features: this.cfg, threshold: this.threshold, ...this.meta }) } },
    );
  }

  static load(path: string): TextClassifier {
    const { tensors, metadata } = readSafetensors(path);
    const raw = metadata.heed_classifier;
    if (!raw) throw new HeedError(`${path}: not a heed classifier (no "heed_classifier" metadata)`, 'point at a file written by `heed ifs train-classifier` or `heed objecqa train-judge`');
    const m = JSON.parse(raw) as ClassifierMeta & { features: FeatureConfig; threshold?: number };
    const w = tensors.get('w');
    const b = tensors.get('b');
    if (!w || !b) throw new HeedError(`${path}: classifier tensors "w" and "b" are missing`, 'rebuild the classifier file');
    const { features, threshold, ...meta } = m;
    return new TextClassifier(w.data, b.data[0], features, meta as ClassifierMeta, threshold ?? 0.5);
  }
}

export interface BinaryMetrics {
  n: number;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export function binaryMetrics(labels: ArrayLike<number>, probs: ArrayLike<number>, threshold = 0.5): BinaryMetrics {
  let tp = 0, fp = 0, tn = 0, fn = 0;
  for (let i = 0; i < labels.length; i++) {
    const pred = probs[i] >= threshold ? 1 : 0;
    if (pred === 1 && labels[i] === 1) tp++;
    else if (pred === 1) fp++;
    else if (labels[i] === 1) fn++;
    else tn++;
  }
  const n = tp + fp + tn + fn;
  const precision = tp + fp ? tp / (tp + fp) : 0;
  const recall = tp + fn ? tp / (tp + fn) : 0;
  return { n, accuracy: n ? (tp + tn) / n : 0, precision, recall, f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0, tp, fp, tn, fn };
}
