/**
 * `heed watch <job-run-dir>`: follow a PyTorch job's run folder (written by train.py of `heed export torch`),
 * evaluate every checkpoint at an evaluation point (IFS on the early-stopping prompt subset, ObjecQA when
 * configured, held-out loss on the job's eval rows), append the results to the run's metrics.jsonl (one
 * line per evaluation, `source: "heed watch"`), apply heed train's IFS early-stopping rule (the same
 * IfsEarlyStopping callback, fed the same evaluation points), and write <run>/STOP when it fires — train.py
 * stops after its current step. The evaluation of one checkpoint happens in evaluateCheckpoint() only.
 */
import { appendFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { HeedError } from '../../errors.js';
import { openGenerator } from '../../eval/generator.js';
import { IfsEarlyStopping } from '../../eval/early-stop.js';
import { listCheckpoints } from '../../train/checkpoint.js';
import { loadModel, disposeParams } from '../../models/load.js';
import { sequenceLogits } from '../../models/run.js';
import { JOB_FORMAT, heedVersion, type JobJson } from './export.js';
import { readNpy } from './npy.js';
import { readMetrics } from '../../train/metrics.js';

export interface WatchOptions {
  /** seconds between looks at the run folder */
  poll?: number;
  /** evaluate what is there now and return (no waiting) */
  once?: boolean;
  /** give up after this many seconds without the run finishing */
  timeout?: number;
  /** keep following after STOP was written, until summary.json appears */
  untilEnd?: boolean;
  log?: (s: string) => void;
  /** test hook: called after a checkpoint was listed, before it is loaded */
  beforeLoad?: (dir: string) => void;
}

export interface WatchSummary {
  evaluated: number[];
  skipped: Array<{ step: number; why: string }>;
  stopped: { step: number; reason: string } | null;
  best: { step: number; ifs: number } | null;
  finished: boolean;
  torn_lines: number;
  bad_lines: number;
}

/** A model to evaluate. Today a checkpoint folder evaluated in-process; other specs plug in here. */
export type ModelSpec = { kind: 'dir'; dir: string };


export function readRunJob(runDir: string): JobJson & { job_dir?: string } {
  const file = join(runDir, 'job.json');
  if (!existsSync(file)) throw new HeedError(`${runDir}: not the run folder of a heed torch job (no job.json)`, 'pass the run folder train.py writes (job/run by default), after the job started');
  const job = JSON.parse(readFileSync(file, 'utf8')) as JobJson & { job_dir?: string };
  if (job.format !== 'heed-torch-job' || job.format_version !== JOB_FORMAT) throw new HeedError(`${file}: not a heed torch job of format ${JOB_FORMAT}`, 're-export the job with this heed (heed export torch)');
  if (!job.job_dir) throw new HeedError(`${runDir} is the job folder, not its run folder`, `watch the run folder train.py writes: ${join(runDir, 'run')} (or the --run-dir you gave it)`);
  const mine = heedVersion();
  if (job.heed_version !== mine) throw new HeedError(`${file}: the job was exported by heed ${job.heed_version}; this is heed ${mine}`, `watch it with heed ${job.heed_version}, or re-export the job with this heed`);
  return job;
}

/** Held-out rows of the job (data/eval), as heed exported them. */
function evalRows(jobDir: string | undefined, job: JobJson): Array<{ ids: Int32Array; weights: Float32Array }> {
  if (!job.eval || !jobDir) return [];
  const dir = join(jobDir, job.eval.dir);
  if (!existsSync(join(dir, 'index.json'))) return [];
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { shards: Array<{ ids: string; weights: string; offsets: string }> };
  const out: Array<{ ids: Int32Array; weights: Float32Array }> = [];
  for (const s of index.shards) {
    const ids = readNpy(join(dir, s.ids)).data as Int32Array;
    const w = readNpy(join(dir, s.weights)).data as Float32Array;
    const off = readNpy(join(dir, s.offsets)).data as BigInt64Array;
    for (let r = 0; r + 1 < off.length; r++) out.push({ ids: ids.subarray(Number(off[r]), Number(off[r + 1])), weights: w.subarray(Number(off[r]), Number(off[r + 1])) });
  }
  return out;
}

/** Σ w·nll / Σ w over rows (weights[t] = weight of token t as a target), from the model's logits. */
async function heldOutLoss(dir: string, rows: Array<{ ids: Int32Array; weights: Float32Array }>, batch = 8): Promise<number | undefined> {
  if (!rows.length) return undefined;
  const m = await loadModel(dir);
  try {
    const V = m.config.vocabSize;
    let sum = 0;
    let wsum = 0;
    for (let i = 0; i < rows.length; i += batch) {
      const part = rows.slice(i, i + batch);
      const logits = await sequenceLogits(m.config, m.params, part.map((r) => Array.from(r.ids)));
      for (const [k, r] of part.entries()) {
        const lg = logits[k];
        for (let t = 1; t < r.ids.length; t++) {
          const w = r.weights[t];
          if (w === 0) continue;
          const o = (t - 1) * V;
          let mx = -Infinity;
          for (let v = 0; v < V; v++) mx = Math.max(mx, lg[o + v]);
          let z = 0;
          for (let v = 0; v < V; v++) z += Math.exp(lg[o + v] - mx);
          sum += w * (mx + Math.log(z) - lg[o + r.ids[t]]);
          wsum += w;
        }
      }
    }
    return wsum > 0 ? sum / wsum : undefined;
  } finally {
    disposeParams(m.params);
  }
}

/**
 * The one place a checkpoint is evaluated: IFS (+ ObjecQA) through the early-stopping callback — which also
 * applies the plateau rule — and the held-out loss. Returns the callback's result and the loss.
 */
export async function evaluateCheckpoint(spec: ModelSpec, step: number, stage: { index: number; name: string }, cb: IfsEarlyStopping, runDir: string, rows: Array<{ ids: Int32Array; weights: Float32Array }>, maxTokens: number) {
  const g = await openGenerator(spec.dir, { maxTokens });
  let r;
  try {
    r = await cb.onEval({ step, epoch: 0, stage: stage.index, stageName: stage.name, metrics: {}, generator: g.gen, runDir });
  } finally {
    g.dispose();
  }
  const loss = await heldOutLoss(spec.dir, rows);
  return { ...r, heldOut: loss };
}

/** Steps at which heed train evaluates: every eval_every steps and at every stage end. */
export function evalPoints(job: JobJson): Set<number> {
  const every = Number((job.train as { eval_every: number }).eval_every);
  const s = new Set<number>();
  for (let k = every; k <= job.total_steps; k += every) s.add(k);
  let acc = 0;
  for (const st of job.stages) s.add((acc += st.steps));
  return s;
}

function stageOf(job: JobJson, step: number): { index: number; name: string } {
  let acc = 0;
  for (const [i, st] of job.stages.entries()) {
    acc += st.steps;
    if (step <= acc) return { index: i, name: st.name };
  }
  return { index: job.stages.length - 1, name: job.stages[job.stages.length - 1].name };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function watchRun(runDir: string, o: WatchOptions = {}): Promise<WatchSummary> {
  const log = o.log ?? ((s: string) => console.error(s));
  const job = readRunJob(runDir);
  const jobDir = job.job_dir;
  const es = job.early_stopping?.ifs;
  // a prompts file named in the config travels in the job's data/ folder
  const prompts = es?.prompts ? [jobDir ? join(jobDir, 'data', basename(es.prompts)) : '', es.prompts].find((p) => p && existsSync(p)) : undefined;
  if (es?.prompts && !prompts) throw new HeedError(`early_stopping.ifs.prompts ${es.prompts} is neither in the job's data/ folder nor at that path`, 're-export the job, or copy the prompts file into <job>/data/');
  const maxTokens = es?.max_tokens ?? 64;
  const cb = new IfsEarlyStopping(
    es
      ? { patience: es.patience, minDelta: es.min_delta, minIfs: es.min_ifs, budget: es.budget, variant: es.variant, maxTokens, batchSize: es.batch_size, prompts, objecqa: es.objecqa, measureOnly: es.measure_only }
      : { measureOnly: true, maxTokens },
  );
  if (!es) log('heed watch: the job has no early_stopping.ifs: measuring IFS with the defaults, never stopping');
  const rows = evalRows(jobDir, job);
  const points = evalPoints(job);
  const metricsFile = join(runDir, 'metrics.jsonl');
  const sum: WatchSummary = { evaluated: [], skipped: [], stopped: null, best: null, finished: false, torn_lines: 0, bad_lines: 0 };
  const done = new Set<number>();
  {
    const prev = readMetrics(metricsFile).records.filter((r) => r.source === 'heed watch');
    cb.onResume(prev);
    for (const r of prev) done.add(r.step as number);
    if (prev.length) log(`heed watch: ${prev.length} evaluation(s) already in ${metricsFile}; continuing after step ${Math.max(...done)}`);
  }
  const t0 = performance.now();
  let reportedBad = 0;
  for (;;) {
    const m = readMetrics(metricsFile);
    if (m.torn) sum.torn_lines++;
    if (m.bad.length > reportedBad) {
      log(`heed watch: ${metricsFile}: ${m.bad.length} unreadable line(s) skipped (lines ${m.bad.slice(0, 5).join(', ')})`);
      reportedBad = m.bad.length;
      sum.bad_lines = m.bad.length;
    }
    const finished = existsSync(join(runDir, 'summary.json'));
    const todo = listCheckpoints(runDir).filter((c) => points.has(c.step) && !done.has(c.step));
    for (const c of todo) {
      done.add(c.step);
      writeFileSync(join(runDir, 'WATCHING'), String(c.step));
      const ts = performance.now();
      log(`heed watch: evaluating ${c.dir} (IFS on ${es?.budget ?? 200} prompts${es?.objecqa ? ', ObjecQA' : ''}${rows.length ? `, held-out loss on ${rows.length} rows` : ''}) ...`);
      let res;
      try {
        o.beforeLoad?.(c.dir);
        res = await evaluateCheckpoint({ kind: 'dir', dir: c.dir }, c.step, stageOf(job, c.step), cb, runDir, rows, maxTokens);
      } catch (e) {
        if (existsSync(c.dir)) throw e;
        const why = `checkpoint ${c.dir} disappeared while being evaluated (${(e as Error).message.split('\n')[0]})`;
        log(`heed watch: step ${c.step}: ${why}; skipped`);
        sum.skipped.push({ step: c.step, why });
        continue;
      } finally {
        rmSync(join(runDir, 'WATCHING'), { force: true });
      }
      const st = stageOf(job, c.step);
      const rec: Record<string, unknown> = { step: c.step, stage: st.index, stage_name: st.name, ...res.metrics, ...(res.heldOut !== undefined ? { watch_eval_loss: res.heldOut } : {}), source: 'heed watch', checkpoint: `step-${c.step}`, watch_seconds: (performance.now() - ts) / 1000 };
      appendFileSync(metricsFile, JSON.stringify(rec) + '\n');
      sum.evaluated.push(c.step);
      const mm = res.metrics ?? {};
      log(`heed watch: step ${c.step}: IFS ${Number(mm.ifs).toFixed(3)} (partial ${Number(mm.ifs_partial).toFixed(3)}, full ${Number(mm.ifs_full).toFixed(3)})${mm.objecqa !== undefined ? `  ObjecQA ${mm.objecqa.toFixed(3)}` : ''}${res.heldOut !== undefined ? `  held-out loss ${res.heldOut.toFixed(4)}` : ''}  (${((performance.now() - ts) / 1000).toFixed(1)} s)`);
      if (res.stop && !sum.stopped) {
        sum.stopped = { step: c.step, reason: res.reason ?? 'IFS early stopping' };
        writeFileSync(join(runDir, 'STOP'), JSON.stringify({ reason: sum.stopped.reason, step: c.step, by: 'heed watch' }) + '\n');
        log(`heed watch: early stop at step ${c.step}: ${sum.stopped.reason}; wrote ${join(runDir, 'STOP')}`);
        break;
      }
    }
    if ((sum.stopped && !o.untilEnd) || o.once) {
      sum.finished = existsSync(join(runDir, 'summary.json'));
      break;
    }
    if (finished && todo.length === 0) {
      sum.finished = true;
      break;
    }
    if (o.timeout !== undefined && (performance.now() - t0) / 1000 > o.timeout) {
      log(`heed watch: no end of the run after ${o.timeout} s; stopping the watch (the job goes on)`);
      break;
    }
    await sleep((o.poll ?? 5) * 1000);
  }
  const b = cb.best();
  sum.best = b ? { step: b.step, ifs: b.ifs } : null;
  writeFileSync(join(runDir, 'watch.json'), JSON.stringify({ ...sum, rule: cb.rule, history: cb.history }, null, 2) + '\n');
  return sum;
}
