/** Engine vs llama.cpp comparison shared by the GGUF parity tests (not a test file itself). */
import assert from 'node:assert/strict';
import { EngineGenerator } from '../src/decode/generate.js';
import { logSoftmax } from '../src/decode/sampling.js';
import type { Model } from '../src/models/load.js';
import type { ModelBackend } from '../src/backends/types.js';

export const MAX_TOKENS = 12;
/** engine top-two log-prob margin below which llama.cpp may pick the other token (f32 sums in another order) */
export const TIE = 1e-4;

/** max |Δ log p| over the tokens the engine gives log p > -20 (f32 softmax underflows below that in llama.cpp) */
export function logprobDiff(a: Float32Array[], b: Float32Array[]): number {
  let m = 0;
  for (let r = 0; r < a.length; r++) {
    const la = logSoftmax(a[r]);
    const lb = logSoftmax(b[r]);
    for (let i = 0; i < la.length; i++) if (la[i] > -20) m = Math.max(m, Math.abs(la[i] - lb[i]));
  }
  return m;
}

/** greedy ids of both (MAX_TOKENS, EOS off), how many are identical, and the max next-token |Δ log p| */
export async function compare(model: Model, be: ModelBackend, ids: number[][], eg = new EngineGenerator(model)) {
  const a = await eg.generateIds(ids, { maxTokens: MAX_TOKENS, eosIds: [] });
  const b = await (be.gen as unknown as EngineGenerator).generateIds(ids, { maxTokens: MAX_TOKENS, eosIds: [] });
  const es = eg.session();
  const la = await es.prefill(ids, { maxTokens: 1 });
  es.dispose();
  const ls = await be.session!();
  const lb = await ls.prefill(ids, { maxTokens: 1 });
  await ls.dispose();
  const same = a.filter((g, i) => JSON.stringify(g.ids) === JSON.stringify(b[i].ids)).length;
  return { a, b, same, diff: logprobDiff(la, lb) };
}

/**
 * Asserts that every greedy divergence is at a near tie of the engine's own top two (random tiny weights have
 * them); returns how many prompts diverged.
 */
export async function assertTiesOnly(name: string, eg: EngineGenerator, ids: number[][], r: Awaited<ReturnType<typeof compare>>): Promise<number> {
  let ties = 0;
  for (let i = 0; i < ids.length; i++) {
    const x = r.a[i].ids, y = r.b[i].ids;
    const k = x.findIndex((t, j) => t !== y[j]);
    if (k < 0) continue;
    const es = eg.session();
    const [l] = await es.prefill([[...ids[i], ...x.slice(0, k)]], { maxTokens: 1 });
    es.dispose();
    const lp = logSoftmax(l);
    const gap = lp[x[k]] - lp[y[k]];
    assert.ok(gap < TIE, `${name} prompt ${i}: llama.cpp chose ${y[k]} at step ${k}, the engine ${x[k]} by a log-prob margin of ${gap}`);
    ties++;
  }
  return ties;
}
