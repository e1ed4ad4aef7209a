/**
 * What `heed report` accepts besides run folders: model folders with a cached evaluation, and the
 * result files of `heed ifs` / `heed objecqa` (their `--json` summary, or their `--out` JSONL of scored
 * responses / answers). Anything else is refused with an error that names the input and what would work;
 * nothing given is silently ignored.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { HeedError } from '../errors.js';

/** One evaluated model outside a run: IFS per variant and/or the ObjecQA objective share. */
export interface EvalEntry {
  name: string;
  source: string;
  kind: 'model folder' | 'heed ifs result' | 'heed objecqa result';
  model?: string;
  /** IFS per variant (A, B, C) */
  ifs?: Record<string, number>;
  objecqa?: number;
  /** how many responses / answers the numbers rest on */
  n?: { ifs?: number; objecqa?: number };
}

/** evaluations cached in a model folder: the `--json` output of heed ifs / heed objecqa saved under these names */
export const CACHED_EVALS = ['ifs.json', 'objecqa.json', 'ifs.jsonl', 'objecqa.jsonl'];

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseJsonFile(p: string): unknown {
  try {
    return JSON.parse(readFileSync(p, 'utf8'));
  } catch (e) {
    throw new HeedError(`${p}: not a JSON file heed report can read (${(e as Error).message.split('\n')[0]})`, 'pass run folders, model folders with ifs.json/objecqa.json, or the output of heed ifs --json / heed objecqa --json');
  }
}

function readJsonlRows(p: string): Array<Record<string, unknown>> {
  const rows: Array<Record<string, unknown>> = [];
  const lines = readFileSync(p, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].trim()) continue;
    let v: unknown;
    try {
      v = JSON.parse(lines[i]);
    } catch {
      throw new HeedError(`${p}:${i + 1}: malformed JSON in a result file`, 'pass the file heed ifs --out / heed objecqa --out wrote, unchanged');
    }
    if (!isObj(v)) throw new HeedError(`${p}:${i + 1}: a result row must be an object`, 'pass the file heed ifs --out / heed objecqa --out wrote, unchanged');
    rows.push(v);
  }
  return rows;
}

/** Read one result file into an EvalEntry, or throw what it is not. */
export function readResultFile(p: string, name = basename(p).replace(/\.jsonl?$/, '')): EvalEntry {
  const how = 'pass the output of heed ifs --json (or --out) or heed objecqa --json (or --out)';
  if (p.endsWith('.jsonl')) {
    const rows = readJsonlRows(p);
    if (rows.length === 0) throw new HeedError(`${p}: empty result file`, how);
    if (rows.every((r) => (r.label === 0 || r.label === 1) && typeof r.variant === 'string' && typeof r.response === 'string')) {
      const ifs: Record<string, number> = {};
      let n = 0;
      for (const v of [...new Set(rows.map((r) => r.variant as string))].sort()) {
        const xs = rows.filter((r) => r.variant === v);
        ifs[v] = xs.filter((r) => r.label === 1).length / xs.length;
        n = Math.max(n, xs.length);
      }
      return { name, source: p, kind: 'heed ifs result', ifs, n: { ifs: n } };
    }
    if (rows.every((r) => (r.label === 'Objective' || r.label === 'Subjective') && typeof r.answer === 'string')) {
      return { name, source: p, kind: 'heed objecqa result', objecqa: rows.filter((r) => r.label === 'Objective').length / rows.length, n: { objecqa: rows.length } };
    }
    throw new HeedError(`${p}: JSONL, but not IFS responses (label 0/1, variant, response) nor ObjecQA answers (label Objective/Subjective, answer)`, how);
  }
  const j = parseJsonFile(p);
  if (isObj(j) && Array.isArray(j.scores) && j.scores.every((s) => isObj(s) && typeof s.variant === 'string' && isObj(s.ifs) && typeof s.ifs.value === 'number')) {
    const scores = j.scores as Array<{ variant: string; ifs: { value: number; n: number } }>;
    if (scores.length === 0) throw new HeedError(`${p}: an IFS result with no scores`, how);
    return { name, source: p, kind: 'heed ifs result', model: typeof j.model === 'string' ? j.model : undefined, ifs: Object.fromEntries(scores.map((s) => [s.variant, s.ifs.value])), n: { ifs: Math.max(...scores.map((s) => s.ifs.n ?? 0)) } };
  }
  if (isObj(j) && isObj(j.objective) && typeof j.objective.value === 'number') {
    return { name, source: p, kind: 'heed objecqa result', model: typeof j.model === 'string' ? j.model : undefined, objecqa: j.objective.value, n: { objecqa: typeof j.objective.n === 'number' ? j.objective.n : undefined } };
  }
  throw new HeedError(`${p}: a JSON file, but not a heed ifs or heed objecqa result (no "scores" with IFS values, no "objective")`, how);
}

/** A model folder (config.json + weights): its cached evaluations, merged into one entry. */
export function readModelFolder(dir: string, name = basename(dir)): EvalEntry {
  const found = CACHED_EVALS.filter((f) => existsSync(join(dir, f)));
  if (found.length === 0) {
    const inRun = existsSync(join(dirname(dir), 'metrics.jsonl'));
    throw new HeedError(
      `${dir}: a model folder with no evaluation to report (none of ${CACHED_EVALS.join(', ')} in it)`,
      `evaluate it first: heed ifs --model ${dir} --json > ${basename(dir)}-ifs.json (and/or heed objecqa --model ${dir} --json > ${basename(dir)}-objecqa.json) and pass those files, or save them in the folder as ifs.json / objecqa.json${inRun ? `; or pass its run folder ${dirname(dir)}` : ''}`,
    );
  }
  const e: EvalEntry = { name, source: dir, kind: 'model folder', model: dir, n: {} };
  for (const f of found) {
    const r = readResultFile(join(dir, f));
    if (r.ifs) [e.ifs, e.n!.ifs] = [r.ifs, r.n?.ifs];
    if (r.objecqa !== undefined) [e.objecqa, e.n!.objecqa] = [r.objecqa, r.n?.objecqa];
  }
  return e;
}

export const isModelFolder = (d: string) => existsSync(join(d, 'config.json')) && (existsSync(join(d, 'model.safetensors')) || existsSync(join(d, 'model.safetensors.index.json')));
export const isFile = (p: string) => existsSync(p) && statSync(p).isFile();
