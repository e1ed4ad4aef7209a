/**
 * The difficulty judge: heed's own 1–5 prompt (the Phased IFT paper's GPT-4 prompt is not published), with a
 * rubric per level, and its strict parser. See docs/phased.md.
 */
import type { Parsed, JudgePrompt } from './ask.js';
import { looksLikeRefusal } from './ask.js';

export const DIFFICULTY_SYSTEM = 'You are an expert annotator who rates how difficult instructions are for an AI assistant to follow well.';

export const DIFFICULTY_RUBRIC = [
  '1 = trivial: a single fact, a copy, a yes/no, or a fixed short form; one obvious step.',
  '2 = easy: a short answer that needs common knowledge or one simple transformation (classify, rewrite, list a few items).',
  '3 = moderate: several steps or constraints, some domain knowledge, or a paragraph of coherent writing.',
  '4 = hard: multi-step reasoning, specialised knowledge, precise constraints to satisfy at once, or a long structured answer.',
  '5 = very hard: expert-level reasoning or knowledge, exact computation or code, many interacting constraints, open-ended creative work judged on quality.',
];

export function difficultyPrompt(instruction: string): JudgePrompt {
  return {
    system: DIFFICULTY_SYSTEM,
    user: [
      'Rate the difficulty of the following instruction on a scale from 1 to 5, higher meaning more complex: how much knowledge, reasoning, and care a good response requires.',
      '',
      ...DIFFICULTY_RUBRIC,
      '',
      '[Instruction]',
      instruction,
      '[End of Instruction]',
      '',
      'Output only the score, a single integer from 1 to 5, on the first line.',
    ].join('\n'),
  };
}

/**
 * Strict: the first non-blank line must be the score alone — `3`, `3.`, `3/5`, `Score: 3` (case-insensitive).
 * Anything else is refused with its reason: empty, a refusal, out of range (0, 6, 4.5 is not an integer),
 * or malformed (words, two numbers).
 */
export function parseDifficulty(reply: string): Parsed<number> {
  const t = reply.trim();
  if (!t) return { ok: false, reason: 'empty reply' };
  const first = t.split('\n').find((l) => l.trim())!.trim();
  const m = /^(?:\**(?:score|difficulty|rating)\**\s*[:=]\s*)?\**(-?\d+(?:\.\d+)?)\**\s*(?:\/\s*5)?\.?$/i.exec(first);
  if (!m) return { ok: false, reason: looksLikeRefusal(t) ? `refusal: ${JSON.stringify(t.slice(0, 60))}` : `malformed: ${JSON.stringify(first.slice(0, 60))}` };
  const v = Number(m[1]);
  if (!Number.isInteger(v) || v < 1 || v > 5) return { ok: false, reason: `out of range: ${m[1]} (an integer 1–5 is asked for)` };
  return { ok: true, value: v };
}
