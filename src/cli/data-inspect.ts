import { safeText } from '../errors.js';
import type { Command } from './main.js';
import { flags, num, parse, useColor } from './args.js';
import { dataOptions, dataUsageTail, setupData } from './data-stats.js';
import { newReport, streamDataset } from '../data/dataset.js';
import { renderRow, rowJson } from '../data/inspect.js';

const usage = `heed data inspect --data FILE --model DIR --mask M [--n 3] [--ids a,b] [--no-color] ${dataUsageTail}`;

const options = flags({
  ...dataOptions,
  n: { type: 'string', arg: 'N', default: '3', help: 'how many rows to show' },
  ids: { type: 'string', arg: 'a,b', help: 'show these row ids instead of the first --n rows' },
  'no-color': { type: 'boolean', help: 'loss-bearing text in [[…]] instead of colours (colour is used only on a terminal, never with NO_COLOR)' },
});

export const command: Command = {
  path: ['data', 'inspect'],
  summary: 'print rows with their loss-bearing tokens highlighted (colours; brackets with NO_COLOR)',
  usage,
  options,
  async run(argv) {
    const { values } = parse(argv, options, usage, false);
    const { pipeline, opts, data, model } = setupData(values, usage);
    const n = num(values.n, 'n', { int: true, min: 1 }) ?? 3;
    const want = values.ids ? new Set(String(values.ids).split(',').map((s) => s.trim()).filter(Boolean)) : undefined;
    const color = !values['no-color'] && !values.json && useColor();
    const report = newReport(data, opts.onBadRow);
    const rows: unknown[] = [];
    const found = new Set<string>();
    let shown = 0;
    const out: string[] = [];
    for await (const it of streamDataset(data, pipeline, opts, report)) {
      const id = it.prepared.example.id;
      if (want ? !want.has(id) : shown >= n) continue;
      const ex = it.example ?? it.prepared.example;
      const note = it.status === 'dropped' ? `dropped (longer than --max-length ${opts.maxLength}); shown untruncated` : it.status === 'vanished' ? 'no loss-bearing token left: excluded from training' : undefined;
      if (values.json) rows.push(rowJson(ex, pipeline.enc, note));
      else out.push(renderRow(ex, pipeline.enc, { color, note }));
      found.add(id);
      shown++;
      if (want ? found.size === want.size : shown >= n) break;
    }
    // stopping early skips the end-of-stream check: bad rows seen so far still fail the run
    report.bad.check(report.load.lastLine);
    const missing = want ? [...want].filter((x) => !found.has(x)) : [];
    const head = `data ${data} · model ${model} · template ${pipeline.template.name} · mask ${pipeline.maskName}${report.bad.count ? ` · ${report.bad.count} bad rows skipped so far` : ''}`;
    if (values.json) {
      console.log(JSON.stringify({ data, model, template: pipeline.template.name, mask: pipeline.maskName, badRowsSkipped: report.bad.count, missingIds: missing, rows }, null, 2));
    } else {
      console.log(safeText(head) + (color ? '' : '   (loss-bearing text in [[…]], partial weight [[~w:…]])'));
      console.log(out.join('\n'));
      if (missing.length) console.error(safeText(`not found: ${missing.join(', ')}`));
    }
    return missing.length && !found.size ? 2 : 0;
  },
};
