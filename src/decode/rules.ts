/**
 * The rule-based adapter of "Instruction Following without Instruction Tuning" (Hewitt et al. 2024,
 * arXiv 2409.14254): a product of experts between the base model and a hand-written rule "model".
 *
 *   next = argmax( log_softmax(base_logits) + w · log_softmax(rule_scores) )
 *
 * Rule scores start at 0 for every token of the vocabulary, then
 *   - EOS ramp: with n = tokens generated so far (see `generatedCount`), every EOS id gets slope·n/cap while
 *     0 < n < cap; at n ≥ cap the bonus is 0 (`afterCap: "zero"`, the paper's code) or slope (`"hold"`).
 *   - uniform token changes: a fixed delta for the ids each token rule maps to (see `resolveTokenRule`).
 *   - repetition: −penalty once for each distinct id already present in the scope ("from-user-turn": from the
 *     start of the user turn inside the prompt, instruction included — the paper's code; "response": the
 *     generated tokens only — the paper's table).
 *
 * Everything a processor needs is resolved once per tokenizer (`compileRules`), so the per-step cost is one
 * pass over the vocabulary plus the scope's distinct ids.
 */
import { readFileSync, existsSync } from 'node:fs';
import { z } from 'zod';
import { HeedError } from '../errors.js';
import { jsonSchemaOf, zodProblems } from '../zod-text.js';
import type { LogitsProcessor, ProcessorContext } from './generate.js';
import { logSoftmax } from './sampling.js';

// ---------------------------------------------------------------- schema

const tokenRule = z
  .strictObject({
    /** literal text, spaces included: " I" is the word-initial piece ▁I / ĠI, "I" the bare piece */
    text: z.string().min(1).optional(),
    /** a vocabulary piece exactly as the tokenizer spells it, e.g. "▁I", "<0x0A>", "ĠI" */
    piece: z.string().min(1).optional(),
    /** raw token ids (tokenizer-specific) */
    ids: z.array(z.number().int().nonnegative()).min(1).optional(),
    /** with `text`: also touch the word-initial variant " " + text (e.g. "I" → I and ▁I) */
    withSpace: z.boolean().optional(),
    delta: z.number().finite(),
    /** free-form note shown by `heed rules explain` */
    note: z.string().optional(),
  })
  .refine((r) => [r.text, r.piece, r.ids].filter((x) => x !== undefined).length === 1, { message: 'give exactly one of "text", "piece" or "ids"' })
  .refine((r) => !r.withSpace || r.text !== undefined, { message: '"withSpace" only applies to "text"' });

export const rulesSchema = z.strictObject({
  name: z.string().optional(),
  description: z.string().optional(),
  /** weight w of the rule expert in the product of experts (the paper: 1) */
  weight: z.number().finite().nonnegative().default(1),
  eos: z
    .strictObject({
      /** the bonus reached at n = cap (added: slope·n/cap) */
      slope: z.number().finite(),
      cap: z.number().int().positive(),
      /** "zero": the paper's code (bonus falls to 0 at n ≥ cap); "hold": keep the bonus at slope */
      afterCap: z.enum(['zero', 'hold']),
    })
    .nullable()
    .default(null),
  tokens: z.array(tokenRule).default([]),
  repetition: z
    .strictObject({
      penalty: z.number().finite(),
      scope: z.enum(['from-user-turn', 'response']),
    })
    .nullable()
    .default(null),
});

export type Rules = z.infer<typeof rulesSchema>;
export type TokenRule = Rules['tokens'][number];

/** Validate a parsed rules object; errors name the field (`tokens[3].delta`) and the fix. */
export function parseRules(raw: unknown, source = 'rules'): Rules {
  const r = rulesSchema.safeParse(raw);
  // every problem at once, in the user's terms (src/zod-text.ts)
  if (!r.success) throw zodProblems(r.error.issues, raw, source, jsonSchemaOf(rulesSchema), 'docs/rules.md (the rules file format and the presets hewitt-2024, hewitt-2024-ids, default)', { brackets: true, prefix: 'field' });
  return r.data;
}

// ---------------------------------------------------------------- presets

/** The paper's uniform token changes as strings; the comments give the Llama-2 ids they map to. */
const paperTokens: TokenRule[] = [
  { text: '<', delta: -4, note: 'Llama-2 29966' },
  { text: ' <', delta: -4, note: 'Llama-2 529 (▁<)' },
  { text: '|', delta: -4, note: 'Llama-2 29989' },
  { text: ' I', delta: -5, note: 'Llama-2 306 (▁I)' },
  { text: 'I', delta: -5, note: 'Llama-2 29902' },
  { text: ' We', delta: -3, note: 'Llama-2 1334 (▁We)' },
  { text: 'What', delta: -5, note: 'Llama-2 5618 (the paper table says −3, its code −5)' },
  { text: ' should', delta: -6, note: 'Llama-2 881 (▁should)' },
  { text: ' *', delta: 1, note: 'Llama-2 334 (▁*)' },
  { text: ' -', delta: 1, note: 'Llama-2 448 (▁-)' },
  { text: '   ', delta: 1, note: 'Llama-2 1678 (▁▁▁)' },
  { text: ' #', delta: 1, note: 'Llama-2 396 (▁#)' },
  { text: ' ##', delta: 1, note: 'Llama-2 444 (▁##)' },
  { text: '\n', delta: 1, note: 'Llama-2 13 (<0x0A>)' },
  { text: '!', delta: 1, note: 'Llama-2 29991' },
];

/** The paper's ids for Llama-2 (used by the `hewitt-2024-ids` preset and the tests). */
export const HEWITT_2024_LLAMA2_IDS: Array<[number, number]> = [
  [29966, -4], [529, -4], [29989, -4], [306, -5], [29902, -5], [1334, -3], [5618, -5], [881, -6],
  [334, 1], [448, 1], [1678, 1], [396, 1], [444, 1], [13, 1], [29991, 1],
];

export const PRESETS: Record<string, Rules> = {
  'hewitt-2024': {
    name: 'hewitt-2024',
    description: "the paper's code: EOS ramp 15·n/250 that falls to 0 at n ≥ 250, uniform changes as strings, repetition counted from the user turn",
    weight: 1,
    eos: { slope: 15, cap: 250, afterCap: 'zero' },
    tokens: paperTokens,
    repetition: { penalty: 1.5, scope: 'from-user-turn' },
  },
  'hewitt-2024-ids': {
    name: 'hewitt-2024-ids',
    description: 'hewitt-2024 with the raw Llama-2 ids of the paper (only meaningful for Llama-2 vocabularies)',
    weight: 1,
    eos: { slope: 15, cap: 250, afterCap: 'zero' },
    tokens: HEWITT_2024_LLAMA2_IDS.map(([id, delta]) => ({ ids: [id], delta })),
    repetition: { penalty: 1.5, scope: 'from-user-turn' },
  },
  default: {
    name: 'default',
    description: 'hewitt-2024 mapped through the model tokenizer, with the EOS bug fixed (the bonus holds at 15 after 250 tokens)',
    weight: 1,
    eos: { slope: 15, cap: 250, afterCap: 'hold' },
    tokens: paperTokens,
    repetition: { penalty: 1.5, scope: 'from-user-turn' },
  },
};

/** A preset name or a JSON file path → validated rules. */
export function loadRules(spec: string | undefined): Rules {
  const s = spec && spec.length ? spec : 'default';
  if (Object.hasOwn(PRESETS, s)) return structuredClone(PRESETS[s]);
  if (!existsSync(s)) throw new HeedError(`rules "${s}" is neither a preset nor a file`, `use a preset (${Object.keys(PRESETS).join(', ')}) or the path of a rules JSON file`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(s, 'utf8'));
  } catch (e) {
    throw new HeedError(`${s}: not valid JSON (${(e as Error).message})`, 'fix the JSON syntax of the rules file');
  }
  return parseRules(raw, s);
}

// ---------------------------------------------------------------- string → ids

/** The part of a tokenizer the mapping needs (HeedTokenizer satisfies it). */
export interface RuleTokenizer {
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  tokens(text: string, opts?: { addSpecialTokens?: boolean }): string[];
  readonly eosIds: number[];
  readonly vocabSize: number;
}

export type PieceStyle = 'sentencepiece' | 'byte-level' | 'plain';

/** SentencePiece vocabularies mark spaces with ▁ (Llama, Mistral); byte-level BPE maps bytes to printable chars (GPT-2, Qwen, SmolLM). */
export function pieceStyle(tok: RuleTokenizer): PieceStyle {
  const t = tok.tokens(' a b').join('');
  if (t.includes('\u2581')) return 'sentencepiece';
  if (t.includes('\u0120')) return 'byte-level';
  return 'plain';
}

let byteMap: string[] | undefined;
/** GPT-2's bytes_to_unicode table. */
function bytesToUnicode(): string[] {
  if (byteMap) return byteMap;
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n); n++; }
  byteMap = new Array(256);
  bs.forEach((b, i) => (byteMap![b] = String.fromCodePoint(cs[i])));
  return byteMap;
}

/** The vocabulary piece that spells `text` as one token in the given style. */
export function pieceFor(text: string, style: PieceStyle): string {
  if (style === 'sentencepiece') return text.replace(/ /g, '\u2581');
  if (style === 'byte-level') return [...new TextEncoder().encode(text)].map((b) => bytesToUnicode()[b]).join('');
  return text;
}

/**
 * The ids one text maps to: the single token that spells it exactly in this tokenizer (SentencePiece: spaces
 * as ▁, with the byte-fallback piece <0xHH> for a one-byte character that has no piece of its own; byte-level
 * BPE: the GPT-2 byte alphabet, " I" → "ĠI"). No merging, no prepended space: "I" is the bare piece and " I"
 * the word-initial one. A text that is no single token maps to no id (explain shows how it would split).
 */
export function textIds(tok: RuleTokenizer, text: string, style = pieceStyle(tok)): number[] {
  const piece = pieceFor(text, style);
  let id = tok.tokenToId(piece);
  if (id === undefined && style === 'sentencepiece') {
    const bytes = new TextEncoder().encode(text);
    if (bytes.length === 1) id = tok.tokenToId(`<0x${bytes[0].toString(16).toUpperCase().padStart(2, '0')}>`);
  }
  return id === undefined ? [] : [id];
}

export interface ResolvedTokenRule {
  rule: TokenRule;
  /** the rule as the user wrote it: the text, piece or ids */
  string: string;
  ids: number[];
  pieces: string[];
  delta: number;
}

export function resolveTokenRule(tok: RuleTokenizer, r: TokenRule, index: number, style = pieceStyle(tok)): ResolvedTokenRule {
  let ids: number[];
  let label: string;
  if (r.ids) {
    for (const [j, id] of r.ids.entries()) {
      if (id >= tok.vocabSize) throw new HeedError(`rules: field "tokens[${index}].ids[${j}]": id ${id} is outside this tokenizer's vocabulary (0..${tok.vocabSize - 1})`, 'give ids of this tokenizer, or write the rule as "text" so it maps through any tokenizer');
    }
    ids = [...r.ids];
    label = `ids:${r.ids.join(',')}`;
  } else if (r.piece !== undefined) {
    const id = tok.tokenToId(r.piece);
    ids = id === undefined ? [] : [id];
    label = r.piece;
  } else {
    const text = r.text!;
    ids = textIds(tok, text, style);
    if (r.withSpace && !text.startsWith(' ')) ids.push(...textIds(tok, ` ${text}`, style));
    label = text;
  }
  ids = [...new Set(ids)];
  return { rule: r, string: label, ids, pieces: ids.map((i) => tok.idToToken(i) ?? `#${i}`), delta: r.delta };
}

// ---------------------------------------------------------------- the rule expert

export interface RuleAdapterOptions {
  /** ids that receive the EOS ramp; default the tokenizer's EOS ids */
  eosIds?: number[];
  /**
   * How many leading prompt tokens come before the user turn (BOS, a system prompt, ...); the
   * "from-user-turn" repetition scope counts ids[userTurnOffset..]. Default 0: the whole prompt.
   * A function gets the row (for batches whose rows differ).
   */
  userTurnOffset?: number | ((row: number) => number);
}

/** n of the EOS ramp: tokens generated so far (the response start is the end of the prompt). Equals ctx.step. */
export const generatedCount = (ids: readonly number[], ctx: ProcessorContext) => ids.length - ctx.promptLength;

/** The EOS bonus at n generated tokens. */
export function eosBonus(eos: NonNullable<Rules['eos']>, n: number): number {
  if (n <= 0) return 0;
  if (n < eos.cap) return (eos.slope * n) / eos.cap;
  return eos.afterCap === 'hold' ? eos.slope : 0;
}

/** Distinct ids the repetition rule penalises. */
export function repetitionIds(ids: readonly number[], ctx: ProcessorContext, scope: 'from-user-turn' | 'response', userTurnOffset = 0): Set<number> {
  const from = scope === 'response' ? ctx.promptLength : Math.max(0, Math.min(userTurnOffset, ctx.promptLength));
  const s = new Set<number>();
  for (let i = from; i < ids.length; i++) s.add(ids[i]);
  return s;
}

export interface CompiledRules {
  rules: Rules;
  tokens: ResolvedTokenRule[];
  eosIds: number[];
  /** rule scores (before log_softmax) for one step */
  scores(ids: readonly number[], ctx: ProcessorContext, vocab: number): Float32Array;
  /** the product-of-experts logits processor */
  processor: LogitsProcessor;
}

export function compileRules(rules: Rules, tok: RuleTokenizer, opts: RuleAdapterOptions = {}): CompiledRules {
  const style = pieceStyle(tok);
  const tokens = rules.tokens.map((r, i) => resolveTokenRule(tok, r, i, style));
  const eosIds = opts.eosIds ?? tok.eosIds;
  const offset = (row: number) => (typeof opts.userTurnOffset === 'function' ? opts.userTurnOffset(row) : opts.userTurnOffset ?? 0);
  let base: Float32Array | undefined; // the uniform changes, per vocabulary size
  const uniform = (V: number) => {
    if (!base || base.length !== V) {
      base = new Float32Array(V);
      for (const t of tokens) for (const id of t.ids) if (id < V) base[id] += t.delta;
    }
    return base;
  };
  const scores = (ids: readonly number[], ctx: ProcessorContext, V: number) => {
    const s = Float32Array.from(uniform(V));
    if (rules.eos) {
      const b = eosBonus(rules.eos, generatedCount(ids, ctx));
      if (b !== 0) for (const e of eosIds) if (e < V) s[e] += b;
    }
    if (rules.repetition) for (const id of repetitionIds(ids, ctx, rules.repetition.scope, offset(ctx.row))) if (id < V) s[id] -= rules.repetition.penalty;
    return s;
  };
  const w = rules.weight;
  const processor: LogitsProcessor = (ids, logits, ctx) => {
    const lb = logSoftmax(logits);
    if (w === 0) return lb;
    const lr = logSoftmax(scores(ids, ctx, logits.length));
    for (let i = 0; i < lb.length; i++) lb[i] += w * lr[i];
    return lb;
  };
  return { rules, tokens, eosIds, scores, processor };
}

/** The prompt template of the paper's experiments. */
export const paperTemplate = (instruction: string) => `<|user|>\n${instruction}\n<|assistant|>\n`;
