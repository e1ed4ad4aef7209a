/** Rank correlation with intervals, proportions with Wilson intervals, quantiles (host-side numbers only). */
import { mulberry32 } from '../models/random.js';

/** Average ranks (ties share their mean rank), 1-based. */
export function ranks(x: readonly number[]): number[] {
  const idx = x.map((_, i) => i).sort((a, b) => x[a] - x[b]);
  const r = new Array<number>(x.length);
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && x[idx[j + 1]] === x[idx[i]]) j++;
    const avg = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) r[idx[k]] = avg;
    i = j + 1;
  }
  return r;
}

export function pearson(a: readonly number[], b: readonly number[]): number {
  const n = a.length;
  const ma = a.reduce((s, v) => s + v, 0) / n;
  const mb = b.reduce((s, v) => s + v, 0) / n;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return saa === 0 || sbb === 0 ? NaN : sab / Math.sqrt(saa * sbb);
}

export const spearman = (a: readonly number[], b: readonly number[]): number => pearson(ranks(a), ranks(b));

export interface Agreement {
  n: number;
  rho: number;
  /** 95% interval by Fisher's z with the Bonett–Wright standard error sqrt((1 + rho²/2)/(n − 3)) */
  fisher: [number, number];
  /** 95% percentile bootstrap interval over rows */
  bootstrap: [number, number];
  resamples: number;
}

/** Spearman's rho of two paired score lists with a Fisher-z and a bootstrap 95% interval. */
export function spearmanAgreement(a: readonly number[], b: readonly number[], o: { resamples?: number; seed?: number } = {}): Agreement {
  const n = a.length;
  const rho = spearman(a, b);
  const se = Math.sqrt((1 + (rho * rho) / 2) / Math.max(1, n - 3));
  const z = Math.atanh(Math.max(-0.999999, Math.min(0.999999, rho)));
  const fisher: [number, number] = [Math.tanh(z - 1.96 * se), Math.tanh(z + 1.96 * se)];
  const R = o.resamples ?? 1000;
  const rnd = mulberry32(o.seed ?? 0);
  const boots: number[] = [];
  const xa = new Array<number>(n), xb = new Array<number>(n);
  for (let r = 0; r < R; r++) {
    for (let i = 0; i < n; i++) {
      const k = Math.floor(rnd() * n);
      xa[i] = a[k];
      xb[i] = b[k];
    }
    const v = spearman(xa, xb);
    if (Number.isFinite(v)) boots.push(v);
  }
  boots.sort((x, y) => x - y);
  const q = (p: number) => (boots.length ? boots[Math.min(boots.length - 1, Math.max(0, Math.round(p * (boots.length - 1))))] : NaN);
  return { n, rho, fisher, bootstrap: [q(0.025), q(0.975)], resamples: R };
}

/** Wilson 95% interval of k successes in n. */
export function wilson(k: number, n: number, z = 1.96): [number, number] {
  if (n === 0) return [0, 1];
  const p = k / n;
  const d = 1 + (z * z) / n;
  const c = (p + (z * z) / (2 * n)) / d;
  const h = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / d;
  return [Math.max(0, c - h), Math.min(1, c + h)];
}

/** Linear-interpolated quantile of sorted values. */
export function quantile(sorted: readonly number[], p: number): number {
  if (!sorted.length) return NaN;
  const x = p * (sorted.length - 1);
  const lo = Math.floor(x), hi = Math.ceil(x);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (x - lo);
}

export function summary(v: readonly number[]): { n: number; mean: number; median: number; min: number; max: number } {
  const s = [...v].sort((a, b) => a - b);
  return { n: s.length, mean: s.reduce((a, b) => a + b, 0) / Math.max(1, s.length), median: quantile(s, 0.5), min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN };
}
