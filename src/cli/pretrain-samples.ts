import type { Command } from './main.js';
import { flags, parse, num } from './args.js';
import { deviceOption, samplingFlags, samplingOptions, startEngine, threadsOption } from './common.js';
import { HeedError } from '../errors.js';
import { samplingDefaults } from '../decode/sampling.js';

const usage = 'heed pretrain samples --model <dir> --data <corpus> [--samples N] [--prompt-words N] [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--repetition-penalty R] [--seed S] [--json]';

const options = flags({
  model: { type: 'string', short: 'm', arg: 'DIR', help: 'the base model folder (required)' },
  data: { type: 'string', arg: 'FILE', help: 'the corpus the model was pretrained on: its held-out documents give the prompts (required)' },
  samples: { type: 'string', arg: 'N', default: '24', help: 'continuations to write' },
  'prompt-words': { type: 'string', arg: 'N', default: '4', help: 'words of each held-out opening given as the prompt' },
  'max-tokens': { type: 'string', arg: 'N', default: '48', help: 'new tokens per continuation' },
  ...samplingOptions,
  temperature: { ...samplingOptions.temperature, default: "the model's generation_config.json, else 0.7" },
  seed: { type: 'string', arg: 'S', default: '1', help: 'sampling seed' },
  ...threadsOption,
  json: { type: 'boolean', help: 'print the samples and statistics as JSON' },
  ...deviceOption,
});

export const command: Command = {
  path: ['pretrain', 'samples'],
  summary: 'continue held-out document openings with a base model and measure how fluent-looking the text is',
  usage,
  options,
  async run(argv) {
    const { values } = parse(argv, options, usage, false);
    if (!values.model) throw new HeedError('missing --model', `usage: ${usage}`);
    if (!values.data) throw new HeedError('missing --data', `the corpus the model was pretrained on (its held-out documents give the prompts); usage: ${usage}`);
    const { SAMPLE_DEFAULTS, sampleFluency, formatSampleReport } = await import('../pretrain/samples.js');
    const { readCorpus, splitHeldOut } = await import('../pretrain/corpus.js');
    const { generationConfig, loadModel } = await import('../models/load.js');
    const d = SAMPLE_DEFAULTS;
    // flags, else the model's generation_config.json when it asks for sampling, else heed's defaults
    const { temperature, topK, topP, minP, repetitionPenalty } = d;
    const sampling = samplingDefaults(samplingFlags(values), generationConfig(values.model), { temperature, topK, topP, minP, repetitionPenalty }).options;
    const o = {
      ...d,
      ...sampling,
      samples: num(values.samples, 'samples', { int: true, min: 1 }) ?? d.samples,
      promptWords: num(values['prompt-words'], 'prompt-words', { int: true, min: 1 }) ?? d.promptWords,
      maxTokens: num(values['max-tokens'], 'max-tokens', { int: true, min: 1 }) ?? d.maxTokens,
      seed: num(values.seed, 'seed', { int: true, min: 0 }) ?? d.seed,
    };
    const { train, heldOut } = splitHeldOut(readCorpus(values.data));
    await startEngine(values.device, values.threads);
    const { EngineGenerator } = await import('../decode/generate.js');
    const gen = new EngineGenerator(await loadModel(values.model));
    const r = await sampleFluency(gen, train, heldOut, o, (done, total) => { if (!values.json) process.stderr.write(`\rsampling ${done}/${total}`); });
    if (!values.json) process.stderr.write('\n');
    if (r.samples.length === 0) throw new HeedError(`${values.data}: no held-out document has ${o.promptWords} words and a continuation`, 'pass the corpus the model was pretrained on, or a smaller --prompt-words');
    console.log(values.json ? JSON.stringify(r, null, 2) : formatSampleReport(r, r.samples.length));
    return 0;
  },
};
