/**
 * The training loop: stages → epochs → optimizer steps (grad_accum micro-batches) through the engine.
 *
 * One step: for each micro-batch the layer-by-layer gradients (segmented.ts) of Σ w·nll / N (N = the loss-bearing weight of the
 * whole optimizer step, or the number of rows with loss_norm: sequence) — so accumulated gradients sum to the
 * gradient of the step's loss —, then the global gradient norm, clipping, and AdamW applied one tensor at a
 * time (a small jitted update per tensor: the transient copy is one tensor, not the whole state).
 * Held-out loss uses the `output` mask on the eval rows, whatever the training mask.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { blockUntilReady, fromHost, jit, np, toHost, tree, type Tensor } from '../engine/index.js';
import { HeedError } from '../errors.js';
import { exportGguf } from '../export/gguf.js';
import { EngineGenerator } from '../decode/generate.js';
import { loadTokenizer } from '../io/tokenizer.js';
import type { HostTensor } from '../io/safetensors.js';
import type { Batch } from '../data/pack.js';
import { loadHostModel, saveHostModel, toDevice, toHostTensors } from '../models/load.js';
import { readModelConfig, type ModelConfig } from '../models/config.js';
import { runsLayerByLayer, splitLayerName, type Params } from '../models/transformer.js';
import type { TrainBatch } from './loss.js';
import { makeFused, makeSegmented } from './segmented.js';
import { decays } from './adamw.js';
import { invFreqFor, toDeviceBatch } from './step.js';
import { resolveStages, validateTrainConfig, type TrainConfig } from './config.js';
import { epochSequences, loadRunData, microBatches, normalisedWeights } from './data.js';
import { lrAt, type Schedule } from './schedule.js';
import { initLora, loraModules, mergeLora, savePeftAdapter } from './lora.js';
import { listCheckpoints, loadVerifiedCheckpoint, pruneCheckpoints, saveTrainerFiles, setAside, stepDir, writeCheckpoint, type TrainerState } from './checkpoint.js';
import { exportCheckpoint, recordTraining } from './export.js';
import type { TrainerCallback, CallbackContext } from './callbacks.js';
import { Progress } from '../cli/progress.js';

export interface TrainOptions {
  quiet?: boolean;
  callbacks?: TrainerCallback[];
  /** set `.stop = true` (e.g. from a SIGINT handler) to save a checkpoint and stop after the current step */
  interrupt?: { stop: boolean };
  log?: (line: string) => void;
}

export interface RunSummary {
  run_dir: string;
  steps: number;
  tokens: number;
  seconds: number;
  final: Record<string, number>;
  best: TrainerState['best'];
  last_checkpoint: string | null;
  /** model folders for use (no optimizer state): runs/<name>/final and, when a best checkpoint exists, runs/<name>/best */
  exports?: { final?: string; best?: string };
  /** IFS early stopping: prompts whose source instruction occurs in the training data (src/eval/overlap.ts) */
  ifs_overlap?: Record<string, unknown>;
  stopped_early: { reason: string; step: number } | null;
  interrupted: boolean;
  [k: string]: unknown;
}

type DeviceBatch = TrainBatch;

/** A data batch on the device with loss weights `weights` (host alignment: weight of token t as a target). */
const deviceBatch = (b: Batch, weights: Float32Array): DeviceBatch => toDeviceBatch({ B: b.B, T: b.T, ids: b.ids, weights, positions: b.positions, segments: b.segments });

/** True when summary.json is the final summary of a run that finished at `step` (not one of an interrupted session). */
function finishedSummary(file: string, step: number): boolean {
  if (!existsSync(file)) return false;
  try {
    const s = JSON.parse(readFileSync(file, 'utf8'));
    return s.steps === step && !s.interrupted && !s.diverged;
  } catch {
    return false;
  }
}

/** metrics.jsonl records; a torn last line (kill -9 mid-write) is skipped */
function readMetrics(file: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const l of readFileSync(file, 'utf8').split('\n')) {
    if (!l) continue;
    try {
      out.push(JSON.parse(l));
    } catch {
      /* torn line */
    }
  }
  return out;
}

const tokensOf = (b: Batch) => b.segments.reduce((a, s) => a + (s >= 0 ? 1 : 0), 0);

/**
 * Builds the compiled pieces of a run: the loss and its gradients layer by layer (segmented.ts: memory for one
 * block's intermediates instead of the whole model's), the gradient norm, accumulation and per-tensor AdamW.
 */
function compile(c: ModelConfig, layered: boolean, trainable: Set<string>, loraScale: number | undefined, loraDropout: number, loraModuleNames: string[]) {
  const o = { trainable, loraScale, loraDropout, loraModules: [...new Set(loraModuleNames.map((n) => splitLayerName(n)!.sub))] };
  const seg = layered ? makeSegmented(c, o) : makeFused(c, o);
  const sqSum = jit((g: Record<string, Tensor>) => {
    let s: Tensor | undefined;
    for (const v of Object.values(g)) s = s ? s.add(np.square(v).sum()) : np.square(v).sum();
    return s!;
  });
  const addTrees = jit((a: Record<string, Tensor>, b: Record<string, Tensor>) => {
    const o: Record<string, Tensor> = {};
    for (const k of Object.keys(a)) o[k] = a[k].add(b[k]);
    return o;
  });
  const mkUpdate = (decay: boolean) =>
    jit((p: Tensor, m: Tensor, v: Tensor, g: Tensor, s: Tensor) => {
      // s = [stepSize, c2, 1 - lr·wd, clipScale, beta1, beta2, eps]
      const sc = (i: number) => s.ref.slice(i);
      const gc = g.mul(sc(3));
      const m2 = m.mul(sc(4)).add(gc.ref.mul(np.subtract(1, sc(4))));
      const v2 = v.mul(sc(5)).add(np.square(gc).mul(np.subtract(1, sc(5))));
      const denom = np.sqrt(v2.ref).mul(sc(1)).add(sc(6));
      const p0 = decay ? p.mul(sc(2)) : p;
      const p2 = p0.sub(m2.ref.div(denom).mul(sc(0)));
      s.dispose();
      return [p2, m2, v2];
    });
  const updDecay = mkUpdate(true);
  const updPlain = mkUpdate(false);
  /** free the compiled programs and their constants (a process may run several trainings) */
  const dispose = () => {
    seg.dispose();
    [sqSum, addTrees, updDecay, updPlain].forEach((f) => f.dispose());
  };
  return { seg, sqSum, addTrees, updDecay, updPlain, dispose };
}

export async function train(cfgIn: TrainConfig | { resume: string }, opts: TrainOptions = {}): Promise<RunSummary> {
  const log = opts.log ?? ((s: string) => (opts.quiet ? undefined : console.error(s)));
  // --- run folder and config
  let cfg: TrainConfig;
  let runDir: string;
  let resumeFrom: { dir: string; state: TrainerState; opt: Map<string, HostTensor> } | undefined;
  if ('resume' in cfgIn) {
    runDir = cfgIn.resume;
    const file = join(runDir, 'config.yaml');
    if (!existsSync(file)) throw new HeedError(`${runDir}: not a heed run folder (no config.yaml)`, 'pass the folder a `heed train` run created, e.g. runs/<name>');
    const saved = YAML.parse(readFileSync(file, 'utf8'));
    // best_metric was checked when the run was created (perhaps against its callbacks' metrics)
    cfg = validateTrainConfig(saved, file, runDir, { metrics: typeof saved?.best_metric === 'string' ? [saved.best_metric] : [] });
    const metricsPath = join(runDir, 'metrics.jsonl');
    const recs = existsSync(metricsPath) ? readMetrics(metricsPath) : undefined;
    const cks = listCheckpoints(runDir);
    // newest intact checkpoint first; a damaged one is moved aside (kept) and the fallback said out loud
    for (const ck of [...cks].reverse()) {
      const r = loadVerifiedCheckpoint(ck.dir, ck.step, recs);
      if ('damaged' in r) {
        const aside = setAside(ck.dir);
        log(`warning: checkpoint ${ck.dir} is damaged (${r.damaged}); moved to ${aside}, trying an earlier one`);
        continue;
      }
      if (r.unverified) log(`warning: ${ck.dir} has no ${'manifest.json'} (written by an older heed): its files cannot be verified`);
      resumeFrom = { dir: ck.dir, state: r.state, opt: r.opt };
      if (ck !== cks[cks.length - 1]) log(`warning: resuming from ${ck.dir}, the newest intact checkpoint (step ${ck.step})`);
      break;
    }
    if (cks.length && !resumeFrom) throw new HeedError(`${runDir}: every checkpoint is damaged (moved to damaged-step-*)`, `start the run again (heed train <config> --set name=...), or restore a copy of ${runDir}`);
    if (resumeFrom) {
      if (resumeFrom.state.done && finishedSummary(join(runDir, 'summary.json'), resumeFrom.state.step)) throw new HeedError(`${runDir}: the run already finished at step ${resumeFrom.state.step}`, 'start a new run (another name) to train further');
      log(resumeFrom.state.done ? `${runDir}: finished at step ${resumeFrom.state.step} but killed before summary.json was written; writing it` : `resuming ${runDir} from ${resumeFrom.dir} (step ${resumeFrom.state.step})`);
    } else log(`resuming ${runDir}: no complete checkpoint yet, starting from step 0`);
  } else {
    cfg = cfgIn;
    runDir = join(cfg.out, cfg.name!);
    if (listCheckpoints(runDir).length || existsSync(join(runDir, 'metrics.jsonl'))) {
      throw new HeedError(`${runDir} already holds a run`, `resume it with \`heed train --resume ${runDir}\`, or pick another name (--set name=...)`);
    }
    mkdirSync(runDir, { recursive: true });
    writeFileSync(join(runDir, 'config.yaml'), YAML.stringify(cfg));
  }
  const stages = resolveStages(cfg);

  // --- the model's context bounds max_length: checked from config.json before weights or data are loaded
  const ctx = readModelConfig(cfg.model).config.maxPositions;
  if (cfg.max_length > ctx) {
    throw new HeedError(
      `max_length ${cfg.max_length} is longer than the model's context: ${cfg.model}/config.json allows ${ctx} positions`,
      `set max_length to at most ${ctx} (--set max_length=${ctx})${cfg.truncation === 'drop' ? '' : '; longer rows are truncated'}`,
    );
  }

  // --- model, tokenizer, data
  const host = loadHostModel(cfg.model);
  const c = host.config;
  const tok = loadTokenizer(cfg.model);
  const data = await loadRunData(cfg, stages, tok, log);
  log(`eval rows: ${data.evalRows.length}`);

  // --- trainable / frozen params
  const lora = cfg.lora;
  const mods = lora ? loraModules(c, lora.targets, (n) => host.tensors.get(n)!.shape) : [];
  const loraScale = lora ? lora.alpha / lora.r : undefined;
  let frozen: Params = {};
  let trainable: Params;
  let m: Record<string, Tensor>;
  let v: Record<string, Tensor>;
  if (resumeFrom) {
    const opt = resumeFrom.opt;
    // one canonical tensor order everywhere (the fresh run's): the global gradient norm is summed in this
    // order, so resuming with the file's sorted order would change the clipping scale in its last bits
    const order = lora ? mods.flatMap((x) => [`${x.name}.lora_A`, `${x.name}.lora_B`]) : [...host.tensors.keys()];
    const want = new Set(order.flatMap((k) => [`param.${k}`, `m.${k}`, `v.${k}`]));
    const odd = [...opt.keys()].find((k) => !want.has(k)) ?? [...want].find((k) => !opt.has(k));
    if (odd !== undefined) throw new HeedError(`${resumeFrom.dir}/optimizer.safetensors: tensor "${odd}" does not match the run's trainable parameters`, 'the checkpoint comes from another model or LoRA config; start a new run');
    const pick = (prefix: string) => new Map(order.map((k) => [k, opt.get(prefix + k)!]));
    trainable = toDevice(pick('param.'));
    m = toDevice(pick('m.'));
    v = toDevice(pick('v.'));
    if (lora) frozen = toDevice(host.tensors);
  } else {
    if (lora) {
      frozen = toDevice(host.tensors);
      trainable = toDevice(initLora(mods, lora.r, cfg.seed));
    } else trainable = toDevice(host.tensors);
    m = {};
    v = {};
    for (const [k, t] of Object.entries(trainable)) {
      // real buffers now (np.zeros is lazy): allocated before the first step fragments the wasm heap
      m[k] = fromHost(new Float32Array(t.size), t.shape);
      v[k] = fromHost(new Float32Array(t.size), t.shape);
    }
  }
  const nTrain = Object.values(trainable).reduce((a, t) => a + t.size, 0);
  log(`model ${cfg.model}: ${c.modelType}, ${lora ? `LoRA r=${lora.r} on ${mods.length} modules, ${nTrain.toLocaleString('en-US')} trainable parameters` : `full fine-tuning, ${nTrain.toLocaleString('en-US')} parameters`}`);
  // checkpointing auto: layer by layer (memory of one block) for larger models, else one fused program (no
  // recomputation: ~1.35x faster on the 2.2M demo model, and small models fit either way)
  const layered = cfg.checkpointing === 'layers' || (cfg.checkpointing === 'auto' && runsLayerByLayer(c, { ...frozen, ...trainable }));
  const fns = compile(c, layered, new Set(Object.keys(trainable)), loraScale, lora?.dropout ?? 0, mods.map((x) => x.name));

  // --- plan: steps per stage (epochs × steps in the stage's first epoch, or steps)
  const stageSteps = stages.map((st, si) => {
    if (st.steps !== undefined) return st.steps;
    const nSeq = epochSequences(data.stages[si], cfg, si, 0, data.padId).length;
    const perEpoch = Math.ceil(Math.ceil(nSeq / cfg.batch_size) / cfg.grad_accum);
    return Math.max(1, Math.round(st.epochs! * perEpoch));
  });
  const totalSteps = stageSteps.reduce((a, b) => a + b, 0);
  const schedFor = (si: number): Schedule => {
    const st = stages[si];
    return cfg.lr_reset_per_stage ? { kind: st.schedule, lr: st.lr, warmupSteps: st.warmupSteps, totalSteps: stageSteps[si], minLrRatio: cfg.min_lr_ratio } : { kind: cfg.schedule, lr: cfg.lr, warmupSteps: cfg.warmup_steps, totalSteps, minLrRatio: cfg.min_lr_ratio };
  };
  log(`gradients: ${layered ? 'layer by layer (checkpointing: layers)' : 'one fused program (checkpointing: off)'}`);
  log(`plan: ${stages.map((s, i) => `${s.name} ${stageSteps[i]} steps`).join(', ')}; batch ${cfg.batch_size}×${cfg.grad_accum} (max length ${cfg.max_length}${cfg.packing ? ', packed' : ''})`);

  // --- state
  let state: TrainerState = resumeFrom?.state ?? { version: 1, step: 0, stage: 0, epoch: 0, micro: 0, stageStep: 0, tokens: 0, best: null, stopped: null, done: false };
  const metricsFile = join(runDir, 'metrics.jsonl');
  // the records kept from an earlier session (read once: the callbacks' resume and a late summary use them)
  const kept: Array<Record<string, unknown>> = [];
  if (existsSync(metricsFile)) {
    // drop records past the checkpoint we resume from (and a torn last line after a kill -9)
    const keep: string[] = [];
    for (const l of readFileSync(metricsFile, 'utf8').split('\n')) {
      let rec: Record<string, unknown>;
      try {
        rec = l ? JSON.parse(l) : undefined;
      } catch {
        continue;
      }
      if (rec && (rec.step as number) <= state.step) {
        keep.push(l);
        kept.push(rec);
      }
    }
    writeFileSync(metricsFile, keep.map((l) => l + '\n').join(''));
  }
  const writeMetrics = (rec: Record<string, unknown>) => appendFileSync(metricsFile, JSON.stringify(rec) + '\n');
  const callbacks = [...(opts.callbacks ?? [])];
  let ifsOverlap: Record<string, unknown> | undefined;
  if (cfg.early_stopping?.ifs) {
    const e = cfg.early_stopping.ifs;
    if (e.engine === 'llama.cpp' && cfg.lora) throw new HeedError('early_stopping.ifs.engine: llama.cpp does not export LoRA weights yet', 'use engine: engine with lora, or full fine-tuning');
    const { IfsEarlyStopping } = await import('../eval/early-stop.js');
    const { loadPromptSet } = await import('../eval/ifs/prompts.js');
    const ov = await import('../eval/overlap.js');
    const all = loadPromptSet(e.prompts).prompts;
    const texts = await ov.trainingPromptTexts(stages.flatMap((s) => s.data.map((d) => d.path)), { format: cfg.format, fields: cfg.fields, roles: cfg.roles });
    const report = ov.findOverlap(all, texts);
    const prompts = e.exclude_overlap ? ov.withoutOverlap(all, report) : all;
    ifsOverlap = { ...report, excluded: e.exclude_overlap ? report.overlapping_prompts : 0, used_from: prompts.length, matches: report.matches.slice(0, 50) };
    if (report.overlapping_prompts) log(`IFS prompts: ${ov.describeOverlap(report)}; ${e.exclude_overlap ? `excluded, ${prompts.length} left (early_stopping.ifs.exclude_overlap: false keeps them)` : 'kept (exclude_overlap: false): IFS partly measures memorisation'}`);
    if (prompts.length === 0) throw new HeedError(`every IFS prompt overlaps the training data (${ov.describeOverlap(report)})`, 'pass prompts from another source (early_stopping.ifs.prompts: FILE, made with heed ifs build), or set early_stopping.ifs.exclude_overlap: false');
    callbacks.push(new IfsEarlyStopping({ patience: e.patience, minDelta: e.min_delta, minIfs: e.min_ifs, budget: e.budget, variant: e.variant, maxTokens: e.max_tokens, batchSize: e.batch_size, prompts, objecqa: e.objecqa, measureOnly: e.measure_only, engine: e.engine }));
  }
  if (resumeFrom && existsSync(metricsFile)) for (const cb of callbacks) cb.onResume?.(kept);

  const invFreq = () => invFreqFor(c);
  const holder = { config: c, tokenizer: tok, params: {} as Params, loraScale, dir: cfg.model };
  const generator = new EngineGenerator(holder);
  const evalLoss = async (): Promise<number | undefined> => {
    if (data.evalRows.length === 0) return undefined;
    const p = { ...frozen, ...trainable };
    let sum = 0;
    let wsum = 0;
    const seqs = data.evalRows.map((e) => ({ ids: e.ids, weights: e.weights, positions: Int32Array.from(e.ids, (_, i) => i), segments: new Int32Array(e.ids.length), rows: [e.id], length: e.ids.length }));
    for (const b of microBatches(seqs, cfg.batch_size, data.padId, cfg.max_length)) {
      sum += (await toHost(await fns.seg.lossSum(p, deviceBatch(b, b.weights), invFreq())))[0];
      wsum += b.lossWeight;
    }
    return sum / wsum;
  };

  const saveCheckpoint = async (): Promise<string | null> => {
    const tr = await toHostTensors(trainable);
    // never save non-finite parameters (the update of a finite gradient can still overflow)
    for (const t of tr.values()) for (let i = 0; i < t.data.length; i++) if (!Number.isFinite(t.data[i])) return null;
    const mm = await toHostTensors(m);
    const vv = await toHostTensors(v);
    const opt = new Map<string, HostTensor>();
    for (const [k, t] of tr) opt.set(`param.${k}`, t);
    for (const [k, t] of mm) opt.set(`m.${k}`, t);
    for (const [k, t] of vv) opt.set(`v.${k}`, t);
    const weights = lora ? mergeLora(host.tensors, tr, mods, loraScale!) : tr;
    const dir = writeCheckpoint(runDir, state.step, (d) => {
      saveHostModel(d, { raw: host.raw, tensors: weights, namePrefix: host.namePrefix }, { dtype: cfg.save_dtype, fromDir: cfg.model });
      if (lora) savePeftAdapter(d, tr, lora, c, host.namePrefix, cfg.model);
      recordTraining(d, stepDir(runDir, state.step), cfg.model, { chatTemplate: data.template.jinja, template: data.template.name.replace(/ \(.*$/, ''), mask: cfg.mask, format: data.format, step: state.step });
      if (cfg.save_gguf) exportGguf(d, join(d, 'model.gguf'));
      saveTrainerFiles(d, state, opt);
    });
    for (const cb of callbacks) await cb.onSave?.({ ...ctxBase(), generator, checkpointDir: dir });
    pruneCheckpoints(runDir, cfg.keep_last, state.best?.step);
    return dir;
  };
  const ctxBase = (): Omit<CallbackContext, 'generator'> => ({ step: state.step, epoch: state.epoch, stage: state.stage, stageName: stages[state.stage]?.name ?? 'main', metrics: {}, runDir });

  // --- loop
  const t0 = performance.now();
  const tokens0 = state.tokens;
  const progress = new Progress('train', totalSteps, opts.quiet);
  let lastCheckpoint: string | null = resumeFrom?.dir ?? null;
  let lastMetrics: Record<string, number> = {};
  let stoppedEarly: RunSummary['stopped_early'] = null;
  let interrupted = false;
  let diverged: { step: number; loss: number; grad_norm: number } | null = null;
  if (resumeFrom?.state.done && existsSync(metricsFile)) {
    // finished, but killed before summary.json: the final metrics are the last record's (an evaluation)
    const lastRec = kept.at(-1) ?? {};
    const skip = new Set(['step', 'stage', 'stage_name', 'epoch', 'lr', 'grad_norm', 'tokens', 'tokens_per_s']);
    lastMetrics = Object.fromEntries(Object.entries(lastRec).filter(([k, v]) => !skip.has(k) && typeof v === 'number')) as Record<string, number>;
    if (resumeFrom.state.stopped) stoppedEarly = { reason: resumeFrom.state.stopped.reason, step: resumeFrom.state.step };
  }
  let epochCache: { key: string; batches: Batch[] } | undefined;
  const batchesOf = (si: number, epoch: number) => {
    const key = `${si}:${epoch}`;
    if (epochCache?.key !== key) epochCache = { key, batches: microBatches(epochSequences(data.stages[si], cfg, si, epoch, data.padId), cfg.batch_size, data.padId, cfg.max_length) };
    return epochCache.batches;
  };
  const stepsBefore = (si: number) => stageSteps.slice(0, si).reduce((a, b) => a + b, 0);

  outer: while (state.stage < stages.length) {
    const si = state.stage;
    while (state.stageStep < stageSteps[si]) {
      // gather this step's micro-batches
      let bs = batchesOf(si, state.epoch);
      if (state.micro >= bs.length) {
        state.epoch++;
        state.micro = 0;
        bs = batchesOf(si, state.epoch);
      }
      const micro = bs.slice(state.micro, state.micro + cfg.grad_accum);
      const { weights, norm } = normalisedWeights(micro, cfg.loss_norm);
      const ts = performance.now();
      let loss = 0;
      let grads: Record<string, Tensor> | undefined;
      for (const [i, b] of micro.entries()) {
        // LoRA dropout: layer l of this micro-batch uses key keyBase + l
        const keyBase = (cfg.seed * 1_000_003 + state.step * 4099 + i * 257) >>> 0;
        const { loss: l, grads: g } = await fns.seg.grad({ ...frozen, ...trainable }, deviceBatch(b, weights[i]), invFreq(), np.array(norm), keyBase);
        loss += (await toHost(l))[0];
        grads = grads ? (fns.addTrees(grads, g) as Record<string, Tensor>) : g;
      }
      const gnorm = Math.sqrt((await toHost(fns.sqSum(tree.ref(grads!)) as Tensor))[0]);
      if (!Number.isFinite(loss) || !Number.isFinite(gnorm)) {
        // divergence guard: nothing of this step is applied or saved; the last good checkpoint is the result
        tree.dispose(grads!);
        diverged = { step: state.step + 1, loss, grad_norm: gnorm };
        break outer;
      }
      const clip = cfg.grad_clip > 0 && gnorm > cfg.grad_clip ? cfg.grad_clip / (gnorm + 1e-6) : 1;
      const t = state.stageStep + 1;
      const lr = lrAt(schedFor(si), cfg.lr_reset_per_stage ? t : stepsBefore(si) + t);
      const gt = state.step + 1; // AdamW bias correction counts all steps (moments carry across stages)
      const a = cfg.adamw;
      const scal = Float32Array.of(lr / (1 - a.beta1 ** gt), 1 / Math.sqrt(1 - a.beta2 ** gt), 1 - lr * a.weight_decay, clip, a.beta1, a.beta2, a.eps);
      const np_: Params = {}, nm: Record<string, Tensor> = {}, nv: Record<string, Tensor> = {};
      let queued = 0;
      for (const k of Object.keys(trainable)) {
        const upd = decays(k, trainable[k].shape) && !k.includes('lora_') ? fns.updDecay : fns.updPlain;
        const [p2, m2, v2] = upd(trainable[k], m[k], v[k], grads![k], fromHost(scal, [scal.length])) as Tensor[];
        np_[k] = p2;
        nm[k] = m2;
        nv[k] = v2;
        // jax-js frees the old p, m, v and g only when the queued update has run: flush every ~64 MB of
        // parameters so the old and new optimizer state never coexist in full (full FT of 135M would not fit)
        queued += p2.size;
        if (queued >= 16 * 2 ** 20) {
          await p2.blockUntilReady();
          queued = 0;
        }
      }
      trainable = np_;
      m = nm;
      v = nv;
      await blockUntilReady([trainable, m, v]); // the step's time includes its own update
      const ntok = micro.reduce((acc, b) => acc + tokensOf(b), 0);
      state = { ...state, step: state.step + 1, stageStep: state.stageStep + 1, micro: state.micro + micro.length, tokens: state.tokens + ntok };
      const secs = (performance.now() - ts) / 1000;
      const epochFloat = state.epoch + state.micro / Math.max(1, bs.length);
      const rec: Record<string, number | string> = { step: state.step, stage: si, stage_name: stages[si].name, epoch: +epochFloat.toFixed(4), lr, loss, grad_norm: gnorm, tokens: state.tokens, tokens_per_s: ntok / secs };
      lastMetrics = { loss, lr };
      const stageEnd = state.stageStep >= stageSteps[si];
      let stopNow = false;
      let newBest = false;
      if (state.step % cfg.eval_every === 0 || stageEnd) {
        const el = await evalLoss();
        if (el !== undefined) rec.eval_loss = el;
        holder.params = { ...frozen, ...trainable };
        const metrics: Record<string, number> = { loss, ...(el !== undefined ? { eval_loss: el } : {}) };
        for (const cb of callbacks) {
          const r = await cb.onEval?.({ ...ctxBase(), epoch: epochFloat, metrics, generator });
          if (r?.metrics) Object.assign(metrics, r.metrics), Object.assign(rec, r.metrics);
          if (r?.stop) {
            stopNow = true;
            stoppedEarly = { reason: r.reason ?? `${cb.name} requested a stop`, step: state.step };
          }
        }
        lastMetrics = metrics;
        const mv = metrics[cfg.best_metric];
        if (mv !== undefined && (!state.best || (cfg.best_mode === 'min' ? mv < state.best.value : mv > state.best.value))) {
          state = { ...state, best: { metric: cfg.best_metric, value: mv, step: state.step, checkpoint: `step-${state.step}` } };
          newBest = true;
        }
      }
      writeMetrics(rec);
      progress.update(state.step, { loss, ...(rec.eval_loss !== undefined ? { eval: rec.eval_loss as number } : {}), 'tok/s': rec.tokens_per_s as number }, stageEnd);
      const interruptNow = !!opts.interrupt?.stop;
      const last = stageEnd && si === stages.length - 1;
      if (last || stopNow) state = { ...state, done: true, stopped: stoppedEarly ? { reason: stoppedEarly.reason } : null };
      if (stageEnd && !last && !stopNow) state = { ...state, stage: si + 1, stageStep: 0, epoch: 0, micro: 0 };
      if (state.step % cfg.save_every === 0 || stageEnd || stopNow || interruptNow || newBest) {
        const saved = await saveCheckpoint();
        if (saved === null) {
          diverged = { step: state.step, loss, grad_norm: gnorm };
          break outer;
        }
        lastCheckpoint = saved;
      }
      if (stopNow) break outer;
      if (interruptNow) {
        interrupted = true;
        break outer;
      }
      if (last) break outer;
      if (stageEnd) continue outer;
    }
    if (state.done) break; // resumed from a finished stage boundary
  }
  progress.done();
  const summary: RunSummary = {
    run_dir: runDir,
    steps: state.step,
    tokens: state.tokens,
    seconds: (performance.now() - t0) / 1000,
    tokens_per_s: (state.tokens - tokens0) / ((performance.now() - t0) / 1000),
    final: lastMetrics,
    best: state.best,
    last_checkpoint: lastCheckpoint,
    stopped_early: stoppedEarly,
    interrupted,
    stages: stages.map((s, i) => ({ name: s.name, steps: stageSteps[i] })),
    data: data.drops,
    diverged,
    ...(ifsOverlap ? { ifs_overlap: ifsOverlap } : {}),
  };
  for (const cb of callbacks) {
    const extra = await cb.onEnd?.(ctxBase());
    if (extra) Object.assign(summary, { [cb.name]: extra });
  }
  if (!interrupted && !diverged && lastCheckpoint && existsSync(lastCheckpoint)) {
    // written before summary.json: a run with a summary has its exports (a kill in between re-exports on --resume)
    summary.exports = { final: exportCheckpoint(lastCheckpoint, join(runDir, 'final'), cfg.model) };
    const bestDir = state.best ? join(runDir, state.best.checkpoint) : undefined;
    if (bestDir && existsSync(bestDir)) summary.exports.best = exportCheckpoint(bestDir, join(runDir, 'best'), cfg.model);
  }
  writeFileSync(join(runDir, 'summary.json'), JSON.stringify(summary, (_, x) => (typeof x === 'number' && !Number.isFinite(x) ? String(x) : x), 2) + '\n');
  fns.dispose();
  generator.dispose();
  tree.dispose(trainable);
  tree.dispose(m);
  tree.dispose(v);
  tree.dispose(frozen);
  if (diverged) {
    const d = diverged;
    throw new HeedError(
      `training diverged at step ${d.step}: loss ${d.loss}, gradient norm ${d.grad_norm}; nothing of that step was applied or saved, the result is ${lastCheckpoint ? `the last good checkpoint ${lastCheckpoint}` : 'none (no checkpoint was saved before it)'} (summary in ${join(runDir, 'summary.json')})`,
      `lower lr (now ${cfg.lr}) or set grad_clip, and start a new run (heed train <config> --set lr=... --set name=...)`,
    );
  }
  return summary;
}
