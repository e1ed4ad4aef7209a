import type { Command } from './main.js';
import { flags, parse, num } from './args.js';
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

const options = flags({
  ...evalModelOptions,
  variant: { ...evalModelOptions.variant, default: 'A' },
  'max-tokens': { ...evalModelOptions['max-tokens'], default: '64' },
  questions: { type: 'string', arg: 'FILE', default: 'the 100 shipped questions', help: 'preference questions, JSONL' },
  adapter: { type: 'string', arg: 'rules[:preset|:file.json]', default: 'none', help: 'the rule adapter (docs/rules.md)' },
  judge: { type: 'string', arg: 'SPEC', default: 'none', help: "an LLM judge (any model spec) with the paper's two-shot prompt, beside the classifier; a .safetensors file selects the classifier (as --classifier)" },
  classifier: { type: 'string', arg: 'FILE', default: 'the shipped classifier', help: 'the objective/subjective answer classifier (the offline judge)' },
  answers: { type: 'string', arg: 'FILE', default: 'none', help: 'judge answers already written (an earlier --out file or labelled answers) instead of generating' },
  retries: { type: 'string', arg: 'N', default: '2', help: 'LLM judge: new-seed retries of a reply the strict parser refused' },
  concurrency: { type: 'string', arg: 'N', default: '4', help: 'LLM judge: answers judged at once' },
  data: { type: 'string', arg: 'FILE', default: 'the shipped labelled answers', help: 'train-judge: labelled answers to train on' },
  seed: { type: 'string', arg: 'S', default: '0', help: 'train-judge: seed of the split and training' },
});

export const command: Command = {
  path: ['objecqa'],
  summary: 'ObjecQA: share of objective answers to 100 preference questions (offline classifier judge; `--judge <spec>`: the paper\'s two-shot LLM judge beside it, with their agreement); `train-judge` rebuilds the classifier',
  usage,
  options,
  async run(argv) {
    const { values, positionals } = parse(argv, options, usage);
    if (positionals[0] === 'train-judge') return trainJudgeCmd(values);
    if (positionals.length) throw new HeedError(`unknown argument "${positionals[0]}"`, `usage: ${usage}`);
    // --answers F, or --judge <model spec> (the paper's LLM judge beside the classifier): src/cli/objecqa-judge.ts
    const withJudges = await import('./objecqa-judge.js');
    if (values.answers) return withJudges.judgeAnswersCmd(values);
    if (!values.model) throw new HeedError('missing --model (or --answers F to judge answers already written)', `usage: ${usage}`);
    const variant = (values.variant ?? 'A').toUpperCase();
    if (!['A', 'B', 'C'].includes(variant)) throw new HeedError(`--variant must be A, B or C, got "${values.variant}"`, 'A = Alpaca wrapper (default), B = "### Response:" suffix, C = bare question');
    const { loadQuestions, scoreObjecqa, OBJECQA_MAX_TOKENS } = await import('../eval/objecqa/score.js');
    const { ClassifierJudge } = await import('../eval/objecqa/judge.js');
    const maxTokens = num(values['max-tokens'], 'max-tokens', { int: true, min: 1 }) ?? OBJECQA_MAX_TOKENS;
    const limit = num(values.limit, 'limit', { int: true, min: 1 });
    const judge = ClassifierJudge.load(withJudges.classifierPath(values));
    let questions = loadQuestions(values.questions);
    if (limit) questions = questions.slice(0, limit);
    const { modelGenerator, planned, failureNote, batchOom } = await import('./ifs-common.js');
    const { gen, fits, logitsProcessors, backend } = await modelGenerator(values.model, { adapter: values.adapter, device: values.device, threads: values.threads, maxTokens });
    const { wrapPrompt } = await import('../eval/ifs/score.js');
    const kept = questions.filter((q) => fits(wrapPrompt(q.question, variant as 'A')));
    if (kept.length < questions.length) console.error(`[${questions.length - kept.length} question(s) skipped: prompt + --max-tokens ${maxTokens} exceed the model's context]`);
    if (!kept.length) throw new HeedError('no question fits the model context with this --max-tokens and --variant', 'lower --max-tokens or use --variant C');
    const plan = planned('objecqa', kept.length, `${kept.length} question(s)${limit ? ` (--limit ${limit})` : ''}, variant ${variant}, up to ${maxTokens} new tokens each`);
    const batchSize = num(values.batch, 'batch', { int: true, min: 1 });
    let answered = 0;
    const res = await batchOom(() => scoreObjecqa(gen, judge, kept, { variant: variant as 'A', maxTokens, batchSize, generate: { logitsProcessors }, onProgress: (d) => plan.update((answered = d)) }), batchSize, () => `after ${answered} of ${kept.length} questions`);
    if (withJudges.llmSpec(values)) return withJudges.reportWithJudges(values, { answers: res.answers, failed: res.failed, judge, what: `${backend.spec} (variant ${variant}, greedy, max ${maxTokens} tokens)`, json: { model: backend.spec, variant, max_tokens: maxTokens }, dispose: () => backend.dispose() });
    if (values.out) (await import('../eval/jsonl.js')).writeJsonl(values.out, res.answers);
    const o = res.objective;
    if (res.failed.length) console.error(failureNote(res.failed.length, `${res.failed[0].id}: ${res.failed[0].error}`, 'question'));
    if (values.json) console.log(JSON.stringify({ model: backend.spec, variant, max_tokens: maxTokens, judge: judge.name, objective: o }, null, 2));
    else console.log(`ObjecQA ${backend.spec} (variant ${variant}, greedy, max ${maxTokens} tokens, judge ${judge.name}): objective ${o.value.toFixed(3)} [${o.ci[0].toFixed(3)}, ${o.ci[1].toFixed(3)}] (${o.k}/${o.n})${values.out ? `\nanswers: ${values.out}` : ''}`);
    await backend.dispose();
    if (res.failed.length) throw new HeedError(`${res.failed.length} of ${questions.length} generations failed on the backend (the score above leaves them out)`, 'run the same command again: finished answers come from the cache and only the failed ones are asked again');
    return 0;
  },
};
