/**
 * `heed data inspect`: rows with their loss-bearing tokens highlighted.
 * Colours (ANSI): weight 1 bold green, 0 < weight < 1 yellow, weight 0 dim. Without colour
 * (NO_COLOR set, or --no-color): weight-1 text in [[…]], partial weight in [[~0.25:…]], weight 0 plain.
 * Text is decoded run by run (a run = consecutive tokens of equal weight), each run exactly the text
 * its tokens add, so the printed row is exactly the rendered training text.
 */
import { safeText } from '../errors.js';
import type { SegmentEncoder } from './encode.js';
import { KIND_NAMES, type Example } from './types.js';

export interface Run {
  text: string;
  weight: number;
  /** token range [start, end) */
  start: number;
  end: number;
}

export function weightRuns(ex: Example, enc: SegmentEncoder): Run[] {
  const runs: Run[] = [];
  const n = ex.ids.length;
  let s = 0;
  for (let t = 1; t <= n; t++) {
    if (t === n || ex.weights[t] !== ex.weights[s]) {
      runs.push({ text: enc.decodeSpan(ex.ids, s, t), weight: ex.weights[s], start: s, end: t });
      s = t;
    }
  }
  return runs;
}

export function rowCounts(ex: Example) {
  const byKind: Record<string, number> = Object.fromEntries(KIND_NAMES.map((k) => [k, 0]));
  let lossTokens = 0;
  let lossWeight = 0;
  for (let t = 0; t < ex.ids.length; t++) {
    byKind[KIND_NAMES[ex.kinds[t]]]++;
    if (ex.weights[t] > 0) {
      lossTokens++;
      lossWeight += ex.weights[t];
    }
  }
  return { tokens: ex.ids.length, lossTokens, lossWeight, byKind, truncated: !!ex.truncated };
}

const fmtW = (w: number) => Number(w.toFixed(4)).toString();

export function highlight(runs: Run[], color: boolean): string {
  return runs
    .map((r0) => {
      // control characters of the data are shown escaped (\u001b...), never sent to the terminal raw
      const r = { ...r0, text: safeText(r0.text, { newlines: true }) };
      if (r.text === '') return '';
      if (color) {
        const code = r.weight >= 1 ? '1;32' : r.weight > 0 ? '33' : '2';
        // re-open the colour after each newline so pagers that reset per line keep it
        return `\x1b[${code}m${r.text.replace(/\n/g, `\x1b[0m\n\x1b[${code}m`)}\x1b[0m`;
      }
      if (r.weight >= 1) return `[[${r.text}]]`;
      if (r.weight > 0) return `[[~${fmtW(r.weight)}:${r.text}]]`;
      return r.text;
    })
    .join('');
}

export function renderRow(ex: Example, enc: SegmentEncoder, opts: { color: boolean; note?: string }): string {
  const c = rowCounts(ex);
  const k = c.byKind;
  const head =
    `── row ${safeText(ex.id)} (line ${ex.line}) · ${c.tokens} tokens · ${c.lossTokens} loss-bearing (Σ weight ${Number(c.lossWeight.toFixed(2))})` +
    ` · user ${k.user} · assistant ${k.assistant} · system ${k.system} · template ${k.marker} · end ${k.end}` +
    (c.truncated ? ' · truncated' : '') +
    (opts.note ? ` · ${safeText(opts.note)}` : '');
  return `${opts.color ? `\x1b[1m${head}\x1b[0m` : head}\n${highlight(weightRuns(ex, enc), opts.color)}\n`;
}

export function rowJson(ex: Example, enc: SegmentEncoder, note?: string) {
  return {
    id: ex.id,
    line: ex.line,
    ...rowCounts(ex),
    note: note ?? null,
    runs: weightRuns(ex, enc).map((r) => ({ weight: r.weight, start: r.start, end: r.end, text: r.text })),
    ids: Array.from(ex.ids),
    weights: Array.from(ex.weights),
  };
}
