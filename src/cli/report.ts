import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from './main.js';
import { parse } from './args.js';
import { HeedError } from '../errors.js';

const usage = 'heed report <run-dir>... [--out report.html]';

export const command: Command = {
  path: ['report'],
  summary: 'a self-contained HTML report (curves, IFS tables, samples) from run folders; several runs are overlaid',
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, { out: { type: 'string', short: 'o' } }, usage);
    if (positionals.length === 0) throw new HeedError('missing run folder', `usage: ${usage}`);
    const { renderReport } = await import('../report/html.js');
    const html = renderReport(positionals);
    const out = values.out ?? join(positionals[0], 'report.html');
    writeFileSync(out, html);
    console.log(out);
    return 0;
  },
};
