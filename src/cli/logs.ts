import type { Command } from './main.js';
import { flags, parse, num } from './args.js';
import { HeedError } from '../errors.js';

const usage = 'heed logs export <run-dir> [--tensorboard] [--csv] [--out DIR] [--follow]';

const options = flags({
  tensorboard: { type: 'boolean', default: 'off', help: 'write TensorBoard event files (tensorboard --logdir <run-dir>)' },
  csv: { type: 'boolean', default: 'off', help: 'write metrics.csv (one header, a column per metric)' },
  out: { type: 'string', short: 'o', arg: 'DIR', default: 'the run folder', help: 'where the files go' },
  follow: { type: 'boolean', default: 'off', help: 'keep the files current while the run trains; stops when summary.json appears' },
  'poll-ms': { type: 'string', arg: 'MS', default: '2000', help: '--follow: how often metrics.jsonl is read' },
});

export const command: Command = {
  path: ['logs', 'export'],
  summary: "a run's metrics.jsonl as TensorBoard event files and/or metrics.csv (finished or live runs; --follow keeps them current)",
  usage,
  options,
  async run(argv) {
    const { values, positionals } = parse(argv, options, usage);
    if (positionals.length !== 1) throw new HeedError(positionals.length ? `one run folder at a time, got ${positionals.length}` : 'missing the run folder', `usage: ${usage}`);
    const kinds = [...(values.tensorboard ? ['tensorboard' as const] : []), ...(values.csv ? ['csv' as const] : [])];
    if (!kinds.length) throw new HeedError('nothing to export', 'pass --tensorboard, --csv or both');
    const { existsSync, mkdirSync } = await import('node:fs');
    if (values.out && !existsSync(values.out)) mkdirSync(values.out, { recursive: true });
    const { exportRunLogs } = await import('../train/loggers/index.js');
    const ac = new AbortController();
    const stop = () => ac.abort();
    process.once('SIGINT', stop);
    if (values.follow) console.error(`[following ${positionals[0]}/metrics.jsonl until the run writes summary.json (Ctrl-C stops)]`);
    const r = await exportRunLogs(positionals[0], kinds, { outDir: values.out, follow: values.follow, pollMs: num(values['poll-ms'], 'poll-ms', { int: true, min: 10 }), signal: ac.signal, onRecords: values.follow ? (n) => console.error(`[${n} records]`) : undefined });
    process.off('SIGINT', stop);
    console.log(`${r.records} metrics records → ${r.files.join(', ')}`);
    if (kinds.includes('tensorboard')) console.log(`view: tensorboard --logdir ${values.out ?? positionals[0]}`);
    return 0;
  },
};
