/** Learning-rate schedules: linear warmup, then constant, linear or cosine decay to min_lr_ratio·lr. */
export type ScheduleKind = 'constant' | 'linear' | 'cosine';

export interface Schedule {
  kind: ScheduleKind;
  lr: number;
  warmupSteps: number;
  totalSteps: number;
  minLrRatio: number;
}

/**
 * lr of the update at 1-based step t. Warmup ramps lr·t/warmup (the first update already moves); decay
 * follows transformers' schedulers evaluated at the 0-based step index t-1, so the first update after
 * warmup uses the full lr and the last one a small but non-zero lr (with min_lr_ratio 0).
 */
export function lrAt(s: Schedule, t: number): number {
  if (s.warmupSteps > 0 && t <= s.warmupSteps) return (s.lr * t) / s.warmupSteps;
  if (s.kind === 'constant') return s.lr;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const frac = Math.min(1, Math.max(0, (t - 1 - s.warmupSteps) / span));
  const lo = s.lr * s.minLrRatio;
  if (s.kind === 'linear') return lo + (s.lr - lo) * (1 - frac);
  return lo + (s.lr - lo) * 0.5 * (1 + Math.cos(Math.PI * frac));
}
