/**
 * Surface fluency of generated text, measured against a corpus — what "fluent-looking" can mean for a tiny base
 * model that has no hope of being right: its words are real words (found in the corpus it learned from), it does
 * not loop, and it writes sentences. Each number is also computed on held-out human text from the same corpus
 * (`reference`), so a model's numbers read as a ratio to real text rather than as an absolute.
 *
 * - knownWordRate: share of words (letters, optionally with an apostrophe part; lower-cased) found in the corpus
 * - knownBigramRate: share of adjacent word pairs found in the corpus (local word order: "of the", "is a type")
 * - repeated3gramRate: share of word 3-grams that already occurred earlier in the same text (loops)
 * - unknownWords: the most frequent words not in the corpus, with counts (the made-up words a reader would notice)
 */

export interface FluencyStats {
  texts: number;
  words: number;
  meanWords: number;
  knownWordRate: number;
  knownBigramRate: number;
  repeated3gramRate: number;
  unknownWords: Array<[string, number]>;
}

const WORD = /[A-Za-z]+(?:'[A-Za-z]+)?/g;

export const words = (text: string): string[] => (text.match(WORD) ?? []).map((w) => w.toLowerCase());

export interface CorpusVocabulary {
  words: Set<string>;
  bigrams: Set<string>;
}

/** The distinct words and adjacent word pairs of a corpus. */
export function corpusVocabulary(texts: Iterable<string>): CorpusVocabulary {
  const v: CorpusVocabulary = { words: new Set(), bigrams: new Set() };
  for (const t of texts) {
    const ws = words(t);
    ws.forEach((w, i) => {
      v.words.add(w);
      if (i > 0) v.bigrams.add(`${ws[i - 1]} ${w}`);
    });
  }
  return v;
}

export function fluencyStats(texts: readonly string[], known: CorpusVocabulary, topUnknown = 12): FluencyStats {
  let nWords = 0, nKnown = 0, n2 = 0, known2 = 0, n3 = 0, rep3 = 0;
  const unknown = new Map<string, number>();
  for (const t of texts) {
    const ws = words(t);
    nWords += ws.length;
    ws.forEach((w, i) => {
      if (known.words.has(w)) nKnown++;
      else unknown.set(w, (unknown.get(w) ?? 0) + 1);
      if (i > 0) {
        n2++;
        if (known.bigrams.has(`${ws[i - 1]} ${w}`)) known2++;
      }
    });
    const seen = new Set<string>();
    for (let i = 0; i + 2 < ws.length; i++) {
      const g = `${ws[i]} ${ws[i + 1]} ${ws[i + 2]}`;
      n3++;
      if (seen.has(g)) rep3++;
      else seen.add(g);
    }
  }
  const unknownWords = [...unknown.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, topUnknown);
  return {
    texts: texts.length,
    words: nWords,
    meanWords: texts.length ? nWords / texts.length : 0,
    knownWordRate: nWords ? nKnown / nWords : 0,
    knownBigramRate: n2 ? known2 / n2 : 0,
    repeated3gramRate: n3 ? rep3 / n3 : 0,
    unknownWords,
  };
}

/** The first `n` words of a text with the text between them kept (a prompt cut at a word boundary). */
export function leadingWords(text: string, n: number): { head: string; rest: string } {
  let end = 0;
  let count = 0;
  for (const m of text.matchAll(WORD)) {
    if (count === n) break;
    end = m.index! + m[0].length;
    count++;
  }
  return { head: text.slice(0, end), rest: text.slice(end) };
}
