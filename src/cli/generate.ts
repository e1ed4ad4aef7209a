import type { Command } from './main.js';
import { parse, num } from './args.js';
import { deviceOption, samplingFlags, samplingOptions, startEngine } from './common.js';
import { HeedError } from '../errors.js';
import { samplingDefaults } from '../decode/sampling.js';

const usage = 'heed generate --model <dir> --prompt "..." [--chat] [--system "..."] [--max-tokens N] [--temperature T] [--top-p P] [--top-k K] [--min-p P] [--repetition-penalty R] [--seed S] [--stop STR]... [--adapter rules[:preset|:file.json]] [--device wasm|webgpu] [--json]';

export const command: Command = {
  path: ['generate'],
  summary: 'generate text from a model folder, streaming tokens to stdout',
  usage,
  async run(argv) {
    const { values } = parse(
      argv,
      {
        model: { type: 'string', short: 'm' },
        prompt: { type: 'string', short: 'p', multiple: true },
        chat: { type: 'boolean' },
        system: { type: 'string' },
        'max-tokens': { type: 'string' },
        ...samplingOptions,
        seed: { type: 'string' },
        stop: { type: 'string', multiple: true },
        adapter: { type: 'string' },
        threads: { type: 'string' },
        json: { type: 'boolean' },
        ...deviceOption,
      },
      usage,
      false,
    );
    if (!values.model) throw new HeedError('missing --model', `usage: ${usage}`);
    const prompts = values.prompt ?? [];
    if (prompts.length === 0) throw new HeedError('missing --prompt', 'pass --prompt "..." (repeat it for a batch)');
    const { generationConfig } = await import('../models/load.js');
    const sampling = samplingDefaults(samplingFlags(values), generationConfig(values.model));
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
    const rules = adapter === undefined ? undefined : (await import('../decode/rules.js')).loadRules(adapter.slice('rules:'.length));
    await startEngine(values.device, values.threads);
    const { loadModel } = await import('../models/load.js');
    const { EngineGenerator } = await import('../decode/generate.js');
    const model = await loadModel(values.model);
    let texts = prompts;
    let addSpecial = true;
    if (values.chat) {
      texts = prompts.map((p) => model.tokenizer.applyChatTemplate([...(values.system ? [{ role: 'system', content: values.system }] : []), { role: 'user', content: p }], { addGenerationPrompt: true }));
      addSpecial = false; // the template already holds BOS where the model wants it
    }
    const gen = new EngineGenerator(model);
    const logitsProcessors = [];
    if (rules) {
      // the rule expert counts repetition from the start of the prompt (userTurnOffset 0); see docs/rules.md
      const compiled = (await import('../decode/rules.js')).compileRules(rules, model.tokenizer);
      const unmapped = compiled.tokens.filter((t) => t.ids.length === 0).map((t) => JSON.stringify(t.string));
      if (unmapped.length) console.error(`[rules: ${unmapped.length} token rule(s) match no single token of this tokenizer: ${unmapped.join(', ')}; see heed rules explain]`);
      logitsProcessors.push(compiled.processor);
    }
    const stream = !values.json && prompts.length === 1;
    const t0 = performance.now();
    const res = await gen.generate(texts, { ...opts, logitsProcessors, addSpecialTokens: addSpecial, onText: stream ? (_r, d) => process.stdout.write(d) : undefined });
    const secs = (performance.now() - t0) / 1000;
    if (values.json) {
      console.log(JSON.stringify(res.map((r, i) => ({ prompt: prompts[i], text: r.text, tokens: r.ids.length, finish_reason: r.finishReason })), null, 2));
    } else if (stream) {
      process.stdout.write('\n');
    } else {
      res.forEach((r, i) => console.log(`--- [${i}] ${JSON.stringify(prompts[i])}\n${r.text}`));
    }
    const ntok = res.reduce((a, r) => a + r.ids.length, 0);
    console.error(`[${ntok} tokens in ${secs.toFixed(2)} s, ${(ntok / secs).toFixed(1)} tok/s; finish: ${res.map((r) => r.finishReason).join(', ')}]`);
    return 0;
  },
};
