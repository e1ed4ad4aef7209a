/**
 * `heed objecqa` with the paper's LLM judge beside the offline classifier (`--judge <model spec>`), and
 * `--answers F` (judge answers already written, no generation; labelled rows bring reference labels). The
 * LLM's verdicts, each judge's ObjecQA score and their agreement (raw, Cohen's κ with intervals, confusion
 * table) are printed, written with `--out` per answer and returned under `--json`. docs/objecqa.md.
 */
import { num } from './args.js';
import { HeedError } from '../errors.js';
import type { ClassifierJudge, ObjecLabel } from '../eval/objecqa/judge.js';
import type { Agreement } from '../eval/objecqa/agree.js';
import type { Ratio } from '../eval/ifs/score.js';

type Values = Record<string, unknown>;

interface JudgedAnswer {
  id: string;
  question: string;
  answer: string;
  /** the offline classifier's verdict */
  label: ObjecLabel;
  prob?: number;
  gold?: ObjecLabel;
  llm_label?: ObjecLabel;
  llm_reply?: string;
  llm_failed?: string;
}

/** The spec of --judge when it names a model (a .safetensors file is the classifier's weights, as before). */
export function llmSpec(values: Values): string | undefined {
  const j = values.judge as string | undefined;
  return j && !/\.safetensors$/i.test(j) ? j : undefined;
}

/** The offline classifier's weights: --classifier F, else a --judge F.safetensors, else the shipped judge. */
export function classifierPath(values: Values): string | undefined {
  return (values.classifier as string | undefined) ?? (llmSpec(values) ? undefined : (values.judge as string | undefined));
}

export async function judgeAnswersCmd(values: Values): Promise<number> {
  if (values.model) throw new HeedError('--model and --answers both given', 'either generate answers with --model, or judge the answers of a file with --answers');
  const { loadAnswers } = await import('../eval/objecqa/score.js');
  const { ClassifierJudge } = await import('../eval/objecqa/judge.js');
  const judge = ClassifierJudge.load(classifierPath(values));
  let rows = loadAnswers(values.answers as string);
  const limit = num(values.limit, 'limit', { int: true, min: 1 });
  if (limit) rows = rows.slice(0, limit);
  const verdicts = await judge.judge(rows);
  const answers = rows.map((r, i) => ({ id: r.id, question: r.question, answer: r.answer, label: verdicts[i].label, ...(verdicts[i].prob !== undefined ? { prob: Number(verdicts[i].prob!.toFixed(6)) } : {}), ...(r.gold ? { gold: r.gold } : {}) }));
  return reportWithJudges(values, { answers, failed: [], judge, what: `answers of ${values.answers}`, json: { answers: values.answers } });
}

export async function reportWithJudges(
  values: Values,
  o: { answers: JudgedAnswer[]; failed: Array<{ id: string; error: string }>; judge: ClassifierJudge; what: string; json: Record<string, unknown>; dispose?: () => unknown },
): Promise<number> {
  const { ratio } = await import('../eval/ifs/score.js');
  const { agreement, agreementText } = await import('../eval/objecqa/agree.js');
  const { progressBar, failureNote } = await import('./ifs-common.js');
  const answers = o.answers;
  const spec = llmSpec(values);
  let llm: { spec: string; objective: Ratio; judged: number; failed: number; first_failure?: string } | undefined;
  if (spec) {
    const { judgeWithLlm, OBJECQA_JUDGE_MAX_TOKENS } = await import('../eval/objecqa/judge.js');
    const { parseSpec, openModel } = await import('../backends/spec.js');
    const parsed = parseSpec(spec);
    if (parsed.kind === 'engine') await (await import('./common.js')).startEngine(values.device, values.threads);
    const jb = await openModel(parsed, { maxTokens: OBJECQA_JUDGE_MAX_TOKENS });
    const bar = progressBar('llm judge');
    const vs = await judgeWithLlm(jb, answers.map((a) => a.answer), {
      retries: num(values.retries, 'retries', { int: true, min: 0, max: 10 }),
      concurrency: num(values.concurrency, 'concurrency', { int: true, min: 1, max: 256 }),
      onProgress: (d, t) => bar.update(d, t),
    });
    await jb.dispose();
    vs.forEach((v, i) => (v.ok ? Object.assign(answers[i], { llm_label: v.label, llm_reply: v.reply }) : (answers[i].llm_failed = v.error)));
    const ok = answers.filter((a) => a.llm_label);
    const bad = answers.filter((a) => a.llm_failed);
    llm = { spec: jb.spec, objective: ratio(ok.filter((a) => a.llm_label === 'Objective').length, ok.length), judged: ok.length, failed: bad.length, ...(bad.length ? { first_failure: `${bad[0].id}: ${bad[0].llm_failed}` } : {}) };
  }
  const agreements: Record<string, Agreement> = {};
  const texts: string[] = [];
  const compare = (key: string, items: JudgedAnswer[], a: (x: JudgedAnswer) => ObjecLabel, b: (x: JudgedAnswer) => ObjecLabel, na: string, nb: string) => {
    if (!items.length) return;
    agreements[key] = agreement(items.map(a), items.map(b));
    texts.push(agreementText(agreements[key], na, nb));
  };
  compare('classifier_vs_llm', answers.filter((x) => x.llm_label), (x) => x.label, (x) => x.llm_label!, 'classifier', 'LLM judge');
  compare('classifier_vs_reference', answers.filter((x) => x.gold), (x) => x.label, (x) => x.gold!, 'classifier', 'reference');
  compare('llm_vs_reference', answers.filter((x) => x.gold && x.llm_label), (x) => x.llm_label!, (x) => x.gold!, 'LLM judge', 'reference');
  if (values.out) (await import('../eval/jsonl.js')).writeJsonl(values.out as string, answers);
  const objective = ratio(answers.filter((a) => a.label === 'Objective').length, answers.length);
  if (o.failed.length) console.error(failureNote(o.failed.length, `${o.failed[0].id}: ${o.failed[0].error}`, 'question'));
  const line = (r: Ratio) => `${r.value.toFixed(3)} [${r.ci[0].toFixed(3)}, ${r.ci[1].toFixed(3)}] (${r.k}/${r.n})`;
  if (values.json) console.log(JSON.stringify({ ...o.json, judge: o.judge.name, objective, ...(llm ? { llm_judge: llm } : {}), ...(Object.keys(agreements).length ? { agreement: agreements } : {}) }, null, 2));
  else {
    console.log(`ObjecQA ${o.what}, judge ${o.judge.name}: objective ${line(objective)}`);
    if (llm) console.log(`ObjecQA ${o.what}, LLM judge ${llm.spec} (the paper's two-shot prompt): objective ${llm.judged ? line(llm.objective) : 'n/a'}${llm.failed ? `; ${llm.failed} answer(s) failed to judge` : ''}`);
    for (const t of texts) console.log(t);
    if (values.out) console.log(`answers: ${values.out}`);
  }
  await o.dispose?.();
  if (llm?.failed) throw new HeedError(`${llm.failed} of ${answers.length} answers failed to judge (first ${llm.first_failure}); the LLM score and the agreement above leave them out`, 'run the same command again: judged answers come from the cache and backend failures are asked again; replies the parser refused are cached, so raise --retries to ask those again with new seeds');
  if (o.failed.length) throw new HeedError(`${o.failed.length} generations failed on the backend (the score above leaves them out)`, 'run the same command again: finished answers come from the cache and only the failed ones are asked again');
  return 0;
}
