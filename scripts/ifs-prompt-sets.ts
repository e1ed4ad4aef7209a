/**
 * docs/ifs.md "Which set is the default of `heed ifs`": the prompt-set table, re-measured with the shipped
 * classifiers (issue 14 item 6).
 *
 *   nice -n 10 node --import tsx scripts/ifs-prompt-sets.ts generate [--variants C|all]   (heed ifs per run → runs/ifs-prompt-sets/)
 *   node --import tsx scripts/ifs-prompt-sets.ts score                                    (re-score those responses, update the JSON)
 *
 * `generate` runs `heed ifs --model M [--adapter rules] --prompts SET --limit 200 --variant V --out F` for the six
 * (set, model) runs of the table (greedy, 64 new tokens, batch 16; tiny-dolly on alpaca-eval --batch 8, as in the
 * table) and keeps every response in runs/ifs-prompt-sets/<run>.jsonl (git-ignored). `score` re-scores those
 * responses with the shipped response and pair classifiers (data/ifs/*.safetensors) — so a new classifier is
 * re-measured without generating again —, checks that IFS of each re-generated variant equals the number
 * recorded in docs/ifs-prompt-sets.json (greedy decoding is deterministic), writes the new IFS-pair numbers
 * there (the previous ones kept as `ifs_pair_linear`, the linear pair classifier shipped before issue 14 item 3)
 * and prints the table's rows.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, loadavg } from 'node:os';
import { loadIfsClassifier, loadIfsPairClassifier } from '../src/eval/ifs/classifier.js';
import { loadPromptSet } from '../src/eval/ifs/prompts.js';
import { ratio, type Ratio } from '../src/eval/ifs/score.js';
import { repoPath } from '../src/eval/jsonl.js';

interface Run { model: string; adapter: string | null; prompt_set: string; batch?: number }
const RUNS: Run[] = [
  { model: 'models/base-dolly', adapter: null, prompt_set: 'alpaca-eval' },
  { model: 'models/base-dolly', adapter: 'rules', prompt_set: 'alpaca-eval' },
  { model: 'models/tiny-dolly', adapter: null, prompt_set: 'alpaca-eval', batch: 8 },
  { model: 'models/base-dolly', adapter: null, prompt_set: 'dolly' },
  { model: 'models/base-dolly', adapter: 'rules', prompt_set: 'dolly' },
  { model: 'models/tiny-dolly', adapter: null, prompt_set: 'dolly' },
];
const JSON_PATH = repoPath('docs/ifs-prompt-sets.json');
const DIR = repoPath('runs/ifs-prompt-sets');
const slug = (r: Run) => `${r.prompt_set}-${r.model.split('/').pop()}${r.adapter ? `-${r.adapter}` : ''}`;
const same = (a: { model: string; adapter: string | null; prompt_set: string }, b: Run) => a.model === b.model && a.adapter === b.adapter && a.prompt_set === b.prompt_set;

const [cmd = 'score', ...rest] = process.argv.slice(2);
const vi = rest.indexOf('--variants');
const variants = vi >= 0 && rest[vi + 1] === 'all' ? 'all' : 'C';

if (cmd === 'generate') {
  mkdirSync(DIR, { recursive: true });
  const t0 = performance.now();
  RUNS.forEach((r, i) => {
    const args = ['bin/heed.js', 'ifs', '--model', r.model, ...(r.adapter ? ['--adapter', r.adapter] : []), '--prompts', r.prompt_set, '--limit', '200', '--variant', variants, '--max-tokens', '64', '--batch', String(r.batch ?? 16), '--json', '--out', join(DIR, `${slug(r)}.jsonl`)];
    const done = (performance.now() - t0) / 1000;
    console.error(`[${i + 1}/${RUNS.length} ${slug(r)}: node ${args.join(' ')}${i ? `; ${done.toFixed(0)} s so far, ETA ${((done / i) * (RUNS.length - i)).toFixed(0)} s` : ''}]`);
    const s = spawnSync(process.execPath, args, { cwd: repoPath('.'), stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 1 << 28 });
    if (s.status !== 0) throw new Error(`${slug(r)}: heed ifs exited ${s.status}`);
    writeFileSync(join(DIR, `${slug(r)}.result.json`), s.stdout);
  });
  console.error(`[generated in ${((performance.now() - t0) / 1000).toFixed(0)} s; ${cpus()[0].model}, load ${loadavg()[0].toFixed(1)}]`);
} else if (cmd === 'score') {
  const resp = loadIfsClassifier();
  const pair = loadIfsPairClassifier();
  const doc = JSON.parse(readFileSync(JSON_PATH, 'utf8')) as { runs: Array<Run & { scores: Array<Record<string, unknown> & { variant: string; ifs: Ratio }> }>; [k: string]: unknown };
  const f2 = (x: Ratio | undefined) => (x ? x.value.toFixed(2) : '–');
  const ci = (x: Ratio) => `${x.value.toFixed(2)} [${x.ci[0].toFixed(2)}, ${x.ci[1].toFixed(2)}]`;
  const lines: string[] = [];
  let mismatches = 0;
  for (const r of RUNS) {
    const file = join(DIR, `${slug(r)}.jsonl`);
    if (!existsSync(file)) {
      console.error(`[${slug(r)}: no ${file}; run "generate" first]`);
      continue;
    }
    const prompts = new Map(loadPromptSet(r.prompt_set).prompts.map((p) => [p.id, p]));
    const rows = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string; kind: string; variant: string; response: string });
    const entry = doc.runs.find((x) => same(x, r));
    if (!entry) throw new Error(`${slug(r)}: not in ${JSON_PATH}`);
    for (const v of [...new Set(rows.map((x) => x.variant))]) {
      const rs = rows.filter((x) => x.variant === v);
      const lab = rs.map((x) => {
        const t = x.response.trim();
        const p = prompts.get(x.id);
        if (!p) throw new Error(`${slug(r)}: prompt ${x.id} not in the ${r.prompt_set} set`);
        return { kind: x.kind, ifs: t ? resp.classify(t).label : 0, pair: t ? pair.classify(t, p.prompt).label : 0 };
      });
      const rat = (key: 'ifs' | 'pair', kind?: string) => {
        const xs = lab.filter((x) => !kind || x.kind === kind);
        return ratio(xs.filter((x) => x[key] === 1).length, xs.length);
      };
      const s = entry.scores.find((x) => x.variant === v);
      if (!s) throw new Error(`${slug(r)}: variant ${v} not in ${JSON_PATH}`);
      const ifs = rat('ifs');
      const reproduced = ifs.k === s.ifs.k && ifs.n === s.ifs.n;
      if (!reproduced) mismatches++;
      if (s.ifs_pair && !s.ifs_pair_linear) s.ifs_pair_linear = s.ifs_pair;
      Object.assign(s, { ifs_pair: rat('pair'), ifs_pair_partial: rat('pair', 'partial'), ifs_pair_full: rat('pair', 'full'), ifs_reproduced: reproduced });
      console.error(`[${slug(r)} ${v}: IFS ${ifs.k}/${ifs.n} (recorded ${s.ifs.k}/${s.ifs.n}${reproduced ? ', reproduced' : ', DIFFERENT'}); IFS-pair ${rat('pair').k}/${ifs.n} (linear pair classifier: ${(s.ifs_pair_linear as Ratio | undefined)?.k ?? '–'})]`);
    }
    const by = (v: string) => entry.scores.find((x) => x.variant === v) as (Record<string, Ratio> & { variant: string }) | undefined;
    const C = by('C');
    if (C) lines.push(`| \`${r.prompt_set}\` | ${r.model}${r.adapter ? ` + ${r.adapter}` : ''} | ${ci(C.ifs)} | ${f2(C.ifs_partial)} | ${f2(C.ifs_full)} | ${f2(C.ifs_pair)} (${f2(C.ifs_pair_partial)} / ${f2(C.ifs_pair_full)}) | ${f2(C.ifs_pair_linear)} |`);
  }
  doc.ifs_pair = 'ifs_pair / ifs_pair_partial / ifs_pair_full: the shipped pair classifier (style features + head, issue 14 item 3), re-scored by scripts/ifs-prompt-sets.ts score on the responses that scripts/ifs-prompt-sets.ts generate re-generated (ifs_reproduced: IFS of those responses equals the recorded ifs); ifs_pair_linear: the linear pair classifier shipped before item 3 (history); a variant without ifs_reproduced was not re-generated and its ifs_pair is the linear one';
  writeFileSync(JSON_PATH, JSON.stringify(doc, null, 1) + '\n');
  console.log('| set | model | IFS C [95 % CI] | C partial | C full | IFS-pair C (partial / full) | linear pair classifier (before) |');
  console.log('|---|---|---|---|---|---|---|');
  for (const l of lines) console.log(l);
  if (mismatches) console.error(`[${mismatches} variant(s) did not reproduce the recorded IFS: see above]`);
} else {
  console.error('usage: node --import tsx scripts/ifs-prompt-sets.ts generate [--variants C|all] | score');
  process.exit(2);
}
