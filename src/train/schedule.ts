/**
 * The learning-rate schedule of every heed optimizer (`heed train`, `heed pretrain`): linear warmup, then
 * constant, linear or cosine decay to min_lr_ratio·lr.
 */
export type ScheduleKind = 'constant' | 'linear' | 'cosine';

export interface Schedule {
  kind: ScheduleKind;
  lr: number;
  warmupSteps: number;
  totalSteps: number;
  minLrRatio: number;
}

/**
 * lr of the update with 0-based index `step` (the number of updates already applied; the optimizer's
 * StepInfo.count is step + 1). With W = warmupSteps, N = totalSteps, lo = lr·minLrRatio:
 *   step < W:  lr·(step+1)/W — the first update already moves (lr/W), the peak is reached at step W−1;
 *   step ≥ W:  constant lr, or decay with frac = clamp((step − W)/max(1, N − W), 0, 1):
 *              linear lo + (lr−lo)(1−frac), cosine lo + (lr−lo)·½(1 + cos(π·frac)).
 * So step W is at the peak too (transformers' decay formula at its 0-based index) and the last update,
 * step N−1, uses a small value just above lo, not lo itself.
 */
export function lrAt(s: Schedule, step: number): number {
  const t = step + 1;
  if (s.warmupSteps > 0 && t <= s.warmupSteps) return (s.lr * t) / s.warmupSteps;
  if (s.kind === 'constant') return s.lr;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const frac = Math.min(1, Math.max(0, (step - s.warmupSteps) / span));
  const lo = s.lr * s.minLrRatio;
  if (s.kind === 'linear') return lo + (s.lr - lo) * (1 - frac);
  return lo + (s.lr - lo) * 0.5 * (1 + Math.cos(Math.PI * frac));
}
