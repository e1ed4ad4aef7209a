/**
 * A judge = a prompt + a strict parser over any model spec. `askStrict` sends one judge prompt (a system and a
 * user message) through a ModelBackend — the chat endpoint for `openai:…?api=chat` specs and engine folders
 * with a chat template, else the completions endpoint with the two messages joined as text — and parses the
 * reply strictly. A reply the parser refuses (empty, malformed, out of range, a refusal) is asked again with a
 * new seed at temperature 0.7 (the greedy reply would be the same, and the answer cache would return it), up
 * to `retries` times, and then recorded as failed with every reply's reason: never guessed. A transport failure
 * (timeouts, 5xx after the client's own retries) is recorded as failed at once. Answers are cached by the
 * backend (src/backends/cache.ts for openai: specs), so a re-run asks only for what is missing.
 */
import type { GenerateOptions, Generation } from '../../decode/generate.js';
import { generationError, type ModelBackend } from '../../backends/types.js';
import { parseSpec } from '../../backends/spec.js';

export interface JudgePrompt {
  system: string;
  user: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

export interface Attempt {
  reply: string;
  seed?: number;
  temperature: number;
  error?: string;
}

export type StrictResult<T> = { ok: true; value: T; reply: string; attempts: Attempt[] } | { ok: false; error: string; attempts: Attempt[] };

/** How a backend is asked: chat messages where the spec is a chat model, else one completions prompt. */
export function usesChat(b: ModelBackend): boolean {
  if (!b.chat) return false;
  if (b.kind === 'openai') {
    const s = parseSpec(b.spec);
    return s.kind === 'openai' && s.api === 'chat';
  }
  return b.capabilities.chat;
}

/** An empty system prompt is left out (a judge prompt written as one user message, as ObjecQA's). */
export const promptText = (p: JudgePrompt): string => (p.system ? `${p.system}\n\n${p.user}\n` : p.user);

export async function askOnce(b: ModelBackend, p: JudgePrompt, opts: GenerateOptions): Promise<Generation> {
  const [g] = usesChat(b)
    ? await b.chat!([[...(p.system ? [{ role: 'system' as const, content: p.system }] : []), { role: 'user' as const, content: p.user }]], opts)
    : await b.gen.generate([promptText(p)], opts);
  return g;
}

export interface StrictOptions {
  maxTokens: number;
  /** first attempt's temperature (0 = greedy) and seed */
  temperature?: number;
  seed?: number;
  /** extra attempts after a reply the parser refuses */
  retries?: number;
}

export async function askStrict<T>(b: ModelBackend, p: JudgePrompt, parse: (reply: string) => Parsed<T>, o: StrictOptions): Promise<StrictResult<T>> {
  const attempts: Attempt[] = [];
  const retries = o.retries ?? 2;
  for (let a = 0; a <= retries; a++) {
    const temperature = a === 0 ? o.temperature ?? 0 : 0.7;
    const seed = a === 0 ? o.seed : (o.seed ?? 0) * 1000 + a;
    const g = await askOnce(b, p, { maxTokens: o.maxTokens, temperature, seed });
    const err = generationError(g);
    if (err) {
      attempts.push({ reply: '', seed, temperature, error: `backend: ${err}` });
      return { ok: false, error: `backend: ${err}`, attempts };
    }
    const r = parse(g.text);
    if (r.ok) {
      attempts.push({ reply: g.text, seed, temperature });
      return { ok: true, value: r.value, reply: g.text, attempts };
    }
    attempts.push({ reply: g.text, seed, temperature, error: r.reason });
  }
  return { ok: false, error: `${attempts.length} replies refused by the parser: ${attempts.map((x) => x.error).join('; ')}`, attempts };
}

/** A refusal or non-answer, named as such in the failure reason. */
export const looksLikeRefusal = (t: string): boolean => /\b(I (?:cannot|can't|can ?not|won't|am unable to)|I'm (?:sorry|unable)|as an AI)\b/i.test(t);
