/**
 * A user-facing error: one line that names the file/field at fault and the fix.
 * The CLI prints `error: <message> (fix: <fix>)` and exits with code 2; the stack is shown only with --debug.
 */
export class HeedError extends Error {
  readonly fix: string | undefined;
  constructor(message: string, fix?: string) {
    super(message);
    this.name = 'HeedError';
    this.fix = fix;
  }
  oneLine(): string {
    return this.fix ? `${this.message} (fix: ${this.fix})` : this.message;
  }
}

export function fail(message: string, fix?: string): never {
  throw new HeedError(message, fix);
}
