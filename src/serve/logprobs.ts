/**
 * Log-probabilities for heed serve from a backend with logits: a logits processor, last in the chain (after
 * the rule adapter, before sampling), that records each row's log-softmax at every step — the top-N
 * alternatives, and the chosen token's log-probability once the next step (or the end) shows which it was.
 * Memory: one vocabulary row per batch row. Temperature and the repetition penalty are not part of these
 * numbers (as in vLLM's default: the model's distribution).
 */
import type { Generation, LogitsProcessor } from '../decode/generate.js';

export interface TokenLogprob {
  id: number;
  logprob: number;
  top: Array<{ id: number; logprob: number }>;
}

function logSumExp(x: Float32Array): number {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i] > m) m = x[i];
  if (!Number.isFinite(m)) return m;
  let s = 0;
  for (let i = 0; i < x.length; i++) s += Math.exp(x[i] - m);
  return m + Math.log(s);
}

function topN(x: Float32Array, n: number, lse: number): Array<{ id: number; logprob: number }> {
  if (n <= 0) return [];
  const best: Array<{ id: number; logprob: number }> = [];
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (best.length < n || v > best[best.length - 1].logprob + lse) {
      best.push({ id: i, logprob: v - lse });
      best.sort((a, b) => b.logprob - a.logprob);
      if (best.length > n) best.pop();
    }
  }
  return best;
}

export class LogprobRecorder {
  private readonly rows = new Map<number, { steps: TokenLogprob[]; last?: { row: Float32Array; lse: number } }>();
  constructor(readonly top: number) {}

  readonly processor: LogitsProcessor = (ids, logits, ctx) => {
    let r = this.rows.get(ctx.row);
    if (!r) this.rows.set(ctx.row, (r = { steps: [] }));
    if (r.last && ctx.step > 0) {
      const chosen = ids[ctx.promptLength + ctx.step - 1];
      r.steps[ctx.step - 1].id = chosen;
      r.steps[ctx.step - 1].logprob = r.last.row[chosen] - r.last.lse;
    }
    const lse = logSumExp(logits);
    r.steps[ctx.step] = { id: -1, logprob: NaN, top: topN(logits, this.top, lse) };
    if (!r.last || r.last.row.length !== logits.length) r.last = { row: new Float32Array(logits.length), lse };
    r.last.row.set(logits);
    r.last.lse = lse;
    return logits;
  };

  /** The chosen tokens' log-probabilities of row `row` (one per generated id). */
  finish(row: number, g: Generation): TokenLogprob[] {
    const r = this.rows.get(row);
    if (!r) return [];
    const n = g.ids.length;
    if (n > 0 && r.last && r.steps[n - 1] && r.steps[n - 1].id < 0) {
      const chosen = g.ids[n - 1];
      r.steps[n - 1].id = chosen;
      r.steps[n - 1].logprob = r.last.row[chosen] - r.last.lse;
    }
    return r.steps.slice(0, n);
  }
}
