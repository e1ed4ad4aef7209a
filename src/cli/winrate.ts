import type { Command } from './main.js';
import { flags, parse, num } from './args.js';
import { deviceOption, threadsOption } from './common.js';
import { HeedError } from '../errors.js';

const usage =
  'heed winrate --a <run dir|model spec|responses.jsonl> --b <…> --prompts F --judge <model spec>|proxy:ifs --out DIR [--limit N] [--max-tokens 128] [--variant A|B|C] [--concurrency N] [--retries N] [--json]';

interface Side {
  label: string;
  responses: Map<string, string>;
  source: string;
}

/** Resolve a side: a responses file, a run folder (its latest step-N checkpoint), or a model spec. */
async function resolveSide(which: 'a' | 'b', arg: string, prompts: Array<{ id: string; instruction: string }>, outDir: string, o: { maxTokens: number; variant: 'A' | 'B' | 'C'; device?: unknown; threads?: unknown }): Promise<Side> {
  const { existsSync, statSync, readFileSync, appendFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { rowTexts } = await import('../phased/rows.js');
  const want = new Map(prompts.map((p) => [p.id, p.instruction]));
  const readResponses = (file: string, strictAll: boolean): Map<string, string> => {
    const m = new Map<string, string>();
    const { readJsonlRows } = require_jsonl;
    for (const r of readJsonlRows(file)) {
      if (r.error) throw new HeedError(`${file}:${r.line}: ${r.error}`, 'each line: {"id", "instruction", "response"}');
      const v = r.value!;
      const id = String(v.id);
      if (!want.has(id)) continue;
      const t = rowTexts(v);
      if ('error' in t) throw new HeedError(`${file}:${r.line}: ${t.error}`, 'each line: {"id", "instruction", "response"}');
      if (t.instruction !== want.get(id)) throw new HeedError(`${file}:${r.line}: id "${id}" answers a different prompt than --prompts (${JSON.stringify(t.instruction.slice(0, 40))} vs ${JSON.stringify(want.get(id)!.slice(0, 40))})`, 'both sides must answer exactly the prompts of --prompts: regenerate the responses or pass the prompts file they were made from');
      if (t.output === undefined) throw new HeedError(`${file}:${r.line}: id "${id}" has no response`, 'each line needs a "response" (or "output") string');
      if (m.has(id)) throw new HeedError(`${file}:${r.line}: duplicate id "${id}"`, 'one response per prompt id');
      m.set(id, t.output);
    }
    if (strictAll) {
      const missing = prompts.filter((p) => !m.has(p.id));
      if (missing.length) throw new HeedError(`${file} has no response for ${missing.length} of ${prompts.length} prompts (first: "${missing[0].id}")`, 'pass a model spec or run folder instead, and the missing responses are generated');
    }
    return m;
  };
  const require_jsonl = await import('../eval/jsonl.js');
  if (existsSync(arg) && statSync(arg).isFile()) return { label: arg, responses: readResponses(arg, true), source: 'responses file' };
  let spec = arg;
  let source = 'model spec';
  if (existsSync(arg) && statSync(arg).isDirectory() && !existsSync(join(arg, 'config.json')) && existsSync(join(arg, 'summary.json'))) {
    const { listCheckpoints } = await import('../train/checkpoint.js');
    const cks = listCheckpoints(arg);
    if (!cks.length) throw new HeedError(`run folder ${arg} has no step-N checkpoint`, 'pass a finished run, or a model folder');
    spec = cks[cks.length - 1].dir;
    source = `run folder (latest checkpoint ${spec.split('/').pop()})`;
  }
  // generate what is missing (greedy, recorded next to the judgements)
  const file = join(outDir, `${which}.responses.jsonl`);
  const have = new Map<string, string>();
  if (existsSync(file)) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        const v = JSON.parse(line);
        if (v.model === spec && v.max_tokens === o.maxTokens && v.variant === o.variant && want.get(v.id) === v.instruction && !v.error) have.set(v.id, v.response);
      } catch {
        /* a line cut by a kill: generated again */
      }
    }
  }
  const todo = prompts.filter((p) => !have.has(p.id));
  if (todo.length) {
    const { modelGenerator, progressBar } = await import('./ifs-common.js');
    const { wrapPrompt } = await import('../eval/ifs/score.js');
    const { generationError, generationTokens } = await import('../backends/types.js');
    const g = await modelGenerator(spec, { device: o.device, threads: o.threads, maxTokens: o.maxTokens });
    const bar = progressBar(`responses ${which}`);
    const B = 8;
    let failed = 0;
    for (let s = 0; s < todo.length; s += B) {
      const part = todo.slice(s, s + B);
      const gens = await g.gen.generate(part.map((p) => wrapPrompt(p.instruction, o.variant)), { maxTokens: o.maxTokens, temperature: 0 });
      part.forEach((p, i) => {
        const err = generationError(gens[i]);
        if (err) failed++;
        else have.set(p.id, gens[i].text.trim());
        appendFileSync(file, JSON.stringify({ id: p.id, instruction: p.instruction, response: gens[i].text.trim(), model: spec, greedy: true, max_tokens: o.maxTokens, variant: o.variant, finish_reason: gens[i].finishReason, tokens: generationTokens(gens[i]), ...(err ? { error: err } : {}) }) + '\n');
      });
      bar.update(Math.min(s + B, todo.length), todo.length);
    }
    await g.dispose();
    if (failed) throw new HeedError(`${failed} response(s) of side ${which} failed on the backend`, 'run the same command again: finished responses are kept, only the failed ones are generated again');
  }
  return { label: arg, responses: have, source: `${source}, ${todo.length} generated now, ${prompts.length - todo.length} reused; greedy, variant ${o.variant}, max ${o.maxTokens} tokens` };
}

const options = flags({
  a: { type: 'string', arg: 'SIDE', help: 'side a: a run folder (its latest checkpoint), a model spec or a responses JSONL (required)' },
  b: { type: 'string', arg: 'SIDE', help: 'side b, the same kinds (required)' },
  prompts: { type: 'string', arg: 'FILE', help: 'the prompts both sides answer (required)' },
  judge: { type: 'string', arg: 'SPEC|proxy:ifs', help: 'the judge: a model spec, or the offline proxy proxy:ifs (always labelled; required)' },
  out: { type: 'string', arg: 'DIR', help: 'folder for responses, judgements.jsonl and winrate.json (required)' },
  limit: { type: 'string', arg: 'N', default: 'all', help: 'judge the first N prompts' },
  'max-tokens': { type: 'string', arg: 'N', default: '128', help: 'new tokens per generated response' },
  variant: { type: 'string', arg: 'A|B|C', default: 'A', help: 'prompt wrapper of generated responses: A = Alpaca, B = "### Response:", C = bare' },
  concurrency: { type: 'string', arg: 'N', default: '4', help: 'judge requests in flight' },
  retries: { type: 'string', arg: 'N', help: 'new tries of a reply the parser refused' },
  ...threadsOption,
  ...deviceOption,
  json: { type: 'boolean', help: 'print the report as JSON' },
});

export const command: Command = {
  path: ['winrate'],
  summary: 'pairwise judged win rate of two models / runs / response files (both orders; PhasedSFT judge prompt)',
  usage,
  options,
  async run(argv) {
    const { values, positionals } = parse(argv, options, usage);
    if (positionals.length) throw new HeedError(`unknown argument "${positionals[0]}"`, `usage: ${usage}`);
    for (const k of ['a', 'b', 'prompts', 'judge', 'out'] as const) if (!values[k]) throw new HeedError(`missing --${k}`, `usage: ${usage}`);
    const { readInstructionRows } = await import('../phased/rows.js');
    let prompts = readInstructionRows(values.prompts!).map((r) => ({ id: r.id, instruction: r.instruction }));
    const limit = num(values.limit, 'limit', { int: true, min: 1 });
    if (limit) prompts = prompts.slice(0, limit);
    const maxTokens = num(values['max-tokens'], 'max-tokens', { int: true, min: 1 }) ?? 128;
    const { mkdirSync, writeFileSync, appendFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    mkdirSync(values.out!, { recursive: true });
    const judgeSpec = values.judge!;
    // the judge is checked before any generation
    let judge;
    let judgeBackend;
    if (judgeSpec === 'proxy:ifs' || judgeSpec.startsWith('proxy:ifs:')) {
      const { loadIfsClassifier } = await import('../eval/ifs/classifier.js');
      const { ifsProxyJudge } = await import('../eval/judges/winrate.js');
      judge = ifsProxyJudge(loadIfsClassifier(judgeSpec.slice('proxy:ifs:'.length) || undefined));
    } else if (judgeSpec.startsWith('proxy:')) throw new HeedError(`unknown proxy judge "${judgeSpec}"`, 'the offline proxy judge is proxy:ifs (or proxy:ifs:<classifier file>)');
    else {
      const { parseSpec } = await import('../backends/spec.js');
      parseSpec(judgeSpec);
    }
    const variant = (values.variant ?? 'A').toUpperCase();
    if (!['A', 'B', 'C'].includes(variant)) throw new HeedError(`--variant must be A, B or C, got "${values.variant}"`, 'A = Alpaca wrapper (default), B = "### Response:" suffix, C = the bare instruction');
    const side = { maxTokens, variant: variant as 'A', device: values.device, threads: values.threads };
    const A = await resolveSide('a', values.a!, prompts, values.out!, side);
    const B = await resolveSide('b', values.b!, prompts, values.out!, side);
    if (!judge) {
      const { parseSpec, openModel } = await import('../backends/spec.js');
      const spec = parseSpec(judgeSpec);
      if (spec.kind === 'engine') await (await import('./common.js')).startEngine(values.device, values.threads);
      judgeBackend = await openModel(spec, { maxTokens: 256 });
      const { llmPairJudge } = await import('../eval/judges/winrate.js');
      judge = llmPairJudge(judgeBackend, { retries: num(values.retries, 'retries', { int: true, min: 0, max: 10 }) });
    }
    const pairs = prompts.map((p) => ({ id: p.id, question: p.instruction, a: A.responses.get(p.id)!, b: B.responses.get(p.id)! }));
    const { judgePairs } = await import('../eval/judges/winrate.js');
    const { progressBar } = await import('./ifs-common.js');
    const bar = progressBar('judging');
    const jfile = join(values.out!, 'judgements.jsonl');
    writeFileSync(jfile, '');
    const res = await judgePairs(pairs, judge, { concurrency: num(values.concurrency, 'concurrency', { int: true, min: 1, max: 256 }) ?? 4, onProgress: (d, t) => bar.update(d, t), onJudgement: (j) => appendFileSync(jfile, JSON.stringify(j) + '\n') });
    await judgeBackend?.dispose();
    const r = res.result;
    const report = { a: { arg: A.label, source: A.source }, b: { arg: B.label, source: B.source }, prompts: values.prompts, judge: res.judge, proxy: res.proxy, n: r.n, failed: res.failed, wins: r.wins, ties: r.ties, losses: r.losses, win_rate: r.winRate, win_rate_ci95: r.ci, paper_score: r.paperScore, lengths_words: res.lengths, judgements: jfile };
    writeFileSync(join(values.out!, 'winrate.json'), JSON.stringify(report, null, 2) + '\n');
    const f3 = (x: number) => x.toFixed(3);
    if (values.json) console.log(JSON.stringify(report, null, 2));
    else
      console.log(
        [
          `${res.proxy ? 'PROXY ' : ''}win rate of a over b, judged by ${res.judge}`,
          `  a: ${A.label} (${A.source})`,
          `  b: ${B.label} (${B.source})`,
          `  ${r.n} prompts judged in both orders${res.failed ? ` (${res.failed} failed, left out)` : ''}: wins ${r.wins}, ties ${r.ties}, losses ${r.losses}`,
          `  win rate (wins + ties/2)/N = ${f3(r.winRate)}  95% bootstrap [${f3(r.ci[0])}, ${f3(r.ci[1])}]   paper's figure 100·(W+T/2)/N − 50 = ${r.paperScore.toFixed(1)}`,
          `  length (words): a mean ${res.lengths.a.mean.toFixed(1)} median ${res.lengths.a.median}; b mean ${res.lengths.b.mean.toFixed(1)} median ${res.lengths.b.median}; the longer answer won ${res.lengths.longer_wins}/${res.lengths.decided} decided pairs`,
          `wrote ${jfile}, ${join(values.out!, 'winrate.json')}`,
        ].join('\n'),
      );
    if (res.failed) {
      const f = res.judgements.find((j) => j.failed)!;
      throw new HeedError(`${res.failed} of ${pairs.length} pairs could not be judged (first ${f.id}: ${f.failed}); they are left out of N`, 'run the same command again: finished work is kept (answer cache), backend failures are asked again; replies the parser refused are cached and give the same verdict, so raise --retries to ask those again with new seeds');
    }
    return 0;
  },
};
