/**
 * One conversation → one Example: transform for the mask policy, render with the template, tokenize
 * piece by piece, weight each token by its piece. Pure given the tokenizer.
 */
import type { HeedTokenizer } from '../io/tokenizer.js';
import { SegmentEncoder } from './encode.js';
import { maskName, parseMask, pieceKind, pieceWeights, transformForMask, type MaskSpec } from './masks.js';
import { makeTemplate, type Template } from './templates.js';
import type { Conversation, Example, Piece } from './types.js';

export interface Prepared {
  example: Example;
  /** the rendered pieces and each token's piece (for inspect and tests) */
  pieces: Piece[];
  piece: Int32Array;
  /** weight of each piece */
  pieceWeight: Float32Array;
}

export class DataPipeline {
  readonly enc: SegmentEncoder;
  readonly template: Template;
  readonly mask: MaskSpec;

  constructor(
    readonly tok: HeedTokenizer,
    opts: { template?: string | Template; mask?: string | MaskSpec; includeSystem?: boolean; markerQuirk?: boolean; enc?: SegmentEncoder } = {},
  ) {
    this.enc = opts.enc ?? new SegmentEncoder(tok);
    this.template = typeof opts.template === 'object' ? opts.template : makeTemplate(opts.template ?? 'auto', this.enc);
    this.mask = typeof opts.mask === 'object' ? opts.mask : parseMask(opts.mask ?? 'output', { includeSystem: opts.includeSystem, markerQuirk: opts.markerQuirk });
  }

  get maskName(): string {
    return maskName(this.mask);
  }

  /** Render, tokenize and weight one conversation. Throws HeedError for conversations the template cannot render. */
  prepare(conv: Conversation): Prepared {
    const pieces = this.template.render(transformForMask(conv, this.mask));
    const { ids, piece } = this.enc.encodePieces(pieces);
    const pw = pieceWeights(pieces, this.mask);
    const pk = pieces.map(pieceKind);
    const n = ids.length;
    const weights = new Float32Array(n);
    const kinds = new Uint8Array(n);
    const pieceOf = new Int32Array(piece);
    for (let t = 0; t < n; t++) {
      weights[t] = pw[piece[t]];
      kinds[t] = pk[piece[t]];
    }
    if (n > 0) weights[0] = 0;
    return { example: { id: conv.id, line: conv.line, ids: Int32Array.from(ids), weights, kinds }, pieces, piece: pieceOf, pieceWeight: pw };
  }

  /** True when tokenizing the whole rendered text would give other ids (a merge across a content boundary). */
  boundarySplit(p: Prepared): boolean {
    const whole = this.enc.encodeWhole(p.pieces);
    const ids = p.example.ids;
    return whole.length !== ids.length || whole.some((x, i) => x !== ids[i]);
  }
}

export function lossTokens(ex: { weights: Float32Array }): number {
  let k = 0;
  for (const w of ex.weights) if (w > 0) k++;
  return k;
}

export function lossWeight(ex: { weights: Float32Array }): number {
  let s = 0;
  for (const w of ex.weights) s += w;
  return s;
}
