/**
 * Early stopping on IFS (arXiv 2307.03692 §5: IFS plateaus during instruct tuning, after which further tuning
 * mostly changes semantics, visible in ObjecQA). A TrainerCallback: at every evaluation it scores IFS on a
 * fixed, budgeted subset of the prompt set with the trainer's generator (current weights), optionally ObjecQA,
 * returns {metrics: {ifs, ifs_partial, ifs_full, objecqa?}} for metrics.jsonl and best-checkpoint selection
 * by `ifs`, and requests a stop when IFS has plateaued.
 *
 * The plateau rule (pure; `plateauStop`), over the IFS values h[0..i] of evaluations so far:
 *   gain(i)  = max(h[i-patience+1 .. i]) − max(h[0 .. i-patience])      (needs i ≥ patience)
 *   stop at i  ⇔  gain(i) < minDelta  AND  h[i] ≥ minIfs
 * i.e. the last `patience` evaluations did not improve on the best earlier value by minDelta, and the
 * current IFS already reached minIfs. Defaults: patience 3, minDelta 0.01, minIfs 0.9 (the paper saw the
 * plateau at 0.9–0.95). A curve whose best value keeps rising by ≥ minDelta every `patience` evaluations
 * never stops; a model that never reaches minIfs never stops (the trainer's own step budget ends the run).
 */
import { writeFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { HeedError } from '../errors.js';
import type { EngineGenerator, TextGenerator } from '../decode/generate.js';
import { join } from 'node:path';
import type { CallbackContext, CallbackResult, TrainerCallback } from '../train/callbacks.js';
import type { PromptRow } from './ifs/fragments.js';
import { loadIfsClassifier } from './ifs/classifier.js';
import { loadPromptSet } from './ifs/prompts.js';
import { budgetSubset, scoreIfs, DEFAULT_MAX_TOKENS, type Variant } from './ifs/score.js';
import type { TextClassifier } from './text-classifier.js';
import { ClassifierJudge, type Judge } from './objecqa/judge.js';
import { loadQuestions, scoreObjecqa, type Question } from './objecqa/score.js';

export interface PlateauRule {
  patience: number;
  minDelta: number;
  minIfs: number;
}

export const DEFAULT_PLATEAU: PlateauRule = { patience: 3, minDelta: 0.01, minIfs: 0.9 };

/** The rule of the module comment for the latest value of `h`. */
export function plateauStop(h: readonly number[], r: PlateauRule = DEFAULT_PLATEAU): { stop: boolean; gain: number | null; reason?: string } {
  const i = h.length - 1;
  if (i < r.patience) return { stop: false, gain: null };
  const before = Math.max(...h.slice(0, i - r.patience + 1));
  const recent = Math.max(...h.slice(i - r.patience + 1));
  const gain = recent - before;
  const stop = gain < r.minDelta && h[i] >= r.minIfs;
  return stop ? { stop, gain, reason: `IFS plateau: best of the last ${r.patience} evaluations improved by ${gain.toFixed(4)} < min_delta ${r.minDelta}, and IFS ${h[i].toFixed(4)} ≥ min_ifs ${r.minIfs}` } : { stop, gain };
}

/** The first index at which the rule stops a whole curve (or -1). */
export function firstStop(curve: readonly number[], r: PlateauRule = DEFAULT_PLATEAU): number {
  for (let i = 0; i < curve.length; i++) if (plateauStop(curve.slice(0, i + 1), r).stop) return i;
  return -1;
}

export interface IfsEarlyStoppingOptions extends Partial<PlateauRule> {
  /** the prompt set (rows or a file); default data/ifs/prompts.jsonl */
  prompts?: PromptRow[] | string;
  /** prompts per evaluation (fixed subset: first half partial, half full; default 200) */
  budget?: number;
  variant?: Variant;
  maxTokens?: number;
  batchSize?: number;
  /** also score ObjecQA each evaluation (true = all 100 questions, or a number of questions) */
  objecqa?: boolean | number;
  classifier?: TextClassifier;
  judge?: Judge;
  /** write every evaluation's responses to <runDir>/ifs/step-<step>.jsonl (default true) */
  saveResponses?: boolean;
  /** don't stop, only measure (default false) */
  measureOnly?: boolean;
  /**
   * where the responses are generated: 'engine' (in-process, default) or 'llama.cpp' (the current weights exported
   * to a temporary f32 GGUF at each evaluation, run by node-llama-cpp: same greedy responses, several times faster
   * — see docs/gguf.md). Full fine-tuning only (LoRA weights are refused by the trainer).
   */
  engine?: 'engine' | 'llama.cpp';
}

export interface IfsPoint {
  step: number;
  ifs: number;
  ifs_partial: number;
  ifs_full: number;
  objecqa?: number;
}

export class IfsEarlyStopping implements TrainerCallback {
  readonly name = 'ifs-early-stopping';
  readonly rule: PlateauRule;
  readonly history: IfsPoint[] = [];
  private readonly prompts: PromptRow[];
  private readonly questions: Question[] | undefined;
  private readonly classifier: TextClassifier;
  private readonly judge: Judge | undefined;
  private stopReason: string | undefined;

  constructor(readonly o: IfsEarlyStoppingOptions = {}) {
    this.rule = { ...DEFAULT_PLATEAU, ...pick(o) };
    const all = Array.isArray(o.prompts) ? o.prompts : loadPromptSet(o.prompts).prompts;
    this.prompts = budgetSubset(all, o.budget ?? 200);
    this.classifier = o.classifier ?? loadIfsClassifier();
    if (o.objecqa) {
      const qs = loadQuestions();
      this.questions = typeof o.objecqa === 'number' ? qs.slice(0, o.objecqa) : qs;
      this.judge = o.judge ?? ClassifierJudge.load();
    }
  }

  async onEval(ctx: CallbackContext): Promise<CallbackResult> {
    const variant = this.o.variant ?? 'A';
    const maxTokens = this.o.maxTokens ?? DEFAULT_MAX_TOKENS;
    const t0 = performance.now();
    const through = this.o.engine === 'llama.cpp' ? await llamaCppGenerator(ctx.generator) : { gen: ctx.generator, dispose: async () => {} };
    const metrics: Record<string, number> = {};
    let res: Awaited<ReturnType<typeof scoreIfs>>;
    try {
      const report = (done: number) => ctx.progress?.({ name: 'IFS', done, total: this.prompts.length, unit: 'responses' });
      report(0);
      res = await scoreIfs(through.gen, this.classifier, this.prompts, { variants: [variant], maxTokens, batchSize: this.o.batchSize, onProgress: report });
      const s = res.scores[0];
      Object.assign(metrics, { ifs: s.ifs.value, ifs_partial: s.ifs_partial.value, ifs_full: s.ifs_full.value });
      if (this.questions && this.judge) {
        const nq = this.questions.length;
        ctx.progress?.({ name: 'ObjecQA', done: 0, total: nq, unit: 'answers' });
        const q = await scoreObjecqa(through.gen, this.judge, this.questions, { variant, maxTokens, batchSize: this.o.batchSize, onProgress: (done) => ctx.progress?.({ name: 'ObjecQA', done, total: nq, unit: 'answers' }) });
        metrics.objecqa = q.objective.value;
      }
    } finally {
      await through.dispose();
    }
    // wall time of an evaluation through llama.cpp, export included (engine runs keep metrics.jsonl free of timings)
    if (this.o.engine === 'llama.cpp') metrics.ifs_eval_seconds = (performance.now() - t0) / 1000;
    this.history.push({ step: ctx.step, ...(metrics as Omit<IfsPoint, 'step'>) });
    if (this.o.saveResponses ?? true) {
      try {
        mkdirSync(join(ctx.runDir, 'ifs'), { recursive: true });
        writeFileSync(join(ctx.runDir, 'ifs', `step-${ctx.step}.jsonl`), res.responses.map((r) => JSON.stringify(r)).join('\n') + '\n');
      } catch {
        /* a missing run folder must not break training */
      }
    }
    const d = plateauStop(this.history.map((h) => h.ifs), this.rule);
    if (d.stop && !this.o.measureOnly) {
      this.stopReason = d.reason;
      const i = this.history.length - 1;
      return { metrics, stop: true, reason: d.reason, rule: { name: 'ifs-plateau', values: { patience: this.rule.patience, min_delta: this.rule.minDelta, min_ifs: this.rule.minIfs, gain: d.gain!, ifs: this.history[i].ifs } } };
    }
    return { metrics };
  }

  /** A resumed run: rebuild the IFS history from the metrics kept in metrics.jsonl. */
  onResume(records: Array<Record<string, unknown>>): void {
    this.history.length = 0;
    for (const r of records) {
      if (typeof r.ifs !== 'number') continue;
      this.history.push({ step: r.step as number, ifs: r.ifs, ifs_partial: r.ifs_partial as number, ifs_full: r.ifs_full as number, ...(typeof r.objecqa === 'number' ? { objecqa: r.objecqa } : {}) });
    }
  }

  /** The evaluation with the highest IFS (earliest on ties). */
  best(): IfsPoint | undefined {
    let b: IfsPoint | undefined;
    for (const h of this.history) if (!b || h.ifs > b.ifs) b = h;
    return b;
  }

  async onEnd(): Promise<Record<string, unknown>> {
    return { ifs_best: this.best() ?? null, ifs_history: this.history, ifs_rule: this.rule, ifs_stopped: this.stopReason ?? null };
  }
}

/** The trainer's current weights (LoRA merged) as a temporary f32 GGUF in llama.cpp (the file is removed on dispose). */
async function llamaCppGenerator(g: TextGenerator): Promise<{ gen: TextGenerator; dispose: () => Promise<void> }> {
  const eg = g as EngineGenerator;
  if (!eg.model?.params || !eg.model.dir) throw new HeedError('early_stopping.ifs.engine llama.cpp needs the trainer\'s in-process generator', 'use engine: engine');
  const { toHostTensors } = await import('../models/load.js');
  const { exportGgufFrom } = await import('../export/gguf.js');
  const { openLlamaCpp } = await import('../backends/llamacpp.js');
  const dir = mkdtempSync(join(tmpdir(), 'heed-ifs-gguf-'));
  const file = join(dir, 'current.gguf');
  const host = await toHostTensors(eg.model.params);
  // LoRA: the adapters merged into a copy of the base weights (W + scale·B·A), the weights llama.cpp runs
  const weights = eg.model.loraScale !== undefined ? (await import('../train/lora.js')).mergeLoraTensors(eg.model.config, host, eg.model.loraScale) : host;
  exportGgufFrom(eg.model.config, weights, eg.model.dir, file);
  const be = await openLlamaCpp(file);
  return {
    gen: be.gen,
    dispose: async () => {
      await be.dispose();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function pick(o: Partial<PlateauRule>): Partial<PlateauRule> {
  const out: Partial<PlateauRule> = {};
  if (o.patience !== undefined) out.patience = o.patience;
  if (o.minDelta !== undefined) out.minDelta = o.minDelta;
  if (o.minIfs !== undefined) out.minIfs = o.minIfs;
  return out;
}
