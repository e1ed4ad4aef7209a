import type { Command } from './main.js';
import { flags, parse, num } from './args.js';
import { deviceOption, threadsOption } from './common.js';
import { HeedError } from '../errors.js';

const usage =
  'heed difficulty --data F --scorer judge:<spec>|loss:<dir>|ifd:<dir>|heuristic --out scored.jsonl [--limit N] [--samples K] [--concurrency N] [--temperature T] [--retries N] [--json]  |  heed difficulty agree A.jsonl[#field] B.jsonl[#field] […] [--json]';

async function agree(files: string[], json: boolean): Promise<number> {
  if (files.length < 2) throw new HeedError('heed difficulty agree needs two scored files at least', `usage: ${usage}`);
  const { readJsonlRows } = await import('../eval/jsonl.js');
  const { spearmanAgreement } = await import('../phased/stats.js');
  const maps = files.map((arg) => {
    // F#field compares another numeric field of the rows (e.g. scored.ifd.jsonl#loss: the loss scorer's number)
    const hash = arg.lastIndexOf('#');
    const f = hash > 0 ? arg.slice(0, hash) : arg;
    const field = hash > 0 ? arg.slice(hash + 1) : 'difficulty';
    const m = new Map<string, number>();
    let scorer = arg;
    for (const r of readJsonlRows(f)) {
      if (r.error) throw new HeedError(`${f}:${r.line}: ${r.error}`, 'pass files written by heed difficulty');
      const v = r.value!;
      if (typeof v.scorer === 'string') scorer = field === 'difficulty' ? v.scorer : `${v.scorer}#${field}`;
      const x = v[field];
      if (typeof x === 'number' && Number.isFinite(x)) m.set(String(v.id), x);
    }
    return { file: arg, scorer, m };
  });
  const pairs = [];
  for (let i = 0; i < maps.length; i++)
    for (let j = i + 1; j < maps.length; j++) {
      const ids = [...maps[i].m.keys()].filter((id) => maps[j].m.has(id));
      if (ids.length < 4) throw new HeedError(`${maps[i].file} and ${maps[j].file} share ${ids.length} scored ids`, 'score the same data file with both scorers');
      const a = spearmanAgreement(ids.map((id) => maps[i].m.get(id)!), ids.map((id) => maps[j].m.get(id)!));
      pairs.push({ a: maps[i].scorer, b: maps[j].scorer, ...a });
    }
  if (json) console.log(JSON.stringify(pairs, null, 2));
  else for (const p of pairs) console.log(`${p.a}  vs  ${p.b}: Spearman rho ${p.rho.toFixed(3)}  95% Fisher-z [${p.fisher[0].toFixed(3)}, ${p.fisher[1].toFixed(3)}]  bootstrap [${p.bootstrap[0].toFixed(3)}, ${p.bootstrap[1].toFixed(3)}]  (n=${p.n} rows scored by both)`);
  return 0;
}

const options = flags({
  data: { type: 'string', arg: 'FILE', help: 'instruction rows to score (required)' },
  scorer: { type: 'string', arg: 'SCORER', help: 'judge:<spec> (LLM judge 1–5), loss:<dir> (base-model loss), ifd:<dir> (IFD ratio) or heuristic (required)' },
  out: { type: 'string', arg: 'FILE', help: 'scored rows as JSONL; also the journal a re-run resumes from (required)' },
  limit: { type: 'string', arg: 'N', default: 'all', help: 'score the first N rows' },
  samples: { type: 'string', arg: 'K', default: '1', help: 'judge: samples per row (their mean is the score)' },
  concurrency: { type: 'string', arg: 'N', default: '4', help: 'judge: requests in flight' },
  temperature: { type: 'string', arg: 'T', help: "judge: sampling temperature (default: the judge's)" },
  retries: { type: 'string', arg: 'N', help: 'judge: new tries of a reply the parser refused' },
  'max-tokens': { type: 'string', arg: 'N', help: "judge: tokens per reply" },
  ...threadsOption,
  device: deviceOption.device,
  json: { type: 'boolean', help: 'print the summary as JSON' },
});

export const command: Command = {
  path: ['difficulty'],
  summary: 'score instruction difficulty (LLM judge 1–5, base-model loss, IFD ratio, or a lexical heuristic); `agree` compares scorers',
  usage,
  options,
  async run(argv) {
    const { values, positionals } = parse(argv, options, usage);
    if (positionals[0] === 'agree') return agree(positionals.slice(1), !!values.json);
    if (positionals.length) throw new HeedError(`unknown argument "${positionals[0]}"`, `usage: ${usage}`);
    if (!values.data) throw new HeedError('missing --data', `usage: ${usage}`);
    if (!values.scorer) throw new HeedError('missing --scorer', `usage: ${usage}`);
    if (!values.out) throw new HeedError('missing --out', `usage: ${usage}`);
    const { parseScorer, runScoring } = await import('../phased/score.js');
    const { readInstructionRows } = await import('../phased/rows.js');
    const scorer = parseScorer(values.scorer);
    let rows = readInstructionRows(values.data);
    const limit = num(values.limit, 'limit', { int: true, min: 1 });
    if (limit) rows = rows.slice(0, limit);
    const samples = num(values.samples, 'samples', { int: true, min: 1, max: 20 }) ?? 1;
    const concurrency = num(values.concurrency, 'concurrency', { int: true, min: 1, max: 256 }) ?? 4;
    const { Progress } = await import('./progress.js');
    const bar = new Progress('difficulty', rows.length);
    let backend, nll;
    if (scorer.kind === 'judge') {
      const { parseSpec, openModel } = await import('../backends/spec.js');
      const spec = parseSpec(scorer.model);
      if (spec.kind === 'engine') await (await import('./common.js')).startEngine(values.device, values.threads);
      backend = await openModel(spec, { maxTokens: 16 });
    } else if (scorer.kind !== 'heuristic') {
      const { parseSpec } = await import('../backends/spec.js');
      const spec = parseSpec(scorer.model);
      if (spec.kind !== 'engine') throw new HeedError(`${scorer.kind}:${scorer.model}: the ${scorer.kind} scorer needs the model's token log-likelihoods, so a model folder`, 'use e.g. loss:models/base-dolly, or judge:<spec> for a server');
      await (await import('./common.js')).startEngine(values.device, values.threads);
      nll = await (await import('../phased/nll.js')).NllScorer.open(spec.dir);
    }
    const { wrapPrompt } = await import('../eval/ifs/score.js');
    const t0 = performance.now();
    const res = await runScoring(rows, scorer, values.scorer, {
      out: values.out,
      samples,
      concurrency,
      temperature: num(values.temperature, 'temperature', { min: 0, max: 2 }),
      retries: num(values.retries, 'retries', { int: true, min: 0, max: 10 }),
      maxTokens: num(values['max-tokens'], 'max-tokens', { int: true, min: 1 }),
      backend,
      nll,
      wrap: (s) => wrapPrompt(s, 'A'),
      onProgress: (d) => bar.update(d, {}, d >= rows.length),
    });
    bar.done();
    await backend?.dispose();
    nll?.dispose();
    const { summary } = await import('../phased/stats.js');
    const ds = res.rows.map((r) => r.difficulty).filter((d): d is number => typeof d === 'number');
    const s = summary(ds);
    const report = { data: values.data, scorer: values.scorer, out: values.out, rows: rows.length, scored: res.scored, failed: res.failed, skipped: res.skipped, resumed: res.resumed, scored_now: res.fresh, seconds: Math.round((performance.now() - t0) / 100) / 10, difficulty: s };
    if (values.json) console.log(JSON.stringify(report, null, 2));
    else console.log(`difficulty ${values.scorer} on ${values.data}: ${res.scored}/${rows.length} scored${s.n ? ` (mean ${s.mean.toFixed(3)}, median ${s.median.toFixed(3)}, range ${s.min.toFixed(3)}–${s.max.toFixed(3)})` : ''}, ${res.skipped} skipped, ${res.failed} failed; ${res.resumed} from an earlier run's journal\nwrote ${values.out}`);
    if (res.skipped) console.error(`[${res.skipped} row(s) skipped: ${res.rows.find((r) => r.skipped)!.skipped} (difficulty null in ${values.out})]`);
    if (res.failed) {
      const f = res.rows.find((r) => r.failed)!;
      throw new HeedError(`${res.failed} of ${rows.length} rows failed to score (first ${f.id}: ${f.failed}); they have difficulty null`, 'run the same command again: finished work is kept (answer cache, journal), backend failures are asked again; replies the parser refused are cached and give the same verdict, so raise --retries to ask those again with new seeds');
    }
    return 0;
  },
};
