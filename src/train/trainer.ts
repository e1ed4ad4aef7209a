/**
 * The training loop: stages → epochs → optimizer steps (grad_accum micro-batches). Orchestration only; the
 * parts live beside it:
 *   run-folder.ts   a new run folder, or resume / extend one (checkpoint choice, metrics.jsonl cut back)
 *   train-step.ts   the device side: parameters, AdamW moments, one step (accumulate → clip → update)
 *   evaluation.ts   when to evaluate and save, held-out loss, callbacks at an evaluation, the best checkpoint
 *   checkpoint.ts   atomic checkpoint folders with manifests;  export.ts  final/best model folders
 *   metrics.ts      the metrics.jsonl reader/writer;  events.ts  the typed progress events this loop emits
 * The loop renders nothing: progress goes to `onEvent` (heed train draws it with src/cli/progress.ts), log
 * lines to `log`. Held-out loss uses the `output` mask on the eval rows, whatever the training mask.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HeedError } from '../errors.js';
import { exportGguf } from '../export/gguf.js';
import { EngineGenerator } from '../decode/generate.js';
import { loadTokenizer } from '../io/tokenizer.js';
import type { HostTensor } from '../io/safetensors.js';
import type { Batch } from '../data/pack.js';
import { loadHostModel, saveHostModel } from '../models/load.js';
import { readModelConfig } from '../models/config.js';
import { resolveStages, type TrainConfig } from './config.js';
import { epochSequences, loadRunData, microBatches, normalisedWeights, plannedStageSteps, stepSpan, type DropReport } from './data.js';
import { lrAt, type Schedule } from './schedule.js';
import { adamw, chain, clipByGlobalNorm, decays } from './adamw.js';
import { initLora, loraModules, mergeLora, savePeftAdapter } from './lora.js';
import { pruneCheckpoints, saveTrainerFiles, stepDir, writeCheckpoint, type TrainerState } from './checkpoint.js';
import { exportCheckpoint, recordTraining } from './export.js';
import type { TrainerCallback, CallbackContext } from './callbacks.js';
import { createRun, openRun, type ResumeRequest } from './run-folder.js';
import { DeviceRun, optimizerPlace } from './train-step.js';
import { evalBatches, evalDue, evaluatePoint, improvedBest, saveDue, type StopRequest } from './evaluation.js';
import { appendMetrics, type MetricsRecord } from './metrics.js';
import { RunLoggers, loggerKinds } from './loggers/index.js';
import type { TrainEvent, TrainListener } from './events.js';

export type { TrainEvent, TrainListener } from './events.js';
export type { ResumeRequest } from './run-folder.js';

export interface TrainOptions {
  /** no log lines (progress events still go to onEvent) */
  quiet?: boolean;
  callbacks?: TrainerCallback[];
  /** set `.stop = true` (e.g. from a SIGINT handler) to save a checkpoint and stop after the current step */
  interrupt?: { stop: boolean };
  log?: (line: string) => void;
  /** typed progress events (steps, evaluations, early stopping): heed train draws them with src/cli/progress.ts */
  onEvent?: TrainListener;
}

/** This session of a resumed (or extended) run, beside the run's totals. */
export interface SessionSummary {
  from_step: number;
  steps: number;
  tokens: number;
  seconds: number;
  tokens_per_s: number;
}

export interface RunSummary {
  run_dir: string;
  /** optimizer steps of the run (all sessions) */
  steps: number;
  /** training tokens of the run (all sessions) */
  tokens: number;
  /** training wall time of the run (all sessions' steps, evaluations and checkpoints that count) */
  seconds: number;
  /** tokens / seconds */
  tokens_per_s: number;
  /** this session alone (differs from the totals after --resume) */
  session: SessionSummary;
  final: Record<string, number>;
  best: TrainerState['best'];
  last_checkpoint: string | null;
  /** model folders for use (no optimizer state): runs/<name>/final and, when a best checkpoint exists, runs/<name>/best */
  exports?: { final?: string; best?: string };
  /** IFS early stopping: prompts whose source instruction occurs in the training data (src/eval/overlap.ts) */
  ifs_overlap?: Record<string, unknown>;
  stopped_early: { reason: string; step: number } | null;
  /** the callback that stopped the run early and the rule that fired (with its numbers) */
  stop_rule?: { callback: string; rule?: StopRequest['rule'] };
  interrupted: boolean;
  stages: Array<{ name: string; steps: number }>;
  data: DropReport;
  diverged: { step: number; loss: number; grad_norm: number } | null;
  /** set when this session extended the run (--resume --set steps=N) */
  extended?: { from: number | null; to: number };
  /** what each callback returned at the end (onEnd), by callback name; summary.json holds them at its top level */
  callbacks: Record<string, Record<string, unknown>>;
}

const tokensOf = (b: Batch) => b.segments.reduce((a, s) => a + (s >= 0 ? 1 : 0), 0);

/** The IFS early-stopping callback of the config (prompts that overlap the training data excluded and counted). */
async function ifsCallback(cfg: TrainConfig, stages: ReturnType<typeof resolveStages>, log: (s: string) => void): Promise<{ cb: TrainerCallback; overlap: Record<string, unknown> } | undefined> {
  const e = cfg.early_stopping?.ifs;
  if (!e) return undefined;
  const { IfsEarlyStopping } = await import('../eval/early-stop.js');
  const { loadPromptSet } = await import('../eval/ifs/prompts.js');
  const ov = await import('../eval/overlap.js');
  const all = loadPromptSet(e.prompts).prompts;
  const texts = await ov.trainingPromptTexts(stages.flatMap((s) => s.data.map((d) => d.path)), { format: cfg.format, fields: cfg.fields, roles: cfg.roles });
  const report = ov.findOverlap(all, texts);
  const prompts = e.exclude_overlap ? ov.withoutOverlap(all, report) : all;
  const overlap = { ...report, excluded: e.exclude_overlap ? report.overlapping_prompts : 0, used_from: prompts.length, matches: report.matches.slice(0, 50) };
  if (report.overlapping_prompts) log(`IFS prompts: ${ov.describeOverlap(report)}; ${e.exclude_overlap ? `excluded, ${prompts.length} left (early_stopping.ifs.exclude_overlap: false keeps them)` : 'kept (exclude_overlap: false): IFS partly measures memorisation'}`);
  if (prompts.length === 0) throw new HeedError(`every IFS prompt overlaps the training data (${ov.describeOverlap(report)})`, 'pass prompts from another source (early_stopping.ifs.prompts: FILE, made with heed ifs build), or set early_stopping.ifs.exclude_overlap: false');
  const cb = new IfsEarlyStopping({ patience: e.patience, minDelta: e.min_delta, minIfs: e.min_ifs, budget: e.budget, variant: e.variant, maxTokens: e.max_tokens, batchSize: e.batch_size, prompts, objecqa: e.objecqa, measureOnly: e.measure_only, engine: e.engine });
  return { cb, overlap };
}

/** The trainer's log line for the gradient engine (and, under checkpointing: auto, the estimate behind it). */
function gradientsLine(d: DeviceRun): string {
  const what = { fused: 'one fused program (checkpointing: off)', stored: 'layer by layer, activations kept from the forward pass (checkpointing: stored)', layers: "layer by layer, each block's forward recomputed (checkpointing: layers)" }[d.gradients];
  if (!d.plan || d.gradients === 'fused') return what;
  const gb = (b: number) => (b / 2 ** 30).toFixed(2);
  return `${what}; auto: stored activations estimated at ${gb(d.plan.storedBytes)} GiB of the ${gb(d.plan.budgetBytes)} GiB allowed`;
}

/** The metrics of the last record (an evaluation) of a run that finished before its summary was written. */
function finalMetricsOf(rec: MetricsRecord | undefined): Record<string, number> {
  const skip = new Set(['step', 'stage', 'stage_name', 'epoch', 'lr', 'grad_norm', 'tokens', 'tokens_per_s']);
  return Object.fromEntries(Object.entries(rec ?? {}).filter(([k, v]) => !skip.has(k) && typeof v === 'number')) as Record<string, number>;
}

export async function train(cfgIn: TrainConfig | ResumeRequest, opts: TrainOptions = {}): Promise<RunSummary> {
  const log = opts.log ?? ((s: string) => (opts.quiet ? undefined : console.error(s)));
  const emit: TrainListener = (e: TrainEvent) => opts.onEvent?.(e);
  // --- run folder and config
  const run = 'resume' in cfgIn ? openRun(cfgIn, log) : createRun(cfgIn);
  const { cfg, runDir, resumeFrom, kept } = run;
  const stages = resolveStages(cfg);

  // --- the model's context bounds max_length: checked from config.json before weights or data are loaded
  const ctx = readModelConfig(cfg.model).config.maxPositions;
  if (cfg.max_length > ctx) {
    throw new HeedError(
      `max_length ${cfg.max_length} is longer than the model's context: ${cfg.model}/config.json allows ${ctx} positions`,
      `set max_length to at most ${ctx} (--set max_length=${ctx})${cfg.truncation === 'drop' ? '' : '; longer rows are truncated'}`,
    );
  }

  optimizerPlace(); // a bad HEED_OPTIMIZER is refused before anything is loaded

  // --- model, tokenizer, data
  const host = loadHostModel(cfg.model);
  const c = host.config;
  const tok = loadTokenizer(cfg.model);
  const data = await loadRunData(cfg, stages, tok, log);
  log(`eval rows: ${data.evalRows.length}`);

  // --- trainable / frozen params on the device
  const lora = cfg.lora;
  const mods = lora ? loraModules(c, lora.targets, (n) => host.tensors.get(n)!.shape) : [];
  const loraScale = lora ? lora.alpha / lora.r : undefined;
  let start: { trainable: Map<string, HostTensor>; moments?: { m: Map<string, HostTensor>; v: Map<string, HostTensor> } };
  if (resumeFrom) {
    const opt = resumeFrom.opt;
    // one canonical tensor order everywhere (the fresh run's): the global gradient norm is summed in this
    // order, so resuming with the file's sorted order would change the clipping scale in its last bits
    const order = lora ? mods.flatMap((x) => [`${x.name}.lora_A`, `${x.name}.lora_B`]) : [...host.tensors.keys()];
    const want = new Set(order.flatMap((k) => [`param.${k}`, `m.${k}`, `v.${k}`]));
    const odd = [...opt.keys()].find((k) => !want.has(k)) ?? [...want].find((k) => !opt.has(k));
    if (odd !== undefined) throw new HeedError(`${resumeFrom.dir}/optimizer.safetensors: tensor "${odd}" does not match the run's trainable parameters`, 'the checkpoint comes from another model or LoRA config; start a new run');
    const pick = (prefix: string) => new Map(order.map((k) => [k, opt.get(prefix + k)!]));
    start = { trainable: pick('param.'), moments: { m: pick('m.'), v: pick('v.') } };
  } else start = { trainable: lora ? initLora(mods, lora.r, cfg.seed) : host.tensors }; // full FT: the loaded arrays are the trainable ones (the host optimizer updates them in place; nothing below reads host.tensors then)
  const a = cfg.adamw;
  const optimizer = chain(clipByGlobalNorm(cfg.grad_clip), adamw({ beta1: a.beta1, beta2: a.beta2, eps: a.eps, weightDecay: a.weight_decay, decayMask: decays }));
  const device = new DeviceRun({ config: c, base: host.tensors, ...start, lora: !!lora, loraScale, loraDropout: lora?.dropout ?? 0, loraModules: mods.map((x) => x.name), checkpointing: cfg.checkpointing, microBatch: { B: cfg.batch_size, T: cfg.max_length }, optimizer });
  // the loaded weights are on the device now (and, for full fine-tuning on the host executor, its own arrays):
  // the host copy goes (Qwen2.5-0.5B: 2 GB of RSS); a LoRA checkpoint reads the base weights back from the device
  const baseNames = [...host.tensors.keys()];
  host.tensors.clear();
  const nTrain = device.trainableCount;
  log(`model ${cfg.model}: ${c.modelType}, ${lora ? `LoRA r=${lora.r} on ${mods.length} modules, ${nTrain.toLocaleString('en-US')} trainable parameters` : `full fine-tuning, ${nTrain.toLocaleString('en-US')} parameters`}`);

  // --- plan: steps per stage (epochs × steps in the stage's first epoch, or steps) and the lr schedule
  const stageSteps = stages.map((st, si) => plannedStageSteps(st, st.steps === undefined ? epochSequences(data.stages[si], cfg, si, 0, data.padId).length : 0, cfg.batch_size, cfg.grad_accum));
  const totalSteps = stageSteps.reduce((a, b) => a + b, 0);
  const stepsBefore = (si: number) => stageSteps.slice(0, si).reduce((a, b) => a + b, 0);
  const schedFor = (si: number): Schedule => {
    const st = stages[si];
    return cfg.lr_reset_per_stage ? { kind: st.schedule, lr: st.lr, warmupSteps: st.warmupSteps, totalSteps: stageSteps[si], minLrRatio: cfg.min_lr_ratio } : { kind: cfg.schedule, lr: cfg.lr, warmupSteps: cfg.warmup_steps, totalSteps, minLrRatio: cfg.min_lr_ratio };
  };
  /** lr of the update with 0-based index t within stage si (schedule.ts convention) */
  const lrOf = (si: number, t: number) => lrAt(schedFor(si), cfg.lr_reset_per_stage ? t : stepsBefore(si) + t);
  log(`gradients: ${gradientsLine(device)}`);
  log(`optimizer state: ${device.optimizerOn === 'host' ? 'on the host, outside the wasm heap (HEED_OPTIMIZER=device keeps it on the device)' : 'on the device'}`);
  log(`plan: ${stages.map((s, i) => `${s.name} ${stageSteps[i]} steps`).join(', ')}; batch ${cfg.batch_size}×${cfg.grad_accum} (max length ${cfg.max_length}${cfg.packing ? ', packed' : ''})`);

  // --- state
  let state: TrainerState = resumeFrom?.state ?? { version: 1, step: 0, stage: 0, epoch: 0, micro: 0, stageStep: 0, tokens: 0, seconds: 0, best: null, stopped: null, done: false };
  if (run.extended && resumeFrom && state.stage < stages.length && state.stageStep < stageSteps[state.stage]) {
    log(`schedule: ${cfg.schedule} over ${totalSteps} steps; the next step (${state.step + 1}) has lr ${lrOf(state.stage, state.stageStep).toPrecision(4)}`);
  }
  const metricsFile = join(runDir, 'metrics.jsonl');
  const callbacks = [...(opts.callbacks ?? [])];
  const ifs = await ifsCallback(cfg, stages, log);
  if (ifs) callbacks.push(ifs.cb);
  if (resumeFrom && existsSync(metricsFile)) for (const cb of callbacks) cb.onResume?.(kept);
  // TensorBoard / CSV (loggers: [...]): rebuilt from metrics.jsonl as it stands (cut back on resume), then every record
  const loggers = RunLoggers.open(runDir, loggerKinds(cfg));

  // the generator reads the device's current weights through this read-only view (nothing assigns them)
  const generator = new EngineGenerator({
    config: c,
    tokenizer: tok,
    get params() {
      return device.weights();
    },
    loraScale,
    dir: cfg.model,
  });
  const heldOut = evalBatches(data.evalRows, cfg.batch_size, data.padId, cfg.max_length);
  const ctxBase = (): Omit<CallbackContext, 'generator' | 'metrics' | 'progress'> => ({ step: state.step, epoch: state.epoch, stage: state.stage, stageName: stages[state.stage]?.name ?? 'main', runDir });

  // time: the run's training wall time is carried in the checkpoints (state.seconds), this session's measured here
  const t0 = performance.now();
  const seconds0 = state.seconds ?? 0;
  const sessionSeconds = () => (performance.now() - t0) / 1000;
  /** base + (alpha/r)·B·A, one module at a time from the device's base weights (host memory: the merged model only) */
  const mergedWeights = async (adapters: Map<string, HostTensor>): Promise<Map<string, HostTensor>> => {
    const byWeight = new Map(mods.map((m) => [`${m.name}.weight`, m]));
    const out = new Map<string, HostTensor>();
    for (const k of baseNames) {
      const t = await device.frozenTensor(k);
      const m = byWeight.get(k);
      out.set(k, m ? mergeLora(new Map([[k, t]]), adapters, [m], loraScale!).get(k)! : t);
    }
    return out;
  };
  const saveCheckpoint = async (): Promise<string | null> => {
    const hs = await device.hostState();
    if (!hs) return null; // never save non-finite parameters
    state = { ...state, seconds: seconds0 + sessionSeconds() };
    const weights = lora ? await mergedWeights(hs.params) : hs.params;
    const dir = writeCheckpoint(runDir, state.step, (d) => {
      saveHostModel(d, { raw: host.raw, tensors: weights, namePrefix: host.namePrefix }, { dtype: cfg.save_dtype, fromDir: cfg.model });
      if (lora) savePeftAdapter(d, hs.params, lora, c, host.namePrefix, cfg.model);
      recordTraining(d, stepDir(runDir, state.step), cfg.model, { chatTemplate: data.template.jinja, template: data.template.name.replace(/ \(.*$/, ''), mask: cfg.mask, format: data.format, step: state.step });
      if (cfg.save_gguf) exportGguf(d, join(d, 'model.gguf'));
      saveTrainerFiles(d, state, hs.optimizer);
    });
    for (const cb of callbacks) await cb.onSave?.({ ...ctxBase(), metrics: {}, generator, checkpointDir: dir });
    pruneCheckpoints(runDir, cfg.keep_last, state.best?.step);
    emit({ type: 'checkpoint', step: state.step, dir });
    return dir;
  };

  // --- loop
  const step0 = state.step;
  const tokens0 = state.tokens;
  emit({ type: 'start', runDir, totalSteps, startStep: step0, resumed: !!resumeFrom, priorSeconds: seconds0, priorTokens: tokens0 });
  let lastCheckpoint: string | null = resumeFrom?.dir ?? null;
  let lastMetrics: Record<string, number> = {};
  let stoppedEarly: RunSummary['stopped_early'] = null;
  let stopRule: RunSummary['stop_rule'];
  let interrupted = false;
  let diverged: RunSummary['diverged'] = null;
  let latestIfs: { value: number; step: number } | undefined;
  for (const r of kept) if (typeof r.ifs === 'number') latestIfs = { value: r.ifs, step: r.step };
  if (resumeFrom?.state.done && existsSync(metricsFile)) {
    // finished, but killed before summary.json: the final metrics are the last record's (an evaluation)
    lastMetrics = finalMetricsOf(kept.at(-1));
    if (resumeFrom.state.stopped) stoppedEarly = { reason: resumeFrom.state.stopped.reason, step: resumeFrom.state.step };
  }
  let epochCache: { key: string; batches: Batch[] } | undefined;
  const batchesOf = (si: number, epoch: number) => {
    const key = `${si}:${epoch}`;
    if (epochCache?.key !== key) epochCache = { key, batches: microBatches(epochSequences(data.stages[si], cfg, si, epoch, data.padId), cfg.batch_size, data.padId, cfg.max_length) };
    return epochCache.batches;
  };

  outer: while (state.stage < stages.length) {
    const si = state.stage;
    while (state.stageStep < stageSteps[si]) {
      // this step's micro-batches: the trainer's cursor (stepSpan, shared with heed export torch)
      const span = stepSpan(state, (e) => batchesOf(si, e).length, cfg.grad_accum);
      const bs = batchesOf(si, span.epoch);
      const micro = bs.slice(span.micro, span.end);
      state = { ...state, epoch: span.epoch, micro: span.micro };
      const { weights, norm } = normalisedWeights(micro, cfg.loss_norm);
      const ts = performance.now();
      const lr = lrOf(si, state.stageStep);
      const r = await device.step({
        micro,
        weights,
        norm,
        // LoRA dropout: layer l of micro-batch i uses key keyBase + l
        dropoutKey: (i) => (cfg.seed * 1_000_003 + state.step * 4099 + i * 257) >>> 0,
        lr,
        t: state.step + 1,
      });
      if (!r.ok) {
        // divergence guard: nothing of this step is applied or saved; the last good checkpoint is the result
        diverged = { step: state.step + 1, loss: r.loss, grad_norm: r.gradNorm };
        break outer;
      }
      const { loss, gradNorm: gnorm } = r;
      const ntok = micro.reduce((acc, b) => acc + tokensOf(b), 0);
      state = { ...state, step: state.step + 1, stageStep: state.stageStep + 1, micro: state.micro + micro.length, tokens: state.tokens + ntok };
      const secs = (performance.now() - ts) / 1000;
      const epochFloat = state.epoch + state.micro / Math.max(1, bs.length);
      const rec: MetricsRecord = { step: state.step, stage: si, stage_name: stages[si].name, epoch: +epochFloat.toFixed(4), lr, loss, grad_norm: gnorm, tokens: state.tokens, tokens_per_s: ntok / secs };
      lastMetrics = { loss, lr };
      const stageEnd = state.stageStep >= stageSteps[si];
      let stop: StopRequest | undefined;
      let newBest = false;
      if (evalDue(cfg, state.step, stageEnd)) {
        const ev = await evaluatePoint({ device, batches: heldOut, callbacks, ctx: { ...ctxBase(), epoch: epochFloat }, generator, loss, emit });
        if (ev.evalLoss !== undefined) rec.eval_loss = ev.evalLoss;
        Object.assign(rec, ev.extra);
        if (typeof ev.metrics.ifs === 'number') latestIfs = { value: ev.metrics.ifs, step: state.step };
        lastMetrics = ev.metrics;
        stop = ev.stop;
        if (stop) {
          stoppedEarly = { reason: stop.reason, step: state.step };
          stopRule = { callback: stop.callback, ...(stop.rule ? { rule: stop.rule } : {}) };
        }
        const best = improvedBest(cfg, state.best, ev.metrics, state.step);
        if (best) {
          state = { ...state, best };
          newBest = true;
        }
      }
      appendMetrics(metricsFile, rec);
      loggers.write(rec);
      emit({
        type: 'step',
        step: state.step,
        totalSteps,
        stage: si,
        stageName: stages[si].name,
        loss,
        lr,
        gradNorm: gnorm,
        tokens: state.tokens,
        tokensPerS: ntok / secs,
        ...(rec.eval_loss !== undefined ? { evalLoss: rec.eval_loss as number } : {}),
        ...(latestIfs ? { ifs: latestIfs } : {}),
        sessionSteps: state.step - step0,
        sessionSeconds: sessionSeconds(),
        stageEnd,
      });
      const interruptNow = !!opts.interrupt?.stop;
      const last = stageEnd && si === stages.length - 1;
      if (last || stop) state = { ...state, done: true, stopped: stoppedEarly ? { reason: stoppedEarly.reason } : null };
      if (stageEnd && !last && !stop) state = { ...state, stage: si + 1, stageStep: 0, epoch: 0, micro: 0 };
      if (saveDue(cfg, state.step, { stageEnd, stop: !!stop, interrupt: interruptNow, newBest })) {
        const saved = await saveCheckpoint();
        if (saved === null) {
          diverged = { step: state.step, loss, grad_norm: gnorm };
          break outer;
        }
        lastCheckpoint = saved;
      }
      if (stop) break outer;
      if (interruptNow) {
        interrupted = true;
        break outer;
      }
      if (last) break outer;
      if (stageEnd) continue outer;
    }
    if (state.done) break; // resumed from a finished stage boundary
  }
  emit({ type: 'end', step: state.step, interrupted, stoppedEarly: !!stoppedEarly });
  // totals: the seconds of every session's steps up to the last checkpoint, plus this session's after it
  const sess = sessionSeconds();
  const totalSeconds = seconds0 + sess;
  const summary: RunSummary = {
    run_dir: runDir,
    steps: state.step,
    tokens: state.tokens,
    seconds: totalSeconds,
    tokens_per_s: totalSeconds > 0 ? state.tokens / totalSeconds : 0,
    session: { from_step: step0, steps: state.step - step0, tokens: state.tokens - tokens0, seconds: sess, tokens_per_s: sess > 0 ? (state.tokens - tokens0) / sess : 0 },
    final: lastMetrics,
    best: state.best,
    last_checkpoint: lastCheckpoint,
    stopped_early: stoppedEarly,
    ...(stopRule ? { stop_rule: stopRule } : {}),
    interrupted,
    stages: stages.map((s, i) => ({ name: s.name, steps: stageSteps[i] })),
    data: data.drops,
    diverged,
    ...(run.extended ? { extended: run.extended } : {}),
    ...(ifs ? { ifs_overlap: ifs.overlap } : {}),
    callbacks: {},
  };
  for (const cb of callbacks) {
    const extra = await cb.onEnd?.({ ...ctxBase(), metrics: {} });
    if (extra) summary.callbacks[cb.name] = extra;
  }
  if (!interrupted && !diverged && lastCheckpoint && existsSync(lastCheckpoint)) {
    // written before summary.json: a run with a summary has its exports (a kill in between re-exports on --resume)
    summary.exports = { final: exportCheckpoint(lastCheckpoint, join(runDir, 'final'), cfg.model) };
    const bestDir = state.best ? join(runDir, state.best.checkpoint) : undefined;
    if (bestDir && existsSync(bestDir)) summary.exports.best = exportCheckpoint(bestDir, join(runDir, 'best'), cfg.model);
  }
  // summary.json keeps each callback's end fields at its top level, under the callback's name (the report reads them there)
  const { callbacks: byName, ...rest } = summary;
  writeFileSync(join(runDir, 'summary.json'), JSON.stringify({ ...rest, ...byName }, (_, x) => (typeof x === 'number' && !Number.isFinite(x) ? String(x) : x), 2) + '\n');
  generator.dispose();
  device.dispose();
  if (diverged) {
    const d = diverged;
    throw new HeedError(
      `training diverged at step ${d.step}: loss ${d.loss}, gradient norm ${d.grad_norm}; nothing of that step was applied or saved, the result is ${lastCheckpoint ? `the last good checkpoint ${lastCheckpoint}` : 'none (no checkpoint was saved before it)'} (summary in ${join(runDir, 'summary.json')})`,
      `lower lr (now ${cfg.lr}) or set grad_clip, and start a new run (heed train <config> --set lr=... --set name=...)`,
    );
  }
  return summary;
}
