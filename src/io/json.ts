import { existsSync, readFileSync } from 'node:fs';
import { HeedError } from '../errors.js';

/** Read and parse a JSON file; a missing file or bad JSON is a HeedError naming the file. */
export function readJson<T = unknown>(path: string, what = 'file'): T {
  if (!existsSync(path)) throw new HeedError(`${path}: ${what} not found`, `check the path; expected a ${what} there`);
  const text = readFileSync(path, 'utf8');
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new HeedError(`${path}: invalid JSON (${(e as Error).message})`, 'repair or re-download the file');
  }
}

export function readJsonIfExists<T = unknown>(path: string): T | undefined {
  return existsSync(path) ? readJson<T>(path) : undefined;
}
