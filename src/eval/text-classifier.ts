/**
 * A small binary text classifier: logistic regression over hashed features (word unigrams and bigrams,
 * character 3-grams of the opening, and "how does the text start" features), trained with project code on the
 * engine (jit + valueAndGrad + the project's AdamW) and scored on the host with plain JavaScript (no engine
 * needed to classify). Used by IFS (answer-like vs continuation-like) and the ObjecQA judge.
 *
 * p(label 1 | text) = σ(b + Σ_f w[h(f)]·x_f), h = FNV-1a 32-bit mod `buckets`.
 * Feature values: bag features (unigrams, bigrams, char 3-grams) are counted and scaled by 1/√(number of bag
 * features in the text); start features ("first token is X", "first two tokens are X Y", the class of the
 * first character, a lower-case start) have value 1; one length feature (log2 of the token count) has value 1.
 * Weights are stored as safetensors (`w` [buckets], `b` [1]) with the feature config in the metadata.
 */
import { HeedError } from '../errors.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';

export interface FeatureConfig {
  buckets: number;
  /** characters of the (trimmed) text that are featurised */
  maxChars: number;
  /** characters of the opening that contribute char 3-grams */
  charChars: number;
  /** features per text kept (start features first); fixed so training compiles once */
  maxFeatures: number;
  /**
   * Text statistics as indicator features (see `statFeatures`): character-class shares, vowel ratio,
   * word-likeness, repetition, line structure. Off when absent (the ObjecQA judge's files predate them).
   */
  stats?: boolean;
  /** known words (lower case, space separated) for the "share of dictionary words" statistic */
  dict?: string;
  /** known word bigrams of the training responses as a bitset (base64, FNV-1a of "w1 w2" mod its bits) */
  bigrams?: string;
  /** "stats": only the statistics (and the length feature), no words, n-grams or start features */
  only?: 'stats';
  /**
   * Structure features (see `structureFeatures`): how the first line relates to the rest (shared words, its
   * end character and length crossed with what follows), how the text ends. Off when absent.
   */
  structure?: boolean;
  /**
   * A second feature set (e.g. statistics only) hashed into the last `extra.buckets` of `buckets`; the first
   * feature set then uses `buckets - extra.buckets` buckets and `maxFeatures - extra.maxFeatures` features.
   */
  extra?: FeatureConfig;
  /**
   * Featurise the canonical form of the text (see `canonical`): line endings, surrounding whitespace, a
   * wrapping code fence, a leading "Sure!"-like interjection, line markers (bullets, numbers, headings,
   * blockquotes) and letter case are taken away, so formatting alone cannot flip a verdict. Off when absent.
   */
  canon?: boolean;
  /** Discourse features (see `discourseFeatures`): who speaks to whom, questions, requests. Off when absent. */
  discourse?: boolean;
  /**
   * With `canon`: keep one sign of letter case, the case of the first letter (`startCase`) alone and crossed
   * with the first word — a text that continues a cut instruction starts mid-sentence, in lower case.
   */
  caseStart?: boolean;
  /**
   * Pair features (see `pairFeatures`), hashed into `pair.buckets` buckets of their own after all others
   * (`pair.maxFeatures` of the features): how the text relates to the prompt it answers. Used by the IFS pair
   * classifier (`TextClassifier.prob(text, prompt)`); without a prompt the block is empty.
   */
  pair?: PairBlockConfig;
}

export const DEFAULT_FEATURES: FeatureConfig = { buckets: 1 << 17, maxChars: 600, charChars: 120, maxFeatures: 384 };

export interface Features {
  idx: Int32Array;
  val: Float32Array;
  /** how many of the first entries are start / engineered features (the rest: bag features, then blocks) */
  nStart?: number;
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

const TOKEN_RE = /[\p{L}\p{M}]+|\p{N}+|[^\s\p{L}\p{M}\p{N}]/gu;

function charClass(c: string | undefined): string {
  if (c === undefined) return 'none';
  if (/\p{Lu}/u.test(c)) return 'upper';
  if (/\p{Ll}/u.test(c)) return 'lower';
  if (/\p{N}/u.test(c)) return 'digit';
  return `punct:${c}`;
}

const dictCache = new WeakMap<FeatureConfig, Set<string>>();
function dictOf(cfg: FeatureConfig): Set<string> | undefined {
  if (!cfg.dict) return undefined;
  let d = dictCache.get(cfg);
  if (!d) dictCache.set(cfg, (d = new Set(cfg.dict.split(' '))));
  return d;
}

const bigramCache = new WeakMap<FeatureConfig, Uint8Array>();
function bigramsOf(cfg: FeatureConfig): Uint8Array | undefined {
  if (!cfg.bigrams) return undefined;
  let d = bigramCache.get(cfg);
  if (!d) bigramCache.set(cfg, (d = new Uint8Array(Buffer.from(cfg.bigrams, 'base64'))));
  return d;
}

/** A bitset (base64) of the hashed word bigrams in `pairs` (see FeatureConfig.bigrams). */
export function bigramBitset(pairs: Iterable<string>, bits: number): string {
  const b = new Uint8Array(bits / 8);
  for (const p of pairs) {
    const h = fnv1a(p) % bits;
    b[h >> 3] |= 1 << (h & 7);
  }
  return Buffer.from(b).toString('base64');
}

const bucket = (x: number, steps = 10) => Math.round(Math.min(1, Math.max(0, x)) * steps);

/**
 * Statistics of a text as names of indicator features (value 1 each): how much of it is letters, digits,
 * spaces, punctuation, other symbols and control characters; the vowel share of its letters; the share of
 * its words that look like words (a vowel, no run of 5 consonants, ≤ 20 letters) and, with a dictionary,
 * that are known words; the distinct-word ratio (by length); how often its most frequent word 3-gram repeats;
 * repeated lines; mean word length. Noise, word salad and repetition loops differ from language here.
 */
export function statFeatures(t: string, lower: string[], dict?: Set<string>, bigrams?: Uint8Array): string[] {
  const f: string[] = [];
  const n = t.length;
  if (n === 0) return ['st:empty'];
  let letters = 0, digits = 0, spaces = 0, punct = 0, other = 0, control = 0, vowels = 0, ascii = 0, latin = 0, code = 0;
  for (const ch of t) {
    const c = ch.codePointAt(0)!;
    if (c < 128) ascii++;
    if (c < 128 && '{}()[];=<>_\\/$'.includes(ch)) code++;
    const isLetter = c < 128 ? (c >= 65 && c <= 90) || (c >= 97 && c <= 122) : /\p{L}/u.test(ch);
    if (c < 128 && !isLetter && !(c >= 48 && c <= 57)) {
      // ASCII fast path (same classes as below)
      if (ch === ' ' || ch === '\n') spaces++;
      else if (c < 32 || c === 127) control++;
      else punct++; // every other printable ASCII character is \p{P} or one of +=<>*#|~^`$%&@
      continue;
    }
    if (isLetter) {
      letters++;
      if (c < 0x250) latin++;
      if ('aeiouyAEIOUY'.includes(ch)) vowels++;
    } else if (/\p{N}/u.test(ch)) digits++;
    else if (ch === ' ' || ch === '\n') spaces++;
    else if (c < 32 || c === 127 || (c >= 0x80 && c < 0xa0)) control++;
    else if (/\p{P}/u.test(ch) || '+=<>*#|~^`$%&@'.includes(ch)) punct++;
    else other++;
  }
  const len = Math.floor(Math.log2(1 + n));
  f.push(`st:letters:${bucket(letters / n)}`, `st:digits:${bucket(digits / n)}`, `st:spaces:${bucket(spaces / n, 20)}`, `st:punct:${bucket(punct / n, 20)}`, `st:other:${bucket(other / n, 20)}`, `st:ascii:${bucket(ascii / n)}`);
  if (control) f.push(`st:control:${Math.min(3, control)}`);
  if (letters >= 8) f.push(`st:vowels:${bucket(vowels / letters, 20)}`);
  const ws = lower.filter((w) => /^\p{L}+$/u.test(w));
  if (ws.length >= 3) {
    const wordlike = ws.filter((w) => w.length <= 20 && /[aeiouy]/.test(w) && !/[^aeiouy]{5}/.test(w) || (w.length === 1 && 'ai'.includes(w))).length;
    f.push(`st:wordlike:${bucket(wordlike / ws.length)}`);
    if (dict) {
      const known = ws.filter((w) => dict.has(w)).length / ws.length;
      const kb = bucket(known, 5);
      f.push(`st:known:${bucket(known, 20)}`, `st:known:${kb}:len${Math.min(len, 9)}`);
      // unknown words are fine in name lists, code, other scripts: cross the known share with those signs
      const raw = (t.match(/[\p{L}\p{M}]+/gu) ?? []).filter((w) => w.length > 1);
      const caps = raw.length ? raw.filter((w) => /^\p{Lu}/u.test(w)).length / raw.length : 0;
      f.push(`st:known×caps:${kb}:${bucket(caps, 5)}`, `st:known×code:${kb}:${bucket((code / n) * 5, 5)}`, `st:known×latin:${kb}:${letters ? bucket(latin / letters, 4) : 0}`);
    }
    if (bigrams && ws.length >= 4) {
      let k = 0, m = 0;
      for (let i = 0; i + 1 < lower.length; i++) {
        if (!/^\p{L}+$/u.test(lower[i]) || !/^\p{L}+$/u.test(lower[i + 1])) continue;
        m++;
        const h = fnv1a(`${lower[i]} ${lower[i + 1]}`) % (bigrams.length * 8);
        if (bigrams[h >> 3] & (1 << (h & 7))) k++;
      }
      if (m >= 3) f.push(`st:knownbi:${bucket(k / m, 20)}`, `st:knownbi:${bucket(k / m, 5)}:len${Math.min(len, 9)}`);
    }
    const meanLen = ws.reduce((a, w) => a + w.length, 0) / ws.length;
    f.push(`st:wlen:${Math.min(15, Math.round(meanLen))}`);
  }
  if (lower.length >= 4) {
    const uniq = new Set(lower).size / lower.length;
    f.push(`st:uniq:${bucket(uniq)}`, `st:uniq:${bucket(uniq, 5)}:len${Math.min(len, 9)}`);
    const tri = new Map<string, number>();
    for (let i = 0; i + 2 < lower.length; i++) {
      const k = `${lower[i]} ${lower[i + 1]} ${lower[i + 2]}`;
      tri.set(k, (tri.get(k) ?? 0) + 1);
    }
    let max = 0;
    for (const v of tri.values()) max = Math.max(max, v);
    f.push(`st:tri:${max >= 6 ? 6 : max}`, `st:tri:${max >= 4 ? 4 : max}:len${Math.min(len, 9)}`);
    let repeatedTri = 0;
    for (const v of tri.values()) if (v > 1) repeatedTri += v;
    if (tri.size) f.push(`st:trirep:${bucket(repeatedTri / (lower.length - 2))}`);
  }
  const lines = t.split('\n').map((l) => l.trim()).filter(Boolean);
  if (lines.length >= 2) {
    const dup = lines.length - new Set(lines).size;
    f.push(`st:duplines:${bucket(dup / lines.length, 5)}`);
  }
  return f;
}

/**
 * How a text is built, as names of indicator features: a continuation of an instruction followed by its answer
 * (Ic + "\n" + R) has a first line that ends like a question or a request and a rest that repeats its words
 * ("…is a kid or adult: Randy, Stan\nRandy: Adult"); an answer's first line rarely does. Features: the share of
 * the rest's words that occur in the first line (and of the first line's words in the rest), crossed with the
 * first line's end character and length; the first character's class crossed with whether more lines follow;
 * the last character and the last two tokens of the text; the number of lines.
 */
export function structureFeatures(t: string): string[] {
  const f: string[] = [];
  const nl = t.indexOf('\n');
  const first = nl < 0 ? t : t.slice(0, nl);
  const rest = nl < 0 ? '' : t.slice(nl + 1).trim();
  const endc = (s: string) => {
    const c = s.trimEnd().slice(-1);
    return /\p{L}/u.test(c) ? 'L' : /\p{N}/u.test(c) ? 'N' : c || 'none';
  };
  const fe = endc(first);
  const fw = (first.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []);
  const flen = Math.min(6, Math.floor(Math.log2(1 + fw.length)));
  const c0 = /\p{Lu}/u.test(t[0] ?? '') ? 'U' : /\p{Ll}/u.test(t[0] ?? '') ? 'l' : /\p{N}/u.test(t[0] ?? '') ? 'N' : t[0] ?? '';
  f.push(`x:c0:${c0}:${rest ? 'more' : 'one'}`, `x:l0:${fe}:${flen}:${rest ? 'more' : 'one'}`, `x:c0l0:${c0}:${fe}:${rest ? 'more' : 'one'}`);
  if (rest) {
    const rw = rest.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
    const fs = new Set(fw.filter((w) => w.length >= 3));
    const rs = new Set(rw.filter((w) => w.length >= 3));
    const rIn = rs.size ? [...rs].filter((w) => fs.has(w)).length / rs.size : 0;
    const fIn = fs.size ? [...fs].filter((w) => rs.has(w)).length / fs.size : 0;
    f.push(`x:rin:${bucket(rIn, 5)}:${fe}`, `x:fin:${bucket(fIn, 5)}:${flen}`, `x:rin×fin:${bucket(rIn, 3)}:${bucket(fIn, 3)}`);
    const lines = t.split('\n').filter((l) => l.trim()).length;
    f.push(`x:lines:${Math.min(8, lines)}:${fe}`);
  }
  const toks = (t.slice(-80).match(TOKEN_RE) ?? []).map((x) => x.toLowerCase());
  f.push(`x:end:${endc(t)}`, `x:last:${toks.slice(-2).join(' ')}`, `x:end×c0:${endc(t)}:${c0}`);
  return f;
}

const INTERJECTION = /^(?:sure|certainly|of course|absolutely|okay|ok|alright|great|here you go|here it is)\b[!.,:;]*(?:\s+(?:here(?:'s| is| are| you go)[^\n]{0,40}?[:!.]))?\s+(?=\S)/i;
const LINE_MARKER = /^[ \t]*(?:(?:[-*+\u2022]|\d{1,3}[.)]|#{1,6}|>)[ \t]+)+/gm;

/**
 * The canonical form behind `FeatureConfig.canon`: CRLF/CR → LF, tabs → spaces, trailing spaces of lines and
 * surrounding whitespace removed; bullets, numbers, heading marks and blockquote marks at line starts removed
 * (before and after the next two); a code fence that wraps the text (or opens it, or closes it) removed; one
 * leading interjection ("Sure!", "Certainly, here is …:") removed; lower case.
 */
export function canonical(text: string): string {
  return canonicalCased(text).toLowerCase();
}

/** `canonical` before lower-casing. */
export function canonicalCased(text: string): string {
  // line markers first, so that a marked fence line ("- ```") or a marked "Sure!" is recognised below
  let t = text.replace(/\r\n?/g, '\n').replace(/\t/g, ' ').replace(/[ \u00a0]+$/gm, '').replace(LINE_MARKER, '').trim();
  for (let i = 0; i < 2; i++) {
    t = t.replace(INTERJECTION, '');
    t = t.replace(/^```[^\n`]*\n?/, '').replace(/\n?```\s*$/, '').trim();
  }
  t = t.replace(LINE_MARKER, '').replace(/\n{3,}/g, '\n\n');
  return t.trim();
}

/** The case of a text's first letter or digit: U, l, N or none (what `FeatureConfig.caseStart` adds). */
export function startCase(cased: string): string {
  const c = cased.match(/[\p{L}\p{N}]/u)?.[0];
  return c === undefined ? 'none' : /\p{Lu}/u.test(c) ? 'U' : /\p{Ll}/u.test(c) ? 'l' : 'N';
}

/**
 * Pair features of (prompt, text), both canonical: where the prompt stops (the class of its last character
 * and its last word) crossed with how the text starts (its first word, whether that word is a known follower
 * — the words of the prompt's last sentence, echoed), the share of the text's opening words that occur in the
 * prompt and of the prompt's words that recur in the text, whether the text begins with the prompt itself
 * (an echo), and the prompt's length. A text that continues a cut instruction starts where the prompt stops
 * ("… the capital of" + "france?"), an answer after a finished sentence.
 */
export function pairFeatures(prompt: string, t: string): string[] {
  const p = prompt;
  const f: string[] = [];
  const pe = p.slice(-1);
  const pend = /\p{L}/u.test(pe) ? 'L' : /\p{N}/u.test(pe) ? 'N' : pe || 'none';
  const ptoks = p.match(TOKEN_RE) ?? [];
  const ttoks = t.match(TOKEN_RE) ?? [];
  const plast = ptoks[ptoks.length - 1] ?? '';
  const t0 = ttoks[0] ?? '';
  const t0c = /^\p{L}/u.test(t0) ? 'L' : /^\p{N}/u.test(t0) ? 'N' : t0 || 'none';
  f.push(`p:end:${pend}`, `p:end×t0:${pend}:${t0}`, `p:endc×t0c:${pend}:${t0c}`, `p:last×t0:${plast} ${t0}`, `p:len:${Math.min(7, Math.floor(Math.log2(1 + ptoks.length)))}:${pend}`);
  const pw = new Set(ptoks.filter((w) => /\p{L}{3,}/u.test(w)));
  const open = ttoks.slice(0, 30).filter((w) => /\p{L}{3,}/u.test(w));
  const inP = open.length ? open.filter((w) => pw.has(w)).length / open.length : 0;
  const tw = new Set(ttoks.filter((w) => /\p{L}{3,}/u.test(w)));
  const pIn = pw.size ? [...pw].filter((w) => tw.has(w)).length / pw.size : 0;
  f.push(`p:open∈p:${bucket(inP, 5)}:${pend}`, `p:p∈t:${bucket(pIn, 5)}`, `p:open×p:${bucket(inP, 3)}:${bucket(pIn, 3)}`);
  const head = p.slice(0, Math.min(p.length, 40));
  if (head.length >= 10 && t.startsWith(head)) f.push('p:echo');
  const firstLine = t.split('\n')[0];
  if (firstLine && p.includes(firstLine.slice(0, 60))) f.push(`p:first-line-in-prompt:${firstLine.length >= 20 ? 'long' : 'short'}`);
  return f;
}

/** The pair block of `FeatureConfig.pair` alone (indices within the block). */
export interface PairBlockConfig {
  buckets: number;
  maxFeatures: number;
  caseStart?: boolean;
  /** style features of (prompt, text) (see `styleFeatures`); off when absent */
  style?: boolean;
}

const TASK_VERB = /^(?:write|give|list|name|describe|explain|create|generate|classify|identify|tell|summari[sz]e|provide|suggest|find|make|rewrite|translate|compose|extract|categori[sz]e|compare|design|develop|convert|edit|choose|select|determine|evaluate|analy[sz]e|calculate|imagine|pretend|brainstorm|come|think|please|can|could|would|what|how|why|when|where|who|which|is|are|do|does|should)$/;

/** A sentence's kind: q (ends with "?"), t (opens with a task verb or question word), s (a statement). */
function sentenceKind(x: string): string {
  if (/\?\s*$/.test(x)) return 'q';
  return TASK_VERB.test(x.match(/[\p{L}']+/u)?.[0] ?? '') ? 't' : 's';
}

/**
 * Style features of (prompt, text), both canonical: does the text open like a new task in the prompt's own
 * style (its first sentence a question or a task-verb request, as the prompt's is; the same first word; a
 * first sentence about as long as the prompt), is an instruction continued by an answer on the same line (a
 * request sentence followed by more text before the first line break), how many questions the first line asks;
 * with `cased` (the text before lower-casing), whether letters after the first are upper case anywhere.
 */
export function styleFeatures(p: string, t: string, cased?: string): string[] {
  const f: string[] = [];
  if (cased !== undefined) {
    // letter case beyond the first letter: an all-lower-case text is a lower-case answer more often than a
    // continuation, which carries the instruction's capitals (names, "I", a new sentence) along
    const c0 = startCase(cased);
    const upper = /\p{Lu}/u.test(cased.slice(1));
    const pe = p.slice(-1);
    f.push(`y:case:${c0}:${upper}:${/\p{L}/u.test(pe) ? 'L' : /\p{N}/u.test(pe) ? 'N' : pe || 'none'}:${Math.min(6, Math.floor(Math.log2(1 + cased.length / 16)))}`);
  }
  const firstLine = t.split('\n')[0];
  const sents = (firstLine.match(/[^.!?]+[.!?]*/g) ?? []).map((x) => x.trim()).filter(Boolean);
  const s0 = sents[0] ?? '';
  const psents = (p.match(/[^.!?\n]+[.!?]*/g) ?? []).map((x) => x.trim()).filter(Boolean);
  const pk = sentenceKind(psents[0] ?? ''), pkl = sentenceKind(psents[psents.length - 1] ?? '');
  const tk = sentenceKind(s0);
  const w0 = (x: string) => x.match(/[\p{L}']+/u)?.[0] ?? '';
  const pw = (p.match(/[\p{L}\p{N}]+/gu) ?? []).length;
  const sw = (s0.match(/[\p{L}\p{N}]+/gu) ?? []).length;
  const ratio = pw && sw ? Math.max(-3, Math.min(3, Math.round(Math.log2(sw / pw)))) : 'none';
  f.push(`y:pk×tk:${pk}:${tk}`, `y:pkl×tk:${pkl}:${tk}`, `y:tk×ratio:${tk}:${ratio}`, `y:samew0:${w0(p) !== '' && w0(p) === w0(s0)}:${tk}`);
  const restOfLine = firstLine.slice(firstLine.indexOf(s0) + s0.length).trim();
  const more = t.includes('\n');
  f.push(`y:sameline:${tk}:${restOfLine ? Math.min(3, Math.floor(Math.log2(1 + restOfLine.split(/\s+/).length))) : 0}:${more}`);
  f.push(`y:q1:${Math.min(3, (firstLine.match(/\?/g) ?? []).length)}:${pk}`, `y:nsent×tk:${Math.min(4, sents.length)}:${tk}`);
  return f;
}

export function pairBlock(prompt: string, text: string, pair: PairBlockConfig): Features {
  const m = new Map<number, number>();
  const ct = canonical(text);
  const cp = canonical(prompt);
  const xs = pairFeatures(cp, ct);
  if (pair.caseStart) {
    const pe = cp.slice(-1);
    xs.push(`p:end×case0:${/\p{L}/u.test(pe) ? 'L' : /\p{N}/u.test(pe) ? 'N' : pe || 'none'}:${startCase(canonicalCased(text))}`);
  }
  if (pair.style) xs.push(...styleFeatures(cp, ct, canonicalCased(text)));
  for (const x of xs) {
    const h = fnv1a(x) % pair.buckets;
    m.set(h, (m.get(h) ?? 0) + 1);
  }
  const keys = [...m.keys()].slice(0, pair.maxFeatures);
  return { idx: Int32Array.from(keys), val: Float32Array.from(keys.map((h) => m.get(h)!)) };
}

/** `a` followed by `b` with `b`'s indices shifted by `offset`. */
export function concatFeatures(a: Features, b: Features, offset: number): Features {
  const idx = new Int32Array(a.idx.length + b.idx.length);
  const val = new Float32Array(idx.length);
  idx.set(a.idx);
  val.set(a.val);
  for (let i = 0; i < b.idx.length; i++) (idx[a.idx.length + i] = b.idx[i] + offset), (val[a.idx.length + i] = b.val[i]);
  return a.nStart === undefined ? { idx, val } : { idx, val, nStart: a.nStart };
}

const FIRST_PERSON = new Set(['i', 'me', 'my', 'mine', 'myself', "i'm", 'im', 'we', 'our', 'us']);
const SECOND_PERSON = new Set(['you', 'your', 'yours', 'yourself']);
const REQUEST = /^(?:please |can you |could you |would you |i (?:want|need|would like) (?:you )?to |help me |tell me |give me |write |explain |describe |list |name |create |generate |summari[sz]e |classify |identify |what |how |why |when |where |who |which |is |are |do |does |can |should )/;

/**
 * How a text speaks, as indicator features: an instruction asks (question marks, a request or question word
 * at the start of a sentence, first person: "I'm trying to … how do I …?"), an answer tells (second person,
 * statements). Shares of first- and second-person words (by length), question marks per sentence, whether
 * the first / the last sentence is a request or a question.
 */
export function discourseFeatures(t: string, lower: string[]): string[] {
  const f: string[] = [];
  const words = lower.filter((w) => /^\p{L}/u.test(w));
  const len = Math.min(9, Math.floor(Math.log2(1 + words.length)));
  if (words.length) {
    const fp = words.filter((w) => FIRST_PERSON.has(w)).length / words.length;
    const sp = words.filter((w) => SECOND_PERSON.has(w)).length / words.length;
    f.push(`d:1p:${bucket(fp * 5, 5)}:${len}`, `d:2p:${bucket(sp * 5, 5)}:${len}`, `d:1p×2p:${fp > 0}:${sp > 0}`);
  }
  const sents = (t.toLowerCase().match(/[^.!?\n]+[.!?]*/g) ?? []).map((x) => x.trim()).filter(Boolean);
  if (sents.length) {
    const q = sents.filter((x) => x.endsWith('?')).length;
    f.push(`d:q:${Math.min(3, q)}:${Math.min(4, sents.length)}`, `d:req0:${REQUEST.test(sents[0])}:${sents[0].endsWith('?')}`, `d:reqN:${REQUEST.test(sents[sents.length - 1])}:${sents[sents.length - 1].endsWith('?')}`);
    const reqs = sents.filter((x) => REQUEST.test(x)).length;
    f.push(`d:reqs:${bucket(reqs / sents.length, 4)}`);
  }
  // the opening paragraph against the rest: an instruction (asking, first person) followed by an answer
  const cut = t.search(/\n/);
  if (cut > 0) {
    const head = t.slice(0, cut).toLowerCase();
    const hw = head.match(/[\p{L}']+/gu) ?? [];
    const rest = lower.slice((head.match(TOKEN_RE) ?? []).length).filter((w) => /^\p{L}/u.test(w));
    const h1 = hw.some((w) => FIRST_PERSON.has(w));
    const r2 = rest.some((w) => SECOND_PERSON.has(w));
    const hq = /\?\s*$/.test(head) || /\?/.test(head);
    f.push(`d:p0:${h1}:${hq}:${REQUEST.test(head)}`, `d:p0×rest:${h1}:${hq}:${r2}:${Math.min(3, Math.floor(Math.log2(1 + rest.length / 8)))}`);
  }
  return f;
}

const firstCache = new WeakMap<FeatureConfig, FeatureConfig>();
const pairBase = new WeakMap<FeatureConfig, FeatureConfig>();

/** Hashed features of one text (see the module comment). */
export function featurize(text: string, cfg: FeatureConfig, prompt?: string): Features {
  if (cfg.pair) {
    const { pair, ...rest } = cfg;
    let base = pairBase.get(cfg);
    if (!base) pairBase.set(cfg, (base = { ...rest, buckets: cfg.buckets - pair.buckets, maxFeatures: cfg.maxFeatures - pair.maxFeatures }));
    const a = featurize(text, base);
    const b = prompt === undefined ? { idx: new Int32Array(0), val: new Float32Array(0) } : pairBlock(prompt, text, pair);
    return concatFeatures(a, b, base.buckets);
  }
  if (cfg.extra) {
    let first = firstCache.get(cfg);
    if (!first) {
      const { extra, ...rest } = cfg;
      firstCache.set(cfg, (first = { ...rest, buckets: cfg.buckets - extra.buckets, maxFeatures: cfg.maxFeatures - extra.maxFeatures }));
    }
    const a = featurize(text, first);
    const b = featurize(text, cfg.extra);
    const idx = new Int32Array(a.idx.length + b.idx.length);
    const val = new Float32Array(idx.length);
    idx.set(a.idx);
    val.set(a.val);
    for (let i = 0; i < b.idx.length; i++) (idx[a.idx.length + i] = b.idx[i] + first.buckets), (val[a.idx.length + i] = b.val[i]);
    return { idx, val };
  }
  const cased = cfg.canon ? canonicalCased(text) : undefined;
  const t = (cased !== undefined ? cased.toLowerCase() : text.trim()).slice(0, cfg.maxChars);
  const toks = t.match(TOKEN_RE) ?? [];
  const lower = toks.map((x) => x.toLowerCase());
  const start = new Map<number, number>();
  const bag = new Map<number, number>();
  const add = (m: Map<number, number>, f: string, v = 1) => {
    const h = fnv1a(f) % cfg.buckets;
    m.set(h, (m.get(h) ?? 0) + v);
  };
  if (cfg.only === 'stats') {
    add(start, `len:${Math.floor(Math.log2(1 + toks.length))}`);
    const st = statFeatures(t, lower, dictOf(cfg), bigramsOf(cfg));
    for (const f of st) add(start, f);
    const idx = [...start.keys()].slice(0, cfg.maxFeatures);
    return { idx: Int32Array.from(idx), val: Float32Array.from(idx.map((h) => start.get(h)!)) };
  }
  add(start, `s0:${toks[0] ?? ''}`);
  add(start, `s1:${lower.slice(0, 2).join(' ')}`);
  add(start, `s2:${lower.slice(0, 3).join(' ')}`);
  add(start, `c0:${charClass(t[0])}`);
  add(start, `len:${Math.floor(Math.log2(1 + toks.length))}`);
  const lines = t.split('\n');
  const firstLine = lines[0];
  const fl = (firstLine.match(TOKEN_RE) ?? []).map((x) => x.toLowerCase());
  const more = lines.length > 1 && lines.slice(1).some((l) => l.trim());
  const l0end = charClass(firstLine.trimEnd().slice(-1));
  add(start, `l0end:${l0end}`);
  add(start, `l0end+more:${l0end}:${more}`);
  add(start, `l0len:${Math.floor(Math.log2(1 + fl.length))}:${more}`);
  add(start, `l0last:${fl.slice(-2).join(' ')}`);
  for (const w of new Set(fl.slice(0, 24))) add(start, `f:${w}`, 0.25);
  for (let i = 0; i < Math.min(6, lower.length); i++) add(start, `o${i}:${lower[i]}`, 0.5);
  if (cfg.stats) for (const f of statFeatures(t, lower, dictOf(cfg), bigramsOf(cfg))) add(start, f);
  if (cfg.structure) for (const f of structureFeatures(t)) add(start, f);
  if (cfg.discourse) for (const f of discourseFeatures(t, lower)) add(start, f);
  if (cfg.caseStart && cased !== undefined) {
    const sc = startCase(cased);
    add(start, `case0:${sc}`);
    add(start, `case0×w0:${sc}:${lower[0] ?? ''}`);
    add(start, `case0×more:${sc}:${more}`);
  }
  let nBag = 0;
  for (let i = 0; i < lower.length; i++) {
    add(bag, `w:${lower[i]}`);
    nBag++;
    if (i + 1 < lower.length) {
      add(bag, `b:${lower[i]} ${lower[i + 1]}`);
      nBag++;
    }
  }
  const opening = ` ${t.slice(0, cfg.charChars).toLowerCase()} `;
  for (let i = 0; i + 3 <= opening.length; i++) {
    add(bag, `c:${opening.slice(i, i + 3)}`);
    nBag++;
  }
  const scale = nBag > 0 ? 1 / Math.sqrt(nBag) : 0;
  const idx: number[] = [];
  const val: number[] = [];
  for (const [h, v] of start) idx.push(h), val.push(v);
  for (const [h, v] of bag) {
    if (idx.length >= cfg.maxFeatures) break;
    idx.push(h);
    val.push(v * scale);
  }
  return { idx: Int32Array.from(idx), val: Float32Array.from(val), nStart: start.size };
}

export interface ClassifierMeta {
  /** what label 1 and label 0 mean, e.g. ["continuation", "answer"] */
  labels: [string, string];
  task: string;
  [k: string]: unknown;
}

export class TextClassifier {
  constructor(
    readonly w: Float32Array,
    readonly b: number,
    readonly cfg: FeatureConfig,
    readonly meta: ClassifierMeta,
    readonly threshold = 0.5,
    /**
     * An optional second logistic regression, the "is this language at all" gate (label 1 = language, 0 =
     * noise / word salad / loops): the classifier's probability is min(p_main, p_gate), so a text is label 1
     * only when both say so.
     */
    readonly gate?: { w: Float32Array; b: number; cfg: FeatureConfig },
    /**
     * An optional nonlinear head added to the main model's logit (see `MlpHead`): z = b + w·x + w2·relu(E·x' + b1).
     */
    readonly mlp?: MlpHead,
  ) {
    if (w.length !== cfg.buckets) throw new HeedError(`classifier weights have ${w.length} buckets, config says ${cfg.buckets}`, 'rebuild the classifier file');
    if (mlp && (mlp.e.length !== mlp.buckets * mlp.hidden || mlp.b1.length !== mlp.hidden || mlp.w2.length !== mlp.hidden)) throw new HeedError(`classifier MLP head has inconsistent shapes (${mlp.buckets}×${mlp.hidden})`, 'rebuild the classifier file');
  }

  /** P(label 1) of the main model alone. */
  mainProb(text: string, prompt?: string): number {
    const f = featurize(text, this.cfg, prompt);
    return sigmoid(linearLogit(this.w, this.b, f) + (this.mlp ? mlpLogit(this.mlp, f) : 0));
  }

  /** P(language) of the gate (1 without a gate). */
  gateProb(text: string): number {
    return this.gate ? linearProb(this.gate.w, this.gate.b, featurize(text, this.gate.cfg)) : 1;
  }

  /** P(label 1): the main model's probability, capped by the gate's. */
  /** `prompt`: the instruction the text answers, for a pair classifier (`cfg.pair`); ignored otherwise. */
  prob(text: string, prompt?: string): number {
    const p = this.mainProb(text, prompt);
    return this.gate ? Math.min(p, this.gateProb(text)) : p;
  }

  classify(text: string, prompt?: string): { label: 0 | 1; name: string; prob: number } {
    const p = this.prob(text, prompt);
    const label = p >= this.threshold ? 1 : 0;
    return { label, name: this.meta.labels[label], prob: p };
  }

  save(path: string): void {
    const tensors: Array<[string, { shape: number[]; data: Float32Array }]> = [
      ['w', { shape: [this.w.length], data: this.w }],
      ['b', { shape: [1], data: Float32Array.of(this.b) }],
    ];
    if (this.gate) tensors.push(['gate_w', { shape: [this.gate.w.length], data: this.gate.w }], ['gate_b', { shape: [1], data: Float32Array.of(this.gate.b) }]);
    const m = this.mlp;
    if (m) tensors.push(['mlp_e', { shape: [m.buckets, m.hidden], data: m.e }], ['mlp_b1', { shape: [m.hidden], data: m.b1 }], ['mlp_w2', { shape: [m.hidden], data: m.w2 }]);
    const mcfg = m ? { buckets: m.buckets, hidden: m.hidden, ...(m.input ? { input: m.input } : {}), ...(m.from !== undefined ? { from: m.from } : {}), ...(m.maxInputs !== undefined ? { maxInputs: m.maxInputs } : {}) } : undefined;
    const head = { features: this.cfg, ...(this.gate ? { gate_features: this.gate.cfg } : {}), ...(mcfg ? { mlp: mcfg } : {}), threshold: this.threshold, ...this.meta };
    writeSafetensors(path, tensors, { dtype: 'F16', metadata: { heed_classifier: JSON.stringify(head) } });
  }

  static load(path: string): TextClassifier {
    const { tensors, metadata } = readSafetensors(path);
    const raw = metadata.heed_classifier;
    if (!raw) throw new HeedError(`${path}: not a heed classifier (no "heed_classifier" metadata)`, 'point at a file written by `heed ifs train-classifier` or `heed objecqa train-judge`');
    const m = JSON.parse(raw) as ClassifierMeta & { features: FeatureConfig; gate_features?: FeatureConfig; mlp?: { buckets: number; hidden: number; input?: 'all' | 'engineered'; from?: number; maxInputs?: number }; threshold?: number };
    const w = tensors.get('w');
    const b = tensors.get('b');
    if (!w || !b) throw new HeedError(`${path}: classifier tensors "w" and "b" are missing`, 'rebuild the classifier file');
    const { features, gate_features, mlp: mlpCfg, threshold, ...meta } = m;
    const gw = tensors.get('gate_w');
    const gb = tensors.get('gate_b');
    const gate = gate_features && gw && gb ? { w: gw.data, b: gb.data[0], cfg: gate_features } : undefined;
    let mlp: MlpHead | undefined;
    if (mlpCfg) {
      const e = tensors.get('mlp_e'), b1 = tensors.get('mlp_b1'), w2 = tensors.get('mlp_w2');
      if (!e || !b1 || !w2) throw new HeedError(`${path}: the metadata names an MLP head but tensors "mlp_e", "mlp_b1" or "mlp_w2" are missing`, 'rebuild the classifier file');
      mlp = { ...mlpCfg, e: e.data, b1: b1.data, w2: w2.data };
    }
    return new TextClassifier(w.data, b.data[0], features, meta as ClassifierMeta, threshold ?? 0.5, gate, mlp);
  }
}

/**
 * A one-hidden-layer head over the same hashed features: each feature index i (of the main model's buckets) is
 * re-hashed into `buckets` rows of E (`mlpIndex`), h = relu(Σ val_i·E[mlpIndex(i)] + b1), logit += w2·h. The
 * linear model keeps the fine-grained lexical weights; the head adds interactions of features (a question-list
 * instruction × a response that opens like an instruction) that a sum of weights cannot express.
 */
export interface MlpHead {
  buckets: number;
  hidden: number;
  /**
   * Which features the head sees: 'all', or 'engineered' — the start / statistics / structure / discourse
   * features (`Features.nStart`) and the pair block (indices ≥ `from`), not the word / n-gram bag.
   */
  input?: 'all' | 'engineered';
  /** with 'engineered': where the pair block starts (the main config's buckets − pair buckets) */
  from?: number;
  /** at most this many inputs per text (the first ones the head sees); all when absent */
  maxInputs?: number;
  /** [buckets, hidden], row-major */
  e: Float32Array;
  b1: Float32Array;
  w2: Float32Array;
}

/** The row of the MLP head's table for feature index `i` (multiplicative hash; `buckets` a power of two). */
export function mlpIndex(i: number, buckets: number): number {
  return (Math.imul(i + 1, 0x9e3779b1) >>> 0) % buckets;
}

/** Whether entry `i` of `f` is an input of the head (see `MlpHead.input`). */
export function mlpSees(m: Pick<MlpHead, 'input' | 'from'>, f: Features, i: number): boolean {
  return m.input !== 'engineered' || i < (f.nStart ?? 0) || f.idx[i] >= (m.from ?? Infinity);
}

export function mlpLogit(m: MlpHead, f: Features): number {
  const H = m.hidden;
  const h = Float64Array.from(m.b1);
  let n = 0;
  const max = m.maxInputs ?? Infinity;
  for (let i = 0; i < f.idx.length && n < max; i++) {
    if (!mlpSees(m, f, i)) continue;
    n++;
    const v = f.val[i];
    if (v === 0) continue;
    const o = mlpIndex(f.idx[i], m.buckets) * H;
    for (let j = 0; j < H; j++) h[j] += v * m.e[o + j];
  }
  let z = 0;
  for (let j = 0; j < H; j++) if (h[j] > 0) z += h[j] * m.w2[j];
  return z;
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

function linearLogit(w: Float32Array, b: number, f: Features): number {
  let z = b;
  for (let i = 0; i < f.idx.length; i++) z += w[f.idx[i]] * f.val[i];
  return z;
}

function linearProb(w: Float32Array, b: number, f: Features): number {
  return sigmoid(linearLogit(w, b, f));
}

export interface BinaryMetrics {
  n: number;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export function binaryMetrics(labels: ArrayLike<number>, probs: ArrayLike<number>, threshold = 0.5): BinaryMetrics {
  let tp = 0, fp = 0, tn = 0, fn = 0;
  for (let i = 0; i < labels.length; i++) {
    const pred = probs[i] >= threshold ? 1 : 0;
    if (pred === 1 && labels[i] === 1) tp++;
    else if (pred === 1) fp++;
    else if (labels[i] === 1) fn++;
    else tn++;
  }
  const n = tp + fp + tn + fn;
  const precision = tp + fp ? tp / (tp + fp) : 0;
  const recall = tp + fn ? tp / (tp + fn) : 0;
  return { n, accuracy: n ? (tp + tn) / n : 0, precision, recall, f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0, tp, fp, tn, fn };
}
