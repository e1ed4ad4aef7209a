/**
 * Samples of a base model and their surface fluency (src/eval/fluency.ts): the opening words of evenly spaced
 * held-out documents are the prompts, the model continues them, and the same statistics are taken of the
 * documents' own continuations (cut to the same number of words) as the human reference.
 */
import type { TextGenerator } from '../decode/generate.js';
import type { SamplingOptions } from '../decode/sampling.js';
import { corpusWords, fluencyStats, leadingWords, words, type FluencyStats } from '../eval/fluency.js';

export interface SampleOptions extends SamplingOptions {
  samples: number;
  promptWords: number;
  maxTokens: number;
  seed: number;
  batch: number;
}

export const SAMPLE_DEFAULTS: SampleOptions = { samples: 24, promptWords: 4, maxTokens: 48, seed: 1, batch: 8, temperature: 0.7, topK: 40, repetitionPenalty: 1.2 };

export interface SampleReport {
  settings: SampleOptions;
  samples: Array<{ prompt: string; text: string; reference: string }>;
  model: FluencyStats;
  reference: FluencyStats;
  /** distinct words of the training documents (the `known` set) */
  knownWords: number;
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
    const res = await gen.generate(part.map((p) => p.prompt), { maxTokens: o.maxTokens, temperature: o.temperature, topK: o.topK, topP: o.topP, repetitionPenalty: o.repetitionPenalty, seed: o.seed + i });
    texts.push(...res.map((r) => r.text));
    onBatch?.(texts.length, prompts.length);
  }
  const references = prompts.map((p, i) => firstWords(p.rest, Math.max(1, words(texts[i]).length)));
  const known = corpusWords(train);
  return {
    settings: o,
    samples: prompts.map((p, i) => ({ prompt: p.prompt, text: texts[i], reference: references[i] })),
    model: fluencyStats(texts, known),
    reference: fluencyStats(references, known),
    knownWords: known.size,
  };
}

/** A few lines for a terminal: the statistics side by side, then the samples. */
export function formatSampleReport(r: SampleReport, show = 6): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const s = r.settings;
  const lines = [
    `samples: ${r.samples.length} continuations of held-out document openings (${s.promptWords} words), ${s.maxTokens} tokens, temperature ${s.temperature ?? 0}${s.topK ? `, top-k ${s.topK}` : ''}${s.topP !== undefined && s.topP < 1 ? `, top-p ${s.topP}` : ''}${s.repetitionPenalty && s.repetitionPenalty !== 1 ? `, repetition penalty ${s.repetitionPenalty}` : ''}, seed ${s.seed}`,
    `                      model     held-out text (same openings, same length)`,
    `known words        ${pct(r.model.knownWordRate).padStart(8)}   ${pct(r.reference.knownWordRate).padStart(8)}   (words found in the ${r.knownWords} distinct words of the training documents)`,
    `repeated 3-grams   ${pct(r.model.repeated3gramRate).padStart(8)}   ${pct(r.reference.repeated3gramRate).padStart(8)}`,
    `with a sentence end${pct(r.model.sentenceEndRate).padStart(8)}   ${pct(r.reference.sentenceEndRate).padStart(8)}`,
    `words per sample   ${r.model.meanWords.toFixed(1).padStart(8)}   ${r.reference.meanWords.toFixed(1).padStart(8)}`,
    `unknown words: ${r.model.unknownWords.map(([w, c]) => (c > 1 ? `${w} ×${c}` : w)).join(', ') || '(none)'}`,
  ];
  for (const x of r.samples.slice(0, show)) lines.push(`  > ${JSON.stringify(x.prompt + x.text)}`);
  return lines.join('\n');
}
