/**
 * Trainer callbacks: a small hook interface called at evaluation and save points. A callback receives the
 * step, the latest metrics and a generator over the current weights; it may return extra metrics (logged to
 * metrics.jsonl and usable for best-checkpoint selection, e.g. `ifs`) and may request that training stop.
 * Evaluation code (IFS, ObjecQA) plugs in here; it never reaches into the trainer.
 */
import type { TextGenerator } from '../decode/generate.js';
import type { StopRule } from './events.js';

export interface CallbackContext {
  /** optimizer steps done so far (global, across stages) */
  step: number;
  /** fractional epoch within the current stage */
  epoch: number;
  /** 0-based stage index and its name ("main" for one-stage runs) */
  stage: number;
  stageName: string;
  /** metrics of this evaluation point so far (train loss, eval loss on output tokens, ...) */
  metrics: Record<string, number>;
  /** generates with this step's weights (in-process; valid until the callback returns) */
  generator: TextGenerator;
  /** the run folder */
  runDir: string;
  /** report progress of a long evaluation (e.g. n of N IFS responses): the trainer's listener draws it */
  progress?: (p: EvalProgress) => void;
}

/** Progress of one evaluation inside a callback: `done` of `total` `unit`s (done 0 = starting). */
export interface EvalProgress {
  name: string;
  done: number;
  total: number;
  unit: string;
}

export interface CallbackResult {
  /** extra metrics, merged into this step's metrics.jsonl record */
  metrics?: Record<string, number>;
  /** request a clean stop after this point (a checkpoint is saved first) */
  stop?: boolean;
  /** why (written to the run summary) */
  reason?: string;
  /** the rule that fired and its numbers (announced when the stop happens) */
  rule?: StopRule;
}

export interface TrainerCallback {
  readonly name: string;
  /** called every eval interval (and at the end of each stage) */
  onEval?(ctx: CallbackContext): Promise<CallbackResult | void>;
  /** called after a checkpoint folder was written */
  onSave?(ctx: CallbackContext & { checkpointDir: string }): Promise<void>;
  /** called once when a run resumes, with the metrics.jsonl records kept (steps up to the checkpoint) */
  onResume?(records: Array<Record<string, unknown>>): void;
  /** called once when training ends (stopped early or not); returned fields go into summary.json */
  onEnd?(ctx: Omit<CallbackContext, 'generator'>): Promise<Record<string, unknown> | void>;
}
