/**
 * Pairwise judging as in Phased IFT's evaluation (github xubuvd/PhasedSFT, evaluation/eval.py, which follows
 * the Vicuna / AlpaGasus GPT-4 review prompt): the system prompt and the [Question] / [The Start of Assistant
 * 1's Answer] … [System] format below, temperature 0, 256 tokens; the judge puts two scores 1–10 on its first
 * line. Every pair is judged in both orders. Per order the preferred answer is the one scored higher (equal
 * scores: a tie); over the two orders:
 *   win  = preferred in both orders, or preferred in one and tied in the other
 *   tie  = tied in both, or the two orders disagree
 *   loss = the mirror of a win.
 * Reported: wins/ties/losses, win rate (wins + ties/2)/N with a 95% bootstrap interval over prompts, and the
 * paper's figure 100·(wins + ties/2)/N − 50.
 */
import type { JudgePrompt, Parsed } from './ask.js';
import { looksLikeRefusal } from './ask.js';
import { mulberry32 } from '../../models/random.js';

export const PAIR_SYSTEM = 'You are a helpful and precise assistant for checking the quality of the answer.';
export const PAIR_CRITERIA =
  'We would like to request your feedback on the performance of two AI assistants in response to the user question displayed above.\n' +
  'Please rate the helpfulness, relevance, accuracy, level of details of their responses. Each assistant receives an overall score on a scale of 1 to 10, where a higher score indicates better overall performance.\n' +
  'Please first output a single line containing only two values indicating the scores for Assistant 1 and 2, respectively. The two scores are separated by a space. In the subsequent line, please provide a comprehensive explanation of your evaluation, avoiding any potential bias and ensuring that the order in which the responses were presented does not affect your judgment.';
export const PAIR_MAX_TOKENS = 256;

export function pairPrompt(question: string, a1: string, a2: string): JudgePrompt {
  return {
    system: PAIR_SYSTEM,
    user: `[Question]\n${question}\n\n[The Start of Assistant 1's Answer]\n${a1}\n\n[The End of Assistant 1's Answer]\n\n[The Start of Assistant 2's Answer]\n${a2}\n\n[The End of Assistant 2's Answer]\n\n[System]\n${PAIR_CRITERIA}\n\n`,
  };
}

/** Strict: the first non-blank line is exactly two numbers in 1–10 (a space or a comma between them). */
export function parsePairScores(reply: string): Parsed<[number, number]> {
  const t = reply.trim();
  if (!t) return { ok: false, reason: 'empty reply' };
  const first = t.split('\n').find((l) => l.trim())!.trim();
  const m = /^(\d+(?:\.\d+)?)\s*[, ]\s*(\d+(?:\.\d+)?)$/.exec(first);
  if (!m) return { ok: false, reason: looksLikeRefusal(t) ? `refusal: ${JSON.stringify(t.slice(0, 60))}` : `malformed: ${JSON.stringify(first.slice(0, 60))} (two scores on the first line are asked for)` };
  const a = Number(m[1]), b = Number(m[2]);
  if (a < 1 || a > 10 || b < 1 || b > 10) return { ok: false, reason: `out of range: ${m[1]} ${m[2]} (scores 1–10 are asked for)` };
  return { ok: true, value: [a, b] };
}

export type Pref = 'a' | 'b' | 'tie';
export type Outcome = 'win' | 'tie' | 'loss';

/** Side a's outcome from the scores of order 1 (a is Assistant 1) and order 2 (b is Assistant 1). */
export function combineOrders(order1: [number, number], order2: [number, number]): { outcome: Outcome; prefs: [Pref, Pref] } {
  const p1: Pref = order1[0] > order1[1] ? 'a' : order1[0] < order1[1] ? 'b' : 'tie';
  const p2: Pref = order2[0] > order2[1] ? 'b' : order2[0] < order2[1] ? 'a' : 'tie';
  const prefs: [Pref, Pref] = [p1, p2];
  const has = (x: Pref) => prefs.includes(x);
  let outcome: Outcome;
  if (has('a') && has('b')) outcome = 'tie';
  else if (has('a')) outcome = 'win';
  else if (has('b')) outcome = 'loss';
  else outcome = 'tie';
  return { outcome, prefs };
}

export interface WinRate {
  n: number;
  wins: number;
  ties: number;
  losses: number;
  /** (wins + ties/2)/n */
  winRate: number;
  ci: [number, number];
  /** the paper's figure: 100·(wins + ties/2)/n − 50 */
  paperScore: number;
}

export function winRate(outcomes: readonly Outcome[], o: { resamples?: number; seed?: number } = {}): WinRate {
  const n = outcomes.length;
  const s = outcomes.map((x) => (x === 'win' ? 1 : x === 'tie' ? 0.5 : 0));
  const wins = outcomes.filter((x) => x === 'win').length;
  const ties = outcomes.filter((x) => x === 'tie').length;
  const rate = n ? s.reduce((a: number, b) => a + b, 0) / n : NaN;
  const R = o.resamples ?? 2000;
  const rnd = mulberry32(o.seed ?? 0);
  const boots: number[] = [];
  for (let r = 0; r < R && n; r++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += s[Math.floor(rnd() * n)];
    boots.push(sum / n);
  }
  boots.sort((a, b) => a - b);
  const q = (p: number) => boots[Math.min(boots.length - 1, Math.round(p * (boots.length - 1)))] ?? NaN;
  return { n, wins, ties, losses: n - wins - ties, winRate: rate, ci: [q(0.025), q(0.975)], paperScore: 100 * rate - 50 };
}
