/** Minimal SVG line charts (no dependencies, no network): axes with ticks, series, vertical marks, legend. */

export interface Series {
  name: string;
  points: Array<[number, number]>;
  color?: string;
  dashed?: boolean;
  /** draw a dot per point (for sparse series such as eval points) */
  dots?: boolean;
}

export interface Mark {
  x: number;
  label: string;
  color?: string;
}

export interface ChartSpec {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  marks?: Mark[];
  yMin?: number;
  yMax?: number;
  width?: number;
  height?: number;
}

export const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#4d7c0f', '#be185d'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

/** Tick labels with as many decimals as the tick spacing needs (a 5.16–5.22 axis must not read 5.2, 5.2, 5.2). */
const fmtTicks = (ticks: number[]): string[] => {
  const step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : 1;
  const decimals = Math.min(6, Math.max(0, -Math.floor(Math.log10(step) + 1e-9)));
  return ticks.map((v) => (Number.isInteger(v) ? String(v) : v.toFixed(decimals)));
};

export function lineChart(c: ChartSpec): string {
  const W = c.width ?? 760;
  const H = c.height ?? 300;
  const m = { l: 56, r: 16, t: 34, b: 44 };
  const all = c.series.flatMap((s) => s.points);
  const legendRows = Math.ceil(c.series.length / 3);
  const h = H + legendRows * 18;
  if (all.length === 0) {
    return `<svg class="chart empty" data-chart="${esc(c.id)}" data-series="0" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" xmlns="http://www.w3.org/2000/svg"><text x="${W / 2}" y="${H / 2}" text-anchor="middle" fill="#888">${esc(c.title)}: no data</text></svg>`;
  }
  let x0 = Math.min(...all.map((p) => p[0]));
  let x1 = Math.max(...all.map((p) => p[0]), ...(c.marks ?? []).map((k) => k.x));
  if (x1 === x0) x1 = x0 + 1;
  let y0 = c.yMin ?? Math.min(...all.map((p) => p[1]));
  let y1 = c.yMax ?? Math.max(...all.map((p) => p[1]));
  if (y1 === y0) (y0 -= 0.5), (y1 += 0.5);
  if (c.yMin === undefined || c.yMax === undefined) {
    const pad = (y1 - y0) * 0.06;
    if (c.yMin === undefined) y0 -= pad;
    if (c.yMax === undefined) y1 += pad;
  }
  x0 = Math.min(x0, 0);
  const X = (x: number) => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const Y = (y: number) => m.t + (1 - (y - y0) / (y1 - y0)) * (H - m.t - m.b);
  const parts: string[] = [];
  parts.push(`<text x="${m.l}" y="20" font-size="14" font-weight="600">${esc(c.title)}</text>`);
  const yt = niceTicks(y0, y1);
  fmtTicks(yt).forEach((label, i) => {
    const t = yt[i];
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${Y(t).toFixed(1)}" y2="${Y(t).toFixed(1)}" stroke="#e5e7eb"/>`);
    parts.push(`<text x="${m.l - 6}" y="${(Y(t) + 4).toFixed(1)}" font-size="11" text-anchor="end" fill="#555">${label}</text>`);
  });
  const xt = niceTicks(x0, x1, 8);
  const xl = fmtTicks(xt);
  for (const [i, t] of xt.entries()) {
    parts.push(`<line x1="${X(t).toFixed(1)}" x2="${X(t).toFixed(1)}" y1="${H - m.b}" y2="${H - m.b + 4}" stroke="#888"/>`);
    parts.push(`<text x="${X(t).toFixed(1)}" y="${H - m.b + 16}" font-size="11" text-anchor="middle" fill="#555">${xl[i]}</text>`);
  }
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#9ca3af"/>`);
  parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 8}" font-size="12" text-anchor="middle">${esc(c.xLabel)}</text>`);
  parts.push(`<text transform="translate(14 ${(m.t + H - m.b) / 2}) rotate(-90)" font-size="12" text-anchor="middle">${esc(c.yLabel)}</text>`);
  for (const k of c.marks ?? []) {
    const x = X(k.x).toFixed(1);
    const right = X(k.x) > m.l + 0.75 * (W - m.l - m.r);
    const ty = m.t + 11 + 12 * ((c.marks ?? []).indexOf(k) % 3);
    parts.push(`<g class="mark"><line x1="${x}" x2="${x}" y1="${m.t}" y2="${H - m.b}" stroke="${k.color ?? '#6b7280'}" stroke-dasharray="4 3"/><text x="${right ? +x - 3 : +x + 3}" y="${ty}" font-size="10" text-anchor="${right ? 'end' : 'start'}" fill="${k.color ?? '#374151'}">${esc(k.label)}</text></g>`);
  }
  c.series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length];
    const pts = [...s.points].sort((a, b) => a[0] - b[0]);
    const d = pts.map((p, j) => `${j ? 'L' : 'M'}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join('');
    parts.push(`<path class="series" data-name="${esc(s.name)}" d="${d}" fill="none" stroke="${color}" stroke-width="1.8"${s.dashed ? ' stroke-dasharray="6 3"' : ''}/>`);
    if (s.dots || pts.length < 30) for (const p of pts) parts.push(`<circle cx="${X(p[0]).toFixed(1)}" cy="${Y(p[1]).toFixed(1)}" r="2.6" fill="${color}"><title>${esc(s.name)}: step ${p[0]}, ${p[1].toFixed(4)}</title></circle>`);
    const lx = m.l + (i % 3) * ((W - m.l) / 3);
    const ly = H + Math.floor(i / 3) * 18 + 4;
    parts.push(`<line x1="${lx}" x2="${lx + 18}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2.5"${s.dashed ? ' stroke-dasharray="6 3"' : ''}/><text x="${lx + 24}" y="${ly + 4}" font-size="11">${esc(s.name)}</text>`);
  });
  return `<svg class="chart" data-chart="${esc(c.id)}" data-series="${c.series.length}" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif">${parts.join('')}</svg>`;
}

export { esc };
