/**
 * The win-rate run: for every prompt, side a's and side b's response judged in both orders (an LLM judge
 * through any model spec, or the offline proxy), the orders combined by the Phased IFT rules, every judgement
 * recorded. A pair whose judgement failed in either order (after the strict parser's retries) is reported as
 * failed and left out of N, never guessed.
 */
import type { ModelBackend } from '../../backends/types.js';
import { askStrict } from './ask.js';
import { semaphore } from '../../backends/semaphore.js';
import { combineOrders, pairPrompt, parsePairScores, PAIR_MAX_TOKENS, winRate, type Outcome, type WinRate } from './pairwise.js';

export interface Pair {
  id: string;
  question: string;
  a: string;
  b: string;
}

export interface PairJudgement {
  id: string;
  judge: string;
  proxy?: true;
  /** order 1: a is Assistant 1; order 2: b is Assistant 1 */
  order1?: { scores: [number, number]; reply: string; attempts: number };
  order2?: { scores: [number, number]; reply: string; attempts: number };
  outcome?: Outcome;
  prefs?: [string, string];
  failed?: string;
  words_a: number;
  words_b: number;
}

/** A judge of one ordered pair: two scores 1–10, or a failure. */
export interface PairJudge {
  readonly name: string;
  readonly proxy: boolean;
  score(question: string, a1: string, a2: string): Promise<{ ok: true; scores: [number, number]; reply: string; attempts: number } | { ok: false; error: string }>;
}

export function llmPairJudge(b: ModelBackend, o: { retries?: number } = {}): PairJudge {
  return {
    name: b.spec,
    proxy: false,
    async score(q, a1, a2) {
      const r = await askStrict(b, pairPrompt(q, a1, a2), parsePairScores, { maxTokens: PAIR_MAX_TOKENS, temperature: 0, retries: o.retries ?? 2 });
      return r.ok ? { ok: true, scores: r.value, reply: r.reply, attempts: r.attempts.length } : { ok: false, error: r.error };
    },
  };
}

/**
 * The offline proxy judge: each answer's probability of being an answer (not a continuation of the prompt)
 * under the IFS response classifier, mapped to a 1–10 score as round(1 + 9·p). It sees no question and checks
 * no facts: a proxy of instruction following, labelled as such in every output.
 */
export function ifsProxyJudge(classifier: { prob(text: string): number }, name = 'proxy:ifs'): PairJudge {
  const s = (t: string) => Math.round(1 + 9 * classifier.prob(t));
  return {
    name: `${name} (OFFLINE PROXY: IFS classifier P(answer), not an LLM judge)`,
    proxy: true,
    async score(_q, a1, a2) {
      const scores: [number, number] = [s(a1), s(a2)];
      return { ok: true, scores, reply: `${scores[0]} ${scores[1]}`, attempts: 1 };
    },
  };
}

const words = (t: string) => (t.match(/\S+/g) ?? []).length;

export interface WinRateResult {
  judge: string;
  proxy: boolean;
  judgements: PairJudgement[];
  result: WinRate;
  failed: number;
  lengths: { a: { mean: number; median: number }; b: { mean: number; median: number }; longer_wins: number; decided: number };
}

export async function judgePairs(pairs: readonly Pair[], judge: PairJudge, o: { concurrency?: number; onProgress?: (d: number, t: number) => void; onJudgement?: (j: PairJudgement) => void } = {}): Promise<WinRateResult> {
  const limit = semaphore(o.concurrency ?? 4);
  let done = 0;
  const judgements = await Promise.all(
    pairs.map((p) =>
      limit(async () => {
        const [r1, r2] = await Promise.all([judge.score(p.question, p.a, p.b), judge.score(p.question, p.b, p.a)]);
        const j: PairJudgement = { id: p.id, judge: judge.name, ...(judge.proxy ? { proxy: true as const } : {}), words_a: words(p.a), words_b: words(p.b) };
        if (r1.ok) j.order1 = { scores: r1.scores, reply: r1.reply, attempts: r1.attempts };
        if (r2.ok) j.order2 = { scores: r2.scores, reply: r2.reply, attempts: r2.attempts };
        if (!r1.ok || !r2.ok) j.failed = [!r1.ok ? `order 1: ${r1.error}` : '', !r2.ok ? `order 2: ${r2.error}` : ''].filter(Boolean).join('; ');
        else {
          const c = combineOrders(r1.scores, r2.scores);
          j.outcome = c.outcome;
          j.prefs = c.prefs;
        }
        o.onJudgement?.(j);
        o.onProgress?.(++done, pairs.length);
        return j;
      }),
    ),
  );
  const ok = judgements.filter((j) => j.outcome);
  const med = (v: number[]) => {
    const s = [...v].sort((x, y) => x - y);
    return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
  };
  const mean = (v: number[]) => v.reduce((x, y) => x + y, 0) / Math.max(1, v.length);
  const decided = ok.filter((j) => j.outcome !== 'tie' && j.words_a !== j.words_b);
  const longerWins = decided.filter((j) => (j.outcome === 'win') === j.words_a > j.words_b).length;
  const aw = pairs.map((p) => words(p.a)), bw = pairs.map((p) => words(p.b));
  return {
    judge: judge.name,
    proxy: judge.proxy,
    judgements,
    result: winRate(ok.map((j) => j.outcome!)),
    failed: judgements.length - ok.length,
    lengths: { a: { mean: mean(aw), median: med(aw) }, b: { mean: mean(bw), median: med(bw) }, longer_wins: longerWins, decided: decided.length },
  };
}
