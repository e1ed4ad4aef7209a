/**
 * zod's validation issues in the user's terms: the key path, the value given, what the key accepts (from the
 * schema itself, as JSON Schema) and the nearest name for a misspelling; every issue of a file in one line.
 * Used by the train config, rules files and custom template files.
 */
import { z } from 'zod';
import { HeedError, didYouMean } from './errors.js';

export type Json = { type?: string; enum?: unknown[]; anyOf?: Json[]; properties?: Record<string, Json>; additionalProperties?: Json | boolean; items?: Json; minimum?: number; maximum?: number; exclusiveMinimum?: number; exclusiveMaximum?: number; minItems?: number; minLength?: number; pattern?: string; default?: unknown; description?: string; required?: string[] };

const cache = new WeakMap<z.ZodType, Json>();
/** A schema as JSON Schema (input side): what each key accepts, for messages and generated docs. */
export function jsonSchemaOf(schema: z.ZodType): Json {
  let j = cache.get(schema);
  if (!j) cache.set(schema, (j = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Json));
  return j;
}

/** The schema node of a key path (through unions, lists and mappings), if there is one. */
function schemaAt(path: ReadonlyArray<PropertyKey>, node: Json | undefined): Json | undefined {
  if (!node || path.length === 0) return node;
  const [k, ...rest] = path;
  if (node.anyOf) {
    for (const alt of node.anyOf) {
      const r = schemaAt(path, alt);
      if (r) return r;
    }
    return undefined;
  }
  if (typeof k === 'number') return node.type === 'array' ? schemaAt(rest, node.items) : undefined;
  const next = node.properties?.[String(k)] ?? (typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined);
  return next ? schemaAt(rest, next) : undefined;
}

const SAFE_MAX = Number.MAX_SAFE_INTEGER;
/** What a schema node accepts, in words: "a number more than 0 and less than 1", "one of constant, linear, cosine". */
export function accepts(n: Json | undefined, depth = 0): string {
  if (!n) return 'a value';
  if (n.anyOf) {
    const parts = [...new Set(n.anyOf.map((x) => accepts(x, depth)))];
    return parts.length === 1 ? parts[0] : `${parts.slice(0, -1).join(', ')} or ${parts[parts.length - 1]}`;
  }
  if (n.enum) return n.enum.length === 1 ? JSON.stringify(n.enum[0]) : `one of ${n.enum.map((v) => String(v)).join(', ')}`;
  switch (n.type) {
    case 'null':
      return 'null';
    case 'boolean':
      return 'true or false';
    case 'string':
      return n.pattern ? 'a name of letters, digits, ".", "_" and "-"' : n.minLength ? 'a non-empty string' : 'a string';
    case 'number':
    case 'integer': {
      const b = [
        n.exclusiveMinimum !== undefined ? `more than ${n.exclusiveMinimum}` : n.minimum !== undefined && n.minimum > -SAFE_MAX ? `at least ${n.minimum}` : '',
        n.exclusiveMaximum !== undefined ? `less than ${n.exclusiveMaximum}` : n.maximum !== undefined && n.maximum < SAFE_MAX ? `at most ${n.maximum}` : '',
      ].filter(Boolean);
      return `${n.type === 'integer' ? 'an integer' : 'a number'}${b.length ? ' ' + b.join(' and ') : ''}`;
    }
    case 'array':
      return `a list${n.minItems ? ' (not empty)' : ''} of ${depth > 1 ? 'values' : accepts(n.items, depth + 1).replace(/^(a|an|one of) /, (m) => (m === 'one of ' ? 'values from ' : ''))}`;
    case 'object': {
      const keys = Object.keys(n.properties ?? {});
      if (!keys.length) return typeof n.additionalProperties === 'object' ? `a mapping of names to ${accepts(n.additionalProperties, depth + 1)}` : 'a mapping';
      if (keys.length <= 2 && depth < 2) return `{${keys.map((k) => `${k}: ${accepts(n.properties![k], depth + 1)}`).join(', ')}}`;
      return `a mapping with the keys ${keys.join(', ')}`;
    }
  }
  return 'a value';
}

export const show = (v: unknown): string => {
  const t = v === undefined ? 'nothing' : typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v) ?? String(v);
  return t.length > 60 ? t.slice(0, 57) + '...' : t;
};

function valueAt(raw: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let o = raw;
  for (const k of path) o = o !== null && typeof o === 'object' && Object.hasOwn(o, k as string) ? (o as Record<PropertyKey, unknown>)[k] : undefined;
  return o;
}

/** One zod issue in the user's terms: the key path, the value given, what the key accepts (and a near name). */
export interface KeyStyle {
  /** list indices as [i] (tokens[0].delta) instead of .i (data.0.weight) */
  brackets?: boolean;
  /** a word before each key, e.g. "field" */
  prefix?: string;
}

export function issueText(issue: z.core.$ZodIssue, raw: unknown, root: Json, style: KeyStyle = {}): { key: string; text: string; unknownKey?: boolean } {
  const key = style.brackets ? issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '') : issue.path.map(String).join('.');
  const q = (k: string) => `${style.prefix ? `${style.prefix} ` : ''}"${k}"`;
  if (issue.code === 'unrecognized_keys') {
    const where = key ? `${key}.` : '';
    const known = Object.keys(schemaAt(issue.path, root)?.properties ?? {});
    const one = (k: string) => `"${where + k}"${didYouMean(k, known, (c) => `"${where + c}"`)}`;
    return { key: key || '(top level)', unknownKey: true, text: `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map(one).join(', ')}` };
  }
  if (issue.code === 'custom') return { key, text: key ? `${q(key)}: ${issue.message}` : issue.message };
  const v = valueAt(raw, issue.path);
  const node = schemaAt(issue.path, root);
  if (v === undefined && issue.code === 'invalid_type') return { key, text: `${q(key)} is required: ${accepts(node)}` };
  const near = issue.code === 'invalid_value' && typeof v === 'string' ? didYouMean(v, issue.values.map(String)) : '';
  // a message written for this key in the schema (e.g. the data weight's bound) says more than the generic words
  const own = (issue.code === 'too_big' || issue.code === 'too_small') && !/^(Too (big|small)|Invalid)/.test(issue.message) ? `: ${issue.message}` : '';
  return { key, text: `${q(key)}: got ${show(v)}${near}; accepts ${accepts(node)}${own}` };
}


/** Every problem of a validated file in one HeedError (one line); `docs` names where the keys are explained. */
export function zodProblems(issues: z.core.$ZodIssue[], raw: unknown, file: string, root: Json, docs: string, style: KeyStyle = {}): HeedError {
  const texts = issues.map((i) => issueText(i, raw, root, style));
  if (texts.length === 1) {
    const t = texts[0];
    return new HeedError(`${file}: ${t.text}`, t.unknownKey ? `remove it or fix its spelling (${docs} lists every key)` : `change ${t.key ? `"${t.key}"` : 'the config'} (${docs} lists every key and what it accepts)`);
  }
  return new HeedError(`${file}: ${texts.length} problems: ${texts.map((t, i) => `(${i + 1}) ${t.text}`).join('; ')}`, `change each key named (${docs} lists every key and what it accepts)`);
}
