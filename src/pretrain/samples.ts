/**
 * Samples of a base model and their surface fluency (src/eval/fluency.ts): the opening words of evenly spaced
 * held-out documents are the prompts, the model continues them, and the same statistics are taken of the
 * documents' own continuations (cut to the same number of words) as the human reference.
 */
import type { TextGenerator } from '../decode/generate.js';
import type { SamplingOptions } from '../decode/sampling.js';
import { Prng } from '../data/prng.js';
import { corpusVocabulary, fluencyStats, leadingWords, words, type FluencyStats } from '../eval/fluency.js';

export interface SampleOptions extends SamplingOptions {
  samples: number;
  promptWords: number;
  maxTokens: number;
  seed: number;
  batch: number;
}

/**
 * Chosen on models/base-dolly with 96 samples of another seed (7): temperature 0.3–1.0, top-k 20/40, min-p
 * 0.1–0.3, repetition penalty 1.0–1.2 all gave 89–95 % known words; min-p 0.2 at 0.7 kept the most known word
 * pairs with no loops (docs/pretrain.md).
 */
export const SAMPLE_DEFAULTS: SampleOptions = { samples: 24, promptWords: 4, maxTokens: 48, seed: 1, batch: 8, temperature: 0.7, minP: 0.2, repetitionPenalty: 1.1 };

export interface SampleReport {
  settings: SampleOptions;
  samples: Array<{ prompt: string; text: string; reference: string }>;
  model: FluencyStats;
  reference: FluencyStats;
  /** the reference texts with their words shuffled (seeded): real words in no order, the floor for word pairs */
  shuffled: FluencyStats;
  /** distinct words and word pairs of the training documents */
  knownWords: number;
  knownBigrams: number;
}

/** Held-out documents long enough to give a prompt and a continuation, evenly spaced. */
export function samplePrompts(heldOut: readonly string[], n: number, promptWords: number): Array<{ prompt: string; rest: string }> {
  const usable = heldOut.map((d) => leadingWords(d, promptWords)).filter((x) => words(x.head).length === promptWords && words(x.rest).length >= 8);
  if (usable.length === 0) return [];
  const k = Math.min(n, usable.length);
  return Array.from({ length: k }, (_, i) => usable[Math.floor((i * usable.length) / k)]).map((x) => ({ prompt: x.head, rest: x.rest }));
}

/** The first `n` words of `text` with what lies between them. */
const firstWords = (text: string, n: number) => leadingWords(text, n).head;

export async function sampleFluency(gen: TextGenerator, train: readonly string[], heldOut: readonly string[], o: SampleOptions, onBatch?: (done: number, total: number) => void): Promise<SampleReport> {
  const prompts = samplePrompts(heldOut, o.samples, o.promptWords);
  const texts: string[] = [];
  for (let i = 0; i < prompts.length; i += o.batch) {
    const part = prompts.slice(i, i + o.batch);
    const res = await gen.generate(part.map((p) => p.prompt), { maxTokens: o.maxTokens, temperature: o.temperature, topK: o.topK, topP: o.topP, minP: o.minP, repetitionPenalty: o.repetitionPenalty, seed: o.seed + i });
    texts.push(...res.map((r) => r.text));
    onBatch?.(texts.length, prompts.length);
  }
  const references = prompts.map((p, i) => firstWords(p.rest, Math.max(1, words(texts[i]).length)));
  const known = corpusVocabulary(train);
  return {
    settings: o,
    samples: prompts.map((p, i) => ({ prompt: p.prompt, text: texts[i], reference: references[i] })),
    model: fluencyStats(texts, known),
    reference: fluencyStats(references, known),
    shuffled: fluencyStats(references.map((t, i) => new Prng(o.seed + i).shuffle(words(t)).join(' ')), known),
    knownWords: known.words.size,
    knownBigrams: known.bigrams.size,
  };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** The statistics as rows: [label, model, held-out text, shuffled words] (the terminal report and the demo's table). */
export function sampleStatRows(r: SampleReport): string[][] {
  const row = (label: string, f: (x: FluencyStats) => string) => [label, ...[r.model, r.reference, r.shuffled].map(f)];
  return [
    row('known words', (x) => pct(x.knownWordRate)),
    row('known word pairs', (x) => pct(x.knownBigramRate)),
    row('repeated 3-grams', (x) => pct(x.repeated3gramRate)),
    row('words per sample', (x) => x.meanWords.toFixed(1)),
  ];
}

/** The sampling settings in words. */
export function describeSampling(s: SampleOptions): string {
  return `temperature ${s.temperature ?? 0}${s.topK ? `, top-k ${s.topK}` : ''}${s.topP !== undefined && s.topP < 1 ? `, top-p ${s.topP}` : ''}${s.minP ? `, min-p ${s.minP}` : ''}${s.repetitionPenalty && s.repetitionPenalty !== 1 ? `, repetition penalty ${s.repetitionPenalty}` : ''}, seed ${s.seed}`;
}

/** One line of the statistics, as the terminal report prints it. */
export function sampleSummaryLine(r: SampleReport): string {
  return `${pct(r.model.knownWordRate)} known words (held-out text ${pct(r.reference.knownWordRate)}), ${pct(r.model.knownBigramRate)} known word pairs (held-out ${pct(r.reference.knownBigramRate)}, shuffled ${pct(r.shuffled.knownBigramRate)}), ${pct(r.model.repeated3gramRate)} repeated 3-grams`;
}

/** A few lines for a terminal: the statistics side by side, then the samples. */
export function formatSampleReport(r: SampleReport, show = 6): string {
  const s = r.settings;
  const notes = [`found among the ${r.knownWords} distinct words of the training documents`, `adjacent pairs found among the training documents' ${r.knownBigrams}`];
  const lines = [
    `samples: ${r.samples.length} continuations of held-out document openings (${s.promptWords} words), ${s.maxTokens} tokens, ${describeSampling(s)}`,
    `${''.padEnd(18)}${['model', 'held-out', 'shuffled'].map((h) => h.padStart(10)).join('')}   (held-out: the same documents' own next words, cut to the sample's length; shuffled: those words in random order)`,
    ...sampleStatRows(r).map(([label, ...v], i) => `${label.padEnd(18)}${v.map((x) => x.padStart(10)).join('')}${notes[i] ? `   (${notes[i]})` : ''}`),
    `unknown words: ${r.model.unknownWords.map(([w, c]) => (c > 1 ? `${w} ×${c}` : w)).join(', ') || '(none)'}`,
  ];
  for (const x of r.samples.slice(0, show)) lines.push(`  > ${JSON.stringify(x.prompt + x.text)}`);
  return lines.join('\n');
}
