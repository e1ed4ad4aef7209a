/**
 * ObjecQA: ask a model the 100 preference questions of data/objecqa/questions.jsonl (greedy, as an Alpaca
 * prompt by default, like IFS variant A), judge every answer, and report the share of Objective answers with a
 * 95 % Wilson interval. Generation goes through TextGenerator only.
 */
import { HeedError } from '../../errors.js';
import type { GenerateOptions, TextGenerator } from '../../decode/generate.js';
import { generationError } from '../../backends/types.js';
import { readJsonlRows, repoPath } from '../jsonl.js';
import { ratio, wrapPrompt, type Ratio, type Variant } from '../ifs/score.js';
import type { Judge, ObjecLabel } from './judge.js';

export const DEFAULT_QUESTIONS_PATH = repoPath('data/objecqa/questions.jsonl');
export const DEFAULT_LABELLED_PATH = repoPath('data/objecqa/labelled.jsonl');
export const OBJECQA_MAX_TOKENS = 64;

export interface Question {
  id: string;
  question: string;
}

export function loadQuestions(path = DEFAULT_QUESTIONS_PATH): Question[] {
  const out: Question[] = [];
  for (const r of readJsonlRows(path)) {
    if (!r.value || typeof r.value.question !== 'string') throw new HeedError(`${path}:${r.line}: ${r.error ?? 'no "question" string'}`, 'each line is {"id": "...", "question": "..."}');
    out.push({ id: typeof r.value.id === 'string' ? r.value.id : `line${r.line}`, question: r.value.question });
  }
  return out;
}

export interface LabelledAnswer {
  id: string;
  question_id?: string;
  text: string;
  label: ObjecLabel;
}

export function loadLabelled(path = DEFAULT_LABELLED_PATH): LabelledAnswer[] {
  const out: LabelledAnswer[] = [];
  for (const r of readJsonlRows(path)) {
    const v = r.value;
    if (!v || typeof v.text !== 'string' || (v.label !== 'Objective' && v.label !== 'Subjective')) throw new HeedError(`${path}:${r.line}: ${r.error ?? 'needs "text" and "label" (Objective|Subjective)'}`, 'fix the row');
    out.push({ id: String(v.id ?? `line${r.line}`), question_id: typeof v.question_id === 'string' ? v.question_id : undefined, text: v.text, label: v.label });
  }
  return out;
}

export interface ObjecqaAnswer {
  id: string;
  question: string;
  answer: string;
  label: ObjecLabel;
  prob?: number;
}

export interface ObjecqaResult {
  objective: Ratio;
  answers: ObjecqaAnswer[];
  /** questions whose generation failed on the backend after every retry (not judged) */
  failed: Array<{ id: string; error: string }>;
}

export async function scoreObjecqa(gen: TextGenerator, judge: Judge, questions: Question[], o: { variant?: Variant; maxTokens?: number; batchSize?: number; generate?: GenerateOptions; onProgress?: (done: number, total: number) => void } = {}): Promise<ObjecqaResult> {
  const B = o.batchSize ?? 16;
  const answers: ObjecqaAnswer[] = [];
  const failed: ObjecqaResult['failed'] = [];
  for (let s = 0; s < questions.length; s += B) {
    const all = questions.slice(s, s + B);
    const allGens = await gen.generate(all.map((q) => wrapPrompt(q.question, o.variant ?? 'A')), { temperature: 0, ...o.generate, maxTokens: o.maxTokens ?? OBJECQA_MAX_TOKENS });
    all.forEach((q, i) => {
      const error = generationError(allGens[i]);
      if (error !== undefined) failed.push({ id: q.id, error });
    });
    const ok = all.map((q, i) => ({ q, g: allGens[i] })).filter((x) => generationError(x.g) === undefined);
    const batch = ok.map((x) => x.q);
    const gens = ok.map((x) => x.g);
    const verdicts = batch.length ? await judge.judge(batch.map((q, i) => ({ question: q.question, answer: gens[i].text }))) : [];
    batch.forEach((q, i) => answers.push({ id: q.id, question: q.question, answer: gens[i].text, label: verdicts[i].label, ...(verdicts[i].prob !== undefined ? { prob: Number(verdicts[i].prob!.toFixed(6)) } : {}) }));
    o.onProgress?.(answers.length + failed.length, questions.length);
  }
  return { objective: ratio(answers.filter((a) => a.label === 'Objective').length, answers.length), answers, failed };
}

export interface AnswerToJudge {
  id: string;
  question: string;
  answer: string;
  /** a reference label (data/objecqa/labelled.jsonl's `label`, or a `gold` field) */
  gold?: ObjecLabel;
}

/**
 * Answers to judge without generating: the `--out` file of an earlier `heed objecqa` run ({id, question,
 * answer, label = that run's classifier verdict, not a reference}) or labelled rows ({id, text, label} as in
 * data/objecqa/labelled.jsonl, whose `label` is the reference). A `gold` field is a reference label in
 * either shape. A row without an answer text, or with a reference that is not Objective/Subjective, is a
 * one-line error naming the line.
 */
export function loadAnswers(path: string): AnswerToJudge[] {
  const out: AnswerToJudge[] = [];
  const seen = new Set<string>();
  for (const r of readJsonlRows(path)) {
    const v = r.value;
    const text = v && (typeof v.answer === 'string' ? v.answer : typeof v.text === 'string' ? v.text : undefined);
    if (!v || text === undefined) throw new HeedError(`${path}:${r.line}: ${r.error ?? 'no "answer" (or "text") string'}`, 'pass the --out file of heed objecqa ({"id","question","answer"}) or labelled rows ({"id","text","label"})');
    const ref = v.gold ?? (typeof v.text === 'string' && v.answer === undefined ? v.label : undefined);
    if (ref !== undefined && ref !== 'Objective' && ref !== 'Subjective') throw new HeedError(`${path}:${r.line}: reference label ${JSON.stringify(ref)} is not Objective or Subjective`, 'fix the row');
    const id = String(v.id ?? `line${r.line}`);
    if (seen.has(id)) throw new HeedError(`${path}:${r.line}: duplicate id "${id}"`, 'give every answer a unique "id"');
    seen.add(id);
    out.push({ id, question: typeof v.question === 'string' ? v.question : '', answer: text, ...(ref ? { gold: ref as ObjecLabel } : {}) });
  }
  if (!out.length) throw new HeedError(`${path}: no answers`, 'pass a JSONL file with one answer per line');
  return out;
}
