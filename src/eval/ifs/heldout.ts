/**
 * Training of the IFS classifiers on every pair type (pairs.ts) and their evaluation on held-out SOURCES.
 *
 * Two models, trained together from the same examples (src/eval/train-classifier.ts, on the engine):
 *  - the response classifier (the paper's: it sees the response only), canonical features (formatting taken
 *    away, text-classifier.ts `canonical`), capped by a language gate (min(p_answer, p_language));
 *  - the pair classifier: the same features plus pair features of (prompt, response), the same gate.
 *
 * Evaluation (`evaluateFold`): a fold trains both on some sources and tests on the others — the shipped
 * folds are Dolly+Alpaca → LIMA and LIMA → Dolly+Alpaca. Reported: accuracy, per-pair-type false-answer rate
 * (a continuation taken for an answer), per join and per opening, per-answer-shape recall, the share of
 * perturbed texts whose verdict flips (per perturbation), and the noise set; all with 95 % Wilson intervals.
 * Orchestration only: tensors stay inside train-classifier.ts.
 */
import { Prng } from '../../data/prng.js';
import { concatFeatures as concat, featurize, pairBlock, TextClassifier, type ClassifierMeta, type FeatureConfig, type Features } from '../text-classifier.js';
import { trainClassifier, DEFAULT_TRAIN, type TrainOptions } from '../train-classifier.js';
import { ratio, type Ratio } from './score.js';
import { buildBigrams, buildDict, cutChars, gateFeatures, IFS_FEATURES, IFS_LABELS } from './classifier.js';
import { NEGATIVE_TYPES, pairExamples, PERTURBATIONS, SHAPES, PERTURBATION_KINDS, prefixedNegatives, type PairExample, type TemplateSet } from './pairs.js';
import { readModelNegatives, responseVocab, syntheticNegatives, type NoiseText } from './negatives.js';
import type { SourceRow } from './fragments.js';

export const PAIR_BLOCK = { buckets: 1 << 14, maxFeatures: 32, caseStart: true };
/**
 * The shipped pair classifier's nonlinear head (issue 14 item 3, docs/ifs.md "A nonlinear head and style
 * features"): 2^14 rows × 32 ReLU units over the engineered and pair features (not the word bag), at 0.1× the
 * linear part's learning rate.
 */
export const PAIR_MLP = { buckets: 1 << 14, hidden: 32, input: 'engineered' as const, scale: 0.1, maxInputs: 128 };

export function responseFeatures(dict: string[]): FeatureConfig {
  return { ...IFS_FEATURES, canon: true, discourse: true, caseStart: true, dict: dict.join(' ') };
}
export function pairFeatureConfig(dict: string[], style = false): FeatureConfig {
  const r = responseFeatures(dict);
  return { ...r, buckets: r.buckets + PAIR_BLOCK.buckets, maxFeatures: r.maxFeatures + PAIR_BLOCK.maxFeatures, pair: style ? { ...PAIR_BLOCK, style: true } : PAIR_BLOCK };
}
export function languageGateFeatures(dict: string[], bigrams: string[]): FeatureConfig {
  const g = gateFeatures(dict, bigrams);
  return { ...g, canon: true, extra: { ...g.extra!, canon: true } };
}

export interface IfsModels {
  response: TextClassifier;
  pair: TextClassifier;
  counts: { rows: number; main: number; gate: number; by_type: Record<string, number> };
}

export interface TrainIfsOptions {
  seed: number;
  train?: Partial<TrainOptions>;
  templates?: TemplateSet;
  /** generations of a pretrained-only model (gate negatives); default: the committed files */
  modelNegatives?: NoiseText[];
  meta?: Record<string, unknown>;
  log?: (s: string) => void;
  /** the pair classifier's nonlinear head (train-classifier.ts `TrainOptions.mlp`; null: none); default PAIR_MLP */
  pairMlp?: TrainOptions['mlp'] | null;
  /** a nonlinear head for the response classifier (default none) */
  responseMlp?: TrainOptions['mlp'];
  /** the pair classifier's style features (text-classifier.ts `styleFeatures`); default true */
  pairStyle?: boolean;
  /** what a trained model goes through before it is evaluated (e.g. a save/load round trip, F16) */
  store?: (c: TextClassifier) => TextClassifier;
  /** formatting augmentation of the training texts (`Augment`); default none */
  augment?: Augment;
}

/**
 * Formatting augmentation of the TRAINING texts (issue 14): with probability `share`, a pair example (answers and
 * continuations alike, label kept) gets a copy under one perturbation drawn uniformly from `kinds` (default: every
 * PERTURBATIONS kind — code fence, lower case, whitespace, CRLF, bullets, numbered list, heading, "Sure!",
 * truncation to 100 / 200 characters), so that format does not decide the label. Drawn from a PRNG of its own
 * (seed ^ 0x6a09e667), so the other training draws do not move. The held-out test sets are never augmented.
 */
export interface Augment {
  share: number;
  kinds?: string[];
  /**
   * under-represented answer shapes: with probability `share`, an answer (I,R / Ip,R) gets one more synthesised
   * copy in a shape drawn from `kinds` (default AUG_SHAPE_KINDS: code fence, lyrics, heading, short, lower case)
   */
  shapes?: { share: number; kinds?: string[] };
  /**
   * which classifiers train on the augmented copies (default both): 'pair' keeps the response classifier and
   * the language gate on the unaugmented texts, so they (and IFS) stay exactly as without augmentation
   */
  models?: 'both' | 'pair';
}

/** The answer shapes of `Augment.shapes`: pairs.ts SHAPES plus an answer under a markdown heading. */
export const AUG_SHAPES: Record<string, (R: string, r: Prng, prompt: string) => string | undefined> = {
  ...SHAPES,
  heading: (R, r, prompt) => {
    const ws = prompt.replace(/[^\p{L}\p{N}\s'-]+/gu, ' ').split(/\s+/).filter(Boolean).slice(0, r.int(2, 6));
    if (!ws.length) return undefined;
    const title = ws.join(' ');
    return `${r.pick(['# ', '## ', '### ', '**'])}${title[0].toUpperCase()}${title.slice(1)}${r.chance(0.3) ? ':' : ''}\n\n${R}`.replace(/^\*\*(.*?)(:?)\n/, '**$1**$2\n');
  },
};
export const AUG_SHAPE_KINDS = ['fence', 'lyrics', 'heading', 'short', 'lower'];

type Ex = { text: string; prompt: string; label: 0 | 1; kind: string; weight?: number; augmented?: true };

/** The training texts of `rows`: every pair type, cut copies, the echoed instruction (main), noise (gate). */
export function trainingSets(rows: SourceRow[], seed: number, templates: TemplateSet, modelNegatives: NoiseText[], augment?: Augment): { main: Ex[]; noise: Ex[]; byType: Record<string, number>; augmented: Record<string, number> } {
  const ex = pairExamples(rows, seed, { mode: 'train', templates });
  const rng = new Prng(seed ^ 0x9e3779b9);
  const arng = new Prng(seed ^ 0x6a09e667);
  const kinds = augment?.kinds ?? PERTURBATION_KINDS;
  for (const k of kinds) if (!PERTURBATIONS[k]) throw new Error(`augment: unknown perturbation "${k}" (one of ${PERTURBATION_KINDS.join(', ')})`);
  const augmented: Record<string, number> = {};
  const main: Ex[] = [];
  const byType: Record<string, number> = {};
  for (const e of ex) {
    byType[e.type] = (byType[e.type] ?? 0) + 1;
    main.push({ text: e.text, prompt: e.prompt, label: e.label, kind: e.type });
    // responses stop at --max-tokens: a copy cut to 40..400 characters (at a word, or anywhere)
    if (rng.chance(0.5)) {
      const n = rng.int(40, 400);
      const t = rng.chance(0.5) ? cutChars(e.text, n) : e.text.trim().slice(0, n);
      if (t.trim()) main.push({ text: t, prompt: e.prompt, label: e.label, kind: e.type });
    }
    const sh = augment?.shapes;
    if (sh && e.label === 1 && e.kind === 'R' && e.type !== 'Ip,clarify' && !e.shape?.startsWith('synth:') && arng.chance(sh.share)) {
      const k = arng.pick(sh.kinds ?? AUG_SHAPE_KINDS);
      const t = AUG_SHAPES[k](e.text, arng, e.prompt);
      if (t?.trim()) {
        main.push({ text: t, prompt: e.prompt, label: 1, kind: e.type, augmented: true });
        augmented[`shape:${k}`] = (augmented[`shape:${k}`] ?? 0) + 1;
      }
    }
    if (augment && augment.share > 0 && arng.chance(augment.share)) {
      const k = arng.pick(kinds);
      const t = PERTURBATIONS[k](e.text);
      if (t.trim()) {
        main.push({ text: t, prompt: e.prompt, label: e.label, kind: e.type, augmented: true });
        augmented[k] = (augmented[k] ?? 0) + 1;
      }
    }
  }
  const instr = new Map(rows.map((r) => [r.id, r.instruction]));
  const noise: Ex[] = [];
  for (const n of [...syntheticNegatives(rows, responseVocab(rows), seed), ...modelNegatives]) {
    if (!n.text.trim()) continue;
    const e = { text: n.text, prompt: instr.get(n.source_id) ?? '', label: 0 as const, kind: n.kind };
    if (n.kind === 'echo') main.push(e);
    else noise.push(e);
  }
  return { main, noise, byType, augmented };
}

/** Train the response classifier, its gate and the pair classifier on `rows`. */
export async function trainIfsModels(rows: SourceRow[], o: TrainIfsOptions): Promise<IfsModels> {
  const log = o.log ?? (() => {});
  const t = { ...DEFAULT_TRAIN, seed: o.seed, ...o.train };
  const ids = new Set(rows.map((r) => r.id));
  const model = (o.modelNegatives ?? readModelNegatives()).filter((m) => ids.has(m.source_id));
  const { main, noise, byType, augmented } = trainingSets(rows, o.seed, o.templates ?? 'all', model, o.augment);
  const dict = buildDict(rows);
  const bigrams = buildBigrams(rows);
  const rcfg = responseFeatures(dict);
  const pcfg = pairFeatureConfig(dict, o.pairStyle ?? true);
  const pairMlp = o.pairMlp === undefined ? PAIR_MLP : o.pairMlp ?? undefined;
  const gcfg = languageGateFeatures(dict, bigrams);
  const t0 = performance.now();
  const el = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
  // one featurisation per text, shared by the three models (their first blocks are the response features)
  const fMain = main.map((e) => featurize(e.text, rcfg));
  const fNoise = noise.map((e) => featurize(e.text, rcfg));
  const statsCfg = gcfg.extra!;
  const gateOf = (f: Features, text: string) => concat(f, featurize(text, statsCfg), rcfg.buckets);
  const pairOf = (f: Features, text: string, prompt: string) => concat(f, pairBlock(prompt, text, pcfg.pair!), rcfg.buckets);
  log(`[${rows.length} rows → main ${main.length} examples (${Object.entries(byType).map(([k, v]) => `${k} ${v}`).join(', ')}, echo ${main.filter((e) => e.kind === 'echo').length}, and cut copies${o.augment ? `; augmented copies: ${Object.entries(augmented).map(([k, v]) => `${k} ${v}`).join(', ')}` : ''}), gate ${main.length + noise.length}; featurised in ${el()}]`);
  const meta: ClassifierMeta = { labels: IFS_LABELS, task: 'ifs-response', seed: o.seed, epochs: t.epochs, lr: t.lr, ...o.meta };
  // Augment.models 'pair': the response classifier and the gate see the unaugmented texts only
  const keep = main.map((e) => !(e.augmented && o.augment?.models === 'pair'));
  const rMain = main.filter((_, i) => keep[i]);
  const rF = fMain.filter((_, i) => keep[i]);
  const resp = await trainClassifier(rMain, rcfg, meta, { ...t, mlp: o.responseMlp, onEpoch: (e, l) => log(`[response epoch ${e}: loss ${l.toFixed(4)}, ${el()}]`) }, rF);
  const gateEx = [...rMain.map((e) => ({ ...e, label: 1 as const })), ...noise];
  const gate = await trainClassifier(gateEx, gcfg, meta, { ...t, onEpoch: (e, l) => log(`[gate epoch ${e}: loss ${l.toFixed(4)}, ${el()}]`) }, [...rMain.map((e, i) => gateOf(rF[i], e.text)), ...noise.map((e, i) => gateOf(fNoise[i], e.text))]);
  const pair = await trainClassifier(main, pcfg, { ...meta, task: 'ifs-pair' }, { ...t, mlp: pairMlp, onEpoch: (e, l) => log(`[pair epoch ${e}: loss ${l.toFixed(4)}, ${el()}]`) }, main.map((e, i) => pairOf(fMain[i], e.text, e.prompt)));
  const g = { w: gate.w, b: gate.b, cfg: gate.cfg };
  const gateNote = 'language gate: logistic regression on the response features + text statistics (language = the pair texts; noise = generated negatives except echo), p = min(p_answer, p_language)';
  return {
    response: new TextClassifier(resp.w, resp.b, resp.cfg, { ...meta, gate: gateNote }, 0.5, g, resp.mlp),
    pair: new TextClassifier(pair.w, pair.b, pair.cfg, { ...meta, task: 'ifs-pair', gate: gateNote }, 0.5, g, pair.mlp),
    counts: { rows: rows.length, main: main.length, gate: gateEx.length, by_type: byType },
  };
}

export interface Fold {
  name: string;
  /** a row is in the test side when this holds for its dataset */
  test: (dataset: string | undefined) => boolean;
}

export const FOLDS: Fold[] = [
  { name: 'dolly+alpaca → lima', test: (d) => d === 'lima' },
  { name: 'lima → dolly+alpaca', test: (d) => d !== 'lima' },
];

/** At most this many test rows per fold (a seeded sample), so the report stays fast. */
export const MAX_TEST_ROWS = 1200;
/** Texts per class a perturbation is applied to. */
export const FLIP_SAMPLE = 300;

export interface ModelReport {
  accuracy: Ratio;
  precision: number;
  recall: Ratio;
  false_answer_by_type: Record<string, Ratio>;
  false_answer_by_join: Record<string, Ratio>;
  false_answer_by_opening: Record<string, Ratio>;
  recall_by_shape: Record<string, Ratio>;
  flip_by_perturbation: Record<string, { answers: Ratio; continuations: Ratio; all: Ratio }>;
  noise_accuracy: Ratio;
}

function sample<T>(xs: T[], n: number, r: Prng): T[] {
  if (xs.length <= n) return xs;
  return r.shuffle([...xs]).slice(0, n);
}

/** The held-out report of one model (`usePrompt`: the pair classifier) on the test examples of a fold. */
export function evaluateModel(c: TextClassifier, ex: PairExample[], opened: PairExample[], noise: NoiseText[], usePrompt: boolean, seed: number): ModelReport {
  const pred = (e: { text: string; prompt: string }) => (c.prob(e.text, usePrompt ? e.prompt : undefined) >= c.threshold ? 1 : 0);
  const p = ex.map(pred);
  const ok = p.filter((x, i) => x === ex[i].label).length;
  const tp = p.filter((x, i) => x === 1 && ex[i].label === 1).length;
  const predPos = p.filter((x) => x === 1).length;
  const pos = ex.filter((e) => e.label === 1).length;
  const group = (keyOf: (e: PairExample) => string | undefined, xs: PairExample[], ps: number[], want: 0 | 1): Record<string, Ratio> => {
    const m = new Map<string, [number, number]>();
    xs.forEach((e, i) => {
      const k = keyOf(e);
      if (k === undefined || e.label !== want) return;
      const v = m.get(k) ?? [0, 0];
      v[0] += ps[i] === 1 ? 1 : 0;
      v[1]++;
      m.set(k, v);
    });
    return Object.fromEntries([...m].sort(([a], [b]) => a.localeCompare(b)).map(([k, [a, n]]) => [k, ratio(a, n)]));
  };
  const po = opened.map(pred);
  const r = new Prng(seed ^ 0x85ebca6b);
  const flipSet = [...sample(ex.filter((e) => e.label === 1), FLIP_SAMPLE, r), ...sample(ex.filter((e) => e.label === 0), FLIP_SAMPLE, r)];
  const base = flipSet.map(pred);
  const flip: ModelReport['flip_by_perturbation'] = {};
  for (const k of PERTURBATION_KINDS) {
    let fa = 0, na = 0, fc = 0, nc = 0;
    flipSet.forEach((e, i) => {
      const t = PERTURBATIONS[k](e.text);
      if (!t.trim()) return;
      const changed = pred({ text: t, prompt: e.prompt }) !== base[i] ? 1 : 0;
      if (e.label === 1) (fa += changed), na++;
      else (fc += changed), nc++;
    });
    flip[k] = { answers: ratio(fa, na), continuations: ratio(fc, nc), all: ratio(fa + fc, na + nc) };
  }
  const instr = new Map(ex.map((e) => [e.source_id, e.prompt]));
  const nOk = noise.filter((n) => c.prob(n.text, usePrompt ? instr.get(n.source_id) ?? '' : undefined) < c.threshold).length;
  return {
    accuracy: ratio(ok, ex.length),
    precision: predPos ? tp / predPos : 0,
    recall: ratio(tp, pos),
    false_answer_by_type: group((e) => e.type, ex, p, 0),
    false_answer_by_join: group((e) => e.join, ex, p, 0),
    false_answer_by_opening: group((e) => e.prefix, opened, po, 0),
    recall_by_shape: group((e) => e.shape, ex, p, 1),
    flip_by_perturbation: flip,
    noise_accuracy: ratio(nOk, noise.length),
  };
}

export interface FoldReport {
  fold: string;
  train_rows: number;
  test_rows: number;
  test_examples: number;
  response: ModelReport;
  pair: ModelReport;
}

/** Train on one side of a fold, test on the other (clarification templates split: see pairs.ts CLARIFY). */
export async function evaluateFold(rows: SourceRow[], fold: Fold, o: TrainIfsOptions): Promise<FoldReport> {
  const trainRows = rows.filter((r) => !fold.test(r.dataset));
  const r = new Prng(o.seed ^ 0xc2b2ae35);
  const testRows = sample(rows.filter((x) => fold.test(x.dataset)), MAX_TEST_ROWS, r).sort((a, b) => rows.indexOf(a) - rows.indexOf(b));
  const models = await trainIfsModels(trainRows, { ...o, templates: 'train' });
  const ex = pairExamples(testRows, o.seed, { mode: 'test', templates: 'test' });
  const opened = sample(prefixedNegatives(ex, o.seed), 2000, r);
  const ids = new Set(testRows.map((x) => x.id));
  const noise = [...syntheticNegatives(testRows, responseVocab(testRows), o.seed), ...(o.modelNegatives ?? readModelNegatives()).filter((m) => ids.has(m.source_id))].filter((n) => n.text.trim());
  return {
    fold: fold.name,
    train_rows: trainRows.length,
    test_rows: testRows.length,
    test_examples: ex.length,
    response: evaluateModel(o.store ? o.store(models.response) : models.response, ex, opened, noise, false, o.seed),
    pair: evaluateModel(o.store ? o.store(models.pair) : models.pair, ex, opened, noise, true, o.seed),
  };
}

/** The targets of issue 14 (held-out sources). */
export const TARGETS = { accuracy: 0.97, false_answer_rate: 0.05, shape_recall: 0.95, flip_rate: 0.02 };

const f3 = (x: number) => x.toFixed(3);
const fr = (r: Ratio) => `${f3(r.value)} [${f3(r.ci[0])}, ${f3(r.ci[1])}] (${r.k}/${r.n})`;

/** Markdown tables of a set of fold reports (for docs/ifs.md). */
export function formatFoldReports(reps: FoldReport[]): string {
  const out: string[] = [];
  for (const rep of reps) {
    out.push(`**${rep.fold}** (train ${rep.train_rows} rows, test ${rep.test_rows} rows, ${rep.test_examples} examples)`, '');
    out.push('| measure | response classifier (IFS) | pair classifier (IFS-pair) |', '|---|---|---|');
    const row = (name: string, a: Ratio | undefined, b: Ratio | undefined) => out.push(`| ${name} | ${a ? fr(a) : '–'} | ${b ? fr(b) : '–'} |`);
    row('accuracy', rep.response.accuracy, rep.pair.accuracy);
    row('recall (answers)', rep.response.recall, rep.pair.recall);
    for (const k of NEGATIVE_TYPES) row(`false-answer rate ${k}`, rep.response.false_answer_by_type[k], rep.pair.false_answer_by_type[k]);
    for (const k of Object.keys(rep.response.false_answer_by_join)) row(`false-answer rate, join ${k}`, rep.response.false_answer_by_join[k], rep.pair.false_answer_by_join[k]);
    for (const k of Object.keys(rep.response.false_answer_by_opening)) row(`false-answer rate, opening ${k}`, rep.response.false_answer_by_opening[k], rep.pair.false_answer_by_opening[k]);
    for (const k of Object.keys(rep.response.recall_by_shape)) row(`recall, shape ${k}`, rep.response.recall_by_shape[k], rep.pair.recall_by_shape[k]);
    for (const k of Object.keys(rep.response.flip_by_perturbation)) row(`flip rate, ${k}`, rep.response.flip_by_perturbation[k].all, rep.pair.flip_by_perturbation[k].all);
    row('noise set (share rejected)', rep.response.noise_accuracy, rep.pair.noise_accuracy);
    out.push('');
  }
  return out.join('\n');
}
