/**
 * An on-disk answer cache keyed by a hash of (server, model, endpoint, prompt, parameters): an interrupted or
 * repeated run reuses every finished answer and asks only for the rest. One JSON file per answer, written to a
 * temporary name and renamed (a crash never leaves half a file); a file that does not parse is treated as
 * absent (and rewritten). Only finished answers are stored, never failures, never an API key.
 *
 * Default folder: $HEED_CACHE_DIR, else $XDG_CACHE_HOME/heed/answers, else ~/.cache/heed/answers.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export function defaultCacheDir(env: Record<string, string | undefined> = process.env): string {
  if (env.HEED_CACHE_DIR) return env.HEED_CACHE_DIR;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'heed', 'answers');
}

/** JSON with sorted keys, so that equal requests hash equally whatever the order of their fields. */
export function stableJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
    .join(',')}}`;
}

export const cacheKey = (request: unknown): string => createHash('sha256').update(stableJson({ v: 1, request })).digest('hex');

export class AnswerCache {
  hits = 0;
  misses = 0;
  writes = 0;
  /** files that did not parse (ignored; the answer is asked for again) */
  corrupt = 0;
  constructor(readonly dir: string) {}

  private path(key: string): string {
    return join(this.dir, key.slice(0, 2), `${key}.json`);
  }

  get<T>(key: string): T | undefined {
    let text: string;
    try {
      text = readFileSync(this.path(key), 'utf8');
    } catch {
      this.misses++;
      return undefined;
    }
    try {
      const v = JSON.parse(text) as { key: string; value: T };
      if (v.key !== key) throw new Error('key mismatch');
      this.hits++;
      return v.value;
    } catch {
      this.corrupt++;
      this.misses++;
      return undefined;
    }
  }

  put(key: string, value: unknown): void {
    const p = this.path(key);
    mkdirSync(join(this.dir, key.slice(0, 2)), { recursive: true });
    const tmp = `${p}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    writeFileSync(tmp, JSON.stringify({ key, value }));
    renameSync(tmp, p);
    this.writes++;
  }
}
