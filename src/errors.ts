/**
 * A user-facing error: one line that names the file/field at fault and the fix.
 * The CLI prints `error: <message> (fix: <fix>)` and exits with code 2; the stack is shown only with --debug.
 *
 * Everything heed prints that may hold text from data (rows, ids, file names, error messages) goes through
 * `safeText`, which makes control characters visible instead of letting the terminal act on them (an ESC/OSC
 * sequence in a data row could otherwise recolour the output, move the cursor or write the clipboard).
 */
export class HeedError extends Error {
  readonly fix: string | undefined;
  constructor(message: string, fix?: string) {
    super(safeText(message, { newlines: true }));
    this.name = 'HeedError';
    this.fix = fix === undefined ? undefined : safeText(fix, { newlines: true });
  }
  oneLine(): string {
    return this.fix ? `${this.message} (fix: ${this.fix})` : this.message;
  }
}

// C0 controls except \t \n, DEL, C1 controls, bidi embeddings/overrides/isolates, line/paragraph separators,
// and lone surrogates (a high surrogate not followed by a low one, or a low one not preceded by a high one)
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const UNSAFE_NL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const esc = (c: string) => (c === '\r' ? '\\r' : c === '\n' ? '\\n' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/**
 * Text from data made safe for a terminal: control characters become visible escapes (`\u001b`, `\r`).
 * Newlines and tabs are kept when `newlines` is true (multi-line output such as `heed data inspect`), and
 * escaped as `\n` otherwise (one-line output). Printable text, emoji and every other script are unchanged.
 */
export function safeText(s: string, opts: { newlines?: boolean } = {}): string {
  return s.replace(opts.newlines ? UNSAFE : UNSAFE_NL, esc);
}

const OS_FIX: Record<string, [string, string]> = {
  EACCES: ['permission denied', 'check the permissions of the path (ls -l; chmod/chown), or use another path'],
  EPERM: ['operation not permitted', 'check the permissions of the path, or use another path'],
  ENOENT: ['no such file or folder', 'check the path'],
  ENOTDIR: ['a part of the path is a file, not a folder', 'check the path: every part before the last must be a folder'],
  EISDIR: ['is a folder, expected a file', 'pass the path of a file'],
  ENOSPC: ['no space left on the device', 'free disk space or write to another disk'],
  EDQUOT: ['disk quota exceeded', 'free disk space or write to another disk'],
  EROFS: ['the file system is read-only', 'write to a writable folder (e.g. --set out=...)'],
  EEXIST: ['already exists', 'remove it or use another path'],
  ELOOP: ['too many symbolic links (a link loop?)', 'fix the symbolic links on the path'],
  ENAMETOOLONG: ['the path is too long', 'use a shorter path'],
  EMFILE: ['too many open files', 'raise the limit (ulimit -n) or close other programs'],
  ENFILE: ['too many open files in the system', 'close other programs'],
  ENXIO: ['no such device (a FIFO with no writer?)', 'pass a regular file'],
  EAGAIN: ['resource temporarily unavailable', 'retry, or pass a regular file'],
  EIO: ['input/output error', 'check the disk'],
  EBUSY: ['the file is busy', 'close the program that holds it'],
};

/**
 * An operating-system error (EACCES, ENOTDIR, ENOSPC...) or an allocation failure as a HeedError naming the path
 * and the fix, or undefined for any other error. The CLI applies this to every error that is not already a
 * HeedError, so ordinary conditions of the machine are never reported as a bug.
 */
export function fromSystemError(e: unknown): HeedError | undefined {
  if (e instanceof HeedError) return e;
  const err = e as NodeJS.ErrnoException | undefined;
  if (err && typeof err.code === 'string' && err.code in OS_FIX) {
    const [what, fix] = OS_FIX[err.code];
    const path = err.path ?? (err as { dest?: string }).dest;
    return new HeedError(`${path ?? '(a file)'}: ${what} (${err.code}${err.syscall ? ` in ${err.syscall}` : ''})`, fix);
  }
  if (err instanceof RangeError && /allocation failed|Invalid (typed )?array length|Array buffer|memory|Maximum call stack/i.test(err.message)) {
    return new HeedError(`out of memory (${err.message})`, 'use a smaller model, batch_size, max_length or data file; heed holds tensors in a 4 GiB engine heap');
  }
  return undefined;
}

/** Edit distance: insertions, deletions, substitutions and swaps of two neighbours ("modle" → "model" is 1). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.length][b.length];
}

/** The closest candidate within a distance that scales with the word (or one that starts with it), if any. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  const w = word.toLowerCase();
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestD) (best = c), (bestD = d);
  }
  if (best !== undefined && bestD <= Math.max(1, Math.floor(Math.min(w.length, best.length) / 3))) return best;
  const pre = candidates.filter((c) => w.length >= 3 && c.toLowerCase().startsWith(w));
  return pre.length === 1 ? pre[0] : undefined;
}

/** " (did you mean X?)" or "". */
export const didYouMean = (word: string, candidates: readonly string[], show = (s: string) => s): string => {
  const c = closest(word, candidates);
  return c === undefined ? '' : ` (did you mean ${show(c)}?)`;
};

/**
 * A label as a file name: runs of anything but letters, digits, ".", "_" and "-" become one "-"
 * ("IT (output mask)" → "IT-output-mask"), so output files never need quoting in a shell.
 */
export function safeFileName(label: string): string {
  return label.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'unnamed';
}
