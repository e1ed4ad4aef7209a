/** JSONL helpers for evaluation files: bad lines are reported (line number and why), never thrown. */
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { HeedError } from '../errors.js';

export interface JsonlRow {
  line: number;
  value?: Record<string, unknown>;
  error?: string;
}

/** Every non-blank line of a JSONL file, parsed, or with the reason it could not be. */
export function readJsonlRows(path: string): JsonlRow[] {
  if (!existsSync(path)) throw new HeedError(`${path}: file not found`, 'check the path');
  const text = readFileSync(path, 'utf8');
  const out: JsonlRow[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i].trim();
    if (!l) continue;
    try {
      const v = JSON.parse(l) as unknown;
      if (v === null || typeof v !== 'object' || Array.isArray(v)) out.push({ line: i + 1, error: 'not a JSON object' });
      else out.push({ line: i + 1, value: v as Record<string, unknown> });
    } catch (e) {
      out.push({ line: i + 1, error: `invalid JSON (${(e as Error).message.split('\n')[0]})` });
    }
  }
  return out;
}

export function writeJsonl(path: string, rows: readonly unknown[]): void {
  writeFileSync(path, rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : ''));
}

/** The repository root (works from src/ under tsx and from dist/ after the build). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const repoPath = (...p: string[]) => join(REPO_ROOT, ...p);
