/**
 * Every pair type of the IFS paper (arXiv 2307.03692, §3.2) as classifier examples, with the answer shapes and
 * continuation shapes real models produce, and the formatting perturbations the robustness report applies.
 *
 * For a source row (I, R), its shifted cut I = Ip + Ic (fragments.ts) and the NEXT row of the same corpus
 * (I', R') — a base model given a task of a list writes the next task:
 *
 *   type       prompt  text                          label
 *   I,R        I       R                             1
 *   Ip,R       Ip      R                             1   (the model guessed the rest of the instruction)
 *   Ip,clarify Ip      a clarification request        1   (synthesised from CLARIFY templates: stated as such)
 *   Ip,Ic      Ip      Ic                            0
 *   I,Ic       I       I'                            0   (Ic of a full instruction = the next instruction)
 *   Ip,Ic+R    Ip      Ic + join + R                 0
 *   I,Ic+R     I       I' + join + R'                0
 *
 * join ∈ {" ", "\n", "\n\n"} (one per example, seeded). Continuations are sometimes written after a list
 * marker, a heading mark, "Sure!" or a blockquote mark (CONT_PREFIXES); answers get the same openings, so an
 * opening alone carries no label. Answers also come in synthesised shapes (SHAPES): the response in a code
 * fence, as a markdown table of its sentences, as lyrics ("(Verse 1)" and short lines), as a one-word or
 * number answer taken from it, in lower case. All draws come from a PRNG seeded by (seed, row id).
 */
import { Prng } from '../../data/prng.js';
import { rowRng, shiftedCut, wordCount, MIN_WORDS, type SourceRow } from './fragments.js';

export type PairType = 'I,R' | 'Ip,R' | 'Ip,clarify' | 'Ip,Ic' | 'I,Ic' | 'Ip,Ic+R' | 'I,Ic+R';
export const POSITIVE_TYPES: PairType[] = ['I,R', 'Ip,R', 'Ip,clarify'];
export const NEGATIVE_TYPES: PairType[] = ['Ip,Ic', 'I,Ic', 'Ip,Ic+R', 'I,Ic+R'];

export interface PairExample {
  prompt: string;
  text: string;
  label: 0 | 1;
  type: PairType;
  /** answer shape (label 1): the natural shape of R (`answerShape`) or a synthesised one ("synth:…") */
  shape?: string;
  /** how Ic and R are joined (Ic+R types) */
  join?: 'space' | 'newline' | 'blank';
  /** the opening added in front of the text, if any (a key of CONT_PREFIXES) */
  prefix?: string;
  source_id: string;
  dataset?: string;
  kind: string;
  weight?: number;
}

/** The natural shape of an answer text. */
export function answerShape(r: string): string {
  const t = r.trim();
  if (/```/.test(t)) return 'fence';
  if (/^\s*\|.*\|\s*$/m.test(t) && /^\s*\|?\s*:?-{3,}/m.test(t)) return 'table';
  const lines = t.split('\n').filter((l) => l.trim());
  const codeLines = lines.filter((l) => /[;{}]\s*$|^\s*(?:def|class|import|from|function|return|for|while|if|#include|public|private|var|let|const|SELECT|print)\b|^\s{4,}\S|=\s*[\w"'[(]/.test(l)).length;
  if (lines.length >= 3 && codeLines / lines.length >= 0.4) return 'code';
  if (/^\s*\(?(?:verse|chorus|bridge|outro|intro)\b[^\n]*\)?\s*:?\s*$/im.test(t)) return 'lyrics';
  if (lines.length >= 4 && lines.reduce((a, l) => a + l.length, 0) / lines.length < 45 && !/^\s*(?:[-*]|\d+[.)])\s/m.test(t)) return 'lyrics';
  if (wordCount(t) <= 3) return 'short';
  if (/^\p{Ll}/u.test(t)) return 'lower';
  if (/^\s*(?:[-*•]|\d+[.)])\s/.test(t)) return 'list';
  if (/^#{1,6}\s/.test(t)) return 'heading';
  return 'prose';
}

/** Openings written before a continuation (and, equally often, before an answer). */
export const CONT_PREFIXES: Record<string, (r: Prng) => string> = {
  bullet: (r) => r.pick(['- ', '* ', '• ']),
  number: (r) => r.pick(['1. ', '2. ', '1) ']),
  heading: (r) => r.pick(['# ', '## ', '### ']),
  sure: (r) => r.pick(['Sure! ', 'Sure!\n', 'Sure, ', 'Certainly! ', 'Of course! ', 'Sure! Here you go:\n']),
  quote: () => '> ',
};
export const PREFIX_KINDS = Object.keys(CONT_PREFIXES);

const sentences = (t: string) => (t.replace(/\s+/g, ' ').match(/[^.!?]+[.!?]*/g) ?? [t]).map((s) => s.trim()).filter(Boolean);

/** Synthesised answer shapes of a response R (each returns undefined when R does not lend itself). */
export const SHAPES: Record<string, (R: string, r: Prng) => string | undefined> = {
  fence: (R, r) => `\`\`\`${r.pick(['', 'python', 'text', 'js', 'bash', ''])}\n${R}\n\`\`\``,
  table: (R, r) => {
    const s = sentences(R).slice(0, 6);
    if (s.length < 2) return undefined;
    const [a, b] = r.pick([['#', 'Point'], ['Step', 'Description'], ['Item', 'Details'], ['', '']]);
    return [`| ${a} | ${b} |`, '|---|---|', ...s.map((x, i) => `| ${i + 1} | ${x.replace(/\|/g, '/')} |`)].join('\n');
  },
  lyrics: (R, r) => {
    const ws = R.replace(/\s+/g, ' ').split(' ').filter(Boolean).slice(0, 60);
    if (ws.length < 12) return undefined;
    const lines: string[] = [];
    for (let i = 0; i < ws.length; ) {
      const n = r.int(4, 7);
      lines.push(ws.slice(i, i + n).join(' '));
      i += n;
    }
    const half = Math.ceil(lines.length / 2);
    return `${r.pick(['(Verse 1)', 'Verse 1:', '[Verse 1]'])}\n${lines.slice(0, half).join('\n')}\n\n${r.pick(['(Chorus)', 'Chorus:', '[Chorus]'])}\n${lines.slice(half).join('\n')}`;
  },
  short: (R, r) => {
    const num = R.match(/\b\d{1,4}(?:\.\d+)?\b/);
    const name = R.split(/\s+/).slice(1).find((w) => /^\p{Lu}\p{Ll}{2,}[.,]?$/u.test(w));
    const pick = num && (!name || r.chance(0.5)) ? num[0] : name?.replace(/[.,]$/, '');
    if (!pick) return r.pick(['Yes.', 'No.', 'Yes', 'No', 'True', 'False']);
    return r.chance(0.5) ? pick : `${pick}.`;
  },
  lower: (R) => R.toLowerCase(),
};
export const SHAPE_KINDS = Object.keys(SHAPES);

/**
 * Clarification replies to a cut-off instruction (the paper's (Ip, R) = 1 case when R asks for the rest),
 * synthesised from these templates ({tail} = the last words of Ip, {topic} = its last word of ≥ 4 letters).
 * Templates are split for evaluation: those at index ≡ 0 (mod 3) are held out of the source-split folds'
 * training, so the reported recall is on wordings the fold model never saw (the shipped model sees all).
 */
export const CLARIFY: string[] = [
  'It looks like your message was cut off after "{tail}". Could you send the rest of the question?',
  'Could you clarify what you would like to know about {topic}?',
  'Your question seems incomplete. What exactly do you want me to do with "{tail}"?',
  "I'm sorry, but I don't have enough information to answer. Could you give more details about {topic}?",
  'Can you please finish your sentence? I am not sure what you are asking after "{tail}".',
  'Happy to help! Could you tell me a bit more about what you need regarding {topic}?',
  'I think part of your request is missing. Do you want an explanation, a summary or a list about {topic}?',
  'Could you please provide the full instruction? "{tail}" seems to end mid-sentence.',
  'What would you like me to write about {topic}? Please give me the complete request.',
  'I am not sure I understand. Could you rephrase the question about {topic}?',
  'Sorry, your message seems to have been cut short. What else should I know about {topic}?',
  'Please provide more context: what should I do with "{tail}"?',
];

export type TemplateSet = 'all' | 'train' | 'test';

export function clarifyReply(ip: string, r: Prng, set: TemplateSet): string {
  const idx = CLARIFY.map((_, i) => i).filter((i) => set === 'all' || (set === 'test') === (i % 3 === 0));
  const ws = ip.split(/\s+/).filter(Boolean);
  const tail = ws.slice(-Math.min(ws.length, r.int(3, 6))).join(' ');
  const topic = [...ws].reverse().find((w) => /^\p{L}{4,}/u.test(w))?.replace(/[^\p{L}\p{N}-]+$/u, '') ?? 'this';
  return CLARIFY[r.pick(idx)].replace('{tail}', tail).replace('{topic}', topic);
}

/** Formatting perturbations of the robustness report (each applied to answers and to continuations). */
export const PERTURBATIONS: Record<string, (t: string) => string> = {
  fence: (t) => `\`\`\`\n${t}\n\`\`\``,
  lower: (t) => t.toLowerCase(),
  whitespace: (t) => `\n\n  ${t}  \n\n`,
  crlf: (t) => t.replace(/\n/g, '\r\n'),
  bullets: (t) => t.split('\n').map((l) => (l.trim() ? `- ${l}` : l)).join('\n'),
  numbered: (t) => {
    let k = 0;
    return t.split('\n').map((l) => (l.trim() ? `${++k}. ${l}` : l)).join('\n');
  },
  heading: (t) => `## ${t}`,
  sure: (t) => `Sure! ${t}`,
  trunc100: (t) => t.slice(0, 100),
  trunc200: (t) => t.slice(0, 200),
};
export const PERTURBATION_KINDS = Object.keys(PERTURBATIONS);

const JOINS: Array<[PairExample['join'], string]> = [['space', ' '], ['newline', '\n'], ['blank', '\n\n']];

export interface PairOptions {
  /** which clarification templates to draw from (default all) */
  templates?: TemplateSet;
  /**
   * 'train': per row R, one synthesised shape (p 0.5), a clarification (p 0.15), two of the four negative types,
   * openings on a share of texts; 'test': R, every negative type, every synthesised shape and a clarification
   * for a quarter of the rows each, no openings (the report adds them as perturbations and per-prefix rows).
   */
  mode?: 'train' | 'test';
}

/**
 * The examples of `rows` (in corpus order: the next instruction is the next usable row of the same dataset,
 * wrapping around). Rows whose I has fewer than MIN_WORDS words are left out (as in fragments.ts).
 */
export function pairExamples(rows: SourceRow[], seed: number, o: PairOptions = {}): PairExample[] {
  const mode = o.mode ?? 'train';
  const templates = o.templates ?? 'all';
  const usable = rows.filter((r) => wordCount(r.instruction) >= MIN_WORDS);
  const byDataset = new Map<string, SourceRow[]>();
  for (const r of usable) {
    const k = r.dataset ?? '';
    if (!byDataset.has(k)) byDataset.set(k, []);
    byDataset.get(k)!.push(r);
  }
  const next = new Map<SourceRow, SourceRow>();
  for (const list of byDataset.values()) list.forEach((r, i) => next.set(r, list[(i + 1) % list.length]));
  const out: PairExample[] = [];
  for (const row of usable) {
    const rng = rowRng(seed ^ 0x27d4eb2f, row.id);
    const f = shiftedCut(row.instruction, rng);
    const nx = next.get(row)!;
    const I = row.instruction, R = row.response, Ip = f.partial, Ic = f.continuation;
    const base = { source_id: row.id, ...(row.dataset ? { dataset: row.dataset } : {}) };
    const ex: PairExample[] = [];
    const shape = answerShape(R);
    ex.push({ ...base, prompt: rng.chance(0.5) ? I : Ip, text: R, label: 1, type: 'I,R', shape, kind: 'R' });
    ex[0].type = ex[0].prompt === I ? 'I,R' : 'Ip,R';
    const join = () => rng.pick(JOINS);
    const negs: Array<() => PairExample> = [
      () => ({ ...base, prompt: Ip, text: Ic, label: 0, type: 'Ip,Ic', kind: 'Ic' }),
      () => ({ ...base, prompt: I, text: nx.instruction, label: 0, type: 'I,Ic', kind: 'Ic' }),
      () => {
        const [j, s] = join();
        return { ...base, prompt: Ip, text: `${Ic}${s}${R}`, label: 0, type: 'Ip,Ic+R', join: j, kind: 'Ic+R' };
      },
      () => {
        const [j, s] = join();
        return { ...base, prompt: I, text: `${nx.instruction}${s}${nx.response}`, label: 0, type: 'I,Ic+R', join: j, kind: 'Ic+R' };
      },
    ];
    if (mode === 'test') {
      for (const n of negs) ex.push(n());
      for (const k of SHAPE_KINDS) {
        if (!rng.chance(0.25)) continue;
        const t = SHAPES[k](R, rng);
        if (t) ex.push({ ...base, prompt: rng.chance(0.5) ? I : Ip, text: t, label: 1, type: 'I,R', shape: `synth:${k}`, kind: 'R' });
      }
      if (rng.chance(0.25)) ex.push({ ...base, prompt: Ip, text: clarifyReply(Ip, rng, templates), label: 1, type: 'Ip,clarify', shape: 'clarify', kind: 'R' });
    } else {
      const order = [0, 1, 2, 3];
      rng.shuffle(order);
      for (const i of order.slice(0, 2)) ex.push(negs[i]());
      if (rng.chance(0.5)) {
        const k = rng.pick(SHAPE_KINDS);
        const t = SHAPES[k](R, rng);
        if (t) ex.push({ ...base, prompt: rng.chance(0.5) ? I : Ip, text: t, label: 1, type: 'I,R', shape: `synth:${k}`, kind: 'R' });
      }
      if (rng.chance(0.15)) ex.push({ ...base, prompt: Ip, text: clarifyReply(Ip, rng, templates), label: 1, type: 'Ip,clarify', shape: 'clarify', kind: 'R' });
      for (const e of ex) {
        if (!rng.chance(0.25)) continue;
        const k = rng.pick(PREFIX_KINDS);
        e.text = CONT_PREFIXES[k](rng) + e.text;
        e.prefix = k;
      }
    }
    for (const e of ex) if (e.type === 'I,R' && e.prompt === Ip) e.type = 'Ip,R';
    out.push(...ex);
  }
  return out;
}

/** Test examples of continuations written after an opening: every negative of `ex` once per opening kind. */
export function prefixedNegatives(ex: PairExample[], seed: number): PairExample[] {
  const r = new Prng(seed ^ 0x1b873593);
  const out: PairExample[] = [];
  for (const e of ex) if (e.label === 0) for (const k of PREFIX_KINDS) out.push({ ...e, text: CONT_PREFIXES[k](r) + e.text, prefix: k });
  return out;
}
