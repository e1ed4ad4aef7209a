import type { Command } from './main.js';
import { flags, hint, parse } from './args.js';
import { nativeNote, startEngine, threadsOption } from './common.js';
import { HeedError } from '../errors.js';

const usage = 'heed train <config.yaml> [--set key=value]... [--strict] [--quiet]   |   heed train --resume runs/<name> [--set steps=N] [--quiet]';

/** --set with --resume: only a larger `steps` (extend the run) and early_stopping.ifs.patience. */
function resumeSets(sets: string[]): { steps?: number; patience?: number } {
  const out: { steps?: number; patience?: number } = {};
  for (const kv of sets) {
    const m = /^([^=]+)=(.*)$/.exec(kv);
    const key = m?.[1].trim();
    const n = Number(m?.[2]);
    if (key !== 'steps' && key !== 'early_stopping.ifs.patience') throw new HeedError(`--resume --set ${kv}: a resumed run keeps its config.yaml; only steps=N (extend the run) and early_stopping.ifs.patience=N may change`, 'start a new run to change anything else (heed train <config> --set ... --set name=...)');
    if (!Number.isSafeInteger(n) || n < 1) throw new HeedError(`--resume --set ${kv}: ${key} must be a positive whole number`, `e.g. --set ${key}=${key === 'steps' ? 200 : 3}`);
    if (key === 'steps') out.steps = n;
    else out.patience = n;
  }
  return out;
}

const options = flags({
  set: { type: 'string', multiple: true, arg: 'key=value', help: 'override a config key (dotted for nested keys, YAML values), e.g. --set lr=1e-4' },
  resume: { type: 'string', arg: 'RUN_DIR', help: 'continue a run from its last complete checkpoint (exactly)' },
  quiet: { type: 'boolean', help: 'no progress lines' },
  strict: { type: 'boolean', help: 'fail when any row is dropped (max_drop_share 0)' },
  ...threadsOption,
});

export const command: Command = {
  path: ['train'],
  summary: 'supervised fine-tuning (full or LoRA) from a YAML config; --resume continues a run exactly',
  usage,
  options,
  async run(argv) {
    const { values, positionals } = parse(argv, options, usage);
    const { loadTrainConfig } = await import('../train/config.js');
    const { train } = await import('../train/trainer.js');
    let input;
    if (values.resume) {
      if (positionals.length) throw new HeedError('--resume takes the run folder; a config file is not needed', `usage: ${usage}`);
      if (values.strict) throw new HeedError('--resume continues a run with its own config.yaml; --strict applies to a new run', `usage: ${usage}`);
      input = { resume: values.resume, ...resumeSets(values.set ?? []) };
    } else {
      if (positionals.length !== 1) throw new HeedError('missing config file', `usage: ${usage}`);
      // --strict: fail when any row is dropped (an explicit --set max_drop_share=... still wins)
      input = loadTrainConfig(positionals[0], [...(values.strict ? ['max_drop_share=0'] : []), ...(values.set ?? [])]);
    }
    const engine = await startEngine('device' in input ? input.device : 'wasm', values.threads);
    const interrupt = { stop: false };
    const onSigint = () => {
      if (interrupt.stop) process.exit(130);
      interrupt.stop = true;
      console.error('\ninterrupt: saving a checkpoint after this step (Ctrl-C again to quit without saving)');
    };
    process.on('SIGINT', onSigint);
    const callbacks: import('../train/callbacks.js').TrainerCallback[] = [];
    const { trainProgress } = await import('./progress.js');
    const s = await train(input, { quiet: values.quiet, interrupt, callbacks, onEvent: trainProgress({ quiet: values.quiet }) });
    process.off('SIGINT', onSigint);
    const fmt = (x: unknown) => (typeof x === 'number' ? x.toFixed(4) : String(x));
    console.log(`run: ${s.run_dir}`);
    console.log(`steps: ${s.steps}   tokens: ${s.tokens}   time: ${s.seconds.toFixed(1)} s   (${s.tokens_per_s.toFixed(0)} tok/s)`);
    if (s.session.from_step > 0) console.log(`this session: steps ${s.session.from_step + 1}–${s.steps} (${s.session.steps})   tokens: ${s.session.tokens}   time: ${s.session.seconds.toFixed(1)} s   (${s.session.tokens_per_s.toFixed(0)} tok/s)`);
    const d = s.data;
    console.log(`data: ${d.rows_read} rows read, ${d.dropped} dropped (${(100 * d.drop_share).toFixed(1)} %; by file and reason in ${s.run_dir}/summary.json)`);
    console.log(`final: ${Object.entries(s.final).map(([k, v]) => `${k} ${fmt(v)}`).join('   ')}`);
    if (s.best) console.log(`best ${s.best.metric}: ${fmt(s.best.value)} at step ${s.best.step} (${s.run_dir}/${s.best.checkpoint})`);
    if (s.stopped_early) console.log(`stopped early at step ${s.stopped_early.step}: ${s.stopped_early.reason}`);
    if (!values.quiet) nativeNote(engine);
    if (s.interrupted) {
      console.log(`interrupted: checkpoint ${s.last_checkpoint}; continue with: ${hint(`train --resume ${s.run_dir}`)}`);
      return 130;
    }
    console.log(`checkpoint: ${s.last_checkpoint}`);
    if (s.exports?.final) console.log(`model: ${s.exports.final}${s.exports.best ? ` (best: ${s.exports.best})` : ''}; try: ${hint(`generate --model ${s.exports.final} --chat --prompt "..."`)}`);
    return 0;
  },
};
