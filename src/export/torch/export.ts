/**
 * `heed export torch`: a heed training config → a self-contained PyTorch job folder (docs/scale-out.md).
 *
 * The data is prepared by heed's own code (src/train/data.ts: the same rows, held-out split, file weights,
 * seeded per-epoch order and packing as `heed train`) and written as NumPy arrays a plain PyTorch script reads:
 * per stage, shards of flat token ids + per-token loss weights (weights[t] = weight of token t as a target;
 * 0 at every row start, λ under weighted:λ) + row offsets; per epoch the row order and the sequence
 * boundaries (packed sequences = consecutive rows; positions restart at every row); and the step table — for
 * each optimizer step its epoch and sequence range, computed the way heed's trainer walks micro-batches
 * (batch_size × grad_accum, a shorter step at an epoch's end). train.py is heed's loop in PyTorch.
 *
 * Config features the export cannot carry are refused by name (EXPORT_REFUSES); none is dropped.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { HeedError } from '../../errors.js';
import { loadTokenizer } from '../../io/tokenizer.js';
import { readModelConfig, SUPPORTED_MODEL_TYPES } from '../../models/config.js';
import { resolveStages, type TrainConfig } from '../../train/config.js';
import { epochOrder, epochSequences, loadRunData, plannedStageSteps, stepSpan } from '../../train/data.js';
import type { Example } from '../../data/types.js';
import { repoPath } from '../../eval/jsonl.js';
import { writeNpy } from './npy.js';
import { acceleratePaper, launchSh, readmeMd } from './templates.js';

export const JOB_FORMAT = 1;
export const TEMPLATE_DIR = repoPath('src/export/torch');

export function heedVersion(): string {
  return JSON.parse(readFileSync(repoPath('package.json'), 'utf8')).version as string;
}

/** Config keys whose value the PyTorch job cannot reproduce, with why; a config using one is refused. */
export function unsupportedFeatures(c: TrainConfig): Array<{ key: string; why: string }> {
  const out: Array<{ key: string; why: string }> = [];
  if (c.lora) out.push({ key: 'lora', why: 'the PyTorch job trains all parameters (full fine-tuning); LoRA (with its seeded init and dropout) is not exported' });
  if (c.device === 'webgpu') out.push({ key: 'device', why: 'device: webgpu selects heed\'s engine backend; the PyTorch job picks CUDA or CPU itself (remove the key)' });
  return out;
}

export interface ExportOptions {
  out: string;
  /** overwrite a non-empty --out */
  force?: boolean;
  /** don't copy the model: the job names this path (as it will be on the cluster) instead */
  modelPath?: string;
  /** rows per data shard (a shard also stops at 2^26 tokens) */
  shardRows?: number;
  log?: (s: string) => void;
}

export interface ExportResult {
  jobDir: string;
  job: JobJson;
}

export interface JobStage {
  name: string;
  dir: string;
  steps: number;
  lr: number;
  schedule: string;
  warmup_steps: number;
  rows: number;
  tokens: number;
  loss_weight: number;
  epochs_exported: number;
  sft_jsonl: string;
}

export interface JobJson {
  format: 'heed-torch-job';
  format_version: number;
  heed_version: string;
  name: string;
  model: string;
  model_type: string;
  pad_id: number;
  template: string;
  mask: string;
  train: Record<string, unknown>;
  stages: JobStage[];
  total_steps: number;
  eval: { dir: string; rows: number } | null;
  early_stopping: TrainConfig['early_stopping'];
  /** what heed train's config said, for heed watch and heed report (paths relative to the job folder) */
  heed_config: Record<string, unknown>;
  files: Record<string, string>;
}

const MAX_SHARD_TOKENS = 2 ** 26;

/** Write rows as shards of flat arrays + index.json. Returns totals. */
function writeRows(dir: string, rows: Example[], shardRows: number): { tokens: number; lossWeight: number } {
  mkdirSync(dir, { recursive: true });
  const shards: Array<Record<string, unknown>> = [];
  let tokens = 0;
  let lossWeight = 0;
  let i = 0;
  while (i < rows.length || (rows.length === 0 && shards.length === 0)) {
    let j = i;
    let n = 0;
    while (j < rows.length && j - i < shardRows && (n === 0 || n + rows[j].ids.length <= MAX_SHARD_TOKENS)) n += rows[j++].ids.length;
    const k = shards.length;
    const ids = new Int32Array(n);
    const w = new Float32Array(n);
    const off = new BigInt64Array(j - i + 1);
    let o = 0;
    for (let r = i; r < j; r++) {
      const ex = rows[r];
      ids.set(ex.ids, o);
      w.set(ex.weights, o);
      w[o] = 0; // nothing predicts a row's first token (heed's single()/pack build())
      for (let t = o + 1; t < o + ex.ids.length; t++) lossWeight += w[t];
      o += ex.ids.length;
      off[r - i + 1] = BigInt(o);
    }
    const name = (s: string) => `rows-${String(k).padStart(5, '0')}.${s}.npy`;
    writeNpy(join(dir, name('ids')), ids);
    writeNpy(join(dir, name('weights')), w);
    writeNpy(join(dir, name('offsets')), off);
    shards.push({ ids: name('ids'), weights: name('weights'), offsets: name('offsets'), first_row: i, rows: j - i, tokens: n });
    tokens += n;
    i = j;
    if (rows.length === 0) break;
  }
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ rows: rows.length, tokens, loss_weight: lossWeight, shards }, null, 2) + '\n');
  return { tokens, lossWeight };
}

/** TRL / Axolotl pre-tokenized rows: input_ids, labels (−100 where the weight is 0), loss_weights when not 0/1. */
function sftJsonl(rows: Example[]): string {
  return rows
    .map((ex) => {
      const w = Array.from(ex.weights, (x, t) => (t === 0 ? 0 : x));
      const ids = Array.from(ex.ids);
      const binary = w.every((x) => x === 0 || x === 1);
      const rec: Record<string, unknown> = { id: ex.id, input_ids: ids, attention_mask: ids.map(() => 1), labels: ids.map((id, t) => (w[t] > 0 ? id : -100)) };
      if (!binary) rec.loss_weights = w;
      return JSON.stringify(rec);
    })
    .join('\n') + (rows.length ? '\n' : '');
}

export async function exportTorchJob(cfg: TrainConfig, o: ExportOptions): Promise<ExportResult> {
  const log = o.log ?? (() => undefined);
  const refused = unsupportedFeatures(cfg);
  if (refused.length) {
    throw new HeedError(`the PyTorch export cannot carry ${refused.map((r) => `"${r.key}"`).join(', ')}: ${refused.map((r) => r.why).join('; ')}`, `remove ${refused.map((r) => r.key).join(', ')} from the config (or train it with heed train)`);
  }
  const jobDir = resolve(o.out);
  if (existsSync(jobDir) && readdirSync(jobDir).length && !o.force) throw new HeedError(`${o.out} exists and is not empty`, 'pass an empty or new --out folder, or --force to overwrite the job files');
  const { raw } = readModelConfig(cfg.model);
  const modelType = String(raw.model_type);
  if (!(SUPPORTED_MODEL_TYPES as readonly string[]).includes(modelType)) throw new HeedError(`${cfg.model}: model_type ${modelType} is not supported`, `one of ${SUPPORTED_MODEL_TYPES.join(', ')}`);
  mkdirSync(jobDir, { recursive: true });

  const stages = resolveStages(cfg);
  const tok = loadTokenizer(cfg.model);
  const data = await loadRunData(cfg, stages, tok, log);
  const B = cfg.batch_size;
  const GA = cfg.grad_accum;
  const shardRows = o.shardRows ?? 100_000;
  const jobStages: JobStage[] = [];
  for (const [si, st] of stages.entries()) {
    const rows = data.stages[si];
    const dir = join('data', `stage-${si}`);
    const abs = join(jobDir, dir);
    const { tokens, lossWeight } = writeRows(abs, rows, shardRows);
    // steps in the stage: as heed's trainer plans them
    const steps = plannedStageSteps(st, st.steps === undefined ? epochSequences(rows, cfg, si, 0, data.padId).length : 0, B, GA);
    // walk the trainer's micro-batch cursor; write every epoch it touches
    const table = new BigInt64Array(steps * 5);
    const written = new Map<number, number>(); // epoch -> number of sequences
    const writeEpoch = (e: number): number => {
      if (written.has(e)) return written.get(e)!;
      const seqs = epochSequences(rows, cfg, si, e, data.padId);
      const order = epochOrder(rows.length, cfg.seed, si, e); // the order epochSequences used
      const offs = new BigInt64Array(seqs.length + 1);
      let k = 0;
      for (const [s, seq] of seqs.entries()) {
        for (const id of seq.rows) {
          if (rows[order[k]].id !== id) throw new HeedError(`export: stage ${st.name} epoch ${e}: row order differs from heed's (${rows[order[k]].id} vs ${id})`, 'this is a bug in heed export torch: report it');
          k++;
        }
        offs[s + 1] = BigInt(k);
      }
      if (k !== rows.length) throw new HeedError(`export: stage ${st.name} epoch ${e}: ${k} of ${rows.length} rows in sequences`, 'this is a bug in heed export torch: report it');
      writeNpy(join(abs, `epoch-${e}.order.npy`), Int32Array.from(order));
      writeNpy(join(abs, `epoch-${e}.seq_offsets.npy`), offs);
      written.set(e, seqs.length);
      return seqs.length;
    };
    // the trainer's own micro-batch cursor (stepSpan), over the epochs it touches
    let at = { epoch: 0, micro: 0 };
    for (let t = 0; t < steps; t++) {
      const sp = stepSpan(at, (e) => Math.ceil(writeEpoch(e) / B), GA);
      const nSeq = writeEpoch(sp.epoch);
      table.set([BigInt(sp.epoch), BigInt(sp.micro * B), BigInt(Math.min(sp.end * B, nSeq)), BigInt(sp.end), BigInt(sp.nMicro)], t * 5);
      at = { epoch: sp.epoch, micro: sp.end };
    }
    writeNpy(join(abs, 'steps.npy'), table, [steps, 5]);
    const sft = join('data', `sft-stage-${si}.jsonl`);
    writeFileSync(join(jobDir, sft), sftJsonl(rows));
    jobStages.push({ name: st.name, dir, steps, lr: st.lr, schedule: st.schedule, warmup_steps: st.warmupSteps, rows: rows.length, tokens, loss_weight: lossWeight, epochs_exported: written.size, sft_jsonl: sft });
    log(`stage ${st.name}: ${rows.length} rows, ${tokens} tokens, ${steps} steps over ${written.size} epoch(s) → ${dir}/`);
  }
  let evalSpec: JobJson['eval'] = null;
  if (data.evalRows.length) {
    writeRows(join(jobDir, 'data/eval'), data.evalRows, shardRows);
    evalSpec = { dir: 'data/eval', rows: data.evalRows.length };
    log(`held-out rows (output mask): ${data.evalRows.length} → data/eval/`);
  }

  // the model: copied (self-contained) or named as it will be on the cluster
  let model = 'model';
  if (o.modelPath) model = o.modelPath;
  else {
    mkdirSync(join(jobDir, 'model'), { recursive: true });
    for (const f of readdirSync(cfg.model)) if (/\.(json|safetensors|txt|model|jinja)$/.test(f)) copyFileSync(join(cfg.model, f), join(jobDir, 'model', f));
  }

  const version = heedVersion();
  const total = jobStages.reduce((a, s) => a + s.steps, 0);
  const job: JobJson = {
    format: 'heed-torch-job',
    format_version: JOB_FORMAT,
    heed_version: version,
    name: cfg.name!,
    model,
    model_type: modelType,
    pad_id: data.padId,
    template: cfg.template,
    mask: cfg.mask,
    train: {
      batch_size: B, grad_accum: GA, loss_norm: cfg.loss_norm, lr: cfg.lr, schedule: cfg.schedule, warmup_steps: cfg.warmup_steps, min_lr_ratio: cfg.min_lr_ratio,
      lr_reset_per_stage: cfg.lr_reset_per_stage, adamw: cfg.adamw, grad_clip: cfg.grad_clip, seed: cfg.seed, eval_every: cfg.eval_every, save_every: cfg.save_every,
      keep_last: cfg.keep_last, best_metric: cfg.best_metric, best_mode: cfg.best_mode, save_dtype: cfg.save_dtype, checkpointing: cfg.checkpointing, max_length: cfg.max_length, packing: cfg.packing,
    },
    stages: jobStages,
    total_steps: total,
    eval: evalSpec,
    early_stopping: cfg.early_stopping,
    heed_config: {
      ...cfg,
      model: o.modelPath ?? 'model',
      data: (cfg.data as Array<{ path: string; weight: number }> | undefined)?.map((d) => ({ path: basename(d.path), weight: d.weight })),
      stages: cfg.stages?.map((s) => ({ ...s, data: (s.data as Array<{ path: string; weight: number }>).map((d) => ({ path: basename(d.path), weight: d.weight })) })),
      eval: cfg.eval && 'file' in cfg.eval ? { file: basename(cfg.eval.file) } : cfg.eval,
      out: 'run',
      early_stopping: cfg.early_stopping?.ifs?.prompts ? { ifs: { ...cfg.early_stopping.ifs, prompts: basename(cfg.early_stopping.ifs.prompts) } } : cfg.early_stopping,
    },
    files: { train: 'train.py', model_impl: 'heed_model.py', launch: 'launch.sh', trl: 'trl_sft.py', accelerate: 'accelerate/', readme: 'README.md' },
  };
  if (cfg.early_stopping?.ifs?.prompts) {
    copyFileSync(cfg.early_stopping.ifs.prompts, join(jobDir, 'data', basename(cfg.early_stopping.ifs.prompts)));
  }
  writeFileSync(join(jobDir, 'job.json'), JSON.stringify(job, null, 2) + '\n');
  writeFileSync(join(jobDir, 'train.py'), readFileSync(join(TEMPLATE_DIR, 'train.py'), 'utf8').replace('__HEED_VERSION__', version));
  copyFileSync(join(TEMPLATE_DIR, 'heed_model.py'), join(jobDir, 'heed_model.py'));
  copyFileSync(join(TEMPLATE_DIR, '_torchrun.py'), join(jobDir, '_torchrun.py'));
  writeFileSync(join(jobDir, 'trl_sft.py'), readFileSync(join(TEMPLATE_DIR, 'trl_sft.py'), 'utf8').replace('__HEED_VERSION__', version));
  writeFileSync(join(jobDir, 'launch.sh'), launchSh(job));
  chmodSync(join(jobDir, 'launch.sh'), 0o755);
  mkdirSync(join(jobDir, 'accelerate'), { recursive: true });
  for (const [f, text] of Object.entries(acceleratePaper(job))) writeFileSync(join(jobDir, 'accelerate', f), text);
  writeFileSync(join(jobDir, 'README.md'), readmeMd(job));
  log(`job: ${jobDir} (${total} steps; run it with: bash ${join(o.out, 'launch.sh')} --nproc_per_node N)`);
  return { jobDir, job };
}
