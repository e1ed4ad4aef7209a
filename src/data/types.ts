/**
 * Plain data types of the data pipeline (docs/data.md describes every stage).
 *
 *   rows on disk → Conversation → Piece[] (template) → token ids + per-token piece index (encode)
 *   → per-token loss weights (masks) → truncation → packing → batches
 *
 * Everything here is plain TypeScript: no tensors, no model.
 */

export type Role = 'system' | 'user' | 'assistant';
export const ROLES: readonly Role[] = ['system', 'user', 'assistant'];

export interface Message {
  role: Role;
  content: string;
  /**
   * Alpaca rows keep their two prompt fields apart so that the `alpaca` template can render the
   * with-input wrapper; `content` is then `instruction + "\n\n" + input` (what other templates render).
   */
  parts?: { instruction: string; input: string };
}

export interface Conversation {
  /** the row's `id` field, or `<file name>:<line>` when the row has none */
  id: string;
  /** 1-based line in the source file where the row starts */
  line: number;
  messages: Message[];
}

/**
 * A piece of rendered text. Templates turn a conversation into pieces; masks give each piece a weight;
 * the encoder tokenizes the pieces so that no token crosses a content boundary.
 *  - `marker`  template text (role headers, separators, BOS text, system preambles); weight 0 except
 *              under the IM-paper marker quirk
 *  - `content` (part of) a message's content, exactly as the template renders it (tulu strips it)
 *  - `end`     the end-of-turn sequence after an assistant message (EOS / <|im_end|>); carries the
 *              assistant turn's weight
 */
export type PieceKind = 'marker' | 'content' | 'end';

export interface Piece {
  kind: PieceKind;
  text: string;
  /** index of the message this piece belongs to; -1 for template text that belongs to no message */
  msg: number;
  role?: Role;
  /** token ids given directly (e.g. the BOS the tokenizer's post-processor adds); `text` is then for display */
  ids?: number[];
}

/** Per-token kind codes stored in Example.kinds (for stats and inspect). */
export const KIND = { marker: 0, system: 1, user: 2, assistant: 3, end: 4 } as const;
export type KindCode = (typeof KIND)[keyof typeof KIND];
export const KIND_NAMES = ['marker', 'system', 'user', 'assistant', 'end'] as const;

/**
 * One tokenized, masked training row.
 * ALIGNMENT: weights[t] is the loss weight of token t *as a target*, i.e. of the loss term at position
 * t-1 that predicts ids[t] (HF "labels" convention before the shift). weights[0] is always 0: nothing
 * predicts the first token of a sequence.
 */
export interface Example {
  id: string;
  line: number;
  ids: Int32Array;
  weights: Float32Array;
  kinds: Uint8Array;
  /** set when truncation shortened the row */
  truncated?: boolean;
}

export interface BadRow {
  /** 1-based line of the row in its file (JSON arrays: line where the element starts) */
  line: number;
  id?: string;
  /** machine-readable reason, one of BAD_REASONS */
  reason: BadReason;
  message: string;
}

export const BAD_REASONS = [
  'malformed-json',
  'invalid-utf8',
  'lone-surrogate',
  'not-object',
  'unknown-shape',
  'missing-field',
  'wrong-type',
  'empty-content',
  'unknown-role',
  'no-assistant',
  'trailing-turn',
  'template',
] as const;
export type BadReason = (typeof BAD_REASONS)[number];
