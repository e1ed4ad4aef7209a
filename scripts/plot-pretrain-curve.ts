/**
 * The pretraining curve of a `heed pretrain` folder (all phases: training.json and its nested `previous`) as a
 * standalone SVG: training loss, held-out loss per corpus, a mark where each phase (warm restart) begins.
 * x = tokens seen (the phases used different batch sizes).
 *   node --import tsx scripts/plot-pretrain-curve.ts [models/base-dolly] [docs/base-dolly-curve.svg]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { lineChart, PALETTE, type Mark, type Series } from '../src/report/svg.js';

interface Phase { corpus: string; curve: Array<{ step: number; tokens: number; loss: number | null; heldOut?: number }>; previous?: Phase }

const [dir = 'models/base-dolly', out = 'docs/base-dolly-curve.svg'] = process.argv.slice(2);
const phases: Phase[] = [];
for (let p: Phase | undefined = JSON.parse(readFileSync(join(dir, 'training.json'), 'utf8')); p; p = p.previous) phases.unshift(p);

// x = tokens seen, in millions (the phases used different batch sizes, so steps are not comparable)
const start: number[] = [];
phases.reduce((t, p, i) => ((start[i] = t), t + (p.curve.at(-1)?.tokens ?? 0)), 0);
const x = (i: number, tokens: number) => (start[i] + tokens) / 1e6;
const corpora = [...new Set(phases.map((p) => p.corpus))];
const series: Series[] = [
  { name: 'training loss', color: '#9ca3af', points: phases.flatMap((p, i) => p.curve.filter((c) => c.loss !== null && Number.isFinite(c.loss)).map((c) => [x(i, c.tokens), c.loss!] as [number, number])) },
  ...corpora.map((corpus, i) => ({
    name: `held-out loss (${basename(corpus)})`,
    color: PALETTE[i],
    dots: true,
    points: phases.flatMap((p, i) => (p.corpus === corpus ? p.curve.filter((c) => c.heldOut !== undefined).map((c) => [x(i, c.tokens), c.heldOut!] as [number, number]) : [])),
  })),
];
const marks: Mark[] = phases.slice(1).map((p, i) => ({ x: start[i + 1] / 1e6, label: `phase ${i + 2} (step ${p.curve[0].step})${p.corpus !== phases[i].corpus ? `: ${basename(p.corpus)}` : ''}` }));
writeFileSync(out, lineChart({ id: 'pretrain', title: `${basename(dir)}: pretraining loss (nats/token)`, xLabel: 'tokens seen (millions)', yLabel: 'loss', series, marks, width: 760, height: 320 }) + '\n');
console.log(`${out}: ${phases.length} phases, ${series.map((s) => `${s.name} ${s.points.length} points`).join(', ')}`);
