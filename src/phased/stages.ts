/**
 * Curriculum stages from difficulty scores (Phased IFT): split the scored rows into N stages by score
 * thresholds (`thresholds:2.5,3.5` → [min,2.5), [2.5,3.5), [3.5,max]) or by quantiles (equal-count stages,
 * ties kept together on the lower side), then order them easy→hard (the paper's), hard→easy (the reverse of
 * the same stages), or random (the same rows shuffled with a seed and cut into stages of the same sizes).
 * All three orders hold exactly the same rows; `union` is every staged row once (the one-off baseline).
 * Rows with a null difficulty (failed or skipped) are left out and counted.
 */
import { HeedError } from '../errors.js';
import { mulberry32 } from '../models/random.js';

export type StageSplit = { kind: 'quantiles' } | { kind: 'thresholds'; cuts: number[] };
export type StageOrder = 'easy-hard' | 'hard-easy' | 'random';
export const ORDERS: readonly StageOrder[] = ['easy-hard', 'hard-easy', 'random'];

export function parseSplit(s: string | undefined, stages: number): StageSplit {
  if (!s || s === 'quantiles') return { kind: 'quantiles' };
  const m = /^thresholds:(.+)$/.exec(s);
  if (!m) throw new HeedError(`--by must be quantiles or thresholds:a,b,…, got "${s}"`, 'e.g. --by thresholds:2.5,3.5 for 3 stages');
  const cuts = m[1].split(',').map(Number);
  if (cuts.some((c) => !Number.isFinite(c))) throw new HeedError(`--by ${s}: thresholds must be numbers`, 'e.g. --by thresholds:2.5,3.5');
  for (let i = 1; i < cuts.length; i++) if (cuts[i] <= cuts[i - 1]) throw new HeedError(`--by ${s}: thresholds must increase`, 'e.g. --by thresholds:2.5,3.5');
  if (cuts.length !== stages - 1) throw new HeedError(`--by ${s} gives ${cuts.length + 1} stages but --stages is ${stages}`, `give ${stages - 1} threshold(s), or --stages ${cuts.length + 1}`);
  return { kind: 'thresholds', cuts };
}

export interface ScoredId {
  id: string;
  difficulty: number;
  row: Record<string, unknown>;
}
export interface Stage {
  name: string;
  rows: ScoredId[];
  min: number;
  max: number;
}

/** Easy→hard stages (stage 1 the easiest). */
export function splitStages(rows: readonly ScoredId[], n: number, split: StageSplit): Stage[] {
  const sorted = [...rows].sort((a, b) => a.difficulty - b.difficulty || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const groups: ScoredId[][] = Array.from({ length: n }, () => []);
  if (split.kind === 'thresholds') {
    for (const r of sorted) {
      let k = split.cuts.findIndex((c) => r.difficulty < c);
      if (k < 0) k = n - 1;
      groups[k].push(r);
    }
  } else {
    // equal counts, but a score shared by rows on both sides of a cut goes wholly to the lower stage
    let start = 0;
    for (let k = 0; k < n; k++) {
      let end = k === n - 1 ? sorted.length : Math.round(((k + 1) * sorted.length) / n);
      while (end < sorted.length && end > start && sorted[end].difficulty === sorted[end - 1].difficulty) end++;
      end = Math.max(end, start);
      groups[k] = sorted.slice(start, end);
      start = end;
    }
  }
  return groups.map((g, k) => ({ name: `stage-${k + 1}`, rows: g, min: g[0]?.difficulty ?? NaN, max: g[g.length - 1]?.difficulty ?? NaN }));
}

/** The stages in one order, over exactly the rows of `easyHard`. */
export function orderStages(easyHard: readonly Stage[], order: StageOrder, seed = 0): Stage[] {
  if (order === 'easy-hard') return [...easyHard];
  if (order === 'hard-easy') return [...easyHard].reverse();
  const all = easyHard.flatMap((s) => s.rows);
  const rnd = mulberry32(seed);
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [all[i], all[j]] = [all[j], all[i]];
  }
  let at = 0;
  return easyHard.map((s, k) => {
    const rows = all.slice(at, (at += s.rows.length));
    const d = rows.map((r) => r.difficulty);
    return { name: `random-${k + 1}`, rows, min: Math.min(...d), max: Math.max(...d) };
  });
}
