import { HeedError, fromSystemError, safeText } from '../errors.js';
import { closest, commandHelp, heedName, type Flags } from './args.js';

export interface Command {
  /** words that select the command, e.g. ['model', 'info'] */
  path: string[];
  summary: string;
  usage: string;
  /** every flag the command takes, declared once: `parse` reads them, `heed help <command>` prints them */
  options: Flags;
  run(argv: string[]): Promise<number | void>;
}

/** Commands are loaded lazily so `heed --help` does not start the tensor engine. */
const registry: Array<{ path: string[]; summary: string; load: () => Promise<Command> }> = [
  { path: ['demo'], summary: 'the embedded default: base → instruction follower, measured, with an HTML report', load: async () => (await import('./demo.js')).command },
  { path: ['generate'], summary: 'generate text from a model folder (streams tokens)', load: async () => (await import('./generate.js')).command },
  { path: ['model', 'info'], summary: 'describe a Hugging Face model folder', load: async () => (await import('./model-info.js')).command },
  { path: ['train'], summary: 'supervised fine-tuning (full or LoRA) from a YAML config; --resume continues exactly', load: async () => (await import('./train.js')).command },
  { path: ['pretrain'], summary: 'pretrain a small Llama base model (and its BPE tokenizer) from scratch on plain text', load: async () => (await import('./pretrain.js')).command },
  { path: ['pretrain', 'samples'], summary: 'continue held-out openings with a base model; known-word, word-pair and loop rates vs real text', load: async () => (await import('./pretrain-samples.js')).command },
  { path: ['data', 'stats'], summary: 'token counts, loss-bearing tokens and instruction/output ratio of a data file', load: async () => (await import('./data-stats.js')).command },
  { path: ['data', 'inspect'], summary: 'print data rows with their loss-bearing tokens highlighted', load: async () => (await import('./data-inspect.js')).command },
  { path: ['ifs'], summary: 'Instruction Following Score (IFS) of a model folder, per prompt variant', load: async () => (await import('./ifs.js')).command },
  { path: ['ifs', 'build'], summary: 'build an IFS prompt set (instructions and partial instructions) from conversation files', load: async () => (await import('./ifs-build.js')).command },
  { path: ['ifs', 'train-classifier'], summary: 'train the IFS response classifier and print its held-out metrics', load: async () => (await import('./ifs-train.js')).command },
  { path: ['ifs', 'classify'], summary: 'label texts as answer-like or continuation-like with the IFS classifier', load: async () => (await import('./ifs-classify.js')).command },
  { path: ['objecqa'], summary: 'ObjecQA: share of objective answers to preference questions', load: async () => (await import('./objecqa.js')).command },
  { path: ['rules', 'explain'], summary: 'show which token ids each rule of a rules adapter touches in a tokenizer', load: async () => (await import('./rules-explain.js')).command },
  { path: ['rules', 'ablate'], summary: 'IFS of a base model alone, with all rules, and with each rule group removed', load: async () => (await import('./rules-ablate.js')).command },
  { path: ['export', 'gguf'], summary: 'write a model folder as one GGUF file for llama.cpp / Ollama (f32, f16, q8_0)', load: async () => (await import('./export-gguf.js')).command },
  { path: ['serve'], summary: 'an OpenAI-compatible HTTP server over any model spec (folder, gguf:, openai:)', load: async () => (await import('./serve.js')).command },
  { path: ['export', 'torch'], summary: 'a heed train config as a self-contained PyTorch job (torchrun / Accelerate / TRL), data as heed prepares it', load: async () => (await import('./export-torch.js')).command },
  { path: ['watch'], summary: 'follow a PyTorch job run folder: evaluate each checkpoint (IFS, ObjecQA, held-out loss), IFS early stopping via STOP', load: async () => (await import('./watch.js')).command },
  { path: ['difficulty'], summary: 'score instruction difficulty (judge 1–5, base-model loss, IFD, heuristic); `agree` compares scorers', load: async () => (await import('./difficulty.js')).command },
  { path: ['stages'], summary: 'split scored rows into curriculum stages (easy→hard, hard→easy, random) with a heed train config fragment', load: async () => (await import('./stages.js')).command },
  { path: ['winrate'], summary: 'pairwise judged win rate of two models / runs / response files (both orders; PhasedSFT judge prompt)', load: async () => (await import('./winrate.js')).command },
  { path: ['report'], summary: 'self-contained HTML report from run folders (curves, IFS tables, samples)', load: async () => (await import('./report.js')).command },
  { path: ['logs', 'export'], summary: "a run's metrics as TensorBoard event files and/or CSV (finished or live runs)", load: async () => (await import('./logs.js')).command },
  { path: ['ui'], summary: 'live dashboard of run folders on 127.0.0.1 (curves while training, IFS, checkpoints, overlays)', load: async () => (await import('./ui.js')).command },
];

export function registerCommand(path: string[], summary: string, load: () => Promise<Command>): void {
  registry.push({ path, summary, load });
}

/** Every registered command (paths and loaders), for help and for tests. */
export const commands = (): ReadonlyArray<{ path: string[]; summary: string; load: () => Promise<Command> }> => registry;

/** `heed ` → `npx heed ` before a command word when heed was started through npx (hints stay pasteable). */
function asStarted(s: string): string {
  if (heedName() === 'heed') return s;
  const words = [...new Set(registry.map((c) => c.path[0]))].join('|');
  return s.replace(new RegExp(`(?<![\\w-]|npx )heed (?=(?:${words}|help|--help)\\b)`, 'g'), `${heedName()} `);
}

/** The registered command a mistyped one was meant to be, if one is close. */
function nearCommand(argv: string[]): string | undefined {
  const paths = registry.map((c) => c.path.join(' '));
  const two = argv.slice(0, 2).join(' ');
  return closest(two, paths.filter((p) => p.includes(' '))) ?? closest(argv[0] ?? '', [...new Set(registry.map((c) => c.path[0]))]);
}

function helpText(): string {
  const w = Math.max(...registry.map((c) => c.path.join(' ').length));
  return [
    'heed: an instruction-tuning lab (train, decode and measure instruction following)',
    '',
    'usage: heed <command> [options]   (heed help <command> or heed <command> --help lists its flags; --debug shows stack traces)',
    '',
    'commands:',
    ...registry.map((c) => `  ${c.path.join(' ').padEnd(w)}  ${c.summary}`),
  ].join('\n');
}

export async function run(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || (argv[0] === 'help' && argv.length === 1)) {
    console.log(asStarted(helpText()));
    return 0;
  }
  // heed help <command>: the same page as heed <command> --help
  if (argv[0] === 'help') argv = [...argv.slice(1), '--help'];
  if (argv[0] === '--version') {
    const { readFileSync } = await import('node:fs');
    console.log(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version);
    return 0;
  }
  // longest matching command path
  const match = registry
    .filter((c) => c.path.every((p, i) => argv[i] === p))
    .sort((a, b) => b.path.length - a.path.length)[0];
  try {
    if (!match) {
      const near = registry.filter((c) => c.path[0] === argv[0]).map((c) => c.path.join(' '));
      const guess = nearCommand(argv);
      const shown = argv.filter((a) => a !== '--help').slice(0, 2).join(' ');
      throw new HeedError(`unknown command "${shown}"${guess ? ` (did you mean "${guess}"?)` : ''}`, near.length ? `one of: ${near.join(', ')}` : `run \`${heedName()} --help\` for the list of commands`);
    }
    const cmd = await match.load();
    const rest = argv.slice(match.path.length);
    if (rest.includes('--help') || rest.includes('-h')) {
      console.log(asStarted(commandHelp(cmd)));
      return 0;
    }
    const code = await cmd.run(rest);
    return typeof code === 'number' ? code : 0;
  } catch (e0) {
    const e = fromSystemError(e0) ?? e0; // OS conditions (EACCES, ENOSPC, ...) and allocation failures are not bugs
    if (e instanceof HeedError) {
      console.error(asStarted(`error: ${e.oneLine()}`));
      if (debug) console.error(e.stack);
      return 2;
    }
    const err = e as Error;
    console.error(`error: ${safeText(err?.message ?? String(e))} (fix: this is a bug in heed or an unexpected input; rerun with --debug for the stack trace)`);
    if (debug) console.error(err?.stack);
    return 1;
  }
}
