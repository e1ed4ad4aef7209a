/**
 * The lexical/length difficulty heuristic (offline, instant). difficulty = 1 + 4·h, h in [0, 1] a weighted
 * sum of four features, each clipped to [0, 1]:
 *  - 0.35 · log(1 + instruction words) / log(1 + 150)
 *  - 0.35 · log(1 + output words) / log(1 + 300)        (rows without an output: the other weights rescaled)
 *  - 0.15 · reasoning/constraint cues in the instruction / 3: explain, why, how, compare, analy*, step, prove,
 *           calculate, code, program, function, essay, story, poem, at least, exactly, must, each, "and" lists
 *  - 0.15 · share of long words (9+ letters) in instruction and output, × 4
 * It is a length-and-vocabulary proxy, not a judgement: docs/phased.md reports how it agrees with the others.
 */
const WORD = /[\p{L}\p{N}']+/gu;
const CUES = /\b(explain|why|how|compare|contrast|analy[sz]e|analysis|step|steps|prove|derive|calculate|compute|solve|code|program|function|algorithm|essay|story|poem|argue|evaluate|design|at least|exactly|must|each|without)\b/gi;

export function heuristicDifficulty(instruction: string, output: string | undefined): { difficulty: number; features: Record<string, number> } {
  const iw = instruction.match(WORD) ?? [];
  const ow = output === undefined ? [] : output.match(WORD) ?? [];
  const clip = (x: number) => Math.max(0, Math.min(1, x));
  const fIns = clip(Math.log1p(iw.length) / Math.log1p(150));
  const fOut = clip(Math.log1p(ow.length) / Math.log1p(300));
  const fCue = clip((instruction.match(CUES)?.length ?? 0) / 3);
  const all = [...iw, ...ow];
  const fLex = clip((all.filter((w) => w.length >= 9).length / Math.max(1, all.length)) * 4);
  const h = output === undefined ? (0.35 * fIns + 0.15 * fCue + 0.15 * fLex) / 0.65 : 0.35 * fIns + 0.35 * fOut + 0.15 * fCue + 0.15 * fLex;
  return { difficulty: Math.round((1 + 4 * h) * 1000) / 1000, features: { instruction_words: iw.length, output_words: ow.length, cues: instruction.match(CUES)?.length ?? 0, long_word_share: Math.round((fLex / 4) * 1000) / 1000 } };
}
