/**
 * Evaluation and checkpoint policy of a run: when to evaluate and save, held-out loss, the callbacks at an
 * evaluation point (their metrics and stop requests as one typed outcome), and which checkpoint is the best.
 * Pure decisions plus calls through the DeviceRun; no tensors here.
 */
import type { TextGenerator } from '../decode/generate.js';
import type { Batch } from '../data/pack.js';
import type { Example } from '../data/types.js';
import type { CallbackContext, TrainerCallback } from './callbacks.js';
import type { TrainerState } from './checkpoint.js';
import { microBatches } from './data.js';
import type { StopRule, TrainListener } from './events.js';
import type { DeviceRun } from './train-step.js';

export interface Policy {
  eval_every: number;
  save_every: number;
  best_metric: string;
  /** 'min' or 'max' (the config resolves it from the metric's name; absent reads as max) */
  best_mode?: 'min' | 'max';
}

/** Evaluate after this step: every eval_every steps and at the end of each stage. */
export const evalDue = (p: Policy, step: number, stageEnd: boolean): boolean => step % p.eval_every === 0 || stageEnd;

/** Save after this step: every save_every steps, at stage ends, on a stop or interrupt, and at a new best. */
export const saveDue = (p: Policy, step: number, why: { stageEnd: boolean; stop: boolean; interrupt: boolean; newBest: boolean }): boolean => step % p.save_every === 0 || why.stageEnd || why.stop || why.interrupt || why.newBest;

/** The new best record when `metrics` improves on `best` in `best_metric`, else undefined. */
export function improvedBest(p: Policy, best: TrainerState['best'], metrics: Readonly<Record<string, number>>, step: number): TrainerState['best'] | undefined {
  const v = metrics[p.best_metric];
  if (v === undefined) return undefined;
  if (best && !(p.best_mode === 'min' ? v < best.value : v > best.value)) return undefined;
  return { metric: p.best_metric, value: v, step, checkpoint: `step-${step}` };
}

/** Held-out batches: the eval rows as single sequences (output mask), in micro-batches. */
export function evalBatches(rows: Example[], batchSize: number, padId: number, maxLength: number): Batch[] {
  const seqs = rows.map((e) => ({ ids: e.ids, weights: e.weights, positions: Int32Array.from(e.ids, (_, i) => i), segments: new Int32Array(e.ids.length), rows: [e.id], length: e.ids.length }));
  return microBatches(seqs, batchSize, padId, maxLength);
}

/** Held-out loss on output tokens (undefined without eval rows). */
export async function heldOutLoss(device: DeviceRun, batches: Batch[]): Promise<number | undefined> {
  if (batches.length === 0) return undefined;
  const { sum, weight } = await device.lossSum(batches);
  return sum / weight;
}

export interface StopRequest {
  callback: string;
  reason: string;
  rule?: StopRule;
}

/** What one evaluation point produced. */
export interface EvalOutcome {
  /** train loss, eval_loss and every callback's metrics */
  metrics: Record<string, number>;
  evalLoss?: number;
  /** the callbacks' metrics only (merged into the step's metrics.jsonl record) */
  extra: Record<string, number>;
  /** the first callback that asked to stop */
  stop?: StopRequest;
}

/** Held-out loss, then each callback in order (each sees the metrics so far); progress and stops go to `emit`. */
export async function evaluatePoint(o: { device: DeviceRun; batches: Batch[]; callbacks: TrainerCallback[]; ctx: Omit<CallbackContext, 'generator' | 'metrics' | 'progress'>; generator: TextGenerator; loss: number; emit: TrainListener }): Promise<EvalOutcome> {
  const evalLoss = await heldOutLoss(o.device, o.batches);
  const metrics: Record<string, number> = { loss: o.loss, ...(evalLoss !== undefined ? { eval_loss: evalLoss } : {}) };
  const extra: Record<string, number> = {};
  let stop: StopRequest | undefined;
  const step = o.ctx.step;
  for (const cb of o.callbacks) {
    if (!cb.onEval) continue;
    const t0 = performance.now();
    let current: string | undefined;
    const progress: CallbackContext['progress'] = (p) => {
      if (p.name !== current) {
        current = p.name;
        o.emit({ type: 'eval-start', step, name: p.name, total: p.total, unit: p.unit });
      }
      o.emit({ type: 'eval-progress', step, ...p });
    };
    const r = await cb.onEval({ ...o.ctx, metrics: { ...metrics }, generator: o.generator, progress });
    if (current !== undefined) o.emit({ type: 'eval-end', step, name: cb.name, seconds: (performance.now() - t0) / 1000, metrics: r?.metrics ?? {} });
    if (r?.metrics) Object.assign(metrics, r.metrics), Object.assign(extra, r.metrics);
    if (r?.stop && !stop) {
      stop = { callback: cb.name, reason: r.reason ?? `${cb.name} requested a stop`, ...(r.rule ? { rule: r.rule } : {}) };
      o.emit({ type: 'early-stop', step, ...stop });
    }
  }
  return { metrics, extra, ...(evalLoss !== undefined ? { evalLoss } : {}), ...(stop ? { stop } : {}) };
}
