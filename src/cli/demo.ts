import { join } from 'node:path';
import type { Command } from './main.js';
import { flags, parse } from './args.js';
import { nativeNote, startEngine, threadsOption } from './common.js';

const usage = 'heed demo [--out runs/demo] [--fast] [--model DIR] [--quiet]';

const options = flags({
  out: { type: 'string', short: 'o', arg: 'DIR', default: 'runs/demo', help: 'folder for the runs, report.html and summary.json' },
  fast: { type: 'boolean', help: 'the short version: 16 prompts, 28 steps at most' },
  model: { type: 'string', arg: 'DIR', default: 'models/base-dolly', help: 'the base model to tune' },
  quiet: { type: 'boolean', help: 'no progress lines' },
  ...threadsOption,
});

export const command: Command = {
  path: ['demo'],
  summary: 'the embedded default: a base model becomes an instruction follower, measured (IFS, ObjecQA, rules, IT/IM/response-only), with an HTML report',
  usage,
  options,
  async run(argv) {
    const { values } = parse(argv, options, usage, false);
    const engine = await startEngine('wasm', values.threads);
    const { runDemo, formatDemoTable } = await import('../demo/demo.js');
    const out = values.out ?? 'runs/demo';
    const s = (await runDemo({ out, fast: values.fast, model: values.model, quiet: values.quiet })) as { table: import('../report/html.js').Table; early_stopping: { triggered: boolean; step: number | null; reason: string | null }; seconds: number };
    console.log('\n' + formatDemoTable(s.table));
    console.log(`\nearly stopping: ${s.early_stopping.triggered ? `triggered at step ${s.early_stopping.step}` : 'not triggered'}`);
    console.log(`report: ${join(out, 'report.html')}   numbers: ${join(out, 'summary.json')}   time: ${s.seconds.toFixed(0)} s`);
    if (!values.quiet) nativeNote(engine);
    return 0;
  },
};
