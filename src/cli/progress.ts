import type { TrainEvent, TrainListener } from '../train/events.js';

/** Where progress is drawn: stderr, or a stand-in (tests). */
export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
}

/** A progress line on stderr with rate and ETA: redrawn in place on a TTY, a line every few seconds otherwise. */
export class Progress {
  private readonly t0 = performance.now();
  private lastPrint = 0;
  private readonly tty: boolean;
  constructor(
    private readonly label: string,
    private total: number,
    private readonly quiet = false,
    private readonly out: ProgressStream = process.stderr,
  ) {
    this.tty = !!out.isTTY;
  }

  setTotal(n: number): void {
    this.total = n;
  }

  update(done: number, fields: Record<string, string | number> = {}, force = false): void {
    const el = (performance.now() - this.t0) / 1000;
    this.show(done, fields, force, el, done > 0 ? (el / done) * (this.total - done) : NaN);
  }

  /** Like update, with the elapsed time and ETA given by the caller (e.g. a resumed run's own speed). */
  show(done: number, fields: Record<string, string | number>, force: boolean, el: number, eta: number): void {
    if (this.quiet) return;
    const now = performance.now();
    if (!force && now - this.lastPrint < (this.tty ? 200 : 5000)) return;
    this.lastPrint = now;
    const w = 24;
    const frac = this.total > 0 ? Math.min(1, done / this.total) : 0;
    const bar = '█'.repeat(Math.round(frac * w)).padEnd(w, '·');
    const extra = Object.entries(fields).map(([k, v]) => `${k} ${typeof v === 'number' ? fmt(v) : v}`).join('  ');
    const line = `${this.label} ${bar} ${done}/${this.total}  ${extra}  elapsed ${clock(el)}  ETA ${Number.isFinite(eta) ? clock(eta) : '?'}`;
    if (this.tty) this.out.write(`\r\x1b[2K${line}`);
    else this.out.write(line + '\n');
  }

  done(): void {
    if (!this.quiet && this.tty && this.lastPrint > 0) this.out.write('\n');
    this.lastPrint = 0;
  }
}

const fmt = (v: number) => (Math.abs(v) >= 1000 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(3) : v.toPrecision(3));
export function clock(s: number): string {
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  return h > 0 ? `${h}h${String(m % 60).padStart(2, '0')}m` : m > 0 ? `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s` : `${s.toFixed(1)}s`;
}

/**
 * The progress of `heed train` (and the demo's training runs) drawn from the trainer's events: one line with
 * step, loss, the latest eval loss and IFS, tokens/s and an ETA of the steps left at this session's speed (a
 * resumed run counts only its remaining steps); each evaluation inside a callback (IFS responses) gets its own
 * line with n/N and ETA; early stopping is announced with the rule that fired.
 */
export function trainProgress(o: { quiet?: boolean; label?: string; stream?: ProgressStream } = {}): TrainListener {
  const out = o.stream ?? process.stderr;
  const write = (l: string) => out.write(l + '\n');
  let bar: Progress | undefined;
  let evalBar: Progress | undefined;
  let evalLoss: number | undefined;
  let pendingStop: string | undefined;
  let ifs: { value: number; step: number } | undefined;
  return (e: TrainEvent) => {
    if (o.quiet) return;
    switch (e.type) {
      case 'start':
        bar = new Progress(o.label ?? 'train', e.totalSteps, false, out);
        if (e.resumed && e.startStep > 0) write(`resumed at step ${e.startStep} of ${e.totalSteps}: ${e.totalSteps - e.startStep} steps left (earlier sessions: ${clock(e.priorSeconds)}, ${e.priorTokens} tokens)`);
        return;
      case 'step': {
        if (e.evalLoss !== undefined) evalLoss = e.evalLoss;
        if (e.ifs) ifs = e.ifs;
        const perStep = e.sessionSteps > 0 ? e.sessionSeconds / e.sessionSteps : NaN;
        const fields: Record<string, string | number> = { loss: e.loss, ...(evalLoss !== undefined ? { eval: evalLoss } : {}), ...(ifs ? { ifs: `${ifs.value.toFixed(2)}@${ifs.step}` } : {}), 'tok/s': Math.round(e.tokensPerS).toString() };
        bar?.show(e.step, fields, e.stageEnd || e.evalLoss !== undefined || pendingStop !== undefined, e.sessionSeconds, perStep * (e.totalSteps - e.step));
        if (pendingStop !== undefined) {
          bar?.done();
          write(pendingStop);
          pendingStop = undefined;
        }
        return;
      }
      case 'eval-start':
        bar?.done();
        evalBar?.done();
        evalBar = new Progress(`  ${e.name} ${e.unit} (step ${e.step})`, e.total, false, out);
        return;
      case 'eval-progress':
        evalBar?.update(e.done, {}, e.done === e.total);
        return;
      case 'eval-end': {
        evalBar?.done();
        evalBar = undefined;
        const ms = Object.entries(e.metrics).map(([k, v]) => `${k} ${v.toFixed(3)}`).join('  ');
        write(`  ${e.name} at step ${e.step}: ${ms || 'done'} (${clock(e.seconds)})`);
        return;
      }
      case 'early-stop':
        // said after the step's own line (the evaluation that fired runs before it)
        pendingStop = `early stopping at step ${e.step} (${e.callback}): ${e.reason}`;
        return;
      case 'checkpoint':
        return;
      case 'end':
        bar?.done();
        return;
    }
  };
}
