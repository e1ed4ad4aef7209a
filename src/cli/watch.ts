import type { Command } from './main.js';
import { flags, parse, num } from './args.js';
import { startEngine, threadsOption } from './common.js';
import { HeedError } from '../errors.js';

const usage = 'heed watch <job-run-dir> [--poll S] [--once] [--until-end] [--timeout S] [--threads N]';

const options = flags({
  poll: { type: 'string', arg: 'S', help: 'seconds between looks at the run folder' },
  once: { type: 'boolean', help: 'evaluate the checkpoints there now, then exit' },
  'until-end': { type: 'boolean', help: 'keep evaluating after an early stop until the job ends' },
  timeout: { type: 'string', arg: 'S', default: 'none', help: 'give up after S seconds without a new checkpoint' },
  ...threadsOption,
});

export const command: Command = {
  path: ['watch'],
  summary: 'follow a PyTorch job run folder (heed export torch): evaluate each checkpoint (IFS, ObjecQA, held-out loss), write STOP when IFS early stopping fires',
  usage,
  options,
  async run(argv) {
    const { values, positionals } = parse(argv, options, usage);
    if (positionals.length !== 1) throw new HeedError('missing run folder', `usage: ${usage}`);
    const { watchRun, readRunJob } = await import('../export/torch/watch.js');
    readRunJob(positionals[0]); // a wrong folder or another heed version fails before the engine starts
    await startEngine('wasm', values.threads);
    const s = await watchRun(positionals[0], { poll: num(values.poll, 'poll', { min: 0.05 }), once: values.once, untilEnd: values['until-end'], timeout: num(values.timeout, 'timeout', { min: 0 }) });
    console.log(`evaluated: ${s.evaluated.length ? s.evaluated.map((x) => `step-${x}`).join(', ') : 'none'}`);
    if (s.skipped.length) console.log(`skipped: ${s.skipped.map((x) => `step-${x.step} (${x.why})`).join('; ')}`);
    if (s.best) console.log(`best IFS: ${s.best.ifs.toFixed(4)} at step ${s.best.step}`);
    if (s.stopped) console.log(`early stop at step ${s.stopped.step}: ${s.stopped.reason} (wrote ${positionals[0]}/STOP)`);
    else console.log(s.finished ? 'the run finished without an early stop' : 'the run has not finished');
    return 0;
  },
};
