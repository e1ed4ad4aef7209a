/**
 * Tokenizing rendered pieces so that masks are exact by construction.
 *
 * Every piece (content, end sequence, run of template markers) is tokenized on its own and the results
 * are concatenated: no token can straddle the boundary between a message's content and the template
 * text around it, so "the tokens of this content" is a well-defined set and decoding exactly those
 * tokens gives exactly the content. The price: where the whole rendered text would have merged
 * characters across a boundary (e.g. a content starting with "\n" right after a marker ending in "\n"
 * becomes "\n" + "\n" instead of "\n\n"), our ids differ from encode(wholeText). That is also what
 * happens at inference for the assistant turn (the prompt ends at the boundary, the model generates
 * from there). `boundarySplits` in `heed data stats` counts the rows where this happens.
 *
 * Details (docs/data.md, "Tokenization"):
 *  - Special tokens. In template text (markers, end sequences) every occurrence of an added special
 *    token string (<|im_end|>, </s>, ...) becomes that token's id directly. In content, special-token
 *    strings are tokenized as plain text (first character on its own, then the rest), so text in the
 *    data can never inject a control token.
 *  - Start of text. Some tokenizers treat the start of the input specially (Llama-2's normalizer
 *    prepends "▁"). The first text of a sequence is encoded as is; later texts are encoded as
 *    continuations: encode(anchor + text) minus the anchor's tokens, with anchor "\n" (verified to be
 *    a prefix; otherwise the plain encoding is used and counted in `anchorFallbacks`). Tokenizers
 *    without such effects (byte-level BPE: GPT-2, SmolLM2) are detected and encode pieces directly.
 *  - BOS. For built-in templates, the ids that the tokenizer's post-processor puts before a text
 *    (Llama-2's <s>) start the sequence; chat templates write their own BOS text.
 */
import type { HeedTokenizer } from '../io/tokenizer.js';
import type { Piece } from './types.js';

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** out.push(...xs) without the argument-count limit (a 1 MB content is >100k tokens). */
function append(out: number[], xs: readonly number[]): void {
  for (let i = 0; i < xs.length; i++) out.push(xs[i]);
}

const prefixEq = (a: number[], p: number[]) => a.length >= p.length && p.every((x, i) => a[i] === x);

export interface Encoded {
  ids: number[];
  /** index into the pieces array of the piece each token came from */
  piece: number[];
}

export class SegmentEncoder {
  /** added special tokens: string → id */
  readonly specials = new Map<string, number>();
  private readonly specialRe: RegExp | undefined;
  /** true when encode(a + b) = encode(a) + encode(b) on probes, i.e. no start-of-text effect */
  readonly contextFree: boolean;
  readonly anchor = '\n';
  private readonly anchorIds: number[];
  /** ids the tokenizer's post-processor adds before a text (e.g. Llama-2 BOS) */
  readonly bosIds: number[];
  /** EOS token string and id used by built-in templates */
  readonly eosText: string;
  readonly eosId: number | undefined;
  /** continuations whose anchor encoding did not come out as a prefix (plain encoding used) */
  anchorFallbacks = 0;

  constructor(readonly tok: HeedTokenizer) {
    for (const id of tok.specialIds()) {
      const s = tok.idToToken(id);
      if (s) this.specials.set(s, id);
    }
    const keys = [...this.specials.keys()].sort((a, b) => b.length - a.length);
    this.specialRe = keys.length ? new RegExp(keys.map(escapeRe).join('|'), 'g') : undefined;
    const probes: Array<[string, string]> = [
      ['\n', 'x'],
      ['x', '\n'],
      ['a', ' b'],
      ['1', '2'],
    ];
    this.contextFree = probes.every(([a, b]) => {
      const ab = tok.encode(a + b);
      const sep = [...tok.encode(a), ...tok.encode(b)];
      return ab.length === sep.length && ab.every((x, i) => x === sep[i]);
    });
    this.anchorIds = tok.encode(this.anchor);
    const plain = tok.encode('a');
    const withSpecial = tok.encode('a', { addSpecialTokens: true });
    const k = withSpecial.length - plain.length;
    this.bosIds = k > 0 && withSpecial.slice(k).every((x, i) => x === plain[i]) ? withSpecial.slice(0, k) : [];
    const eosId = tok.eosToken !== undefined ? tok.tokenToId(tok.eosToken) : tok.eosIds[0];
    this.eosId = eosId;
    this.eosText = tok.eosToken ?? (eosId !== undefined ? (tok.idToToken(eosId) ?? '') : '');
  }

  /** Plain text piece encoding, honouring the start-of-text rule. */
  private cont(s: string, atStart: boolean): number[] {
    if (s === '') return [];
    if (atStart || this.contextFree) return this.tok.encode(s);
    const e = this.tok.encode(this.anchor + s);
    if (prefixEq(e, this.anchorIds)) return e.slice(this.anchorIds.length);
    this.anchorFallbacks++;
    return this.tok.encode(s);
  }

  /** Content text: special-token strings inside it are tokenized as plain text. */
  encodeText(s: string, atStart: boolean): number[] {
    if (!this.specialRe) return this.cont(s, atStart);
    const out: number[] = [];
    let last = 0;
    let first = atStart;
    this.specialRe.lastIndex = 0;
    for (let m = this.specialRe.exec(s); m; m = this.specialRe.exec(s)) {
      if (m.index > last) {
        append(out, this.cont(s.slice(last, m.index), first));
        first = false;
      }
      const cp = String.fromCodePoint(m[0].codePointAt(0)!);
      append(out, this.cont(cp, first));
      first = false;
      const rest = m[0].slice(cp.length);
      const save = this.specialRe.lastIndex;
      append(out, this.encodeText(rest, false));
      this.specialRe.lastIndex = save;
      last = m.index + m[0].length;
    }
    if (last < s.length) append(out, this.cont(s.slice(last), first));
    return out;
  }

  /** Template text: special-token strings become their ids. */
  encodeMarker(s: string, atStart: boolean): number[] {
    if (!this.specialRe) return this.cont(s, atStart);
    const out: number[] = [];
    let last = 0;
    let first = atStart;
    this.specialRe.lastIndex = 0;
    for (let m = this.specialRe.exec(s); m; m = this.specialRe.exec(s)) {
      if (m.index > last) {
        append(out, this.cont(s.slice(last, m.index), first));
        first = false;
      }
      out.push(this.specials.get(m[0])!);
      last = m.index + m[0].length;
    }
    if (last < s.length) append(out, this.cont(s.slice(last), first));
    return out;
  }

  /** Template text that is more than special-token strings. */
  private hasPlainText(s: string): boolean {
    return (this.specialRe ? s.replace(this.specialRe, '') : s) !== '';
  }

  /**
   * Tokenize pieces. Consecutive marker pieces are encoded together (they always carry the same weight:
   * a marker's weight depends only on the contents around its run); every other boundary is a forced
   * token boundary.
   */
  encodePieces(pieces: Piece[]): Encoded {
    const ids: number[] = [];
    const piece: number[] = [];
    let atStart = true;
    const push = (xs: number[], p: number) => {
      for (const x of xs) {
        ids.push(x);
        piece.push(p);
      }
    };
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i];
      if (p.ids) {
        push(p.ids, i);
        continue;
      }
      if (p.kind === 'marker') {
        let text = p.text;
        let j = i + 1;
        while (j < pieces.length && pieces[j].kind === 'marker' && !pieces[j].ids) text += pieces[j++].text;
        push(this.encodeMarker(text, atStart), i);
        if (this.hasPlainText(text)) atStart = false;
        i = j - 1;
        continue;
      }
      push(p.kind === 'content' ? this.encodeText(p.text, atStart) : this.encodeMarker(p.text, atStart), i);
      if (p.kind === 'content' ? p.text !== '' : this.hasPlainText(p.text)) atStart = false;
    }
    return { ids, piece };
  }

  /**
   * The ids the whole rendered text would get with only special tokens (of template text) split out:
   * what a fast tokenizer produces for the full string. Used to count boundary splits.
   */
  encodeWhole(pieces: Piece[]): number[] {
    const ids: number[] = [];
    let text = '';
    let atStart = true;
    const flush = () => {
      if (text) {
        append(ids, this.cont(text, atStart));
        atStart = false;
        text = '';
      }
    };
    for (const p of pieces) {
      if (p.ids) {
        flush();
        ids.push(...p.ids);
        continue;
      }
      if (!this.specialRe) {
        text += p.text;
        continue;
      }
      let last = 0;
      this.specialRe.lastIndex = 0;
      for (let m = this.specialRe.exec(p.text); m; m = this.specialRe.exec(p.text)) {
        text += p.text.slice(last, m.index);
        flush();
        // template text: the special token; content: the same plain-text escape as encodeText
        if (p.kind === 'content') {
          const save = this.specialRe.lastIndex;
          append(ids, this.encodeText(m[0], atStart));
          this.specialRe.lastIndex = save;
          atStart = false;
        } else ids.push(this.specials.get(m[0])!);
        last = m.index + m[0].length;
      }
      text += p.text.slice(last);
    }
    flush();
    return ids;
  }

  /** Exact decode: special tokens kept, no clean-up of spaces. */
  decode(ids: ArrayLike<number>): string {
    const arr = Array.from(ids);
    if (arr.length === 0) return '';
    return this.tok.decode(arr, { skipSpecialTokens: false, cleanUpSpaces: false });
  }

  /**
   * Text that tokens [s, e) add after tokens [0, s): exact even for decoders that strip a leading space.
   * Decoding starts after the post-processor's BOS ids (when the sequence starts with them), so the
   * sentencepiece dummy prefix "▁" of the first text token decodes to nothing, as it does in a plain decode.
   */
  decodeSpan(ids: ArrayLike<number>, s: number, e: number): string {
    const slice = (a: number, b: number) => Array.prototype.slice.call(ids, a, b) as number[];
    const nb = this.bosIds.length;
    const z = nb && ids.length >= nb && this.bosIds.every((x, i) => ids[i] === x) ? nb : 0;
    if (s < z) return this.decode(slice(s, z)) + this.decodeSpan(ids, z, e);
    // Decoders are local (a byte-level character spans at most 4 tokens; a stripped leading space only
    // touches the first token decoded), so DECODE_CONTEXT tokens before s give the same text as the whole
    // prefix: linear in the row instead of quadratic (heed data inspect of a 20,000-turn row). When the
    // windowed decode does not extend its context's text, the whole prefix is used as before.
    for (const c of s - z > DECODE_CONTEXT ? [s - DECODE_CONTEXT, z] : [z]) {
      const before = this.decode(slice(c, s));
      const upto = this.decode(slice(c, e));
      if (upto.startsWith(before)) return upto.slice(before.length);
    }
    return this.decode(slice(s, e));
  }
}

/** tokens of context decodeSpan decodes before a span (see there) */
export const DECODE_CONTEXT = 16;
