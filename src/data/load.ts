/**
 * Rows → Conversations: shape detection (messages / alpaca / prompt-completion), field mapping,
 * validation, and the bad-row policy (--on-bad-row fail|skip). docs/data.md lists every rule.
 */
import { basename } from 'node:path';
import { HeedError } from '../errors.js';
import { readRecords, type FileKind } from './read.js';
import { BAD_REASONS, ROLES, type BadReason, type BadRow, type Conversation, type Message, type Role } from './types.js';

export type Shape = 'messages' | 'alpaca' | 'prompt-completion';
export const SHAPES: readonly Shape[] = ['messages', 'alpaca', 'prompt-completion'];

/**
 * Data formats by name (config `format:`, CLI `--format`). Each is a shape plus default field and role
 * names; `fields`/`roles` given by the user override the preset's. `openai` is `messages` (content may
 * be a string or a list of `{type: "text", text}` parts, as in every messages row).
 */
export type Format = Shape | 'sharegpt' | 'openai';
export const FORMATS: readonly Format[] = ['messages', 'openai', 'sharegpt', 'alpaca', 'prompt-completion'];

export const SHAREGPT_ROLES: Record<string, Role> = { human: 'user', gpt: 'assistant', chatgpt: 'assistant', bing: 'assistant', bard: 'assistant' };

const PRESETS: Record<Format, { shape: Shape; fields?: Partial<FieldMap>; roles?: Record<string, Role> }> = {
  messages: { shape: 'messages' },
  openai: { shape: 'messages' },
  sharegpt: { shape: 'messages', fields: { messages: 'conversations', role: 'from', content: 'value' }, roles: SHAREGPT_ROLES },
  alpaca: { shape: 'alpaca' },
  'prompt-completion': { shape: 'prompt-completion' },
};

/** Where the user sets data options: the fixes in messages name config keys or CLI flags accordingly. */
export type HintStyle = 'cli' | 'config';

/** Names of the fields read from each row (map them with --fields key=name,...). */
export interface FieldMap {
  id: string;
  messages: string;
  role: string;
  content: string;
  /** optional row-level system prompt, prepended as a system message when the row has it */
  system: string;
  instruction: string;
  input: string;
  output: string;
  prompt: string;
  completion: string;
}

export const DEFAULT_FIELDS: FieldMap = {
  id: 'id',
  messages: 'messages',
  role: 'role',
  content: 'content',
  system: 'system',
  instruction: 'instruction',
  input: 'input',
  output: 'output',
  prompt: 'prompt',
  completion: 'completion',
};

export type OnBadRow = 'fail' | 'skip';

export interface LoadOptions {
  /** force the row shape instead of detecting it from the first row that has one */
  shape?: Shape;
  /** a named format (preset shape + field and role names); `fields`/`roles` override its names */
  format?: Format;
  fields?: Partial<FieldMap>;
  /** extra role names, e.g. { human: 'user', gpt: 'assistant' } */
  roles?: Record<string, Role>;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const typeName = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/** The shape a row object has, or undefined. Order: messages, alpaca, prompt-completion. */
export function detectShape(row: unknown, fields: FieldMap = DEFAULT_FIELDS): Shape | undefined {
  if (!isObj(row)) return undefined;
  if (fields.messages in row) return 'messages';
  if (fields.instruction in row && fields.output in row) return 'alpaca';
  if (fields.prompt in row && fields.completion in row) return 'prompt-completion';
  return undefined;
}

/** The named format of a row: ShareGPT (`conversations`, unless `messages` was mapped) or its shape. */
export function detectFormat(row: unknown, fields: FieldMap = DEFAULT_FIELDS): Format | undefined {
  const shape = detectShape(row, fields);
  if (shape) return shape;
  if (isObj(row) && fields.messages === DEFAULT_FIELDS.messages && 'conversations' in row) return 'sharegpt';
  return undefined;
}

/**
 * Shape, field names and roles a load uses: the named format's preset, then the user's `fields` and
 * `roles` over it. `shape` (if given) wins over the format's.
 */
export function resolveFormat(opts: LoadOptions, format: Format | undefined = opts.format): { shape?: Shape; fields: FieldMap; roles: Record<string, Role> } {
  const p = format ? PRESETS[format] : undefined;
  return {
    shape: opts.shape ?? p?.shape,
    fields: { ...DEFAULT_FIELDS, ...p?.fields, ...opts.fields },
    roles: { ...p?.roles, ...opts.roles },
  };
}

/** One message content: a string, or OpenAI content parts (`[{type: "text", text}, …]`, joined with "\n"). */
function contentText(v: unknown): { text: string } | { error: string } | undefined {
  if (!Array.isArray(v)) return undefined;
  const texts: string[] = [];
  for (let k = 0; k < v.length; k++) {
    const p = v[k];
    if (typeof p === 'string') {
      texts.push(p);
      continue;
    }
    if (!isObj(p)) return { error: `content part ${k} is ${typeName(p)}, expected {type: "text", text}` };
    if (p.type !== 'text') return { error: `content part ${k} has type ${JSON.stringify(p.type ?? null)}: only text parts are supported` };
    if (typeof p.text !== 'string') return { error: `content part ${k} (text) has text of type ${typeName(p.text)}, expected a string` };
    texts.push(p.text);
  }
  return { text: texts.join('\n') };
}

function rowId(row: Record<string, unknown>, fields: FieldMap, file: string, line: number): string {
  const v = row[fields.id];
  return typeof v === 'string' || typeof v === 'number' ? String(v) : `${file}:${line}`;
}

/**
 * Convert one parsed row into a Conversation, or a BadRow saying what is wrong.
 * Contents are kept exactly as written (no trimming; templates decide, see docs/data.md).
 */
export function toConversation(row: unknown, line: number, shape: Shape, opts: { fields?: FieldMap; roles?: Record<string, Role>; file?: string } = {}): Conversation | BadRow {
  const fields = opts.fields ?? DEFAULT_FIELDS;
  const file = opts.file ?? 'data';
  const bad = (reason: BadReason, message: string, id?: string): BadRow => ({ line, id, reason, message });
  if (!isObj(row)) return bad('not-object', `row is ${typeName(row)}, not an object`);
  const id = rowId(row, fields, file, line);
  const str = (name: string, v: unknown, what: string, optional = false): string | BadRow => {
    if (v === undefined || (optional && v === null)) return optional ? '' : bad('missing-field', `missing field "${name}"${what}`, id);
    if (typeof v !== 'string') return bad('wrong-type', `field "${name}"${what} is ${typeName(v)}, expected a string`, id);
    // a JSON escape like "\ud800" without its pair is no character: the tokenizer would turn it into U+FFFD
    const lone = LONE_SURROGATE.exec(v);
    if (lone) return bad('lone-surrogate', `field "${name}"${what} holds a lone surrogate \\u${lone[0].charCodeAt(0).toString(16)} at character ${lone.index + 1}`, id);
    return v;
  };
  const nonEmpty = (name: string, v: string, what: string): BadRow | undefined => (v.trim() === '' ? bad('empty-content', `field "${name}"${what} is empty`, id) : undefined);
  const messages: Message[] = [];
  const sys = row[fields.system];
  if (sys !== undefined && sys !== null) {
    if (typeof sys !== 'string') return bad('wrong-type', `field "${fields.system}" is ${typeName(sys)}, expected a string`, id);
    if (sys.trim() !== '') messages.push({ role: 'system', content: sys });
  }
  if (shape === 'messages') {
    const ms = row[fields.messages];
    if (ms === undefined) return bad('missing-field', `missing field "${fields.messages}"`, id);
    if (!Array.isArray(ms)) return bad('wrong-type', `field "${fields.messages}" is ${typeName(ms)}, expected an array of {${fields.role}, ${fields.content}}`, id);
    if (ms.length === 0) return bad('no-assistant', `field "${fields.messages}" is an empty array`, id);
    for (let k = 0; k < ms.length; k++) {
      const m = ms[k];
      const at = ` of ${fields.messages}[${k}]`;
      if (!isObj(m)) return bad('wrong-type', `${fields.messages}[${k}] is ${typeName(m)}, expected an object`, id);
      const r = str(fields.role, m[fields.role], at);
      if (typeof r !== 'string') return r;
      const role = (ROLES as readonly string[]).includes(r) ? (r as Role) : opts.roles?.[r];
      if (!role) return bad('unknown-role', `${fields.messages}[${k}].${fields.role} is "${r}", not one of ${[...ROLES, ...Object.keys(opts.roles ?? {})].join(', ')}`, id);
      const parts = contentText(m[fields.content]);
      if (parts && 'error' in parts) return bad('wrong-type', `${fields.messages}[${k}].${fields.content}: ${parts.error}`, id);
      const c = str(fields.content, parts ? parts.text : m[fields.content], at);
      if (typeof c !== 'string') return c;
      const e = nonEmpty(fields.content, c, at + ` (${role})`);
      if (e) return e;
      messages.push({ role, content: c });
    }
  } else if (shape === 'alpaca') {
    const ins = str(fields.instruction, row[fields.instruction], '');
    if (typeof ins !== 'string') return ins;
    const inp = str(fields.input, row[fields.input], '', true);
    if (typeof inp !== 'string') return inp;
    const out = str(fields.output, row[fields.output], '');
    if (typeof out !== 'string') return out;
    const e = nonEmpty(fields.instruction, ins, '') ?? nonEmpty(fields.output, out, '');
    if (e) return e;
    const input = inp.trim() === '' ? '' : inp;
    messages.push({ role: 'user', content: input ? `${ins}\n\n${input}` : ins, parts: { instruction: ins, input } });
    messages.push({ role: 'assistant', content: out });
  } else {
    const p = str(fields.prompt, row[fields.prompt], '');
    if (typeof p !== 'string') return p;
    const c = str(fields.completion, row[fields.completion], '');
    if (typeof c !== 'string') return c;
    const e = nonEmpty(fields.prompt, p, '') ?? nonEmpty(fields.completion, c, '');
    if (e) return e;
    messages.push({ role: 'user', content: p }, { role: 'assistant', content: c });
  }
  let last = -1;
  messages.forEach((m, k) => {
    if (m.role === 'assistant') last = k;
  });
  if (last < 0) return bad('no-assistant', 'conversation has no assistant turn (nothing to learn)', id);
  if (last !== messages.length - 1) return bad('trailing-turn', `conversation ends with a ${messages[messages.length - 1].role} turn after the last assistant turn`, id);
  return { id, line, messages };
}

export const isBad = (x: Conversation | BadRow): x is BadRow => 'reason' in x;

const FIX_COMMON: Record<BadReason, string> = {
  'malformed-json': 'repair the JSON of that line',
  'invalid-utf8': 're-encode the file as UTF-8',
  'lone-surrogate': 'write the character itself, or its full surrogate pair (\\ud83d\\ude00), or remove it',
  'not-object': 'each row must be a JSON object',
  'unknown-shape': 'rows need "messages", "conversations" (ShareGPT), "instruction"+"output", or "prompt"+"completion" (map other names with --fields, or name the format with --format)',
  'missing-field': 'add the field, or map your field name with --fields',
  'wrong-type': 'fix the value type',
  'empty-content': 'remove the row or fill in the content',
  'unknown-role': 'use system/user/assistant, or map the role with --roles name=user',
  'no-assistant': 'add the assistant reply, or remove the row',
  'trailing-turn': 'end the conversation with an assistant turn, or remove the last turn',
  template: 'pick another --template, or remove the row',
};
/** the same fixes in config keys (heed train): a config user is never told to pass data flags */
const FIX_CONFIG: Partial<Record<BadReason, string>> = {
  'unknown-shape': `rows need "messages", "conversations" (ShareGPT), "instruction"+"output", or "prompt"+"completion": name the format in the config (format: ${FORMATS.join('|')}) or map your field names (fields: {messages: conversations, role: from, content: value})`,
  'missing-field': 'add the field, or map your field name in the config (fields: {instruction: question, output: answer}; keys in docs/data.md)',
  'unknown-role': 'use system/user/assistant, or map the role in the config (roles: {human: user, bot: assistant})',
  template: 'pick another template in the config (template: chatml), or remove the row',
};
export const badRowFix = (r: BadReason, hints: HintStyle = 'cli'): string => (hints === 'config' ? (FIX_CONFIG[r] ?? FIX_COMMON[r]) : FIX_COMMON[r]);

/**
 * The bad-row policy. `fail` (default): the run stops with an error listing the first 5 bad rows
 * (their lines and reasons); `skip`: every skip is counted (by reason) and listed in the report.
 */
export class BadRowLog {
  count = 0;
  readonly byReason: Partial<Record<BadReason, number>> = {};
  /** the first bad rows, in file order (5 for `fail`, up to `keep` for `skip`) */
  readonly first: BadRow[] = [];
  constructor(
    readonly policy: OnBadRow,
    readonly file: string,
    readonly keep = 20,
    readonly hints: HintStyle = 'cli',
  ) {}

  add(b: BadRow): void {
    this.count++;
    this.byReason[b.reason] = (this.byReason[b.reason] ?? 0) + 1;
    if (this.first.length < (this.policy === 'fail' ? 5 : this.keep)) this.first.push(b);
  }

  /** true once `fail` has seen enough bad rows to stop reading */
  get full(): boolean {
    return this.policy === 'fail' && this.count >= 5;
  }

  /** Throws the `fail` error if any bad row was seen. */
  check(stoppedAtLine?: number): void {
    if (this.policy !== 'fail' || this.count === 0) return;
    const list = this.first.map((b) => `  ${this.file}:${b.line}${b.id ? ` (id ${b.id})` : ''}: [${b.reason}] ${b.message}`).join('\n');
    const reasons = [...new Set(this.first.map((b) => b.reason))].map((r) => badRowFix(r, this.hints)).join('; ');
    const more = this.full && stoppedAtLine !== undefined ? ` (stopped reading at line ${stoppedAtLine})` : '';
    const skip = this.hints === 'config' ? 'or set on_bad_row: skip in the config' : 'or pass --on-bad-row skip';
    throw new HeedError(
      `${this.file}: ${this.count} bad row${this.count === 1 ? '' : 's'}${more}:\n${list}\n`,
      `${reasons}; ${skip} to skip bad rows (each skip is counted and reported)`,
    );
  }

  toJSON() {
    return { policy: this.policy, count: this.count, byReason: this.byReason, first: this.first };
  }
}

export interface LoadInfo {
  file: string;
  kind?: FileKind;
  shape?: Shape;
  /** the named format used (given or detected) */
  format?: Format;
  /** rows seen (good + bad; blank lines excluded) */
  rows: number;
  blankLines: number;
  lastLine: number;
}

/**
 * Stream the conversations of a file. Bad rows go to `log` (never thrown here; call log.check()).
 * With policy `fail`, reading stops after the 5th bad row.
 */
export async function* loadConversations(path: string, opts: LoadOptions, log: BadRowLog, info: LoadInfo): AsyncGenerator<Conversation> {
  let { shape, fields, roles } = resolveFormat(opts);
  const file = basename(path);
  const readInfo = { kind: 'jsonl' as FileKind, blankLines: 0 };
  info.shape = shape;
  info.format = opts.format ?? opts.shape;
  for await (const rec of readRecords(path, readInfo)) {
    info.kind = readInfo.kind;
    info.rows++;
    info.lastLine = rec.line;
    if (rec.bad) {
      log.add(rec.bad);
    } else {
      if (!shape) {
        const f = detectFormat(rec.value, fields);
        if (f) ({ shape, fields, roles } = resolveFormat(opts, f));
        info.shape = shape;
        info.format = f;
      }
      if (!shape) {
        const keys = isObj(rec.value) ? Object.keys(rec.value).slice(0, 8).join(', ') || 'none' : typeName(rec.value);
        log.add({ line: rec.line, reason: isObj(rec.value) ? 'unknown-shape' : 'not-object', message: isObj(rec.value) ? `cannot tell the row shape (fields: ${keys})` : `row is ${keys}, not an object` });
      } else {
        const c = toConversation(rec.value, rec.line, shape, { fields, roles, file });
        if (isBad(c)) log.add(c);
        else yield c;
      }
    }
    if (log.full) break;
  }
  info.blankLines = readInfo.blankLines;
  info.kind = readInfo.kind;
}

export { BAD_REASONS };
