import { join } from 'node:path';
import type { Command } from './main.js';
import { parse } from './args.js';
import { startEngine } from './common.js';

const usage = 'heed demo [--out runs/demo] [--fast] [--model DIR] [--quiet]';

export const command: Command = {
  path: ['demo'],
  summary: 'the embedded default: a base model becomes an instruction follower, measured (IFS, ObjecQA, rules, IT/IM/response-only), with an HTML report',
  usage,
  async run(argv) {
    const { values } = parse(argv, { out: { type: 'string', short: 'o' }, fast: { type: 'boolean' }, model: { type: 'string' }, quiet: { type: 'boolean' }, threads: { type: 'string' } }, usage, false);
    await startEngine('wasm', values.threads);
    const { runDemo, formatDemoTable } = await import('../demo/demo.js');
    const out = values.out ?? 'runs/demo';
    const s = (await runDemo({ out, fast: values.fast, model: values.model, quiet: values.quiet })) as { table: import('../report/html.js').Table; early_stopping: { triggered: boolean; step: number | null; reason: string | null }; seconds: number };
    console.log('\n' + formatDemoTable(s.table));
    console.log(`\nearly stopping: ${s.early_stopping.triggered ? `triggered at step ${s.early_stopping.step}` : 'not triggered'}`);
    console.log(`report: ${join(out, 'report.html')}   numbers: ${join(out, 'summary.json')}   time: ${s.seconds.toFixed(0)} s`);
    return 0;
  },
};
