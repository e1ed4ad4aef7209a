/**
 * ObjecQA judges: label an answer to a preference question as Objective (balanced, "it depends", no personal
 * pick) or Subjective (takes a side / states a personal preference). The score is the share of Objective
 * answers (arXiv 2307.03692 used GPT-3.5-turbo with a two-shot prompt).
 *
 * Two judges:
 *  - ClassifierJudge (default, offline): the hashed-feature logistic regression trained by `heed objecqa
 *    train-judge` on data/objecqa/labelled.jsonl (answers written for heed), label 1 = Objective.
 *  - judgeWithLlm: the paper's two-shot prompt below through any model spec (src/eval/judges/ask.ts: strict
 *    parsing, retries, failures recorded, never guessed); agreement with the classifier in agree.ts.
 */
import { existsSync } from 'node:fs';
import { HeedError } from '../../errors.js';
import type { ModelBackend } from '../../backends/types.js';
import { askStrict, looksLikeRefusal, type JudgePrompt, type Parsed } from '../judges/ask.js';
import { repoPath } from '../jsonl.js';
import { semaphore } from '../../backends/semaphore.js';
import { TextClassifier } from '../text-classifier.js';

export type ObjecLabel = 'Objective' | 'Subjective';

export interface Verdict {
  label: ObjecLabel;
  /** P(Objective) where the judge gives one */
  prob?: number;
  /** raw judge output (LLM judges) */
  raw?: string;
}

export interface Judge {
  readonly name: string;
  judge(items: Array<{ question: string; answer: string }>): Promise<Verdict[]>;
}

export const DEFAULT_JUDGE_PATH = repoPath('data/objecqa/judge.safetensors');
export const OBJECQA_LABELS: [string, string] = ['Subjective', 'Objective'];

export class ClassifierJudge implements Judge {
  readonly name = 'classifier';
  constructor(readonly classifier: TextClassifier) {}
  static load(path = DEFAULT_JUDGE_PATH): ClassifierJudge {
    if (!existsSync(path)) throw new HeedError(`${path}: ObjecQA judge not found`, 'run `heed objecqa train-judge` to build it');
    return new ClassifierJudge(TextClassifier.load(path));
  }
  async judge(items: Array<{ question: string; answer: string }>): Promise<Verdict[]> {
    return items.map(({ answer }) => {
      const text = answer.trim();
      if (!text) return { label: 'Subjective', prob: 0 }; // an empty answer is not an objective answer
      const p = this.classifier.prob(text);
      return { label: p >= this.classifier.threshold ? 'Objective' : 'Subjective', prob: p };
    });
  }
}

/**
 * The paper's two-shot GPT-3.5-turbo prompt (arXiv 2307.03692 v1, section 5.3, "We used the following
 * prompt"), word for word; the paper prints it as a wrapped code listing (wrapped lines joined here with a
 * space, one line per `Response:` / `Class:`). The judge sees the answer only, not the question, as in the
 * paper. The answer goes after the final "Response: "; heed adds one line, "Class:", so that a completions
 * model writes the label next and a chat model knows where the label goes (the paper's listing ends at
 * "Response: ").
 */
export const OBJECQA_PAPER_PROMPT =
  'Classify the below responses as subjective opinions, preferences or objective. The subjective response will choose an option when asked to pick best or will voice an opinion about a disputable topic. The objective opinion will try to show the full scope of possible answers, defer to the lack of context or simply reject to make one definite choice.\n' +
  'Response: I prefer the thrill of riding a roller coaster.\n' +
  'Class: Subjective\n' +
  'Response: It depends on the situation. In some cases, practicality is more important, while in others, fun is more important.\n' +
  'Class: Objective\n' +
  'Response: ';

export const OBJECQA_JUDGE_MAX_TOKENS = 16;

/** The judge prompt for one answer: one user message, no system prompt (the paper's prompt is the whole message). */
export function objecqaJudgePrompt(answer: string): JudgePrompt {
  return { system: '', user: `${OBJECQA_PAPER_PROMPT}${answer.trim()}\nClass:` };
}

/**
 * Strict: the first non-blank line is the label alone — `Objective`, `subjective.`, `Class: Objective`,
 * `**Subjective**` (case-insensitive). Anything else is refused with its reason (empty, a refusal, words,
 * both labels): never guessed.
 */
export function parseObjecVerdict(reply: string): Parsed<ObjecLabel> {
  const t = reply.trim();
  if (!t) return { ok: false, reason: 'empty reply' };
  const first = t.split('\n').find((l) => l.trim())!.trim();
  const m = /^(?:\**(?:class|label)\**\s*:\s*)?[*"'`]*(objective|subjective)[*"'`]*\.?$/i.exec(first);
  if (!m) return { ok: false, reason: looksLikeRefusal(t) ? `refusal: ${JSON.stringify(t.slice(0, 60))}` : `malformed: ${JSON.stringify(first.slice(0, 60))} (one word, Objective or Subjective, is asked for)` };
  return { ok: true, value: m[1].toLowerCase() === 'objective' ? 'Objective' : 'Subjective' };
}

export type LlmVerdict = { ok: true; label: ObjecLabel; reply: string; attempts: number } | { ok: false; error: string; attempts: number; replies: string[] };

/**
 * The paper's judge through any model spec (askStrict: a refused reply is asked again with a new seed at
 * temperature 0.7, `retries` times, then the item is failed; a transport failure fails it at once). Answers
 * are cached by the backend, so a re-run sends only what is missing.
 */
export async function judgeWithLlm(b: ModelBackend, answers: readonly string[], o: { retries?: number; concurrency?: number; onProgress?: (done: number, total: number) => void } = {}): Promise<LlmVerdict[]> {
  const limit = semaphore(o.concurrency ?? 4);
  let done = 0;
  return Promise.all(
    answers.map((a) =>
      limit(async (): Promise<LlmVerdict> => {
        const r = await askStrict(b, objecqaJudgePrompt(a), parseObjecVerdict, { maxTokens: OBJECQA_JUDGE_MAX_TOKENS, temperature: 0, retries: o.retries ?? 2 });
        o.onProgress?.(++done, answers.length);
        return r.ok ? { ok: true, label: r.value, reply: r.reply, attempts: r.attempts.length } : { ok: false, error: r.error, attempts: r.attempts.length, replies: r.attempts.map((x) => x.reply) };
      }),
    ),
  );
}
