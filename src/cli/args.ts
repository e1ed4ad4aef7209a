import { parseArgs, type ParseArgsConfig } from 'node:util';
import { HeedError } from '../errors.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

/** Parse argv with node:util parseArgs; unknown flags become a HeedError naming the flag and the command's usage. */
export function parse<O extends Options>(argv: string[], options: O, usage: string, allowPositionals = true) {
  try {
    return parseArgs({ args: argv, options: { ...options, debug: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    throw new HeedError(msg, `usage: ${usage}`);
  }
}

/** Read a numeric flag; undefined stays undefined; a bad number names the flag. */
export function num(v: unknown, flag: string, opts: { int?: boolean; min?: number; max?: number } = {}): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  const bad = !Number.isFinite(n) || (opts.int && !Number.isInteger(n)) || (opts.min !== undefined && n < opts.min) || (opts.max !== undefined && n > opts.max);
  if (bad) {
    const range = [opts.int ? 'an integer' : 'a number', opts.min !== undefined ? `>= ${opts.min}` : '', opts.max !== undefined ? `<= ${opts.max}` : ''].filter(Boolean).join(' ');
    throw new HeedError(`--${flag} must be ${range}, got "${String(v)}"`, `pass e.g. --${flag} ${opts.min ?? 1}`);
  }
  return n;
}
