import { parseArgs } from 'node:util';
import { HeedError, didYouMean } from '../errors.js';

export { closest, didYouMean, editDistance } from '../errors.js';

/**
 * One command-line flag, declared once: what node:util parseArgs needs (type, short, multiple) plus the text
 * `heed help <command>` prints (help: one line of meaning; default: the default as the user sees it; arg: the
 * value's name in the help, e.g. N or FILE). `parse` strips the help fields before calling parseArgs.
 */
export interface Flag {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  help: string;
  default?: string;
  arg?: string;
}
export type Flags = Record<string, Flag>;

/** Declare a command's flags (keeps the literal types, so `parse` types the values). */
export const flags = <const F extends Flags>(f: F): F => f;

type Value<T extends Flag> = T['type'] extends 'boolean' ? (T['multiple'] extends true ? boolean[] : boolean) : T['multiple'] extends true ? string[] : string;
export type Values<F extends Flags> = { [K in keyof F]?: Value<F[K]> } & { debug?: boolean; help?: boolean };

/** The flags every command takes. */
export const GLOBAL_FLAGS = flags({
  help: { type: 'boolean', short: 'h', help: 'show this help and exit' },
  debug: { type: 'boolean', help: 'on an error, also print the stack trace' },
});

/** `heed` as the user started it: `npx heed` when started through npx (so printed hints can be pasted). */
export function heedName(env: NodeJS.ProcessEnv = process.env, argv1 = process.argv[1] ?? ''): string {
  const viaNpx = env.npm_command === 'exec' || env.npm_lifecycle_event === 'npx' || /[\\/]_npx[\\/]/.test(argv1);
  return viaNpx ? 'npx heed' : 'heed';
}

/** A command line for a hint, e.g. hint('train --resume runs/x') → "heed train --resume runs/x" (or "npx heed ..."). */
export const hint = (rest: string): string => `${heedName()} ${rest}`;

/** Colour on stdout only for a terminal, never with NO_COLOR (FORCE_COLOR=1 forces it, as in other tools). */
export function useColor(stream: { isTTY?: boolean } = process.stdout, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '' && env.FORCE_COLOR !== '0') return true;
  return !!stream.isTTY;
}

const flagName = (name: string, f: Flag) => `${f.short ? `-${f.short}, ` : '    '}--${name}${f.type === 'string' ? ` ${f.arg ?? 'VALUE'}` : ''}`;

/** The flags of a command as help lines: name, value, meaning, default; repeatable flags say so. */
export function flagHelp(options: Flags, width = 30): string[] {
  const all: Flags = { ...options, ...GLOBAL_FLAGS };
  const w = Math.min(width, Math.max(...Object.entries(all).map(([n, f]) => flagName(n, f).length)));
  return Object.entries(all).map(([n, f]) => {
    const left = flagName(n, f);
    const extra = [f.multiple ? 'repeatable' : '', f.default !== undefined ? `default: ${f.default}` : ''].filter(Boolean).join('; ');
    const text = `${f.help}${extra ? ` (${extra})` : ''}`;
    return left.length > w ? `  ${left}\n  ${' '.repeat(w)}  ${text}` : `  ${left.padEnd(w)}  ${text}`;
  });
}

/** A command's help page: usage, summary, every flag with its default and meaning. */
export function commandHelp(cmd: { path: string[]; summary: string; usage: string; options: Flags }): string {
  return [`usage: ${cmd.usage}`, '', cmd.summary, '', 'options:', ...flagHelp(cmd.options)].join('\n');
}

/**
 * Parse argv with node:util parseArgs against the declared flags. Every parser error becomes a HeedError in
 * heed's words (unknown flag with a "did you mean", a missing value, a value given to a switch, an unexpected
 * argument) with the command's usage as the fix; node's own messages are never shown.
 */
export function parse<F extends Flags>(argv: string[], options: F, usage: string, allowPositionals = true): { values: Values<F>; positionals: string[] } {
  const all: Flags = { ...options, ...GLOBAL_FLAGS };
  const config = Object.fromEntries(Object.entries(all).map(([n, f]) => [n, { type: f.type, ...(f.short ? { short: f.short } : {}), ...(f.multiple ? { multiple: true } : {}) }]));
  try {
    const r = parseArgs({ args: argv, options: config, allowPositionals, strict: true });
    return { values: r.values as Values<F>, positionals: r.positionals };
  } catch (e) {
    throw parseError(e as Error & { code?: string }, argv, all, usage);
  }
}

function parseError(e: Error & { code?: string }, argv: string[], all: Flags, usage: string): HeedError {
  const fix = `usage: ${usage}  (heed help ${commandOf(usage)} lists every flag)`;
  const names = Object.keys(all);
  const byShort = new Map(Object.entries(all).filter(([, f]) => f.short).map(([n, f]) => [f.short!, n]));
  const quoted = /'(-[^' ]+)/.exec(e.message)?.[1];
  const long = (tok: string) => (tok.startsWith('--') ? tok.slice(2).split('=')[0] : byShort.get(tok.slice(1, 2)) ?? tok.replace(/^-+/, ''));
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const tok = argv.find((a) => a === quoted || a.split('=')[0] === quoted) ?? quoted ?? '?';
    const name = tok.startsWith('--') ? tok.slice(2).split('=')[0] : tok.replace(/^-+/, '');
    return new HeedError(`unknown flag ${tok.split('=')[0]}${didYouMean(name, names, (s) => `--${s}`)}`, fix);
  }
  if (e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    const arg = /'([^']*)'/.exec(e.message)?.[1] ?? '';
    return new HeedError(`unexpected argument "${arg}": this command takes flags only`, fix);
  }
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && quoted) {
    const n = long(quoted);
    const f = all[n];
    if (f?.type === 'boolean') return new HeedError(`--${n} is a switch and takes no value (got "${argv.find((a) => a.startsWith(`--${n}=`))?.slice(n.length + 3) ?? ''}")`, `write --${n} alone; ${fix}`);
    const i = argv.findIndex((a) => a === quoted || a === `--${n}`);
    const next = i >= 0 ? argv[i + 1] : undefined;
    const what = next === undefined ? 'is missing its value' : `needs a value, and "${next}" looks like a flag`;
    return new HeedError(`--${n} ${what}`, `${next === undefined ? '' : `write --${n}=${next} if that is the value; `}--${n} ${f?.arg ?? 'VALUE'}: ${f?.help ?? ''}; ${fix}`);
  }
  return new HeedError(`could not read the arguments (${e.message.split('\n')[0].replace(/\. To specify.*$/, '')})`, fix);
}

/** "heed data stats --data F ..." → "data stats" (the command words of a usage line). */
function commandOf(usage: string): string {
  const words = usage.replace(/^heed\s+/, '').split(/\s+/);
  const out: string[] = [];
  for (const w of words) {
    if (!/^[a-z][a-z-]*$/.test(w) || out.length === 2) break;
    out.push(w);
  }
  return out.join(' ');
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
