/**
 * `heed train` configuration: one YAML (or JSON) file, `--set key=value` overrides, validated with zod.
 * Unknown keys and bad values are errors that name the key and the fix. Every key is documented in
 * docs/train.md; defaults follow common SFT practice (TRL-like), stated here.
 */
import { readFileSync, existsSync } from 'node:fs';
import { dirname, isAbsolute, resolve, basename } from 'node:path';
import { z } from 'zod';
import YAML from 'yaml';
import { HeedError } from '../errors.js';
import { DEFAULT_FIELDS, FORMATS, type Format } from '../data/load.js';
import { ROLES } from '../data/types.js';

/** a data file's weight is how many copies of its rows a stage trains on: bounded so it cannot exhaust memory */
export const MAX_DATA_WEIGHT = 1000;
/** no model heed can run has a longer context; the model's own context is checked when the run starts */
export const MAX_LENGTH_BOUND = 1 << 20;

const dataEntry = z.union([z.string().min(1), z.object({ path: z.string().min(1), weight: z.number().positive().max(MAX_DATA_WEIGHT, `at most ${MAX_DATA_WEIGHT} (copies of every row)`).default(1) }).strict()]);
const dataList = z.union([dataEntry, z.array(dataEntry).min(1)]);

const stage = z
  .object({
    name: z.string().min(1).optional(),
    data: dataList,
    epochs: z.number().positive().optional(),
    steps: z.number().int().positive().optional(),
    lr: z.number().positive().optional(),
    schedule: z.enum(['constant', 'linear', 'cosine']).optional(),
    warmup_steps: z.number().int().min(0).optional(),
  })
  .strict();

export const trainConfigSchema = z
  .object({
    model: z.string().min(1),
    data: dataList.optional(),
    stages: z.array(stage).min(1).optional(),
    lr_reset_per_stage: z.boolean().default(true),
    eval: z.union([z.object({ split: z.number().gt(0).lt(1) }).strict(), z.object({ file: z.string().min(1) }).strict(), z.null()]).default({ split: 0.05 }),
    eval_max_rows: z.number().int().positive().default(200),
    template: z.string().default('auto'),
    mask: z.string().default('output'),
    include_system: z.boolean().default(false),
    im_marker_quirk: z.boolean().default(false),
    format: z.enum(FORMATS as [Format, ...Format[]]).optional(),
    /** field names of your rows, e.g. {messages: conversations, role: from, content: value} (keys: DEFAULT_FIELDS) */
    fields: z
      .object(Object.fromEntries(Object.keys(DEFAULT_FIELDS).map((k) => [k, z.string().min(1).optional()])) as Record<keyof typeof DEFAULT_FIELDS, z.ZodOptional<z.ZodString>>)
      .strict()
      .optional(),
    /** extra role names → system/user/assistant, e.g. {human: user, gpt: assistant} */
    roles: z.record(z.string().min(1), z.enum(ROLES as unknown as ['system', 'user', 'assistant'])).optional(),
    on_bad_row: z.enum(['fail', 'skip']).default('fail'),
    max_length: z.number().int().min(8).max(MAX_LENGTH_BOUND).default(512),
    truncation: z.enum(['drop', 'truncate-right', 'truncate-left']).default('truncate-right'),
    /** fail the run when more than this share of the rows read is dropped (bad rows skipped, too long, no loss); null: report only */
    max_drop_share: z.number().min(0).max(1).nullable().default(null),
    packing: z.boolean().default(false),
    batch_size: z.number().int().positive().default(8),
    grad_accum: z.number().int().positive().default(1),
    epochs: z.number().positive().optional(),
    steps: z.number().int().positive().optional(),
    lr: z.number().positive().default(2e-4),
    schedule: z.enum(['constant', 'linear', 'cosine']).default('cosine'),
    warmup_steps: z.number().int().min(0).default(0),
    min_lr_ratio: z.number().min(0).max(1).default(0),
    adamw: z
      .object({ beta1: z.number().min(0).lt(1).default(0.9), beta2: z.number().min(0).lt(1).default(0.999), eps: z.number().positive().default(1e-8), weight_decay: z.number().min(0).default(0) })
      .strict()
      .default({ beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0 }),
    grad_clip: z.number().min(0).default(1.0),
    loss_norm: z.enum(['token', 'sequence']).default('token'),
    seed: z.number().int().min(0).default(0),
    eval_every: z.number().int().positive().default(50),
    save_every: z.number().int().positive().default(100),
    keep_last: z.number().int().min(1).default(2),
    /** also write <checkpoint>/model.gguf (f32, for llama.cpp / Ollama; docs/gguf.md) beside each checkpoint */
    save_gguf: z.boolean().default(false),
    best_metric: z.string().default('eval_loss'),
    best_mode: z.enum(['min', 'max']).optional(),
    lora: z
      .object({
        r: z.number().int().positive().default(8),
        alpha: z.number().positive().default(16),
        dropout: z.number().min(0).lt(1).default(0),
        targets: z.array(z.enum(['q', 'k', 'v', 'o', 'gate', 'up', 'down'])).min(1).default(['q', 'k', 'v', 'o']),
      })
      .strict()
      .nullable()
      .default(null),
    save_dtype: z.enum(['F32', 'F16', 'BF16']).default('F32'),
    checkpointing: z.enum(['auto', 'layers', 'off']).default('auto'),
    early_stopping: z
      .object({
        ifs: z
          .object({
            patience: z.number().int().positive().default(3),
            min_delta: z.number().min(0).default(0.01),
            min_ifs: z.number().min(0).max(1).default(0.9),
            budget: z.number().int().positive().default(200),
            variant: z.enum(['A', 'B', 'C']).default('A'),
            max_tokens: z.number().int().positive().default(64),
            batch_size: z.number().int().positive().default(16),
            prompts: z.string().optional(),
            objecqa: z.union([z.boolean(), z.number().int().positive()]).default(false),
            measure_only: z.boolean().default(false),
            engine: z.enum(['engine', 'llama.cpp']).default('engine'),
            /** leave out IFS prompts whose source instruction occurs in the training data (src/eval/overlap.ts) */
            exclude_overlap: z.boolean().default(true),
          })
          .strict(),
      })
      .strict()
      .nullable()
      .default(null),
    name: z.string().regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" and "-" only').optional(),
    out: z.string().default('runs'),
    device: z.enum(['wasm', 'webgpu', 'cpu']).default('wasm'),
  })
  .strict();

export type TrainConfig = z.infer<typeof trainConfigSchema>;
export type StageConfig = z.infer<typeof stage>;

/** Parse `key=value` (dotted keys, YAML values) into the raw object. */
export function applySet(raw: Record<string, unknown>, assignment: string): void {
  const eq = assignment.indexOf('=');
  if (eq <= 0) throw new HeedError(`--set "${assignment}" is not key=value`, 'write e.g. --set lr=1e-4 or --set adamw.beta2=0.95');
  const key = assignment.slice(0, eq).trim();
  const path = key.split('.');
  // every part must be a plain key: "__proto__.x" would write Object.prototype and bypass validation
  const badPart = path.find((k) => !/^[A-Za-z0-9_-]+$/.test(k) || k === '__proto__' || k === 'constructor' || k === 'prototype');
  if (badPart !== undefined) throw new HeedError(`--set "${assignment}": "${badPart}" is not a config key`, 'keys are letters, digits and "_" joined by "." (see docs/train.md for every key)');
  let value: unknown;
  try {
    value = YAML.parse(assignment.slice(eq + 1));
  } catch (e) {
    throw new HeedError(`--set "${assignment}": the value is not valid YAML (${(e as Error).message.split('\n')[0]})`, 'quote strings, e.g. --set name=my-run');
  }
  let o = raw;
  for (const k of path.slice(0, -1)) {
    if (!Object.hasOwn(o, k) || typeof o[k] !== 'object' || o[k] === null) o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  Object.defineProperty(o, path[path.length - 1], { value, enumerable: true, writable: true, configurable: true });
}

function zodMessage(e: z.ZodError, file: string): HeedError {
  const issue = e.issues[0];
  const key = issue.path.join('.') || '(top level)';
  if (issue.code === 'unrecognized_keys') {
    const keys = (issue as { keys: string[] }).keys;
    const where = issue.path.length ? `${issue.path.join('.')}.` : '';
    return new HeedError(`${file}: unknown key${keys.length > 1 ? 's' : ''} ${keys.map((k) => `"${where}${k}"`).join(', ')}`, 'remove it or fix its spelling (see docs/train.md for every key)');
  }
  return new HeedError(`${file}: "${key}": ${issue.message}`, `fix "${key}" (see docs/train.md)`);
}

/** Load, override and validate a config; relative paths resolve against the config file's folder. */
export function loadTrainConfig(file: string, sets: string[] = []): TrainConfig {
  if (!existsSync(file)) throw new HeedError(`${file}: config not found`, 'pass a YAML config file (see docs/train.md for an example)');
  let raw: unknown;
  try {
    raw = YAML.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new HeedError(`${file}: invalid YAML (${(e as Error).message.split('\n')[0]})`, 'fix the YAML syntax');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new HeedError(`${file}: the config must be a mapping of keys to values`, 'see docs/train.md for an example');
  for (const s of sets) applySet(raw as Record<string, unknown>, s);
  return validateTrainConfig(raw as Record<string, unknown>, file);
}

export function validateTrainConfig(raw: Record<string, unknown>, file = 'config', baseDir?: string): TrainConfig {
  const r = trainConfigSchema.safeParse(raw);
  if (!r.success) throw zodMessage(r.error, file);
  const c = r.data;
  if (!c.data && !c.stages) throw new HeedError(`${file}: neither "data" nor "stages" is set`, 'add data: path/to/train.jsonl (or a stages: list)');
  if (c.data && c.stages) throw new HeedError(`${file}: both "data" and "stages" are set`, 'use data for one-off training, or stages for a phased curriculum (each stage has its own data)');
  if (c.epochs !== undefined && c.steps !== undefined) throw new HeedError(`${file}: both "epochs" and "steps" are set`, 'set one of them');
  if (c.stages) for (const [i, s] of c.stages.entries()) if (s.epochs !== undefined && s.steps !== undefined) throw new HeedError(`${file}: "stages.${i}": both epochs and steps are set`, 'set one of them');
  const dir = baseDir ?? (file === 'config' ? process.cwd() : dirname(resolve(file)));
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(dir, p));
  const fixData = (d: z.infer<typeof dataList>) => (Array.isArray(d) ? d : [d]).map((e) => (typeof e === 'string' ? { path: abs(e), weight: 1 } : { path: abs(e.path), weight: e.weight }));
  return {
    ...c,
    model: abs(c.model),
    data: c.data ? fixData(c.data) : undefined,
    stages: c.stages?.map((s) => ({ ...s, data: fixData(s.data) })),
    eval: c.eval && 'file' in c.eval ? { file: abs(c.eval.file) } : c.eval,
    out: abs(c.out),
    name: c.name ?? (file === 'config' ? 'run' : basename(file).replace(/\.(ya?ml|json)$/, '')),
    best_metric: raw.best_metric === undefined && c.early_stopping?.ifs ? 'ifs' : c.best_metric,
    best_mode: c.best_mode ?? (/loss/.test(raw.best_metric === undefined && c.early_stopping?.ifs ? 'ifs' : c.best_metric) ? 'min' : 'max'),
    early_stopping: c.early_stopping?.ifs ? { ifs: { ...c.early_stopping.ifs, prompts: c.early_stopping.ifs.prompts ? abs(c.early_stopping.ifs.prompts) : undefined } } : c.early_stopping,
  };
}

/** The stages of a run (one-off training is one stage named "main"). */
export interface ResolvedStage {
  name: string;
  data: Array<{ path: string; weight: number }>;
  epochs?: number;
  steps?: number;
  lr: number;
  schedule: 'constant' | 'linear' | 'cosine';
  warmupSteps: number;
}

export function resolveStages(c: TrainConfig): ResolvedStage[] {
  const base = { lr: c.lr, schedule: c.schedule, warmupSteps: c.warmup_steps };
  if (c.stages) {
    return c.stages.map((s, i) => ({
      name: s.name ?? `stage-${i + 1}`,
      data: s.data as Array<{ path: string; weight: number }>,
      epochs: s.epochs ?? (s.steps === undefined ? c.epochs ?? (c.steps === undefined ? 1 : undefined) : undefined),
      steps: s.steps ?? (s.epochs === undefined && c.epochs === undefined ? c.steps : undefined),
      lr: s.lr ?? base.lr,
      schedule: s.schedule ?? base.schedule,
      warmupSteps: s.warmup_steps ?? base.warmupSteps,
    }));
  }
  return [{ name: 'main', data: c.data as Array<{ path: string; weight: number }>, epochs: c.steps === undefined ? c.epochs ?? 1 : undefined, steps: c.steps, ...base }];
}
