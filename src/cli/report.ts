import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from './main.js';
import { flags, parse } from './args.js';
import { HeedError } from '../errors.js';

const usage = 'heed report <run-dir | model-dir | ifs/objecqa result file>... [--out report.html]';

const options = flags({ out: { type: 'string', short: 'o', arg: 'FILE', default: '<first run folder>/report.html, else ./report.html', help: 'the HTML file to write' } });

export const command: Command = {
  path: ['report'],
  summary: 'a self-contained HTML report (curves, IFS tables, samples) from run folders, evaluated model folders and heed ifs/objecqa result files, in one table',
  usage,
  options,
  async run(argv) {
    const { values, positionals } = parse(argv, options, usage);
    if (positionals.length === 0) throw new HeedError('missing run folder', `usage: ${usage}`);
    const { statSync } = await import('node:fs');
    const { isModelFolder } = await import('../report/inputs.js');
    const isDir = (p: string) => {
      try {
        return statSync(p).isDirectory();
      } catch {
        return false;
      }
    };
    // never write into a model folder (e.g. the shipped models/): the first run folder, else the current folder
    const firstDir = positionals.find((p) => isDir(p) && !isModelFolder(p));
    const { renderReport } = await import('../report/html.js');
    const html = renderReport(positionals);
    const out = values.out ?? (firstDir ? join(firstDir, 'report.html') : 'report.html');
    writeFileSync(out, html);
    console.log(out);
    return 0;
  },
};
