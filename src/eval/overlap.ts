/**
 * IFS prompts that overlap the training data. The shipped IFS prompts are drawn from Dolly — the data a
 * user is most likely to train on — and a prompt whose source instruction was trained on measures
 * memorisation, not instruction following. A prompt overlaps when its source instruction (I; partial
 * prompts share their source's I) occurs in a training row's prompt text (user and system turns):
 *
 *  - exact: the normalised instruction (NFKC, lower case, every run of non-letters/digits one space) is
 *    a whole-word substring of a normalised training prompt;
 *  - near-duplicate: at least `nearThreshold` (default 0.8) of the instruction's word 3-grams occur in
 *    one training prompt, for instructions of at least `nearMinGrams` (default 8, i.e. 10 words) 3-grams:
 *    shorter ones are templated questions ("What are the words of House Tyrell?" vs "… House Royce?")
 *    that differ in the one word that matters, so only an exact match counts for them. An inverted
 *    index of 3-grams keeps this linear in the data.
 *
 * Plain text in, ids out: no tensors, no model.
 */
import { BadRowLog, loadConversations, type LoadInfo, type LoadOptions } from '../data/load.js';
import type { PromptRow } from './ifs/fragments.js';

export const normaliseText = (s: string) =>
  s
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();

const grams = (words: string[], n = 3): string[] => {
  const out: string[] = [];
  for (let i = 0; i + n <= words.length; i++) out.push(words.slice(i, i + n).join(' '));
  return out;
};

export interface OverlapReport {
  prompts: number;
  sources: number;
  /** sources whose instruction occurs exactly (normalised) in the training data */
  exact_sources: number;
  /** further sources that are near-duplicates */
  near_sources: number;
  /** prompts (full and partial) of the overlapping sources */
  overlapping_prompts: number;
  /** prompt ids that overlap, and the kind of match */
  matches: Array<{ source_id: string; match: 'exact' | 'near'; row: number; containment?: number }>;
}

/**
 * Which prompts overlap the training prompt texts. `trainingTexts`: one string per training row (its
 * user and system contents joined).
 */
export function findOverlap(prompts: PromptRow[], trainingTexts: string[], o: { nearThreshold?: number; nearMinGrams?: number } = {}): OverlapReport {
  const thr = o.nearThreshold ?? 0.8;
  const minGrams = o.nearMinGrams ?? 8;
  const norm = trainingTexts.map((t) => ` ${normaliseText(t)} `);
  const index = new Map<string, number[]>();
  norm.forEach((t, row) => {
    for (const g of new Set(grams(t.trim().split(' ')))) {
      const l = index.get(g);
      if (l) l.push(row);
      else index.set(g, [row]);
    }
  });
  const bySource = new Map<string, string>();
  for (const p of prompts) if (!bySource.has(p.source_id)) bySource.set(p.source_id, p.instruction ?? p.prompt);
  const matches: OverlapReport['matches'] = [];
  for (const [source_id, instruction] of bySource) {
    const n = normaliseText(instruction);
    if (!n) continue;
    const words = n.split(' ');
    const gs = [...new Set(grams(words))];
    // candidate rows: those sharing a 3-gram (or, for short instructions, every row holding the text)
    const hits = new Map<number, number>();
    for (const g of gs) for (const row of index.get(g) ?? []) hits.set(row, (hits.get(row) ?? 0) + 1);
    const needle = ` ${n} `;
    const candidates = gs.length ? [...hits.keys()] : norm.map((_, i) => i);
    const exactRow = candidates.find((row) => norm[row].includes(needle));
    if (exactRow !== undefined) {
      matches.push({ source_id, match: 'exact', row: exactRow });
      continue;
    }
    if (gs.length < minGrams) continue;
    let best = -1;
    let bestC = 0;
    for (const [row, k] of hits) if (k / gs.length > bestC) [best, bestC] = [row, k / gs.length];
    if (best >= 0 && bestC >= thr) matches.push({ source_id, match: 'near', row: best, containment: +bestC.toFixed(3) });
  }
  const over = new Set(matches.map((m) => m.source_id));
  return {
    prompts: prompts.length,
    sources: bySource.size,
    exact_sources: matches.filter((m) => m.match === 'exact').length,
    near_sources: matches.filter((m) => m.match === 'near').length,
    overlapping_prompts: prompts.filter((p) => over.has(p.source_id)).length,
    matches,
  };
}

/** The prompts that do not overlap. */
export function withoutOverlap(prompts: PromptRow[], r: OverlapReport): PromptRow[] {
  const over = new Set(r.matches.map((m) => m.source_id));
  return prompts.filter((p) => !over.has(p.source_id));
}

/** The prompt text (user and system contents) of every row of the data files, as the loader reads them (bad rows skipped: the run has already reported them). */
export async function trainingPromptTexts(paths: string[], opts: LoadOptions = {}): Promise<string[]> {
  const out: string[] = [];
  for (const path of paths) {
    const log = new BadRowLog('skip', path);
    const info: LoadInfo = { file: path, rows: 0, blankLines: 0, lastLine: 0 };
    for await (const c of loadConversations(path, opts, log, info)) out.push(c.messages.filter((m) => m.role !== 'assistant').map((m) => m.content).join('\n'));
  }
  return out;
}

export const describeOverlap = (r: OverlapReport) =>
  `${r.overlapping_prompts} of ${r.prompts} IFS prompts (${r.exact_sources + r.near_sources} of ${r.sources} source instructions: ${r.exact_sources} exact, ${r.near_sources} near-duplicate) occur in the training data`;

/** Where a model folder's training data is named, and what it names (paths resolved; format options of the run). */
export interface TrainingDataRef {
  /** the file that names the data (heed_training.json or the run's config.yaml) */
  from: string;
  paths: string[];
  /** named paths that no longer exist (the check cannot use them) */
  missing: string[];
  opts: LoadOptions;
}

const dataPaths = (d: unknown): string[] => (d === undefined || d === null ? [] : (Array.isArray(d) ? d : [d]).map((e) => (typeof e === 'string' ? e : e && typeof e === 'object' && typeof (e as { path?: unknown }).path === 'string' ? (e as { path: string }).path : '')).filter(Boolean));

/**
 * The training data of a model folder that `heed train` wrote: a `data` list in its heed_training.json, else
 * the `data` / `stages[].data` of the run folder's config.yaml one level up (runs/<name>/{final,best,step-N}).
 * Undefined for folders heed did not train (a base model, a downloaded one).
 */
export async function trainingDataOf(modelDir: string): Promise<TrainingDataRef | undefined> {
  const { existsSync, readFileSync } = await import('node:fs');
  const { dirname, isAbsolute, join, resolve } = await import('node:path');
  const pick = (from: string, base: string, raw: string[], o: Record<string, unknown>): TrainingDataRef | undefined => {
    if (!raw.length) return undefined;
    const paths = raw.map((p) => (isAbsolute(p) ? p : resolve(base, p)));
    const opts: LoadOptions = {};
    if (typeof o.format === 'string') opts.format = o.format as LoadOptions['format'];
    if (o.fields && typeof o.fields === 'object') opts.fields = o.fields as LoadOptions['fields'];
    if (o.roles && typeof o.roles === 'object') opts.roles = o.roles as LoadOptions['roles'];
    return { from, paths: paths.filter((p) => existsSync(p)), missing: paths.filter((p) => !existsSync(p)), opts };
  };
  const rec = join(modelDir, 'heed_training.json');
  let fromRecord: Record<string, unknown> | undefined;
  if (existsSync(rec)) {
    try {
      fromRecord = JSON.parse(readFileSync(rec, 'utf8'));
    } catch {
      fromRecord = undefined;
    }
    const r = fromRecord && pick(rec, modelDir, dataPaths(fromRecord.data), fromRecord);
    if (r) return r;
  }
  const cfgFile = join(dirname(resolve(modelDir)), 'config.yaml');
  if (!fromRecord || !existsSync(cfgFile)) return undefined; // only folders heed trained
  const YAML = (await import('yaml')).default;
  let cfg: Record<string, unknown>;
  try {
    cfg = YAML.parse(readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (!cfg || typeof cfg !== 'object') return undefined;
  const raw = [...dataPaths(cfg.data), ...(Array.isArray(cfg.stages) ? cfg.stages.flatMap((s) => dataPaths((s as { data?: unknown })?.data)) : [])];
  return pick(cfgFile, dirname(cfgFile), [...new Set(raw)], cfg);
}
