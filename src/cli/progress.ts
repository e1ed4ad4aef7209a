/** A progress line on stderr with rate and ETA: redrawn in place on a TTY, a line every few seconds otherwise. */
export class Progress {
  private readonly t0 = performance.now();
  private lastPrint = 0;
  private readonly tty = !!process.stderr.isTTY;
  constructor(
    private readonly label: string,
    private total: number,
    private readonly quiet = false,
  ) {}

  setTotal(n: number): void {
    this.total = n;
  }

  update(done: number, fields: Record<string, string | number> = {}, force = false): void {
    if (this.quiet) return;
    const now = performance.now();
    if (!force && now - this.lastPrint < (this.tty ? 200 : 5000)) return;
    this.lastPrint = now;
    const el = (now - this.t0) / 1000;
    const eta = done > 0 ? (el / done) * (this.total - done) : NaN;
    const w = 24;
    const frac = this.total > 0 ? Math.min(1, done / this.total) : 0;
    const bar = '█'.repeat(Math.round(frac * w)).padEnd(w, '·');
    const extra = Object.entries(fields).map(([k, v]) => `${k} ${typeof v === 'number' ? fmt(v) : v}`).join('  ');
    const line = `${this.label} ${bar} ${done}/${this.total}  ${extra}  elapsed ${clock(el)}  ETA ${Number.isFinite(eta) ? clock(eta) : '?'}`;
    if (this.tty) process.stderr.write(`\r\x1b[2K${line}`);
    else process.stderr.write(line + '\n');
  }

  done(): void {
    if (!this.quiet && this.tty) process.stderr.write('\n');
  }
}

const fmt = (v: number) => (Math.abs(v) >= 1000 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(3) : v.toPrecision(3));
export function clock(s: number): string {
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  return h > 0 ? `${h}h${String(m % 60).padStart(2, '0')}m` : m > 0 ? `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s` : `${s.toFixed(1)}s`;
}
