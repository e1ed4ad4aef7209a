import type { Command } from './main.js';
import { flags, hint, parse, num } from './args.js';
import { HeedError } from '../errors.js';

const usage = 'heed export torch <config.yaml> --out job/ [--set key=value]... [--model-path PATH] [--force] [--quiet]';

const options = flags({
  out: { type: 'string', short: 'o', arg: 'DIR', help: 'the job folder to write (required)' },
  set: { type: 'string', multiple: true, arg: 'key=value', help: 'override a config key (dotted for nested keys, YAML values)' },
  'model-path': { type: 'string', arg: 'PATH', default: 'the config\'s model', help: 'the model path train.py loads on the target machine' },
  force: { type: 'boolean', help: 'overwrite a job folder that exists' },
  quiet: { type: 'boolean', help: 'no progress lines' },
  'shard-rows': { type: 'string', arg: 'N', help: 'rows per prepared data shard' },
});

export const command: Command = {
  path: ['export', 'torch'],
  summary: 'a heed train config as a self-contained PyTorch job (data as heed prepares it, train.py, torchrun/Accelerate/TRL launchers)',
  usage,
  options,
  async run(argv) {
    const { values, positionals } = parse(argv, options, usage);
    if (positionals.length !== 1) throw new HeedError('missing config file', `usage: ${usage}`);
    if (!values.out) throw new HeedError('missing --out', `usage: ${usage}`);
    const { loadTrainConfig } = await import('../train/config.js');
    const { exportTorchJob } = await import('../export/torch/export.js');
    const cfg = loadTrainConfig(positionals[0], values.set ?? []);
    const log = values.quiet ? () => undefined : (s: string) => console.error(s);
    const { jobDir, job } = await exportTorchJob(cfg, { out: values.out, force: values.force, modelPath: values['model-path'], shardRows: num(values['shard-rows'], 'shard-rows', { int: true, min: 1 }), log });
    console.log(jobDir);
    if (!values.quiet) console.error(`${job.total_steps} steps in ${job.stages.length} stage(s); run: bash ${values.out.replace(/\/$/, '')}/launch.sh --nproc_per_node N   watch: ${hint(`watch ${values.out.replace(/\/$/, '')}/run`)}`);
    return 0;
  },
};
