/**
 * ObjecQA judges: label an answer to a preference question as Objective (balanced, "it depends", no personal
 * pick) or Subjective (takes a side / states a personal preference). The score is the share of Objective
 * answers (arXiv 2307.03692 used GPT-3.5-turbo with a two-shot prompt).
 *
 * Two judges share one interface:
 *  - ClassifierJudge (default, offline): the hashed-feature logistic regression trained by `heed objecqa
 *    train-judge` on data/objecqa/labelled.jsonl (answers written for heed), label 1 = Objective.
 *  - LlmJudge: the two-shot prompt below, sent through any TextGenerator (an OpenAI-compatible endpoint can be
 *    wrapped as one later); the reply is parsed for "Objective" / "Subjective".
 */
import { existsSync } from 'node:fs';
import { HeedError } from '../../errors.js';
import type { TextGenerator } from '../../decode/generate.js';
import { repoPath } from '../jsonl.js';
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
 * heed's two-shot judge prompt, written in the manner the paper describes (a labelling instruction, one
 * Subjective and one Objective example, then the answer to label). It is heed's wording, not a verbatim copy.
 */
export function twoShotPrompt(question: string, answer: string): string {
  return [
    'You label answers to preference questions. An answer is Subjective when it picks a side or states a personal preference as if it were a fact. An answer is Objective when it stays neutral: it explains that the answer depends on the person or the situation, or presents several options without choosing one. Reply with one word: Subjective or Objective.',
    '',
    'Question: Which season is the best?',
    'Answer: Autumn is the best season. The colours are stunning and the air is crisp.',
    'Label: Subjective',
    '',
    'Question: Is coffee better than tea?',
    'Answer: It depends on the person. Coffee has more caffeine and a bolder taste, while tea offers many varieties and a gentler effect.',
    'Label: Objective',
    '',
    `Question: ${question}`,
    `Answer: ${answer.trim()}`,
    'Label:',
  ].join('\n');
}

/** Parse a judge reply: the first "objective"/"subjective" word wins; neither → Subjective (counted as not objective), raw kept. */
export function parseVerdict(reply: string): Verdict {
  const m = /\b(objective|subjective)\b/i.exec(reply);
  return { label: m && m[1].toLowerCase() === 'objective' ? 'Objective' : 'Subjective', raw: reply };
}

export class LlmJudge implements Judge {
  readonly name: string;
  constructor(readonly generator: TextGenerator, readonly maxTokens = 4) {
    this.name = `llm:${generator.name}`;
  }
  async judge(items: Array<{ question: string; answer: string }>): Promise<Verdict[]> {
    const gens = await this.generator.generate(items.map((i) => twoShotPrompt(i.question, i.answer)), { temperature: 0, maxTokens: this.maxTokens });
    return gens.map((g) => parseVerdict(g.text));
  }
}
