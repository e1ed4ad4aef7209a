/**
 * Logs where users look, besides metrics.jsonl: TensorBoard event files and a CSV file, both made from the
 * run's metrics records (one JSON object per step: `step` and named numbers, e.g. loss, lr, eval_loss, ifs).
 *
 *  - `RunLoggers.open(runDir, kinds)` rebuilds the files from the run's metrics.jsonl as it stands (so a
 *    resumed run — whose metrics.jsonl the trainer has cut back to its checkpoint — shows each step once),
 *    then `write(rec)` appends every new record: the files are readable while the run goes on;
 *  - `exportRunLogs(runDir, kinds)`: the same for a finished or a live run, from outside (`heed logs export`).
 *
 * Files: `<run>/events.out.tfevents.<time>.<host>` (so `tensorboard --logdir runs/` lists each run by its
 * folder name; one scalar per numeric metric, tag = the metric's name) and `<run>/metrics.csv` (one header,
 * `step` then a column per metric in order of first appearance, empty where a step has no value).
 * No tensors: records in, files out.
 */
import { existsSync, readdirSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { readMetrics, type MetricsRecord } from '../metrics.js';
import { HeedError } from '../../errors.js';
import { EventFileWriter } from './tensorboard.js';

export type LoggerKind = 'tensorboard' | 'csv';
export const LOGGER_KINDS: LoggerKind[] = ['tensorboard', 'csv'];

/** The logger kinds a (validated) config asks for (`loggers: [tensorboard, csv]`), in a fixed order. */
export function loggerKinds(c: { loggers?: readonly LoggerKind[] }): LoggerKind[] {
  const k = new Set<LoggerKind>(c.loggers ?? []);
  return LOGGER_KINDS.filter((x) => k.has(x));
}

/** The records of a metrics.jsonl (src/train/metrics.ts: a torn last line — a run killed mid-write, or one still writing — is left out). */
const readMetricsRecords = (file: string): MetricsRecord[] => readMetrics(file).records;

/** The numeric metrics of a record (not `step`, not strings such as stage_name), in record order. */
export const scalarsOf = (rec: MetricsRecord): Array<[string, number]> => Object.entries(rec).filter((e): e is [string, number] => e[0] !== 'step' && typeof e[1] === 'number');

export const CSV_NAME = 'metrics.csv';

const csvCell = (v: unknown) => {
  if (v === undefined || v === null) return '';
  const s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : String(v)) : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** metrics.csv: one header; a new metric (eval_loss, ifs, … first appear later) rewrites the file with a column for it. */
class CsvLog {
  private cols: string[] = ['step'];
  private rows: MetricsRecord[] = [];
  constructor(readonly file: string) {}
  write(recs: MetricsRecord[]): void {
    const before = this.cols.length;
    for (const r of recs) for (const k of Object.keys(r)) if (!this.cols.includes(k)) this.cols.push(k);
    this.rows.push(...recs);
    const line = (r: MetricsRecord) => this.cols.map((c) => csvCell(r[c])).join(',') + '\n';
    if (this.cols.length !== before || !existsSync(this.file)) writeFileSync(this.file, [this.cols.join(',') + '\n', ...this.rows.map(line)].join(''));
    else if (recs.length) appendFileSync(this.file, recs.map(line).join(''));
  }
}

/** The live loggers of one run. */
export class RunLoggers {
  private constructor(
    private readonly tb: EventFileWriter | undefined,
    private readonly csv: CsvLog | undefined,
    readonly files: string[],
  ) {}

  /** Open the loggers of `runDir` (an existing metrics.jsonl is written first); none asked for: a no-op logger. */
  static open(runDir: string, kinds: LoggerKind[], outDir = runDir): RunLoggers {
    for (const k of kinds) if (!LOGGER_KINDS.includes(k)) throw new HeedError(`unknown logger "${k}"`, `use ${LOGGER_KINDS.join(' or ')}`);
    let tb: EventFileWriter | undefined;
    if (kinds.includes('tensorboard')) {
      // one event file per run folder: the previous one (an earlier session, an earlier export) is replaced
      if (existsSync(outDir)) for (const f of readdirSync(outDir)) if (f.startsWith('events.out.tfevents.')) rmSync(join(outDir, f));
      tb = new EventFileWriter(outDir);
    }
    const csv = kinds.includes('csv') ? new CsvLog(join(outDir, CSV_NAME)) : undefined;
    if (csv) rmSync(csv.file, { force: true });
    const l = new RunLoggers(tb, csv, [...(tb ? [tb.file] : []), ...(csv ? [csv.file] : [])]);
    const m = join(runDir, 'metrics.jsonl');
    // no logger asked for (the default): nothing to read or write
    if (kinds.length && existsSync(m)) l.write(readMetricsRecords(m));
    return l;
  }

  write(recs: MetricsRecord | MetricsRecord[]): void {
    const rs = Array.isArray(recs) ? recs : [recs];
    const now = Date.now() / 1000;
    if (this.tb) for (const r of rs) this.tb.scalars(r.step, scalarsOf(r), typeof r.wall_time === 'number' ? r.wall_time : now);
    this.csv?.write(rs);
  }
}

/**
 * `heed logs export`: the run's metrics.jsonl as TensorBoard events and/or CSV (finished or live runs).
 * `follow`: keep appending what the run writes until its summary.json appears or `signal` aborts.
 */
export async function exportRunLogs(runDir: string, kinds: LoggerKind[], o: { outDir?: string; follow?: boolean; pollMs?: number; signal?: AbortSignal; onRecords?: (n: number) => void } = {}): Promise<{ records: number; files: string[] }> {
  const m = join(runDir, 'metrics.jsonl');
  if (!existsSync(m)) throw new HeedError(`${runDir}: no metrics.jsonl`, 'pass a run folder that heed train writes (runs/<name>); a run writes metrics.jsonl from its first step on');
  if (!kinds.length) throw new HeedError('nothing to export', 'pass --tensorboard, --csv or both');
  let l = RunLoggers.open(runDir, kinds, o.outDir ?? runDir);
  let n = readMetricsRecords(m).length;
  o.onRecords?.(n);
  while (o.follow && !o.signal?.aborted && !existsSync(join(runDir, 'summary.json'))) {
    await new Promise((r) => setTimeout(r, o.pollMs ?? 2000));
    const recs = readMetricsRecords(m);
    if (recs.length < n) {
      // the run was resumed and cut its metrics back to a checkpoint: start the files again
      l = RunLoggers.open(runDir, kinds, o.outDir ?? runDir);
      n = recs.length;
      o.onRecords?.(n);
    } else if (recs.length > n) {
      l.write(recs.slice(n));
      n = recs.length;
      o.onRecords?.(n);
    }
  }
  if (o.follow) {
    const recs = readMetricsRecords(m);
    if (recs.length > n) l.write(recs.slice(n)), (n = recs.length), o.onRecords?.(n);
  }
  return { records: n, files: l.files };
}
