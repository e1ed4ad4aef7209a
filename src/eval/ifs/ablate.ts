/**
 * The rule ablation of Hewitt et al. 2024 (arXiv 2409.14254, §5: all rules 24.4 % win rate vs 2.4 % for the
 * base model; without the EOS ramp 10.4 %, without repetition 14.3 %, without uniform token changes 16.3 %),
 * measured with IFS instead of a win rate: the same prompts are scored for the base model alone, with all
 * rules, and with each rule group removed. Generation goes through the TextGenerator interface; a rule set is
 * applied as `compileRules(rules, tokenizer).processor` in `logitsProcessors`, so any generator that honours
 * the generation hook can be ablated.
 */
import type { GenerateOptions, TextGenerator } from '../../decode/generate.js';
import { compileRules, type RuleTokenizer, type Rules } from '../../decode/rules.js';
import type { TextClassifier } from '../text-classifier.js';
import type { PromptRow } from './fragments.js';
import { formatRatio, scoreIfs, type IfsResponse, type IfsScore, type Variant } from './score.js';

export interface AblationConfig {
  /** short key: base, all, -eos, -repetition, -uniform */
  key: string;
  name: string;
  /** null = the base model alone (no logits processor) */
  rules: Rules | null;
}

/** The five configurations: base alone, all rules, and all rules with each group removed. */
export function ablationConfigs(rules: Rules): AblationConfig[] {
  return [
    { key: 'base', name: 'base model alone', rules: null },
    { key: 'all', name: 'all rules', rules },
    { key: '-eos', name: 'without EOS ramp', rules: { ...rules, eos: null } },
    { key: '-repetition', name: 'without repetition', rules: { ...rules, repetition: null } },
    { key: '-uniform', name: 'without uniform token changes', rules: { ...rules, tokens: [] } },
  ];
}

export interface AblationRow {
  key: string;
  name: string;
  scores: IfsScore[];
  /** mean number of generated tokens per response */
  mean_tokens: number;
  /** share of responses that ended with EOS */
  eos_share: number;
}

export interface AblationOptions {
  variants: Variant[];
  maxTokens: number;
  batchSize?: number;
  fits?: (wrapped: string) => boolean;
  /** extra generation options (greedy by default) */
  generate?: GenerateOptions;
  onConfig?: (c: AblationConfig, i: number) => void;
  onProgress?: (done: number, total: number) => void;
  onResponse?: (config: string, r: IfsResponse) => void;
}

export async function runAblation(gen: TextGenerator, tok: RuleTokenizer, classifier: TextClassifier, prompts: PromptRow[], rules: Rules, o: AblationOptions): Promise<AblationRow[]> {
  const rows: AblationRow[] = [];
  const configs = ablationConfigs(rules);
  for (const [i, c] of configs.entries()) {
    o.onConfig?.(c, i);
    const logitsProcessors = c.rules ? [compileRules(c.rules, tok).processor] : [];
    const res = await scoreIfs(gen, classifier, prompts, {
      variants: o.variants,
      maxTokens: o.maxTokens,
      batchSize: o.batchSize,
      fits: o.fits,
      generate: { ...o.generate, logitsProcessors: [...(o.generate?.logitsProcessors ?? []), ...logitsProcessors] },
      onProgress: o.onProgress,
      onResponse: (r) => o.onResponse?.(c.key, r),
    });
    const n = res.responses.length;
    rows.push({
      key: c.key,
      name: c.name,
      scores: res.scores,
      mean_tokens: n ? res.responses.reduce((a, r) => a + r.tokens, 0) / n : 0,
      eos_share: n ? res.responses.filter((r) => r.finish_reason === 'eos').length / n : 0,
    });
  }
  return rows;
}

/** The table `heed rules ablate` prints: one row per configuration, IFS per variant, mean length, EOS share. */
export function formatAblation(rows: AblationRow[]): string {
  const variants = rows[0]?.scores.map((s) => s.variant) ?? [];
  const head = ['configuration', ...variants.map((v) => `IFS ${v}`), 'mean tokens', 'EOS share'];
  const body = rows.map((r) => [r.name, ...r.scores.map((s) => formatRatio(s.ifs)), r.mean_tokens.toFixed(1), r.eos_share.toFixed(2)]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd();
  return [line(head), ...body.map(line), '(IFS: share of answer-like responses, 95 % Wilson interval, k/n)'].join('\n');
}
