import type { Command } from './main.js';
import { parse, num } from './args.js';
import { HeedError } from '../errors.js';

const usage = 'heed export torch <config.yaml> --out job/ [--set key=value]... [--model-path PATH] [--force] [--quiet]';

export const command: Command = {
  path: ['export', 'torch'],
  summary: 'a heed train config as a self-contained PyTorch job (data as heed prepares it, train.py, torchrun/Accelerate/TRL launchers)',
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, { out: { type: 'string', short: 'o' }, set: { type: 'string', multiple: true }, 'model-path': { type: 'string' }, force: { type: 'boolean' }, quiet: { type: 'boolean' }, 'shard-rows': { type: 'string' } }, usage);
    if (positionals.length !== 1) throw new HeedError('missing config file', `usage: ${usage}`);
    if (!values.out) throw new HeedError('missing --out', `usage: ${usage}`);
    const { loadTrainConfig } = await import('../train/config.js');
    const { exportTorchJob } = await import('../export/torch/export.js');
    const cfg = loadTrainConfig(positionals[0], values.set ?? []);
    const log = values.quiet ? () => undefined : (s: string) => console.error(s);
    const { jobDir, job } = await exportTorchJob(cfg, { out: values.out, force: values.force, modelPath: values['model-path'], shardRows: num(values['shard-rows'], 'shard-rows', { int: true, min: 1 }), log });
    console.log(jobDir);
    if (!values.quiet) console.error(`${job.total_steps} steps in ${job.stages.length} stage(s); run: bash ${values.out.replace(/\/$/, '')}/launch.sh --nproc_per_node N   watch: heed watch ${values.out.replace(/\/$/, '')}/run`);
    return 0;
  },
};
