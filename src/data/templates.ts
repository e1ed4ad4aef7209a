/**
 * Templates: Conversation → Piece[] (template text as `marker`, message text as `content`, the
 * assistant's end-of-turn sequence as `end`). docs/data.md shows every built-in byte for byte.
 *
 *  - model   the model's own chat template (jinja in tokenizer_config.json / chat_template.jinja).
 *            Content spans are found by rendering once with the real contents and once with a unique
 *            sentinel in place of each content; the sentinel skeleton gives the template text, and the
 *            real render must equal skeleton-with-contents (templates that trim content are handled;
 *            anything else is reported as a bad row, never guessed).
 *  - alpaca  the Stanford Alpaca wrapper (PROMPT_DICT of tatsu-lab/stanford_alpaca train.py, with and
 *            without input), target = output + EOS.
 *  - tulu    open-instruct / Instruction Modelling format: <|user|>\n{u}\n<|assistant|>\n{a}</s>
 *            (contents stripped, turns joined by "\n", like open-instruct's _concat_messages + strip()).
 *  - chatml  <|im_start|>{role}\n{c}<|im_end|>\n
 *  - plain   contents only, joined by " " unless one side already has whitespace, EOS after each
 *            assistant content (open-instruct's prompt/completion format).
 *  - a file  *.json (role-wrapper spec, see CustomTemplateSpec) or *.jinja (rendered like `model`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { Template as Jinja } from '@huggingface/jinja';
import { z } from 'zod';
import { HeedError } from '../errors.js';
import { jsonSchemaOf, zodProblems } from '../zod-text.js';
import type { SegmentEncoder } from './encode.js';
import type { Conversation, Piece, Role } from './types.js';

export interface Template {
  /** name shown in reports: a built-in name, `model`, or the file path */
  readonly name: string;
  /** pieces of the whole conversation (training render, no generation prompt) */
  render(conv: Conversation): Piece[];
  /**
   * The same rendering as a Hugging Face `chat_template` (jinja over `messages`, with
   * `add_generation_prompt`), saved in tokenizer_config.json of a tuned folder so that `heed generate
   * --chat` and other tools prompt the model exactly as it was trained.
   */
  jinja(): string;
}

/** A jinja string literal holding `s` exactly. */
export function jinjaString(s: string): string {
  return '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t') + '"';
}

export const BUILTIN_TEMPLATES = ['alpaca', 'tulu', 'chatml', 'plain'] as const;
export type BuiltinTemplate = (typeof BUILTIN_TEMPLATES)[number];

export const ALPACA_PROMPT_INPUT_HEAD =
  'Below is an instruction that describes a task, paired with an input that provides further context. ' + 'Write a response that appropriately completes the request.\n\n';
export const ALPACA_PROMPT_NO_INPUT_HEAD = 'Below is an instruction that describes a task. ' + 'Write a response that appropriately completes the request.\n\n';

/** A role-wrapper template: what goes around each message. `{eos}` and `{bos}` expand to the tokenizer's tokens. */
export interface RoleTemplateSpec {
  /** prepend the ids the tokenizer's post-processor adds (Llama-2 <s>): 'auto' = when it adds any */
  bos: 'auto' | boolean;
  /** strip whitespace around each content before rendering (open-instruct does) */
  strip: boolean;
  /** drop the suffix of the final message (open-instruct strips the trailing "\n") */
  dropLastSuffix: boolean;
  system: { prefix: string; suffix: string };
  user: { prefix: string; suffix: string };
  /** `end` is the end-of-turn sequence that carries loss with the assistant content */
  assistant: { prefix: string; end: string; suffix: string };
}

export const TULU: RoleTemplateSpec = {
  bos: 'auto',
  strip: true,
  dropLastSuffix: true,
  system: { prefix: '<|system|>\n', suffix: '\n' },
  user: { prefix: '<|user|>\n', suffix: '\n' },
  assistant: { prefix: '<|assistant|>\n', end: '{eos}', suffix: '\n' },
};

export const CHATML: RoleTemplateSpec = {
  bos: 'auto',
  strip: false,
  dropLastSuffix: false,
  system: { prefix: '<|im_start|>system\n', suffix: '<|im_end|>\n' },
  user: { prefix: '<|im_start|>user\n', suffix: '<|im_end|>\n' },
  assistant: { prefix: '<|im_start|>assistant\n', end: '<|im_end|>', suffix: '\n' },
};

function bosPieces(bos: 'auto' | boolean, enc: SegmentEncoder): Piece[] {
  const want = bos === 'auto' ? enc.bosIds.length > 0 : bos;
  if (!want) return [];
  const ids = enc.bosIds.length ? enc.bosIds : enc.tok.bosId !== undefined ? [enc.tok.bosId] : [];
  return ids.length ? [{ kind: 'marker', text: enc.decode(ids), msg: -1, ids }] : [];
}

function expand(s: string, enc: SegmentEncoder): string {
  return s.replaceAll('{eos}', enc.eosText).replaceAll('{bos}', enc.tok.bosToken ?? (enc.tok.bosId !== undefined ? (enc.tok.idToToken(enc.tok.bosId) ?? '') : ''));
}

export class RoleTemplate implements Template {
  constructor(
    readonly name: string,
    private readonly spec: RoleTemplateSpec,
    private readonly enc: SegmentEncoder,
  ) {
    if (spec.assistant.end.includes('{eos}') && !enc.eosText) throw new HeedError(`template ${name} needs an EOS token, and the tokenizer has none`, 'set eos_token in tokenizer_config.json');
  }

  render(conv: Conversation): Piece[] {
    const s = this.spec;
    const out: Piece[] = bosPieces(s.bos, this.enc);
    const n = conv.messages.length;
    conv.messages.forEach((m, i) => {
      const w = s[m.role];
      const content = s.strip ? m.content.trim() : m.content;
      out.push({ kind: 'marker', text: expand(w.prefix, this.enc), msg: -1 });
      out.push({ kind: 'content', text: content, msg: i, role: m.role });
      if (m.role === 'assistant' && s.assistant.end) out.push({ kind: 'end', text: expand(s.assistant.end, this.enc), msg: i, role: 'assistant' });
      if (!(s.dropLastSuffix && i === n - 1)) out.push({ kind: 'marker', text: expand(w.suffix, this.enc), msg: -1 });
    });
    return out.filter((p) => p.text !== '' || p.ids);
  }

  jinja(): string {
    const s = this.spec;
    const J = (x: string) => jinjaString(expand(x, this.enc));
    const bos = bosPieces(s.bos, this.enc).map((p) => p.text).join('');
    const c = s.strip ? "(message['content'] | trim)" : "message['content']";
    // a message's suffix is dropped only at the very end of a training render (dropLastSuffix)
    const suf = (x: string) => (s.dropLastSuffix ? `{%- if not (loop.last and not add_generation_prompt) %}{{ ${J(x)} }}{% endif %}` : `{{ ${J(x)} }}`);
    return (
      (bos ? `{{ ${jinjaString(bos)} }}` : '') +
      '{%- for message in messages %}' +
      `{%- if message['role'] == 'system' %}{{ ${J(s.system.prefix)} + ${c} }}${suf(s.system.suffix)}` +
      `{%- elif message['role'] == 'user' %}{{ ${J(s.user.prefix)} + ${c} }}${suf(s.user.suffix)}` +
      `{%- else %}{{ ${J(s.assistant.prefix)} + ${c} + ${J(s.assistant.end)} }}${suf(s.assistant.suffix)}` +
      '{%- endif %}{%- endfor %}' +
      `{%- if add_generation_prompt %}{{ ${J(s.assistant.prefix)} }}{%- endif %}`
    );
  }
}

export class AlpacaTemplate implements Template {
  readonly name = 'alpaca';
  constructor(private readonly enc: SegmentEncoder) {
    if (!enc.eosText) throw new HeedError('template alpaca needs an EOS token, and the tokenizer has none', 'set eos_token in tokenizer_config.json');
  }

  render(conv: Conversation): Piece[] {
    const ms = conv.messages;
    const sys = ms[0]?.role === 'system' ? 0 : -1;
    const rest = ms.slice(sys + 1);
    if (rest.length !== 2 || rest[0].role !== 'user' || rest[1].role !== 'assistant') {
      throw new HeedError(`template alpaca renders one user turn and one assistant turn; row ${conv.id} has ${rest.map((m) => m.role).join(', ')}`, 'use --template tulu or chatml for multi-turn data');
    }
    const u = sys + 1;
    const user = ms[u];
    const instruction = user.parts ? user.parts.instruction : user.content;
    const input = user.parts ? user.parts.input : '';
    const out: Piece[] = bosPieces('auto', this.enc);
    if (sys >= 0) {
      // a system message replaces the fixed preamble sentence
      out.push({ kind: 'content', text: ms[0].content, msg: 0, role: 'system' }, { kind: 'marker', text: '\n\n', msg: -1 });
    } else {
      out.push({ kind: 'marker', text: input ? ALPACA_PROMPT_INPUT_HEAD : ALPACA_PROMPT_NO_INPUT_HEAD, msg: -1 });
    }
    out.push({ kind: 'marker', text: '### Instruction:\n', msg: -1 }, { kind: 'content', text: instruction, msg: u, role: 'user' });
    if (input) out.push({ kind: 'marker', text: '\n\n### Input:\n', msg: -1 }, { kind: 'content', text: input, msg: u, role: 'user' });
    out.push({ kind: 'marker', text: '\n\n### Response:', msg: -1 });
    out.push({ kind: 'content', text: ms[u + 1].content, msg: u + 1, role: 'assistant' });
    out.push({ kind: 'end', text: this.enc.eosText, msg: u + 1, role: 'assistant' });
    return out;
  }

  /** the no-input wrapper (a chat prompt is one instruction); a system message replaces the preamble */
  jinja(): string {
    const bos = bosPieces('auto', this.enc).map((p) => p.text).join('');
    return (
      (bos ? `{{ ${jinjaString(bos)} }}` : '') +
      '{%- for message in messages %}' +
      `{%- if message['role'] == 'system' %}{{ message['content'] + ${jinjaString('\n\n')} }}` +
      `{%- elif message['role'] == 'user' %}{%- if loop.first %}{{ ${jinjaString(ALPACA_PROMPT_NO_INPUT_HEAD)} }}{%- endif %}{{ ${jinjaString('### Instruction:\n')} + message['content'] + ${jinjaString('\n\n### Response:')} }}` +
      `{%- else %}{{ message['content'] + ${jinjaString(this.enc.eosText)} }}` +
      '{%- endif %}{%- endfor %}'
    );
  }
}

export class PlainTemplate implements Template {
  readonly name = 'plain';
  constructor(private readonly enc: SegmentEncoder) {
    if (!enc.eosText) throw new HeedError('template plain needs an EOS token, and the tokenizer has none', 'set eos_token in tokenizer_config.json');
  }

  render(conv: Conversation): Piece[] {
    const out: Piece[] = bosPieces('auto', this.enc);
    let prev = '';
    conv.messages.forEach((m, i) => {
      if (prev !== '' && !/\s$/.test(prev) && !/^\s/.test(m.content)) out.push({ kind: 'marker', text: ' ', msg: -1 });
      out.push({ kind: 'content', text: m.content, msg: i, role: m.role });
      prev = m.content;
      if (m.role === 'assistant') {
        out.push({ kind: 'end', text: this.enc.eosText, msg: i, role: 'assistant' });
        prev = this.enc.eosText;
      }
    });
    return out;
  }

  jinja(): string {
    const bos = bosPieces('auto', this.enc).map((p) => p.text).join('');
    const eos = jinjaString(this.enc.eosText);
    const gap = "ns.prev != '' and ns.prev.rstrip() == ns.prev";
    return (
      (bos ? `{{ ${jinjaString(bos)} }}` : '') +
      "{%- set ns = namespace(prev='') %}" +
      '{%- for message in messages %}' +
      `{%- if ${gap} and message['content'].lstrip() == message['content'] %}{{ " " }}{%- endif %}` +
      "{{ message['content'] }}{%- set ns.prev = message['content'] %}" +
      `{%- if message['role'] == 'assistant' %}{{ ${eos} }}{%- set ns.prev = ${eos} %}{%- endif %}` +
      '{%- endfor %}' +
      `{%- if add_generation_prompt and ${gap} %}{{ " " }}{%- endif %}`
    );
  }
}

/** End-of-turn token strings recognised after an assistant content in a jinja template (when special in the tokenizer). */
const END_OF_TURN = ['<|im_end|>', '<|eot_id|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '</s>', '<|end_of_text|>', '<｜end▁of▁sentence｜>', '<|END_OF_TURN_TOKEN|>'];

const SENTINEL = (i: number) => `\u{E000}${i}\u{E001}`;
const SENTINEL_RE = /\u{E000}(\d+)\u{E001}/gu;

export class JinjaTemplate implements Template {
  private readonly ends: string[];
  private readonly compiled: Jinja;
  private readonly source: string;
  constructor(
    readonly name: string,
    private readonly enc: SegmentEncoder,
    source?: string,
  ) {
    const set = new Set<string>();
    if (enc.eosText) set.add(enc.eosText);
    for (const id of enc.tok.eosIds) {
      const t = enc.tok.idToToken(id);
      if (t) set.add(t);
    }
    for (const e of END_OF_TURN) if (enc.specials.has(e)) set.add(e);
    this.ends = [...set].filter(Boolean);
    const src = source ?? enc.tok.chatTemplate;
    if (!src) throw new HeedError('the model folder has no chat template (no "chat_template" in tokenizer_config.json, no chat_template.jinja)', 'pick a built-in: --template chatml, tulu, alpaca or plain');
    this.source = src;
    try {
      this.compiled = new Jinja(src);
    } catch (e) {
      throw new HeedError(`chat template ${name} does not parse: ${(e as Error).message}`, 'fix the jinja source, or pick a built-in --template');
    }
  }

  jinja(): string {
    return this.source;
  }

  /**
   * Rendered with @huggingface/jinja directly (HeedTokenizer.applyChatTemplate passes its own
   * raise_exception, which this jinja version rejects as a redeclared global). Same context as
   * transformers' apply_chat_template: messages, add_generation_prompt, bos/eos/pad token strings.
   */
  private apply(messages: Array<{ role: Role; content: string }>): string {
    const tok = this.enc.tok;
    try {
      return this.compiled.render({ messages, add_generation_prompt: false, bos_token: tok.bosToken ?? '', eos_token: tok.eosToken ?? this.enc.eosText, pad_token: tok.padToken ?? '' });
    } catch (e) {
      throw new HeedError(`chat template raised: ${(e as Error).message}`, 'check the roles/order of the messages, or pick a built-in --template');
    }
  }

  render(conv: Conversation): Piece[] {
    for (const m of conv.messages) if (/[\u{E000}\u{E001}]/u.test(m.content)) throw new HeedError(`row ${conv.id}: content contains private-use characters U+E000/U+E001 that heed uses as sentinels`, 'remove them');
    const full = this.apply(conv.messages.map((m) => ({ role: m.role, content: m.content })));
    const skel = this.apply(conv.messages.map((m, i) => ({ role: m.role, content: SENTINEL(i) })));
    // split the skeleton into template text and content slots
    const slots: Array<{ marker: string; msg: number }> = [];
    let last = 0;
    const seen = new Set<number>();
    for (const m of skel.matchAll(SENTINEL_RE)) {
      const i = Number(m[1]);
      if (seen.has(i)) throw new HeedError(`row ${conv.id}: the chat template renders message ${i} twice`, 'heed cannot assign loss to duplicated content; use a built-in --template');
      seen.add(i);
      slots.push({ marker: skel.slice(last, m.index), msg: i });
      last = m.index! + m[0].length;
    }
    const tail = skel.slice(last);
    conv.messages.forEach((m, i) => {
      if (!seen.has(i) && m.role !== 'system') throw new HeedError(`row ${conv.id}: the chat template does not render message ${i} (${m.role})`, 'use a built-in --template');
    });
    // walk the real render: template text must match exactly; each content may have been trimmed
    const out: Piece[] = [];
    let pos = 0;
    const mismatch = (what: string): never => {
      throw new HeedError(`row ${conv.id}: the chat template changes ${what} in a way heed cannot map to character spans`, 'use a built-in --template (chatml, tulu, alpaca, plain)');
    };
    for (let k = 0; k < slots.length; k++) {
      const { marker, msg } = slots[k];
      if (!full.startsWith(marker, pos)) mismatch(`the template text before message ${msg}`);
      if (marker) out.push({ kind: 'marker', text: marker, msg: -1 });
      pos += marker.length;
      const c = conv.messages[msg].content;
      const next = k + 1 < slots.length ? slots[k + 1].marker : tail;
      const cands = [...new Set([c, c.trim(), c.trimStart(), c.trimEnd()])];
      const pick = cands.find((x) => full.startsWith(x, pos) && (next === '' ? k + 1 < slots.length || pos + x.length === full.length : full.startsWith(next, pos + x.length)));
      if (pick === undefined) mismatch(`the content of message ${msg}`);
      const role = conv.messages[msg].role;
      out.push({ kind: 'content', text: pick!, msg, role });
      pos += pick!.length;
    }
    if (full.slice(pos) !== tail) mismatch('the template text at the end');
    if (tail) out.push({ kind: 'marker', text: tail, msg: -1 });
    // the end-of-turn sequence: template text after an assistant content up to and including the
    // first end-of-turn token string (e.g. "<|im_end|>", Llama-2's " </s>")
    const res: Piece[] = [];
    for (let k = 0; k < out.length; k++) {
      const p = out[k];
      res.push(p);
      const nx = out[k + 1];
      if (p.kind === 'content' && p.role === 'assistant' && nx?.kind === 'marker') {
        let best = -1;
        let len = 0;
        for (const e of this.ends) {
          const at = nx.text.indexOf(e);
          if (at >= 0 && (best < 0 || at < best)) {
            best = at;
            len = e.length;
          }
        }
        if (best >= 0) {
          res.push({ kind: 'end', text: nx.text.slice(0, best + len), msg: p.msg, role: 'assistant' });
          const rest = nx.text.slice(best + len);
          if (rest) res.push({ kind: 'marker', text: rest, msg: -1 });
          k++;
        }
      }
    }
    return res;
  }
}

const roleSpec = z.object({ prefix: z.string(), suffix: z.string() }).strict();
const customSpec = z
  .object({
    bos: z.union([z.literal('auto'), z.boolean()]).default('auto'),
    strip: z.boolean().default(false),
    drop_last_suffix: z.boolean().default(false),
    system: roleSpec.optional(),
    user: roleSpec,
    assistant: z.object({ prefix: z.string(), end: z.string().default('{eos}'), suffix: z.string() }).strict(),
  })
  .strict();

/** Read a custom role-wrapper template (JSON). */
export function readCustomSpec(path: string): RoleTemplateSpec {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new HeedError(`${path}: invalid JSON (${(e as Error).message})`, 'a template file is JSON like {"user":{"prefix":"<|user|>\\n","suffix":"\\n"},"assistant":{"prefix":"<|assistant|>\\n","end":"{eos}","suffix":"\\n"}} (docs/data.md)');
  }
  const r = customSpec.safeParse(raw);
  // every problem at once, in the user's terms (src/zod-text.ts)
  if (!r.success) throw zodProblems(r.error.issues, raw, path, jsonSchemaOf(customSpec), '"Custom templates" in docs/data.md', { prefix: 'field' });
  const d = r.data;
  return { bos: d.bos, strip: d.strip, dropLastSuffix: d.drop_last_suffix, system: d.system ?? { prefix: '', suffix: '\n\n' }, user: d.user, assistant: d.assistant };
}

/**
 * Resolve --template: `auto` (the model's chat template if it has one, else chatml), `model`, a
 * built-in name, or a path to a .json / .jinja file.
 */
export function makeTemplate(name: string, enc: SegmentEncoder): Template {
  if (name === 'auto') {
    if (enc.tok.chatTemplate) return new JinjaTemplate('model (auto)', enc);
    return new RoleTemplate('chatml (auto: the model folder has no chat template)', CHATML, enc);
  }
  switch (name) {
    case 'model':
      return new JinjaTemplate('model', enc);
    case 'alpaca':
      return new AlpacaTemplate(enc);
    case 'tulu':
      return new RoleTemplate('tulu', TULU, enc);
    case 'chatml':
      return new RoleTemplate('chatml', CHATML, enc);
    case 'plain':
      return new PlainTemplate(enc);
  }
  if (existsSync(name)) {
    if (name.endsWith('.jinja') || name.endsWith('.j2')) return new JinjaTemplate(name, enc, readFileSync(name, 'utf8'));
    return new RoleTemplate(name, readCustomSpec(name), enc);
  }
  if (/[\\/]/.test(name) || /\.(json|jinja|j2)$/.test(name)) throw new HeedError(`${name}: template file not found`, 'check the --template path (a .json role-wrapper or a .jinja file)');
  throw new HeedError(`unknown template "${name}"`, `use auto, model, ${BUILTIN_TEMPLATES.join(', ')}, or a path to a .json/.jinja template file`);
}
