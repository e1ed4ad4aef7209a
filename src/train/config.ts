/**
 * `heed train` configuration: one YAML (or JSON) file, `--set key=value` overrides, validated with zod
 * before anything is created. Each key carries its default and one line of help (.describe(), TRL
 * SFTConfig-style); docs/train.md's key table is generated from them (npm run docs:config). The cross-field
 * rules are a refinement of the same schema, and every problem is reported at once, in the user's terms.
 */
import { readFileSync, existsSync } from 'node:fs';
import { dirname, isAbsolute, resolve, basename } from 'node:path';
import { z } from 'zod';
import YAML from 'yaml';
import { HeedError } from '../errors.js';
import { DEFAULT_FIELDS, FORMATS, type Format } from '../data/load.js';
import { ROLES } from '../data/types.js';
import { BUILTIN_TEMPLATES } from '../data/templates.js';
import { didYouMean } from '../errors.js';
import { defaultLoraTargets, LORA_TARGETS, type LoraTarget } from './lora.js';
import { jsonSchemaOf, show, zodProblems, type Json } from '../zod-text.js';

export { accepts } from '../zod-text.js';

/** the default peak learning rates: full fine-tuning, and LoRA (measured on models/base-dolly: docs/train.md, "LoRA defaults") */
export const FULL_DEFAULT_LR = 2e-4;
export const LORA_DEFAULT_LR = 5e-3;

/** a data file's weight is how many copies of its rows a stage trains on: bounded so it cannot exhaust memory */
const MAX_DATA_WEIGHT = 1000;
/** no model heed can run has a longer context; the model's own context is checked when the run starts */
const MAX_LENGTH_BOUND = 1 << 20;

const dataEntry = z.union([z.string().min(1), z.object({ path: z.string().min(1), weight: z.number().positive().max(MAX_DATA_WEIGHT, `at most ${MAX_DATA_WEIGHT} (copies of every row)`).default(1) }).strict()]);
const dataList = z.union([dataEntry, z.array(dataEntry).min(1)]);
const SCHEDULES = ['constant', 'linear', 'cosine'] as const;

const stage = z
  .object({
    name: z.string().min(1).optional().describe('the stage name in metrics.jsonl (default stage-K)'),
    data: dataList.describe('the stage\'s data: a file, {path, weight} or a list of them'),
    epochs: z.number().positive().optional().describe('epochs of this stage'),
    steps: z.number().int().positive().optional().describe('steps of this stage (instead of epochs)'),
    lr: z.number().positive().optional().describe('peak learning rate of this stage (default: lr)'),
    schedule: z.enum(SCHEDULES).optional().describe('schedule of this stage (default: schedule)'),
    warmup_steps: z.number().int().min(0).optional().describe('warmup of this stage (default: warmup_steps)'),
  })
  .strict();

const ifsEarlyStopping = z
  .object({
    patience: z.number().int().positive().default(3).describe('stop after this many evaluations without a gain of min_delta'),
    min_delta: z.number().min(0).default(0.01).describe('the IFS gain that counts as progress'),
    min_ifs: z.number().min(0).max(1).default(0.9).describe('never stop before IFS reaches this'),
    budget: z.number().int().positive().default(200).describe('IFS prompts per evaluation (a balanced subset)'),
    variant: z.enum(['A', 'B', 'C']).default('A').describe('prompt wrapper: A = Alpaca, B = "### Response:", C = the bare instruction'),
    max_tokens: z.number().int().positive().default(64).describe('new tokens per response'),
    batch_size: z.number().int().positive().default(16).describe('prompts generated together'),
    prompts: z.string().optional().describe('an IFS prompt set (heed ifs build); default: the shipped one'),
    objecqa: z.union([z.boolean(), z.number().int().positive()]).default(false).describe('also measure ObjecQA (true, or N questions); adds the objecqa metric'),
    measure_only: z.boolean().default(false).describe('measure IFS, never stop'),
    engine: z.enum(['engine', 'llama.cpp']).default('engine').describe('where the evaluations generate (llama.cpp: through a temporary GGUF export of the current weights, LoRA adapters merged)'),
    exclude_overlap: z.boolean().default(true).describe('leave out IFS prompts whose source instruction occurs in the training data'),
  })
  .strict();

export const trainConfigSchema = z
  .object({
    model: z.string().min(1).describe('Hugging Face model folder (Llama family or GPT-2)'),
    data: dataList.optional().describe('a file, {path, weight}, or a list of them; weight w: ⌊w⌋ copies of every row per epoch plus a seeded share w−⌊w⌋'),
    stages: z.array(stage).min(1).optional().describe('instead of data: stages trained in order from the previous stage\'s weights (Phased IFT), each {name, data, epochs | steps, lr, schedule, warmup_steps}'),
    lr_reset_per_stage: z.boolean().default(true).describe('each stage runs its own schedule; false: one schedule over all stages\' steps'),
    eval: z.union([z.object({ split: z.number().gt(0).lt(1) }).strict(), z.object({ file: z.string().min(1) }).strict(), z.null()]).default({ split: 0.05 }).describe('held-out rows: a seeded share of every data file (by row id), {file: path}, or null'),
    eval_max_rows: z.number().int().positive().default(200).describe('cap on held-out rows'),
    template: z.string().default('auto').describe("prompt template: auto (the model's chat template, else chatml), model, alpaca, tulu, chatml, plain, or a .json/.jinja file (data.md)"),
    mask: z.string().default('output').describe('which tokens carry loss: output, instruction, weighted:λ, response-only, last-turn (data.md)'),
    include_system: z.boolean().default(false).describe('instruction / weighted masks: system text carries loss too'),
    im_marker_quirk: z.boolean().default(false).describe("instruction / weighted masks: the IM paper code's loss on the assistant marker"),
    format: z.enum(FORMATS as [Format, ...Format[]]).optional().describe('row format; default: detected from the first row (data.md)'),
    fields: z
      .object(Object.fromEntries(Object.keys(DEFAULT_FIELDS).map((k) => [k, z.string().min(1).optional().describe(`the name of the field that holds the ${k} (default ${JSON.stringify((DEFAULT_FIELDS as unknown as Record<string, unknown>)[k])})`)])) as Record<keyof typeof DEFAULT_FIELDS, z.ZodOptional<z.ZodString>>)
      .strict()
      .optional()
      .describe('field names of your rows, e.g. {messages: conversations, role: from, content: value}'),
    roles: z.record(z.string().min(1), z.enum(ROLES as unknown as ['system', 'user', 'assistant'])).optional().describe('extra role names → system/user/assistant, e.g. {human: user, gpt: assistant}'),
    on_bad_row: z.enum(['fail', 'skip']).default('fail').describe('a malformed row stops the run, or is skipped and counted'),
    max_length: z.number().int().min(8).max(MAX_LENGTH_BOUND).default(512).describe("longest sequence in tokens (at most the model's context)"),
    truncation: z.enum(['drop', 'truncate-right', 'truncate-left']).default('truncate-right').describe('rows longer than max_length'),
    max_drop_share: z.number().min(0).max(1).nullable().default(null).describe('fail the run when more than this share of the rows read is dropped; null: report only'),
    packing: z.boolean().default(false).describe('pack rows into full sequences (packed rows never attend to each other)'),
    batch_size: z.number().int().positive().default(8).describe('sequences per micro-batch'),
    grad_accum: z.number().int().positive().default(1).describe('micro-batches per optimizer step'),
    epochs: z.number().positive().optional().describe('length of a one-stage run in epochs (default 1 when steps is not set)'),
    steps: z.number().int().positive().optional().describe('length of a one-stage run in optimizer steps (instead of epochs)'),
    lr: z.number().positive().optional().describe(`peak learning rate (default ${FULL_DEFAULT_LR} for full fine-tuning, ${LORA_DEFAULT_LR} with lora: adapters start at zero and need the larger step)`),
    schedule: z.enum(SCHEDULES).default('cosine').describe('after warmup: constant, linear or cosine to min_lr_ratio·lr'),
    warmup_steps: z.number().int().min(0).default(0).describe('linear warmup steps (lr·t/warmup)'),
    min_lr_ratio: z.number().min(0).max(1).default(0).describe('the schedule ends at min_lr_ratio·lr'),
    adamw: z
      .object({
        beta1: z.number().min(0).lt(1).default(0.9).describe('AdamW β1'),
        beta2: z.number().min(0).lt(1).default(0.999).describe('AdamW β2'),
        eps: z.number().positive().default(1e-8).describe('AdamW ε'),
        weight_decay: z.number().min(0).default(0).describe('decoupled weight decay, on matrices only (never norms, biases or LoRA factors)'),
      })
      .strict()
      .default({ beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0 })
      .describe("torch.optim.AdamW's formula"),
    grad_clip: z.number().min(0).default(1.0).describe('global gradient-norm clipping (0 = off)'),
    loss_norm: z.enum(['token', 'sequence']).default('token').describe('token: every loss-bearing token weighs the same; sequence: every row weighs the same'),
    seed: z.number().int().min(0).default(0).describe('data order, eval split, LoRA init and dropout'),
    eval_every: z.number().int().positive().default(50).describe('evaluate every N steps (and at every stage end)'),
    save_every: z.number().int().positive().default(100).describe('checkpoint every N steps (and at every stage end)'),
    keep_last: z.number().int().min(1).default(2).describe('keep the last K checkpoints (plus the best)'),
    save_gguf: z.boolean().default(false).describe('also write <checkpoint>/model.gguf (f32, for llama.cpp / Ollama)'),
    loggers: z.array(z.enum(['tensorboard', 'csv'])).default([]).describe('logs beside metrics.jsonl, updated every step: tensorboard (events.out.tfevents.* for tensorboard --logdir), csv (metrics.csv); docs/logs.md'),
    best_metric: z.string().default('eval_loss').describe('the metric that picks the best checkpoint: loss, eval_loss, and with early stopping ifs, ifs_partial, ifs_full (objecqa with objecqa on); default ifs with early stopping'),
    best_mode: z.enum(['min', 'max']).optional().describe('whether lower or higher is better; default: min for losses, else max'),
    lora: z
      .object({
        r: z.number().int().positive().default(16).describe('LoRA rank (default 16: on a 2M-parameter model r 16 on every linear layer learned ~3x as much per step as r 8 on attention; docs/train.md)'),
        alpha: z.number().positive().default(32).describe('LoRA scale numerator: scale = alpha / r (default 32 = 2·r, scale 2)'),
        dropout: z.number().min(0).lt(1).default(0).describe('dropout on the LoRA input'),
        targets: z
          .array(z.enum(LORA_TARGETS as [LoraTarget, ...LoraTarget[]]))
          .min(1)
          .optional()
          .describe("projections to adapt; default every linear layer of the model's family, resolved from its config.json and written to the run's config.yaml: Llama/Qwen2/Mistral q, k, v, o, gate, up, down; GPT-2 q, k, v (the fused c_attn), o, up, down (no gate)"),
      })
      .strict()
      .nullable()
      .default(null)
      .describe(`null: full fine-tuning; a mapping: LoRA (merged + PEFT adapter on save); with LoRA, lr defaults to ${LORA_DEFAULT_LR}`),
    save_dtype: z.enum(['F32', 'F16', 'BF16']).default('F32').describe('checkpoint weights dtype (the optimizer file keeps exact f32 parameters)'),
    checkpointing: z.enum(['auto', 'layers', 'stored', 'off']).default('auto').describe("layers: gradients block by block, each block's forward recomputed in the backward pass (memory of one block); stored: block by block keeping every block's activations from the forward pass (no recompute; more memory); off: one fused program; auto: off below 8 layers and 20M parameters, else stored where the estimated activations fit the 4 GiB heap, else layers"),
    early_stopping: z.object({ ifs: ifsEarlyStopping.describe('IFS early stopping (ifs.md)') }).strict().nullable().default(null).describe('null, or {ifs: {...}}: evaluate IFS at every eval and stop when it plateaus'),
    name: z.string().regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" and "-" only').optional().describe('the run folder name (default: the config file name)'),
    out: z.string().default('runs').describe('the run folder is out/name'),
    device: z.enum(['wasm', 'webgpu', 'cpu']).default('wasm').describe('webgpu where a WebGPU adapter exists'),
  })
  .strict();

type ParsedConfig = z.infer<typeof trainConfigSchema>;
/** A validated config: lr resolved (full fine-tuning or LoRA default); lora.targets resolved from the model's
 * architecture when its config.json could be read (else the trainer resolves it: loraModules). */
export type TrainConfig = Omit<ParsedConfig, 'lr'> & { lr: number };

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

/** The config schema as JSON Schema (input side): what each key accepts, for messages and docs/train.md. */
export const configJsonSchema = (): Json => jsonSchemaOf(trainConfigSchema);

/** Everything the schema can know about a config without loading weights or data, beyond each key's own type. */
interface CheckContext {
  /** folder relative paths resolve against (model config.json is read when it exists) */
  dir: string;
  /** metric names that library callbacks add (best_metric may name them) */
  metrics?: readonly string[];
}

const MASK_NAMES = ['output', 'instruction', 'response-only', 'last-turn', 'weighted:0.1', 'it', 'im'];
const TEMPLATE_NAMES = ['auto', 'model', ...BUILTIN_TEMPLATES];

/** The metrics a run with this config writes at its evaluations (what best_metric may name). */
export function metricsOf(c: { eval?: unknown; early_stopping?: { ifs?: { objecqa?: unknown; engine?: string } } | null }, extra: readonly string[] = []): string[] {
  const ifs = c.early_stopping?.ifs;
  return ['loss', ...(c.eval !== null ? ['eval_loss'] : []), ...(ifs ? ['ifs', 'ifs_partial', 'ifs_full', ...(ifs.objecqa ? ['objecqa'] : []), ...(ifs.engine === 'llama.cpp' ? ['ifs_eval_seconds'] : [])] : []), ...extra];
}

/**
 * The cross-field rules, as a zod refinement that runs even when some keys already failed (so every problem
 * is reported at once). The value may be partly invalid: every read is checked.
 */
function crossChecks(ctx: CheckContext, raw: Record<string, unknown>) {
  return (c: Record<string, unknown>, z: { addIssue: (i: { code: 'custom'; message: string; path: PropertyKey[] }) => void }) => {
    const add = (path: PropertyKey[], message: string) => z.addIssue({ code: 'custom', message, path });
    if (c.data === undefined && c.stages === undefined) add([], 'neither "data" nor "stages" is set: add data: path/to/train.jsonl (or a stages: list)');
    if (c.data !== undefined && c.stages !== undefined) add(['stages'], 'both "data" and "stages" are set: use data for one-off training, or stages for a phased curriculum (each stage has its own data)');
    if (c.epochs !== undefined && c.steps !== undefined) add(['steps'], 'both "epochs" and "steps" are set: set one of them');
    if (Array.isArray(c.stages)) {
      const names = new Map<string, number>();
      c.stages.forEach((st: Record<string, unknown> | undefined, i) => {
        if (!st || typeof st !== 'object') return;
        if (st.epochs !== undefined && st.steps !== undefined) add(['stages', i, 'steps'], 'both epochs and steps are set: set one of them');
        if (typeof st.name === 'string') {
          if (names.has(st.name)) add(['stages', i, 'name'], `"${st.name}" is also the name of stage ${names.get(st.name)}: stage names must differ (metrics.jsonl and the report use them)`);
          names.set(st.name, i);
        }
        if (c.lr_reset_per_stage === false) for (const k of ['lr', 'schedule', 'warmup_steps']) if (st[k] !== undefined) add(['stages', i, k], `ignored with lr_reset_per_stage: false (one schedule over all stages uses the top-level ${k}): remove it, or set lr_reset_per_stage: true`);
      });
    }
    // mask and template names, and the switches that only apply to some masks
    if (typeof c.mask === 'string') {
      const t = c.mask.trim().toLowerCase();
      let promptSide = t === 'instruction' || t === 'im';
      if (t.startsWith('weighted:')) {
        const v = t.slice('weighted:'.length);
        const l = Number(v);
        if (v === '' || !Number.isFinite(l) || l < 0 || l > 1) add(['mask'], `got ${show(c.mask)}; the λ of weighted:λ is a number from 0 to 1, e.g. weighted:0.1`);
        promptSide = true;
      } else if (!['output', 'it', 'instruction', 'im', 'response-only', 'last-turn'].includes(t)) add(['mask'], `got ${show(c.mask)}${didYouMean(t, MASK_NAMES)}; accepts output, instruction, weighted:λ (λ from 0 to 1), response-only or last-turn`);
      for (const k of ['include_system', 'im_marker_quirk']) if (c[k] === true && !promptSide) add([k], `applies to mask instruction or weighted:λ, not ${show(c.mask)}: remove it or change the mask`);
    }
    if (typeof c.template === 'string' && !TEMPLATE_NAMES.includes(c.template) && !/[\\/]/.test(c.template) && !/\.(json|jinja|j2)$/.test(c.template)) {
      add(['template'], `got ${show(c.template)}${didYouMean(c.template, TEMPLATE_NAMES)}; accepts ${TEMPLATE_NAMES.join(', ')}, or a path to a .json/.jinja template file`);
    }
    // best_metric against the metrics this config's evaluations write
    const es = c.early_stopping as { ifs?: { objecqa?: unknown; engine?: string } } | null | undefined;
    if (raw.best_metric !== undefined && typeof c.best_metric === 'string') {
      const have = metricsOf({ eval: c.eval, early_stopping: es }, ctx.metrics);
      if (!have.includes(c.best_metric)) {
        const why = c.best_metric === 'eval_loss' ? ' (eval is null: no held-out rows)' : /^ifs/.test(c.best_metric) ? ' (it needs early_stopping.ifs)' : c.best_metric === 'objecqa' ? ' (it needs early_stopping.ifs.objecqa)' : '';
        add(['best_metric'], `got ${show(c.best_metric)}, a metric this run will not write${why}${didYouMean(c.best_metric, have)}; this config writes ${have.join(', ')}`);
      }
    }
    // early stopping and LoRA rules knowable before anything loads
    const lora = c.lora as { targets?: unknown } | null | undefined;
    if (lora && Array.isArray(lora.targets) && typeof c.model === 'string') {
      if (modelArchOf(ctx.dir, c.model) === 'gpt2' && lora.targets.includes('gate')) add(['lora', 'targets'], `"gate" does not exist in GPT-2 models (${c.model} is gpt2): use q, k, v (the fused c_attn), o, up, down`);
    }
  };
}

/** The architecture family of a model folder from its config.json's model_type (undefined when it cannot be read: the trainer reports that). */
function modelArchOf(dir: string, model: string): 'gpt2' | 'llama' | undefined {
  const cfgFile = resolve(dir, model, 'config.json');
  try {
    if (!existsSync(cfgFile)) return undefined;
    const t = (JSON.parse(readFileSync(cfgFile, 'utf8')) as { model_type?: unknown }).model_type;
    return t === 'gpt2' ? 'gpt2' : typeof t === 'string' ? 'llama' : undefined;
  } catch {
    return undefined; // a broken config.json is reported when the model loads
  }
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

/**
 * Validate a config completely before anything is created: every key's type and range, the cross-field rules
 * (crossChecks) and the names that only the schema can check; every problem is reported at once.
 * `opts.metrics`: metric names that the caller's own callbacks add (best_metric may name them).
 */
export function validateTrainConfig(raw: Record<string, unknown>, file = 'config', baseDir?: string, opts: { metrics?: readonly string[] } = {}): TrainConfig {
  const dir0 = baseDir ?? (file === 'config' ? process.cwd() : dirname(resolve(file)));
  const schema = trainConfigSchema.superRefine(crossChecks({ dir: dir0, metrics: opts.metrics }, raw) as never, { when: () => true } as never);
  const r = schema.safeParse(raw);
  if (!r.success) throw zodProblems(r.error.issues, raw, file, configJsonSchema(), 'docs/train.md');
  const c = r.data as TrainConfig;
  const dir = baseDir ?? (file === 'config' ? process.cwd() : dirname(resolve(file)));
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(dir, p));
  const arch = c.lora && !c.lora.targets ? modelArchOf(dir, c.model) : undefined;
  const lora = c.lora && { ...c.lora, targets: c.lora.targets ?? (arch ? defaultLoraTargets(arch) : undefined) };
  const fixData = (d: z.infer<typeof dataList>) => (Array.isArray(d) ? d : [d]).map((e) => (typeof e === 'string' ? { path: abs(e), weight: 1 } : { path: abs(e.path), weight: e.weight }));
  return {
    ...c,
    model: abs(c.model),
    lr: c.lr ?? (c.lora ? LORA_DEFAULT_LR : FULL_DEFAULT_LR),
    lora,
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
