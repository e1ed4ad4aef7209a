/**
 * `heed demo`: the whole story of the seed papers on a laptop, end to end, every number in summary.json.
 *   (a) what the base model writes on its own (continuations of held-out documents of its pretraining corpus,
 *       measured against the real text: src/pretrain/samples.ts), then IFS (variants A, B, C) and ObjecQA of it
 *       (it only continues text: low IFS)
 *   (b) the same with the rule adapter (product of experts with hand-written rules, no training)
 *   (c) SFT with mask `output` (instruction tuning), IFS every few steps, early stop at the plateau
 *   (d) the same data with the `instruction` (IM) and `response-only` masks, for the same number of steps
 *   (e) a summary table (stdout) and an HTML report (report.html)
 * The tuned models are trained on bare instruction → response pairs (template `plain`: the instruction, a space,
 * the response, EOS), the format of IFS variant C (the bare instruction, no wrapper) — the paper's main variant
 * for base models. Variants A (full Alpaca wrapper) and B ("### Response:" only) are measured too: a small base
 * model that read answers in pretraining writes answer-shaped text after an explicit "### Response:" cue even
 * untrained, so A and B say less about it than C does.
 */
import { safeFileName } from '../errors.js';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { readCorpus, splitHeldOut } from '../pretrain/corpus.js';
import { SAMPLE_DEFAULTS, describeSampling, sampleFluency, sampleStatRows, sampleSummaryLine, type SampleReport } from '../pretrain/samples.js';
import { openGenerator } from '../eval/generator.js';
import { loadIfsClassifier } from '../eval/ifs/classifier.js';
import { loadPromptSet } from '../eval/ifs/prompts.js';
import { budgetSubset, scoreIfs, type IfsScore, type IfsResponse } from '../eval/ifs/score.js';
import { loadQuestions, scoreObjecqa } from '../eval/objecqa/score.js';
import { ClassifierJudge } from '../eval/objecqa/judge.js';
import { repoPath } from '../eval/jsonl.js';
import { train, type RunSummary } from '../train/trainer.js';
import { validateTrainConfig } from '../train/config.js';
import { renderReport, type Sample, type Table } from '../report/html.js';
import { Progress, clock, trainProgress } from '../cli/progress.js';

export interface DemoOptions {
  out: string;
  fast?: boolean;
  /** base model folder (default: models/base-dolly if present, else models/tiny-dolly) */
  model?: string;
  quiet?: boolean;
  log?: (s: string) => void;
}

export interface ModelEval {
  name: string;
  model: string;
  adapter: string | null;
  ifs: Record<string, { ifs: number; ifs_ci: [number, number]; ifs_partial: number; ifs_full: number; n: number; skipped: number }>;
  objecqa: number;
  seconds: number;
}

export function demoSettings(fast: boolean) {
  return fast
    ? // --fast (the test suite runs it): one micro-batch of 4 rows of at most 128 tokens per step, a third of the
      // tokens of 4×2 rows of 192, and the same story (base < IT on C, early stopping fires)
      { variant: 'C' as const, template: 'plain', prompts: 16, questions: 8, textSamples: 8, maxTokens: 24, steps: 28, evalEvery: 4, evalBudget: 16, batch: 4, accum: 1, maxLength: 128, lr: 3e-3, minIfs: 0.15 }
    : { variant: 'C' as const, template: 'plain', prompts: 60, questions: 30, textSamples: 24, maxTokens: 48, steps: 120, evalEvery: 10, evalBudget: 32, batch: 4, accum: 2, maxLength: 256, lr: 2e-3, minIfs: 0.15 };
}

export function defaultDemoModel(): string {
  const big = repoPath('models/base-dolly');
  return existsSync(join(big, 'model.safetensors')) ? big : repoPath('models/tiny-dolly');
}

/** The pretraining corpus named in a model's training.json (heed pretrain), if it can be found. */
function pretrainCorpus(model: string): string | undefined {
  const tj = join(model, 'training.json');
  if (!existsSync(tj)) return undefined;
  const corpus = (JSON.parse(readFileSync(tj, 'utf8')) as { corpus?: unknown }).corpus;
  if (typeof corpus !== 'string') return undefined;
  return [isAbsolute(corpus) ? corpus : repoPath(corpus), resolve(corpus)].find((p) => existsSync(p));
}

export async function runDemo(o: DemoOptions): Promise<Record<string, unknown>> {
  const log = o.log ?? ((s: string) => (o.quiet ? undefined : console.error(s)));
  const S = demoSettings(!!o.fast);
  const base = o.model ?? defaultDemoModel();
  // paths in the summary and the report relative to the working folder (no machine paths in shared outputs)
  const shown = (p: string) => (isAbsolute(p) && !relative(process.cwd(), p).startsWith('..') ? relative(process.cwd(), p) || '.' : p);
  const t0 = performance.now();
  rmSync(o.out, { recursive: true, force: true });
  mkdirSync(o.out, { recursive: true });
  const classifier = loadIfsClassifier();
  const judge = ClassifierJudge.load();
  const prompts = budgetSubset(loadPromptSet().prompts, S.prompts);
  const questions = loadQuestions().slice(0, S.questions);
  const timings: Record<string, number> = {};
  const samplesByModel: Record<string, IfsResponse[]> = {};

  const evaluate = async (name: string, dir: string, adapter: string | null): Promise<ModelEval> => {
    const ts = performance.now();
    const { gen, fits, logitsProcessors: procs, dispose } = await openGenerator(dir, { rules: adapter ?? undefined, maxTokens: S.maxTokens, warn: log });
    const bar = new Progress(`eval ${name}`, prompts.length * 3 + questions.length, o.quiet);
    const res = await scoreIfs(gen, classifier, prompts, { variants: ['A', 'B', 'C'], maxTokens: S.maxTokens, batchSize: 16, fits, generate: { logitsProcessors: procs }, onProgress: (d) => bar.update(d) });
    const oq = await scoreObjecqa(gen, judge, questions, { variant: S.variant, maxTokens: S.maxTokens, batchSize: 16, generate: { logitsProcessors: procs }, onProgress: (d) => bar.update(prompts.length * 3 + d, {}, d === questions.length) });
    bar.done();
    samplesByModel[name] = res.responses;
    writeFileSync(join(o.out, `responses-${safeFileName(name)}.jsonl`), res.responses.map((r) => JSON.stringify(r)).join('\n') + '\n');
    dispose();
    const ifs: ModelEval['ifs'] = {};
    for (const s of res.scores as IfsScore[]) ifs[s.variant] = { ifs: s.ifs.value, ifs_ci: s.ifs.ci, ifs_partial: s.ifs_partial.value, ifs_full: s.ifs_full.value, n: s.ifs.n, skipped: s.skipped };
    const seconds = (performance.now() - ts) / 1000;
    timings[`eval ${name}`] = seconds;
    log(`${name}: IFS C ${ifs.C.ifs.toFixed(2)}  A ${ifs.A.ifs.toFixed(2)}  B ${ifs.B.ifs.toFixed(2)}  ObjecQA ${oq.objective.value.toFixed(2)}  (${clock(seconds)})`);
    return { name, model: dir, adapter, ifs, objecqa: oq.objective.value, seconds };
  };

  const sft = async (name: string, mask: string, steps: number, earlyStop: boolean): Promise<RunSummary> => {
    const ts = performance.now();
    log(`\n— SFT ${name}: mask ${mask}, ${earlyStop ? `up to ${steps} steps, early stopping on IFS` : `${steps} steps`}`);
    const cfg = validateTrainConfig(
      {
        model: base,
        data: repoPath('data/demo/dolly-train.jsonl'),
        template: S.template,
        mask,
        max_length: S.maxLength,
        truncation: 'truncate-right',
        batch_size: S.batch,
        grad_accum: S.accum, // 4×2 keeps jax-js's activation memory well inside its 4 GiB wasm heap
        steps,
        lr: S.lr,
        warmup_steps: 5,
        eval: { split: 0.1 },
        eval_max_rows: 40,
        eval_every: S.evalEvery,
        save_every: 100000,
        keep_last: 1,
        seed: 0,
        early_stopping: { ifs: { patience: 2, min_delta: 0.03, min_ifs: S.minIfs, budget: S.evalBudget, variant: S.variant, max_tokens: S.maxTokens, batch_size: 16, measure_only: !earlyStop } },
        out: o.out,
        name,
      },
      'demo',
    );
    const s = await train(cfg, { quiet: o.quiet, log, onEvent: trainProgress({ quiet: o.quiet, label: `train ${name}` }) });
    timings[`train ${name}`] = (performance.now() - ts) / 1000;
    return s;
  };

  log(`heed demo: base model ${base}${o.fast ? ' (--fast)' : ''}; ${prompts.length} IFS prompts × variants A/B/C, ${questions.length} ObjecQA questions, ${S.maxTokens} new tokens, greedy`);
  log('\n— (a) the base model');
  let baseText: SampleReport | undefined;
  const corpus = pretrainCorpus(base);
  if (corpus) {
    const { train: docs, heldOut } = splitHeldOut(readCorpus(corpus));
    const { gen, dispose } = await openGenerator(base, { maxTokens: SAMPLE_DEFAULTS.maxTokens, warn: log });
    const bar = new Progress('base text', S.textSamples, o.quiet);
    baseText = await sampleFluency(gen, docs, heldOut, { ...SAMPLE_DEFAULTS, samples: S.textSamples }, (d) => bar.update(d));
    bar.done();
    dispose();
    log(`what it writes: ${sampleSummaryLine(baseText)}`);
  } else log(`what it writes: not measured (${base}/training.json names no pretraining corpus that exists here)`);
  const evBase = await evaluate('base', base, null);
  log('\n— (b) the base model with the rule adapter (default preset)');
  const evRules = await evaluate('base+rules', base, 'default');
  const itRun = await sft('sft-output', 'output', S.steps, true);
  const stopStep = itRun.steps;
  const bestIt = itRun.best ? join(itRun.run_dir, itRun.best.checkpoint) : itRun.last_checkpoint!;
  const imRun = await sft('sft-instruction', 'instruction', stopStep, false);
  const roRun = await sft('sft-response-only', 'response-only', stopStep, false);
  log('\n— tuned models (IT at its best-IFS checkpoint; IM and response-only at the same number of steps)');
  const evIt = await evaluate('IT (output mask)', bestIt, null);
  const evIm = await evaluate('IM (instruction mask)', imRun.last_checkpoint!, null);
  const evRo = await evaluate('response-only', roRun.last_checkpoint!, null);
  const evals = [evBase, evRules, evIt, evIm, evRo];

  const row = (e: ModelEval) => [e.name, e.ifs.C.ifs, e.ifs.C.ifs_partial, e.ifs.C.ifs_full, e.ifs.A.ifs, e.ifs.B.ifs, e.objecqa];
  const table: Table = {
    title: 'IFS per prompt variant and ObjecQA',
    columns: ['model', 'IFS C', 'IFS_partial C', 'IFS_full C', 'IFS A', 'IFS B', 'ObjecQA'],
    rows: evals.map(row),
    note: `${prompts.length} prompts (half partial, half full) per variant, greedy, ${S.maxTokens} new tokens; C = the bare instruction (the format the tuned models were trained on), A = full Alpaca wrapper, B = "### Response:" suffix only; ObjecQA on the bare questions. 95% Wilson intervals in summary.json.`,
  };
  const early = itRun.stopped_early ? `stopped early at step ${itRun.stopped_early.step} (${itRun.stopped_early.reason})` : `did not plateau within ${S.steps} steps`;
  const trainTable: Table = {
    title: 'Instruction tuning runs',
    columns: ['run', 'mask', 'steps', 'final held-out loss (output tokens)', 'best IFS (C, eval subset)', 'note'],
    rows: [
      ['sft-output', 'output (IT)', itRun.steps, (itRun.final.eval_loss as number) ?? '', itRun.best?.value ?? '', early],
      ['sft-instruction', 'instruction (IM)', imRun.steps, (imRun.final.eval_loss as number) ?? '', (imRun.callbacks['ifs-early-stopping'] as { ifs_best?: { ifs: number } })?.ifs_best?.ifs ?? '', 'same steps as IT'],
      ['sft-response-only', 'response-only', roRun.steps, (roRun.final.eval_loss as number) ?? '', (roRun.callbacks['ifs-early-stopping'] as { ifs_best?: { ifs: number } })?.ifs_best?.ifs ?? '', 'same steps as IT'],
    ],
  };
  // sample responses: the same full prompts (variant C) before and after
  const samples: Sample[] = [];
  const byId = (name: string) => new Map((samplesByModel[name] ?? []).filter((r) => r.variant === S.variant).map((r) => [r.id, r]));
  const b0 = byId('base'), b1 = byId('base+rules'), b2 = byId('IT (output mask)');
  for (const r of [...b0.values()].filter((x) => x.kind === 'full').slice(0, 4)) {
    samples.push({
      title: `prompt ${r.id} (variant ${S.variant})`,
      prompt: r.prompt,
      responses: [
        { label: 'base', text: r.response, answerLike: r.label === 1 },
        ...(b1.get(r.id) ? [{ label: 'base + rules', text: b1.get(r.id)!.response, answerLike: b1.get(r.id)!.label === 1 }] : []),
        ...(b2.get(r.id) ? [{ label: 'IT (tuned)', text: b2.get(r.id)!.response, answerLike: b2.get(r.id)!.label === 1 }] : []),
      ],
    });
  }
  const tables = [table, trainTable];
  if (baseText) {
    tables.push({
      title: 'What the base model writes on its own',
      columns: ['', 'base model (sampled)', 'held-out text', 'its words shuffled'],
      rows: sampleStatRows(baseText),
      note: `${baseText.samples.length} continuations of the first ${baseText.settings.promptWords} words of held-out documents of its pretraining corpus (${describeSampling(baseText.settings)}, ${baseText.settings.maxTokens} tokens), next to the documents' own next words cut to the same length, and those words shuffled. Known = found among the words / adjacent word pairs of the training documents.`,
    });
    for (const x of baseText.samples.slice(0, 3)) samples.push({ title: 'the base model continuing a held-out document', prompt: x.prompt, responses: [{ label: 'base (sampled)', text: x.text }, { label: 'the document', text: x.reference }] });
  }
  const seconds = (performance.now() - t0) / 1000;
  const summary = {
    base_model: shown(base),
    fast: !!o.fast,
    settings: S,
    base_text: baseText ? { settings: baseText.settings, model: baseText.model, reference: baseText.reference, shuffled: baseText.shuffled, samples: baseText.samples } : null,
    evaluations: evals,
    runs: { 'sft-output': itRun, 'sft-instruction': imRun, 'sft-response-only': roRun },
    early_stopping: { triggered: !!itRun.stopped_early, step: itRun.stopped_early?.step ?? null, reason: itRun.stopped_early?.reason ?? null, best_checkpoint: bestIt },
    timings_s: timings,
    seconds,
  };
  writeFileSync(join(o.out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  writeFileSync(
    join(o.out, 'demo.json'),
    JSON.stringify({
      title: 'heed demo: a base model becomes an instruction follower',
      intro: `Base model ${shown(base)}. (a) what the base model writes, its IFS and ObjecQA, (b) with the rule adapter, (c) instruction tuning (output mask) with IFS early stopping: ${early}, (d) IM and response-only masks for the same number of steps. Total ${clock(seconds)}.`,
      tables,
      samples,
    }),
  );
  writeFileSync(join(o.out, 'report.html'), renderReport([o.out]));
  return { ...summary, table };
}

/** The summary table as text. */
export function formatDemoTable(t: Table): string {
  const cells = [t.columns, ...t.rows.map((r) => r.map((v) => (typeof v === 'number' ? v.toFixed(2) : String(v))))];
  const w = t.columns.map((_, i) => Math.max(...cells.map((r) => String(r[i]).length)));
  return cells.map((r, k) => r.map((v, i) => (i === 0 ? String(v).padEnd(w[i]) : String(v).padStart(w[i]))).join('  ') + (k === 0 ? '\n' + w.map((x) => '-'.repeat(x)).join('  ') : '')).join('\n');
}
