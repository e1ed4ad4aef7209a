/**
 * The run folder of `heed train`: created for a new run (config.yaml written first), or opened to resume —
 * the newest intact checkpoint chosen (damaged ones moved aside and said), metrics.jsonl cut back to it — or to
 * extend a run to a larger step budget (`heed train --resume runs/x --set steps=N`).
 *
 * Extending: only `steps` (and `early_stopping.ifs.patience`) may change, N must exceed the steps the run
 * planned (and the steps it did). The learning-rate schedule is the N-step run's: lr at step t is
 * lrAt(schedule over N steps, t), the same function an uninterrupted N-step run uses. So a constant schedule
 * (after warmup) continues exactly as an N-step run would — the extended run is bit-identical to it — and a
 * decaying schedule continues on the N-step curve from the resumed step on (its lr jumps up to where the
 * longer cosine/linear curve is at that step; the steps already taken followed the shorter plan and are not
 * redone). config.yaml is rewritten with the new steps (the previous one kept as config.steps-<old>.yaml), so
 * a later plain `--resume` continues the extended plan.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { HeedError } from '../errors.js';
import type { HostTensor } from '../io/safetensors.js';
import { validateTrainConfig, type TrainConfig } from './config.js';
import { listCheckpoints, loadVerifiedCheckpoint, setAside, type TrainerState } from './checkpoint.js';
import { describeSkips, readMetrics, truncateMetrics, type MetricsRecord } from './metrics.js';

/** Continue a run; with `steps` (and `patience`), extend it (module comment). */
export interface ResumeRequest {
  resume: string;
  /** a larger step budget for the whole run */
  steps?: number;
  /** a new early_stopping.ifs.patience (only together with steps) */
  patience?: number;
}

export interface OpenedRun {
  cfg: TrainConfig;
  runDir: string;
  resumeFrom?: { dir: string; state: TrainerState; opt: Map<string, HostTensor> };
  /** metrics.jsonl records of earlier sessions, up to the step resumed from */
  kept: MetricsRecord[];
  /** set when the run was extended: the planned steps before and after */
  extended?: { from: number | null; to: number };
}

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

/** A new run: the folder must not hold one; config.yaml is written. */
export function createRun(cfg: TrainConfig): OpenedRun {
  const runDir = join(cfg.out, cfg.name!);
  if (listCheckpoints(runDir).length || existsSync(join(runDir, 'metrics.jsonl'))) {
    throw new HeedError(`${runDir} already holds a run`, `resume it with \`heed train --resume ${runDir}\`, or pick another name (--set name=...)`);
  }
  mkdirSync(runDir, { recursive: true });
  writeFileSync(join(runDir, 'config.yaml'), YAML.stringify(cfg));
  return { cfg, runDir, kept: [] };
}

/** The config of an extended run: the stored one with the new steps (and patience), validated. */
function extendedConfig(raw: Record<string, unknown>, req: ResumeRequest, file: string, runDir: string): { cfg: TrainConfig; from: number | null } {
  const fix = `extend with: heed train --resume ${runDir} --set steps=N`;
  if (raw.stages) throw new HeedError(`${file}: a run with stages plans its steps per stage; --resume --set steps=N extends one-stage runs`, 'start a new run with more steps in the last stage');
  if (req.steps === undefined) throw new HeedError('--resume --set early_stopping.ifs.patience=... changes a run only together with steps=N', fix);
  const from = typeof raw.steps === 'number' ? raw.steps : null;
  if (from !== null && req.steps <= from) throw new HeedError(`--set steps=${req.steps}: the run already plans ${from} steps; extending needs a larger number`, `pass steps larger than ${from}`);
  const next: Record<string, unknown> = { ...raw, steps: req.steps };
  delete next.epochs;
  if (req.patience !== undefined) {
    const es = raw.early_stopping as { ifs?: Record<string, unknown> } | undefined;
    if (!es?.ifs) throw new HeedError(`--set early_stopping.ifs.patience: ${file} has no early_stopping.ifs`, 'drop the patience setting');
    next.early_stopping = { ...es, ifs: { ...es.ifs, patience: req.patience } };
  }
  return { cfg: validateTrainConfig(next, file, runDir, savedMetrics(raw)), from };
}

/** best_metric was checked when the run was created (perhaps against its callbacks' metrics): accept it again */
const savedMetrics = (raw: Record<string, unknown>) => ({ metrics: typeof raw?.best_metric === 'string' ? [raw.best_metric] : [] });

/** Open a run folder to resume (or extend) it. */
export function openRun(req: ResumeRequest, log: (s: string) => void): OpenedRun {
  const runDir = req.resume;
  const file = join(runDir, 'config.yaml');
  if (!existsSync(file)) throw new HeedError(`${runDir}: not a heed run folder (no config.yaml)`, 'pass the folder a `heed train` run created, e.g. runs/<name>');
  const raw = YAML.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  const extend = req.steps !== undefined || req.patience !== undefined;
  let cfg = validateTrainConfig(raw, file, runDir, savedMetrics(raw));
  let from: number | null = null;
  if (extend) ({ cfg, from } = extendedConfig(raw, req, file, runDir));
  const metricsPath = join(runDir, 'metrics.jsonl');
  const hasMetrics = existsSync(metricsPath);
  const recs = hasMetrics ? readMetrics(metricsPath).records : undefined;
  const cks = listCheckpoints(runDir);
  let resumeFrom: OpenedRun['resumeFrom'];
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
  if (extend) {
    const done = resumeFrom?.state.step ?? 0;
    if (req.steps! <= done) throw new HeedError(`--set steps=${req.steps}: the run already did ${done} steps; extending needs a larger number`, `pass steps larger than ${done}`);
    if (from !== null) copyFileSync(file, join(runDir, `config.steps-${from}.yaml`));
    writeFileSync(file, YAML.stringify(cfg));
    if (resumeFrom) resumeFrom.state = { ...resumeFrom.state, done: false, stopped: null };
    log(`extending ${runDir}: steps ${from ?? '(epochs)'} → ${req.steps}${req.patience !== undefined ? `, early_stopping.ifs.patience ${req.patience}` : ''}; continuing from ${resumeFrom ? `${resumeFrom.dir} (step ${done})` : 'step 0'} on the ${req.steps}-step schedule (config.yaml updated${from !== null ? `, the old one kept as config.steps-${from}.yaml` : ''})`);
  } else if (resumeFrom) {
    if (resumeFrom.state.done && finishedSummary(join(runDir, 'summary.json'), resumeFrom.state.step)) throw new HeedError(`${runDir}: the run already finished at step ${resumeFrom.state.step}`, `extend it with \`heed train --resume ${runDir} --set steps=N\` (N > ${resumeFrom.state.step}), or start a new run (another name)`);
    log(resumeFrom.state.done ? `${runDir}: finished at step ${resumeFrom.state.step} but killed before summary.json was written; writing it` : `resuming ${runDir} from ${resumeFrom.dir} (step ${resumeFrom.state.step})`);
  } else log(`resuming ${runDir}: no complete checkpoint yet, starting from step 0`);
  // drop the records past the checkpoint we resume from (they are redone), and a torn last line after a kill -9
  let kept: MetricsRecord[] = [];
  if (hasMetrics) {
    const t = truncateMetrics(metricsPath, resumeFrom?.state.step ?? 0);
    kept = t.kept;
    const skips = describeSkips(metricsPath, { torn: false, bad: t.bad });
    if (skips) log(`warning: ${skips}`);
  }
  return { cfg, runDir, resumeFrom, kept, ...(extend ? { extended: { from, to: req.steps! } } : {}) };
}
