/**
 * What the dashboard shows about run folders, read only from their plain files (config.yaml, metrics.jsonl,
 * summary.json, step-N/ checkpoints, ifs/step-N.jsonl) through the same readers as `heed report`.
 * Node only (it reads the disk); the browser gets the JSON and SVG this module makes.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { readRun, marksFor, pts, type RunRecord } from '../report/html.js';
import { lineChart, PALETTE, type Series } from '../report/svg.js';
import { listCheckpoints } from '../train/checkpoint.js';

/** A run with no summary.json whose files changed within this many ms is "running". */
export const RUNNING_WINDOW_MS = 120_000;

export interface RunListing {
  /** path below the runs root, with "/" (the id the page uses) */
  name: string;
  status: 'running' | 'finished' | 'stopped early' | 'interrupted' | 'not running';
  statusNote: string;
  steps: number;
  lastLoss?: number;
  lastEvalLoss?: number;
  lastIfs?: number;
  updated: number;
  checkpoints: Array<{ step: number; best: boolean }>;
}

const isRun = (d: string) => existsSync(join(d, 'metrics.jsonl')) || existsSync(join(d, 'config.yaml'));

/** Run folders at most two levels below root (a demo folder holds its runs one level down). */
export function findRuns(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string, depth: number) => {
    let entries: string[];
    try {
      entries = readdirSync(d).sort();
    } catch {
      return;
    }
    if (depth > 0 && isRun(d)) {
      out.push(d);
      return;
    }
    if (depth >= 2) return;
    for (const e of entries) {
      if (e.startsWith('.') || /^step-\d+$/.test(e)) continue;
      const p = join(d, e);
      try {
        if (statSync(p).isDirectory()) walk(p, depth + 1);
      } catch {
        /* vanished while listing */
      }
    }
  };
  if (isRun(root)) return [root];
  walk(root, 0);
  return out;
}

export const runName = (root: string, dir: string) => (dir === root ? dir.split(sep).pop()! : relative(root, dir).split(sep).join('/'));

function mtime(p: string): number {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return 0;
  }
}

/** A cheap fingerprint of a run's files: it changes whenever the trainer writes. */
export function runSignature(dir: string): string {
  const m = join(dir, 'metrics.jsonl');
  let size = 0;
  try {
    size = statSync(m).size;
  } catch {
    /* not yet written */
  }
  return `${size}:${mtime(m)}:${mtime(join(dir, 'summary.json'))}:${listCheckpoints(dir).map((c) => c.step).join(',')}`;
}

/** readRun, or an empty record for a run that has started but not written metrics.jsonl yet. */
export function readRunSafe(dir: string, name: string): RunRecord {
  if (!existsSync(join(dir, 'metrics.jsonl'))) return { name, dir, metrics: [], summary: undefined, ifsFiles: [] };
  try {
    return readRun(dir, name);
  } catch {
    // summary.json caught mid-write (the trainer writes it in place): empty for now, the page polls again
    return { name, dir, metrics: [], summary: undefined, ifsFiles: [] };
  }
}

export function describeRun(root: string, dir: string, now = Date.now()): RunListing {
  const r = readRunSafe(dir, runName(root, dir));
  const s = r.summary as { interrupted?: boolean; stopped_early?: { step: number; reason: string } | null; best?: { step: number } | null; steps?: number } | undefined;
  const updated = Math.max(mtime(join(dir, 'metrics.jsonl')), mtime(join(dir, 'config.yaml')), mtime(join(dir, 'summary.json')));
  let status: RunListing['status'];
  let statusNote = '';
  if (s) {
    if (s.interrupted) [status, statusNote] = ['interrupted', 'heed train --resume continues it'];
    else if (s.stopped_early) [status, statusNote] = ['stopped early', `step ${s.stopped_early.step}: ${s.stopped_early.reason}`];
    else status = 'finished';
  } else if (now - updated < RUNNING_WINDOW_MS) status = 'running';
  else [status, statusNote] = ['not running', 'no summary.json and no writes for 2 min: killed or crashed (heed train --resume continues it)'];
  const last = (k: string) => [...r.metrics].reverse().find((m) => typeof m[k] === 'number')?.[k] as number | undefined;
  const best = s?.best?.step;
  return {
    name: r.name,
    status,
    statusNote,
    steps: r.metrics.length ? (r.metrics[r.metrics.length - 1].step as number) : 0,
    lastLoss: last('loss'),
    lastEvalLoss: last('eval_loss'),
    lastIfs: last('ifs'),
    updated,
    checkpoints: listCheckpoints(dir).map((c) => ({ step: c.step, best: c.step === best })),
  };
}

export interface RunView {
  runs: string[];
  charts: string[];
  ifs: Array<{ run: string; step: number; ifs?: number; ifs_partial?: number; ifs_full?: number; objecqa?: number; prompts: number }>;
  marks: Array<{ run: string; step: number; label: string }>;
}

/** Charts (inline SVG from heed report's chart code) and IFS tables for the selected runs, overlaid. */
export function viewRuns(records: RunRecord[]): RunView {
  const many = records.length > 1;
  const color = (i: number) => PALETTE[i % PALETTE.length];
  const marks = records.flatMap((r, i) => marksFor(r, color(i), many));
  const charts = [
    lineChart({ id: 'train-loss', title: 'Training loss', xLabel: 'step', yLabel: 'loss', series: records.map((r, i) => ({ name: r.name, points: pts(r.metrics, 'loss'), color: color(i) })), marks }),
    lineChart({ id: 'eval-loss', title: 'Held-out loss on output tokens', xLabel: 'step', yLabel: 'loss', series: records.map((r, i) => ({ name: r.name, points: pts(r.metrics, 'eval_loss'), color: color(i), dots: true })), marks }),
  ];
  const ifsSeries: Series[] = records.map((r, i) => ({ name: `${r.name} IFS`, points: pts(r.metrics, 'ifs'), color: color(i), dots: true })).filter((x) => x.points.length);
  if (ifsSeries.length) charts.push(lineChart({ id: 'ifs', title: 'Instruction Following Score', xLabel: 'step', yLabel: 'IFS', series: ifsSeries, marks, yMin: 0, yMax: 1 }));
  const ifs = records.flatMap((r) =>
    r.metrics
      .filter((m) => typeof m.ifs === 'number')
      .map((m) => {
        const f = r.ifsFiles.find((x) => x.step === m.step);
        const n = (k: string) => (typeof m[k] === 'number' ? (m[k] as number) : undefined);
        return { run: r.name, step: m.step as number, ifs: n('ifs'), ifs_partial: n('ifs_partial'), ifs_full: n('ifs_full'), objecqa: n('objecqa'), prompts: f?.rows.length ?? 0 };
      }),
  );
  const markRows = records.flatMap((r, i) => marksFor(r, color(i), false).map((m) => ({ run: r.name, step: m.x, label: m.label })));
  return { runs: records.map((r) => r.name), charts, ifs, marks: markRows };
}
