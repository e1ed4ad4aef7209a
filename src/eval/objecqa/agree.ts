/**
 * Agreement of two binary judges over the same items (ObjecQA: the offline classifier vs an LLM judge, or a
 * judge vs the labels of data/objecqa/labelled.jsonl): raw agreement, Cohen's κ with a 95% interval, and the
 * confusion table. κ = (p_o − p_e)/(1 − p_e); its interval is κ ± 1.96·SE with Cohen's (1960) large-sample
 * SE = √(p_o(1 − p_o)/(n(1 − p_e)²)), clipped to [−1, 1], and a 2000-resample percentile bootstrap over items
 * (seeded) beside it, which is the one to read at small n. Where both judges give one label only, p_e = 1 and
 * κ is undefined (null): the raw agreement is still reported.
 */
import { mulberry32 } from '../../models/random.js';
import type { ObjecLabel } from './judge.js';

export interface Agreement {
  n: number;
  /** raw agreement p_o */
  agreement: number;
  kappa: number | null;
  /** Cohen (1960) normal-approximation interval */
  kappa_ci: [number, number] | null;
  /** percentile bootstrap over items (resamples where κ is undefined are left out) */
  kappa_bootstrap: [number, number] | null;
  /** rows: judge a, columns: judge b */
  confusion: { objective_objective: number; objective_subjective: number; subjective_objective: number; subjective_subjective: number };
}

function kappaOf(a: readonly number[], b: readonly number[], idx: readonly number[]): { po: number; pe: number; k: number | null } {
  const n = idx.length;
  let agree = 0, a1 = 0, b1 = 0;
  for (const i of idx) {
    if (a[i] === b[i]) agree++;
    a1 += a[i];
    b1 += b[i];
  }
  const po = agree / n;
  const pe = (a1 / n) * (b1 / n) + (1 - a1 / n) * (1 - b1 / n);
  return { po, pe, k: pe >= 1 - 1e-12 ? null : (po - pe) / (1 - pe) };
}

export function agreement(la: readonly ObjecLabel[], lb: readonly ObjecLabel[], o: { resamples?: number; seed?: number } = {}): Agreement {
  if (la.length !== lb.length) throw new Error('agreement: the two label lists differ in length');
  const n = la.length;
  const a = la.map((x) => (x === 'Objective' ? 1 : 0));
  const b = lb.map((x) => (x === 'Objective' ? 1 : 0));
  const cell = (x: number, y: number) => a.filter((v, i) => v === x && b[i] === y).length;
  const confusion = { objective_objective: cell(1, 1), objective_subjective: cell(1, 0), subjective_objective: cell(0, 1), subjective_subjective: cell(0, 0) };
  if (!n) return { n, agreement: NaN, kappa: null, kappa_ci: null, kappa_bootstrap: null, confusion };
  const all = a.map((_, i) => i);
  const { po, pe, k } = kappaOf(a, b, all);
  let ci: [number, number] | null = null;
  if (k !== null) {
    const se = Math.sqrt((po * (1 - po)) / (n * (1 - pe) ** 2));
    ci = [Math.max(-1, k - 1.96 * se), Math.min(1, k + 1.96 * se)];
  }
  const rnd = mulberry32(o.seed ?? 0);
  const boots: number[] = [];
  for (let r = 0; r < (o.resamples ?? 2000); r++) {
    const idx = all.map(() => Math.floor(rnd() * n));
    const kb = kappaOf(a, b, idx).k;
    if (kb !== null) boots.push(kb);
  }
  boots.sort((x, y) => x - y);
  const q = (p: number) => boots[Math.min(boots.length - 1, Math.round(p * (boots.length - 1)))];
  return { n, agreement: po, kappa: k, kappa_ci: ci, kappa_bootstrap: boots.length ? [q(0.025), q(0.975)] : null, confusion };
}

const f3 = (x: number | null) => (x === null ? 'undefined' : x.toFixed(3));

/** A few lines for the terminal: agreement, κ with both intervals, the confusion table. */
export function agreementText(g: Agreement, nameA: string, nameB: string): string {
  const c = g.confusion;
  const w = Math.max(nameA.length, 10);
  return [
    `agreement ${nameA} vs ${nameB} (n=${g.n}): raw ${f3(g.agreement)}, Cohen's kappa ${f3(g.kappa)}${g.kappa_ci ? ` 95% [${f3(g.kappa_ci[0])}, ${f3(g.kappa_ci[1])}]` : ''}${g.kappa_bootstrap ? ` (bootstrap [${f3(g.kappa_bootstrap[0])}, ${f3(g.kappa_bootstrap[1])}])` : ''}${g.kappa === null ? ' (one label only on both sides)' : ''}`,
    `  ${''.padEnd(w + 12)}${nameB}: Objective  Subjective`,
    `  ${nameA.padEnd(w)} Objective   ${String(c.objective_objective).padStart(9)}  ${String(c.objective_subjective).padStart(10)}`,
    `  ${''.padEnd(w)} Subjective  ${String(c.subjective_objective).padStart(9)}  ${String(c.subjective_subjective).padStart(10)}`,
  ].join('\n');
}
