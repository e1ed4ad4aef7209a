/**
 * Run folders → one self-contained HTML report (inline SVG, no scripts, no network): training and held-out
 * loss, IFS and ObjecQA over steps with stage marks, the early-stop point and the best checkpoint, tables
 * (IFS per variant, run summaries) and sample responses. Several runs are overlaid.
 * Reads only plain files: metrics.jsonl, summary.json, ifs/step-N.jsonl, and (for a demo folder) demo.json.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { HeedError } from '../errors.js';
import { esc, lineChart, PALETTE, type Mark, type Series } from './svg.js';
import { isFile, isModelFolder, readModelFolder, readResultFile, type EvalEntry } from './inputs.js';

export interface Table {
  title: string;
  columns: string[];
  rows: Array<Array<string | number>>;
  note?: string;
}

export interface Sample {
  title: string;
  prompt: string;
  responses: Array<{ label: string; text: string; answerLike?: boolean }>;
}

/** What a demo (or any driver) adds to its folder for the report: demo.json */
export interface ReportExtras {
  title?: string;
  intro?: string;
  tables?: Table[];
  samples?: Sample[];
}

export interface RunRecord {
  name: string;
  dir: string;
  metrics: Array<Record<string, number | string>>;
  summary: Record<string, unknown> | undefined;
  ifsFiles: Array<{ step: number; rows: Array<Record<string, unknown>> }>;
}

const readJsonl = (p: string) =>
  readFileSync(p, 'utf8')
    .split('\n')
    .filter(Boolean)
    .flatMap((l) => {
      try {
        return [JSON.parse(l)];
      } catch {
        return [];
      }
    });

export function readRun(dir: string, name = basename(dir)): RunRecord {
  const metrics = readJsonl(join(dir, 'metrics.jsonl'));
  const summary = existsSync(join(dir, 'summary.json')) ? JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) : undefined;
  const ifsDir = join(dir, 'ifs');
  const ifsFiles = existsSync(ifsDir)
    ? readdirSync(ifsDir)
        .map((f) => /^step-(\d+)\.jsonl$/.exec(f))
        .filter((m): m is RegExpExecArray => !!m)
        .map((m) => ({ step: Number(m[1]), rows: readJsonl(join(ifsDir, m[0])) }))
        .sort((a, b) => a.step - b.step)
    : [];
  return { name, dir, metrics, summary, ifsFiles };
}

/**
 * Expand the inputs: a run folder, a folder of run folders (e.g. a demo; demo.json adds extras), a model
 * folder with a cached evaluation, or a heed ifs / heed objecqa result file. Every input contributes or
 * is refused with an error naming it.
 */
export function collect(dirs: string[]): { runs: RunRecord[]; extras: ReportExtras[]; evals: EvalEntry[] } {
  const runs: RunRecord[] = [];
  const extras: ReportExtras[] = [];
  const evals: EvalEntry[] = [];
  const what = 'pass run folders (heed train, heed demo), model folders with ifs.json/objecqa.json, or heed ifs / heed objecqa result files';
  for (const d of dirs) {
    if (!existsSync(d)) throw new HeedError(`${d}: not found`, what);
    if (isFile(d)) {
      evals.push(readResultFile(d));
      continue;
    }
    if (!statSync(d).isDirectory()) throw new HeedError(`${d}: not a folder or a result file`, what);
    const before = runs.length + extras.length;
    if (existsSync(join(d, 'demo.json'))) extras.push(JSON.parse(readFileSync(join(d, 'demo.json'), 'utf8')));
    if (existsSync(join(d, 'metrics.jsonl'))) runs.push(readRun(d));
    else for (const sub of readdirSync(d).sort()) if (existsSync(join(d, sub, 'metrics.jsonl'))) runs.push(readRun(join(d, sub), sub));
    if (runs.length + extras.length > before) continue;
    if (isModelFolder(d)) {
      evals.push(readModelFolder(d));
      continue;
    }
    throw new HeedError(`${d}: no metrics.jsonl (and no run folders inside), and not a model folder`, what);
  }
  return { runs, extras, evals };
}

const num = (x: unknown) => (typeof x === 'number' ? x : undefined);
export const pts = (ms: RunRecord['metrics'], key: string): Array<[number, number]> => ms.filter((m) => typeof m[key] === 'number').map((m) => [m.step as number, m[key] as number]);

export function marksFor(r: RunRecord, color: string, many: boolean): Mark[] {
  const marks: Mark[] = [];
  let prev: unknown;
  for (const m of r.metrics) {
    if (prev !== undefined && m.stage !== prev) marks.push({ x: (m.step as number) - 1, label: `${many ? r.name + ': ' : ''}stage ${m.stage_name}`, color });
    prev = m.stage;
  }
  const s = r.summary as { stopped_early?: { step: number } | null; best?: { step: number; metric: string } | null } | undefined;
  if (s?.stopped_early) marks.push({ x: s.stopped_early.step, label: `${many ? r.name + ': ' : ''}early stop`, color: '#b91c1c' });
  if (s?.best) marks.push({ x: s.best.step, label: `${many ? r.name + ': ' : ''}best (${s.best.metric})`, color: '#15803d' });
  return marks;
}

function table(t: Table): string {
  const cell = (v: string | number) => `<td>${typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : esc(v)}</td>`;
  return `<h3>${esc(t.title)}</h3><table><thead><tr>${t.columns.map((c) => `<th>${esc(c)}</th>`).join('')}</tr></thead><tbody>${t.rows.map((r) => `<tr>${r.map(cell).join('')}</tr>`).join('')}</tbody></table>${t.note ? `<p class="note">${esc(t.note)}</p>` : ''}`;
}

function samplesHtml(samples: Sample[]): string {
  return samples
    .map(
      (s) =>
        `<div class="sample"><div class="prompt"><b>${esc(s.title)}</b><pre>${esc(s.prompt)}</pre></div>${s.responses
          .map((r) => `<div class="resp ${r.answerLike === undefined ? '' : r.answerLike ? 'yes' : 'no'}"><span class="who">${esc(r.label)}${r.answerLike === undefined ? '' : r.answerLike ? ' · answer-like' : ' · continuation-like'}</span>${r.text.trim() ? `<pre>${esc(r.text)}</pre>` : '<pre class="empty">(empty response: the model ended at once)</pre>'}</div>`)
          .join('')}</div>`,
    )
    .join('');
}

/** Samples from a run's IFS files: the same prompts at the first and the last evaluation. */
function runSamples(r: RunRecord, n = 3): Sample[] {
  if (r.ifsFiles.length < 1) return [];
  const first = r.ifsFiles[0];
  const last = r.ifsFiles[r.ifsFiles.length - 1];
  return first.rows.filter((x) => x.kind === 'full').slice(0, n).map((row) => {
    const after = last.rows.find((y) => y.id === row.id);
    return {
      title: `${r.name}: ${String(row.id)}`,
      prompt: String(row.prompt),
      responses: [
        { label: `step ${first.step}`, text: String(row.response), answerLike: row.label === 1 },
        ...(after && last !== first ? [{ label: `step ${last.step}`, text: String(after.response), answerLike: after.label === 1 }] : []),
      ],
    };
  });
}

export function renderReport(dirs: string[]): string {
  const { runs, extras, evals } = collect(dirs);
  const many = runs.length > 1;
  const color = (i: number) => PALETTE[i % PALETTE.length];
  const allMarks = runs.flatMap((r, i) => marksFor(r, color(i), many));
  const charts: string[] = [];
  charts.push(lineChart({ id: 'train-loss', title: 'Training loss', xLabel: 'step', yLabel: 'loss (per loss-bearing token)', series: runs.map((r, i) => ({ name: r.name, points: pts(r.metrics, 'loss'), color: color(i) })), marks: allMarks }));
  charts.push(lineChart({ id: 'eval-loss', title: 'Held-out loss on output tokens', xLabel: 'step', yLabel: 'loss', series: runs.map((r, i) => ({ name: r.name, points: pts(r.metrics, 'eval_loss'), color: color(i), dots: true })), marks: allMarks }));
  const ifsSeries: Series[] = [];
  runs.forEach((r, i) => {
    if (pts(r.metrics, 'ifs').length === 0) return;
    ifsSeries.push({ name: `${r.name} IFS`, points: pts(r.metrics, 'ifs'), color: color(i), dots: true });
    if (!many) {
      ifsSeries.push({ name: 'IFS partial', points: pts(r.metrics, 'ifs_partial'), color: color(i + 1), dashed: true, dots: true });
      ifsSeries.push({ name: 'IFS full', points: pts(r.metrics, 'ifs_full'), color: color(i + 2), dashed: true, dots: true });
    }
  });
  const steps = runs.flatMap((r) => r.metrics.map((m) => m.step as number)).filter((x) => typeof x === 'number');
  const span: [number, number] = steps.length ? [Math.min(...steps), Math.max(...steps)] : [0, 1];
  const flat = (v: number): Array<[number, number]> => [[span[0], v], [span[1], v]];
  evals.forEach((e, i) => {
    const v = e.ifs?.A ?? (e.ifs ? Object.values(e.ifs)[0] : undefined);
    if (v !== undefined) ifsSeries.push({ name: `${e.name} IFS${e.ifs?.A === undefined ? ` (${Object.keys(e.ifs!)[0]})` : ''}`, points: flat(v), color: color(runs.length + i), dashed: true });
  });
  if (ifsSeries.length) charts.push(lineChart({ id: 'ifs', title: 'Instruction Following Score over steps', xLabel: 'step', yLabel: 'IFS', series: ifsSeries, marks: allMarks, yMin: 0, yMax: 1 }));
  const oq: Series[] = runs.map((r, i) => ({ name: `${r.name} ObjecQA`, points: pts(r.metrics, 'objecqa'), color: color(i), dots: true })).filter((s) => s.points.length);
  evals.forEach((e, i) => {
    if (e.objecqa !== undefined) oq.push({ name: `${e.name} ObjecQA`, points: flat(e.objecqa), color: color(runs.length + i), dashed: true });
  });
  if (oq.length) charts.push(lineChart({ id: 'objecqa', title: 'ObjecQA (share of objective answers) over steps', xLabel: 'step', yLabel: 'objective share', series: oq, marks: allMarks, yMin: 0, yMax: 1 }));

  const runTable: Table = {
    title: 'Runs',
    columns: ['run', 'steps', 'tokens', 'seconds', 'final loss', 'final held-out loss', 'best checkpoint', 'stopped early'],
    rows: runs.map((r) => {
      const s = (r.summary ?? {}) as { steps?: number; tokens?: number; seconds?: number; final?: Record<string, number>; best?: { checkpoint: string; metric: string; value: number } | null; stopped_early?: { step: number; reason: string } | null };
      const lastEval = [...r.metrics].reverse().find((m) => typeof m.eval_loss === 'number');
      return [r.name, s.steps ?? r.metrics.length, s.tokens ?? '', num(s.seconds) ?? '', num(s.final?.loss) ?? num(r.metrics[r.metrics.length - 1]?.loss) ?? '', num(lastEval?.eval_loss) ?? '', s.best ? `${s.best.checkpoint} (${s.best.metric} ${s.best.value.toFixed(3)})` : '', s.stopped_early ? `step ${s.stopped_early.step}: ${s.stopped_early.reason}` : 'no'];
    }),
  };
  // one table over everything given: runs (their last evaluation) and evaluated models / result files
  const lastOf = (r: RunRecord, k: string) => num([...r.metrics].reverse().find((m) => typeof m[k] === 'number')?.[k]);
  const variants = [...new Set(evals.flatMap((e) => Object.keys(e.ifs ?? {})))].sort();
  const ifsCols = variants.length > 1 ? variants.map((v) => `IFS ${v}`) : ['IFS'];
  const compare: Table = {
    title: 'Comparison',
    columns: ['name', 'what', ...ifsCols, 'ObjecQA', 'held-out loss', 'source'],
    rows: [
      ...runs.map((r): Array<string | number> => [r.name, 'run (last evaluation)', ...ifsCols.map((_, k) => (k === 0 ? (lastOf(r, 'ifs') ?? '') : '')), lastOf(r, 'objecqa') ?? '', lastOf(r, 'eval_loss') ?? '', r.dir]),
      ...evals.map((e): Array<string | number> => [e.name, e.kind, ...(variants.length > 1 ? variants.map((v) => e.ifs?.[v] ?? '') : [e.ifs ? (e.ifs.A ?? Object.values(e.ifs)[0]) : '']), e.objecqa ?? '', '', e.source]),
    ],
    note: variants.length > 1 ? 'runs report IFS of the variant their early stopping used (A by default)' : undefined,
  };
  const title = extras.find((e) => e.title)?.title ?? `heed report: ${[...runs.map((r) => r.name), ...evals.map((e) => e.name)].join(', ')}`;
  const intro = extras.map((e) => e.intro).filter(Boolean).join(' ');
  const tables = [...extras.flatMap((e) => e.tables ?? []), ...(evals.length || (runs.length > 1 && runs.some((r) => lastOf(r, 'ifs') !== undefined)) ? [compare] : []), ...(runs.length ? [runTable] : [])];
  // a driver's own samples (demo.json) come first; then at most one before/after pair per run (three for a lone run)
  const samples = [...extras.flatMap((e) => e.samples ?? []), ...runs.flatMap((r) => runSamples(r, extras.length || many ? 1 : 3))];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1120px;margin:24px auto;padding:0 16px;color:#111}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}h3{font-size:15px}
.charts{display:grid;grid-template-columns:1fr;gap:18px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left}th{background:#f3f4f6}
.note{color:#555;font-size:12px}.sample{border:1px solid #e5e7eb;border-radius:6px;padding:8px;margin:10px 0}
pre{white-space:pre-wrap;margin:4px 0;font-size:12px;background:#f9fafb;padding:6px;border-radius:4px}
pre.empty{color:#6b7280;font-style:italic}
.resp.yes pre{border-left:3px solid #16a34a}.resp.no pre{border-left:3px solid #dc2626}.who{font-size:12px;color:#374151}
</style></head><body>
<h1>${esc(title)}</h1>
${intro ? `<p>${esc(intro)}</p>` : ''}
<h2>Curves</h2><div class="charts">${charts.join('\n')}</div>
<h2>Tables</h2>${tables.map(table).join('\n')}
${samples.length ? `<h2>Sample responses</h2>${samplesHtml(samples)}` : ''}
<p class="note">Generated by heed report from ${esc(dirs.join(', '))}. Vertical marks: stage boundaries, early stop (red), best checkpoint (green).</p>
</body></html>
`;
}
