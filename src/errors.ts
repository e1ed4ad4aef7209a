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

export function fail(message: string, fix?: string): never {
  throw new HeedError(message, fix);
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
