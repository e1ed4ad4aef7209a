import type { Command } from './main.js';
import { parse, num } from './args.js';
import { evalModelOptions } from './common.js';
import { HeedError } from '../errors.js';

const usage = 'heed objecqa --model <dir|gguf:file|openai:url#model> [--questions F] [--variant A|B|C] [--limit N] [--max-tokens N] [--out F] [--adapter rules[:preset|:file.json]] [--classifier F] [--judge <model spec>] [--answers F] [--retries N] [--concurrency N] [--json]  |  heed objecqa train-judge [--data F] [--out F] [--seed S]';

async function trainJudgeCmd(values: Record<string, unknown>): Promise<number> {
  const { loadLabelled, DEFAULT_LABELLED_PATH } = await import('../eval/objecqa/score.js');
  const { trainJudge } = await import('../eval/objecqa/train.js');
  const { DEFAULT_JUDGE_PATH } = await import('../eval/objecqa/judge.js');
  const { TextClassifier, binaryMetrics } = await import('../eval/text-classifier.js');
  const { judgeSplit } = await import('../eval/objecqa/train.js');
  const { startEngine } = await import('./common.js');
  const seed = num(values.seed, 'seed', { int: true, min: 0 }) ?? 0;
  const rows = loadLabelled((values.data as string | undefined) ?? DEFAULT_LABELLED_PATH);
  await startEngine('wasm', values.threads);
  const r = await trainJudge(rows, seed);
  const out = (values.out as string | undefined) ?? DEFAULT_JUDGE_PATH;
  r.classifier.save(out);
  const stored = TextClassifier.load(out); // measure the weights as stored (F16)
  const { test } = judgeSplit(rows, seed);
  const m = binaryMetrics(test.map((x) => (x.label === 'Objective' ? 1 : 0)), test.map((x) => stored.prob(x.text)));
  new TextClassifier(stored.w, stored.b, stored.cfg, { ...stored.meta, held_out: m, split: r.split }).save(out);
  if (values.json) console.log(JSON.stringify({ out, held_out: m, split: r.split }, null, 2));
  else console.log(`ObjecQA judge: held-out accuracy ${m.accuracy.toFixed(4)} precision ${m.precision.toFixed(4)} recall ${m.recall.toFixed(4)} (n=${m.n}; train ${r.split.train} answers, held-out questions never trained on)\nwrote ${out}`);
  return 0;
}

export const command: Command = {
  path: ['objecqa'],
  summary: 'ObjecQA: share of objective answers to 100 preference questions (offline classifier judge; `--judge <spec>`: the paper\'s two-shot LLM judge beside it, with their agreement); `train-judge` rebuilds the classifier',
  usage,
  async run(argv) {
    const { values, positionals } = parse(
      argv,
      {
        ...evalModelOptions,
        questions: { type: 'string' },
        adapter: { type: 'string' },
        judge: { type: 'string' },
        classifier: { type: 'string' },
        answers: { type: 'string' },
        retries: { type: 'string' },
        concurrency: { type: 'string' },
        data: { type: 'string' },
        seed: { type: 'string' },
      },
      usage,
    );
    if (positionals[0] === 'train-judge') return trainJudgeCmd(values);
    if (positionals.length) throw new HeedError(`unknown argument "${positionals[0]}"`, `usage: ${usage}`);
    if (!values.model && !values.answers) throw new HeedError('missing --model (or --answers F to judge answers already written)', `usage: ${usage}`);
    if (values.model && values.answers) throw new HeedError('--model and --answers both given', 'either generate answers with --model, or judge the answers of a file with --answers');
    const variant = (values.variant ?? 'A').toUpperCase();
    if (!['A', 'B', 'C'].includes(variant)) throw new HeedError(`--variant must be A, B or C, got "${values.variant}"`, 'A = Alpaca wrapper (default), B = "### Response:" suffix, C = bare question');
    // --judge F.safetensors is the offline classifier (as before); any other --judge is a model spec for the paper's LLM judge
    const judgeArg = values.judge as string | undefined;
    const llmSpec = judgeArg && !/\.safetensors$/i.test(judgeArg) ? judgeArg : undefined;
    const retries = num(values.retries, 'retries', { int: true, min: 0, max: 10 });
    const concurrency = num(values.concurrency, 'concurrency', { int: true, min: 1, max: 256 });
    const { loadQuestions, scoreObjecqa, loadAnswers, OBJECQA_MAX_TOKENS } = await import('../eval/objecqa/score.js');
    const { ClassifierJudge, judgeWithLlm, OBJECQA_JUDGE_MAX_TOKENS } = await import('../eval/objecqa/judge.js');
    const { ratio } = await import('../eval/ifs/score.js');
    const maxTokens = num(values['max-tokens'], 'max-tokens', { int: true, min: 1 }) ?? OBJECQA_MAX_TOKENS;
    const limit = num(values.limit, 'limit', { int: true, min: 1 });
    const judge = ClassifierJudge.load((values.classifier as string | undefined) ?? (llmSpec ? undefined : judgeArg));
    const { modelGenerator, progressBar, failureNote } = await import('./ifs-common.js');
    let answers: Array<{ id: string; question: string; answer: string; label: 'Objective' | 'Subjective'; prob?: number; gold?: 'Objective' | 'Subjective'; llm_label?: string; llm_reply?: string; llm_failed?: string }>;
    let failed: Array<{ id: string; error: string }> = [];
    let source: string;
    let backendDispose: (() => unknown) | undefined;
    if (values.answers) {
      let rows = loadAnswers(values.answers);
      if (limit) rows = rows.slice(0, limit);
      const verdicts = await judge.judge(rows);
      answers = rows.map((r, i) => ({ id: r.id, question: r.question, answer: r.answer, label: verdicts[i].label, ...(verdicts[i].prob !== undefined ? { prob: Number(verdicts[i].prob!.toFixed(6)) } : {}), ...(r.gold ? { gold: r.gold } : {}) }));
      source = values.answers;
    } else {
      let questions = loadQuestions(values.questions);
      if (limit) questions = questions.slice(0, limit);
      const { gen, fits, logitsProcessors, backend } = await modelGenerator(values.model!, { adapter: values.adapter, device: values.device, threads: values.threads, maxTokens });
      const { wrapPrompt } = await import('../eval/ifs/score.js');
      const kept = questions.filter((q) => fits(wrapPrompt(q.question, variant as 'A')));
      if (kept.length < questions.length) console.error(`[${questions.length - kept.length} question(s) skipped: prompt + --max-tokens ${maxTokens} exceed the model's context]`);
      if (!kept.length) throw new HeedError('no question fits the model context with this --max-tokens and --variant', 'lower --max-tokens or use --variant C');
      const bar = progressBar('objecqa');
      const res = await scoreObjecqa(gen, judge, kept, { variant: variant as 'A', maxTokens, batchSize: num(values.batch, 'batch', { int: true, min: 1 }), generate: { logitsProcessors }, onProgress: (d, t) => bar.update(d, t) });
      answers = res.answers;
      failed = res.failed;
      source = backend.spec;
      backendDispose = () => backend.dispose();
      if (res.failed.length) console.error(failureNote(res.failed.length, `${res.failed[0].id}: ${res.failed[0].error}`, 'question'));
    }
    const o = ratio(answers.filter((a) => a.label === 'Objective').length, answers.length);
    // the paper's two-shot judge through a model spec, beside the classifier
    let llm: { spec: string; objective: ReturnType<typeof ratio>; judged: number; failed: number; first_failure?: string } | undefined;
    const agreements: Record<string, import('../eval/objecqa/agree.js').Agreement> = {};
    const { agreement, agreementText } = await import('../eval/objecqa/agree.js');
    const texts: string[] = [];
    if (llmSpec) {
      const { parseSpec, openModel } = await import('../backends/spec.js');
      const spec = parseSpec(llmSpec);
      if (spec.kind === 'engine') await (await import('./common.js')).startEngine(values.device, values.threads);
      const jb = await openModel(spec, { maxTokens: OBJECQA_JUDGE_MAX_TOKENS });
      const bar = progressBar('llm judge');
      const vs = await judgeWithLlm(jb, answers.map((a) => a.answer), { retries, concurrency, onProgress: (d, t) => bar.update(d, t) });
      await jb.dispose();
      vs.forEach((v, i) => {
        if (v.ok) Object.assign(answers[i], { llm_label: v.label, llm_reply: v.reply });
        else answers[i].llm_failed = v.error;
      });
      const ok = answers.filter((a) => a.llm_label);
      const bad = answers.filter((a) => a.llm_failed);
      llm = { spec: jb.spec, objective: ratio(ok.filter((a) => a.llm_label === 'Objective').length, ok.length), judged: ok.length, failed: bad.length, ...(bad.length ? { first_failure: `${bad[0].id}: ${bad[0].llm_failed}` } : {}) };
      if (ok.length) {
        agreements['classifier_vs_llm'] = agreement(ok.map((a) => a.label), ok.map((a) => a.llm_label as 'Objective'));
        texts.push(agreementText(agreements['classifier_vs_llm'], 'classifier', 'LLM judge'));
      }
    }
    const gold = answers.filter((a) => a.gold);
    if (gold.length) {
      agreements['classifier_vs_reference'] = agreement(gold.map((a) => a.label), gold.map((a) => a.gold!));
      texts.push(agreementText(agreements['classifier_vs_reference'], 'classifier', 'reference'));
      const g2 = gold.filter((a) => a.llm_label);
      if (g2.length) {
        agreements['llm_vs_reference'] = agreement(g2.map((a) => a.llm_label as 'Objective'), g2.map((a) => a.gold!));
        texts.push(agreementText(agreements['llm_vs_reference'], 'LLM judge', 'reference'));
      }
    }
    if (values.out) (await import('../eval/jsonl.js')).writeJsonl(values.out, answers);
    const line = (r: ReturnType<typeof ratio>) => `${r.value.toFixed(3)} [${r.ci[0].toFixed(3)}, ${r.ci[1].toFixed(3)}] (${r.k}/${r.n})`;
    if (values.json) console.log(JSON.stringify({ model: values.answers ? undefined : source, answers: values.answers, variant: values.answers ? undefined : variant, max_tokens: values.answers ? undefined : maxTokens, judge: judge.name, objective: o, ...(llm ? { llm_judge: llm } : {}), ...(Object.keys(agreements).length ? { agreement: agreements } : {}) }, null, 2));
    else {
      const what = values.answers ? `answers of ${source}` : `${source} (variant ${variant}, greedy, max ${maxTokens} tokens)`;
      console.log(`ObjecQA ${what}, judge ${judge.name}: objective ${line(o)}`);
      if (llm) console.log(`ObjecQA ${what}, LLM judge ${llm.spec} (the paper's two-shot prompt): objective ${llm.judged ? line(llm.objective) : 'n/a'}${llm.failed ? `; ${llm.failed} answer(s) failed to judge` : ''}`);
      for (const t of texts) console.log(t);
      if (values.out) console.log(`answers: ${values.out}`);
    }
    await backendDispose?.();
    if (llm?.failed) throw new HeedError(`${llm.failed} of ${answers.length} answers failed to judge (first ${llm.first_failure}); the LLM score and the agreement above leave them out`, 'run the same command again: judged answers come from the cache and backend failures are asked again; replies the parser refused are cached, so raise --retries to ask those again with new seeds');
    if (failed.length) throw new HeedError(`${failed.length} generations failed on the backend (the score above leaves them out)`, 'run the same command again: finished answers come from the cache and only the failed ones are asked again');
    return 0;
  },
};
