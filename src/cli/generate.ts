import type { Command } from './main.js';
import { flags, parse, num } from './args.js';
import { deviceOption, samplingFlags, samplingOptions, startEngine, threadsOption } from './common.js';
import { HeedError, safeText } from '../errors.js';
import { samplingDefaults } from '../decode/sampling.js';
import { generationError, generationTokens } from '../backends/types.js';

const usage = 'heed generate --model <dir|gguf:file|openai:url#model> --prompt "..." [--chat] [--system "..."] [--max-tokens N] [--temperature T] [--top-p P] [--top-k K] [--min-p P] [--repetition-penalty R] [--seed S] [--stop STR]... [--adapter rules[:preset|:file.json]] [--device wasm|webgpu] [--json]';

const options = flags({
  model: { type: 'string', short: 'm', arg: 'SPEC', help: 'the model: a folder, gguf:<file> or openai:<base-url>#<model> (required)' },
  prompt: { type: 'string', short: 'p', multiple: true, arg: 'TEXT', help: 'a prompt; several make a batch (required)' },
  chat: { type: 'boolean', help: "wrap each prompt as a user turn in the model's chat template" },
  system: { type: 'string', arg: 'TEXT', help: 'with --chat: a system turn first' },
  'max-tokens': { type: 'string', arg: 'N', default: '128', help: 'new tokens per prompt at most' },
  ...samplingOptions,
  seed: { type: 'string', arg: 'S', default: '0', help: 'sampling seed' },
  stop: { type: 'string', multiple: true, arg: 'STR', help: 'stop when the text contains STR' },
  adapter: { type: 'string', arg: 'rules[:preset|:file.json]', default: 'none', help: 'the rule adapter (docs/rules.md)' },
  ...threadsOption,
  json: { type: 'boolean', help: 'print prompts, texts, token counts and finish reasons as JSON (no streaming)' },
  ...deviceOption,
});

export const command: Command = {
  path: ['generate'],
  summary: 'generate text from any model spec, streaming tokens to stdout',
  usage,
  options,
  async run(argv) {
    const { values } = parse(argv, options, usage, false);
    if (!values.model) throw new HeedError('missing --model', `usage: ${usage}`);
    const prompts = values.prompt ?? [];
    if (prompts.length === 0) throw new HeedError('missing --prompt', 'pass --prompt "..." (repeat it for a batch)');
    const { parseSpec, openModel } = await import('../backends/spec.js');
    const spec = parseSpec(values.model);
    const { generationConfig } = await import('../models/load.js');
    const sampling = samplingDefaults(samplingFlags(values), spec.kind === 'engine' ? generationConfig(spec.dir) : {});
    if (sampling.from) console.error(`[${sampling.from}]`);
    const opts = {
      maxTokens: num(values['max-tokens'], 'max-tokens', { int: true, min: 1 }) ?? 128,
      ...sampling.options,
      seed: num(values.seed, 'seed', { int: true, min: 0 }) ?? 0,
      stop: values.stop,
    };
    const adapter = values.adapter;
    if (adapter !== undefined && adapter !== 'rules' && !adapter.startsWith('rules:')) {
      throw new HeedError(`--adapter "${adapter}" is not known`, 'use --adapter rules (default preset), --adapter rules:hewitt-2024 or --adapter rules:path/to/rules.json');
    }
    // the rule expert counts repetition from the start of the prompt (userTurnOffset 0); see docs/rules.md
    if (spec.kind === 'engine') await startEngine(values.device, values.threads);
    const backend = await openModel(spec, { rules: adapter === undefined ? undefined : adapter.slice('rules:'.length), device: values.device, threads: num(values.threads, 'threads', { int: true, min: 1 }) });
    if (values.chat && !backend.chat) throw new HeedError(`${backend.spec} has no chat template`, 'omit --chat');
    const stream = !values.json && prompts.length === 1;
    const t0 = performance.now();
    // model output is shown escaped (safeText: no terminal control sequences from a model); --json keeps it exact
    const onText = stream ? (_r: number, d: string) => process.stdout.write(safeText(d, { newlines: true })) : undefined;
    const res = values.chat
      ? await backend.chat!(prompts.map((p) => [...(values.system ? [{ role: 'system', content: values.system }] : []), { role: 'user', content: p }]), { ...opts, onText })
      : await backend.gen.generate(prompts, { ...opts, onText });
    await backend.dispose();
    const failed = res.map(generationError).filter((e) => e !== undefined);
    const secs = (performance.now() - t0) / 1000;
    if (values.json) {
      console.log(JSON.stringify(res.map((r, i) => ({ prompt: prompts[i], text: r.text, tokens: generationTokens(r), finish_reason: r.finishReason, ...(generationError(r) ? { error: generationError(r) } : {}) })), null, 2));
    } else if (stream) {
      process.stdout.write('\n');
    } else {
      res.forEach((r, i) => console.log(`--- [${i}] ${JSON.stringify(prompts[i])}\n${safeText(r.text, { newlines: true })}`));
    }
    const ntok = res.reduce((a, r) => a + generationTokens(r), 0);
    console.error(`[${ntok} tokens in ${secs.toFixed(2)} s, ${(ntok / secs).toFixed(1)} tok/s; finish: ${res.map((r) => r.finishReason).join(', ')}]`);
    if (failed.length) throw new HeedError(`${failed.length} of ${res.length} generations failed on the backend: ${failed[0]}`, 'run the same command again (finished answers come from the cache)');
    return 0;
  },
};
