import type { Command } from './main.js';
import { flags, parse, num } from './args.js';
import { evalModelOptions } from './common.js';
import { HeedError } from '../errors.js';

const usage = 'heed ifs --model <dir|gguf:file|openai:url#model> [--prompts F] [--variant A|B|C|all] [--limit N] [--max-tokens N] [--batch N] [--out F] [--adapter rules[:preset|:file.json]] [--classifier F] [--json] [--device wasm|webgpu]';

const options = flags({
  ...evalModelOptions,
  variant: { ...evalModelOptions.variant, arg: 'A|B|C|all', default: 'all' },
  'max-tokens': { ...evalModelOptions['max-tokens'], default: '64' },
  prompts: { type: 'string', arg: 'FILE', default: 'the shipped IFS prompt set', help: 'an IFS prompt set (heed ifs build)' },
  adapter: { type: 'string', arg: 'rules[:preset|:file.json]', default: 'none', help: 'the rule adapter (docs/rules.md)' },
  classifier: { type: 'string', arg: 'FILE', default: 'data/ifs/classifier.safetensors', help: 'the IFS response classifier' },
});

export const command: Command = {
  path: ['ifs'],
  summary: 'Instruction Following Score of a model: IFS, IFS_partial, IFS_full per prompt variant with 95% intervals',
  usage,
  options,
  async run(argv) {
    const { values, positionals } = parse(argv, options, usage);
    if (positionals.length) throw new HeedError(`unknown subcommand or argument "${positionals[0]}"`, 'use heed ifs build | train-classifier | classify, or heed ifs --model <dir>');
    if (!values.model) throw new HeedError('missing --model', `usage: ${usage}`);
    const v = (values.variant ?? 'all').toUpperCase();
    if (!['A', 'B', 'C', 'ALL'].includes(v)) throw new HeedError(`--variant must be A, B, C or all, got "${values.variant}"`, 'A = Alpaca wrapper, B = "### Response:" suffix only, C = no prompt');
    const limit = num(values.limit, 'limit', { int: true, min: 1 });
    const batchSize = num(values.batch, 'batch', { int: true, min: 1 });
    const { DEFAULT_MAX_TOKENS, scoreIfs, formatTable, budgetSubset } = await import('../eval/ifs/score.js');
    const maxTokens = num(values['max-tokens'], 'max-tokens', { int: true, min: 1 }) ?? DEFAULT_MAX_TOKENS;
    const { loadPromptSet } = await import('../eval/ifs/prompts.js');
    const { loadIfsClassifier, loadIfsPairClassifier } = await import('../eval/ifs/classifier.js');
    const classifier = loadIfsClassifier(values.classifier);
    const pair = values.classifier ? undefined : loadIfsPairClassifier(); // IFS-pair beside IFS (src/eval/ifs/score.ts)
    const set = loadPromptSet(values.prompts);
    if (set.bad.length) console.error(`[prompts: ${set.bad.length} bad row(s) skipped; first at line ${set.bad[0].line}: ${set.bad[0].error}]`);
    const prompts = limit ? budgetSubset(set.prompts, limit) : set.prompts;
    const { modelGenerator, progressBar, failureNote } = await import('./ifs-common.js');
    const { gen, fits, logitsProcessors, backend } = await modelGenerator(values.model, { adapter: values.adapter, device: values.device, threads: values.threads, maxTokens });
    const { createWriteStream } = await import('node:fs');
    const out = values.out ? createWriteStream(values.out) : undefined;
    const bar = progressBar('ifs');
    const variants = (v === 'ALL' ? ['A', 'B', 'C'] : [v]) as Array<'A' | 'B' | 'C'>;
    const failures: Array<{ id: string; variant: string; error: string }> = [];
    const t0 = performance.now();
    const res = await scoreIfs(gen, classifier, prompts, {
      variants,
      maxTokens,
      batchSize,
      fits,
      pair,
      generate: { logitsProcessors },
      onProgress: (d, t) => bar.update(d, t),
      onResponse: (r) => out?.write(JSON.stringify(r) + '\n'),
      onFailure: (f) => failures.push(f),
    });
    if (out) await new Promise<void>((ok) => out.end(ok));
    const secs = (performance.now() - t0) / 1000;
    for (const s of res.scores) if (s.skipped) console.error(`[variant ${s.variant}: ${s.skipped} prompt(s) skipped: prompt + --max-tokens ${maxTokens} exceed the model's context]`);
    if (failures.length) console.error(failureNote(failures.length, `${failures[0].id} (variant ${failures[0].variant}): ${failures[0].error}`));
    if (values.json) console.log(JSON.stringify({ model: backend.spec, prompts: prompts.length, max_tokens: maxTokens, decoding: 'greedy', adapter: values.adapter ?? null, scores: res.scores, seconds: secs }, null, 2));
    else {
      console.log(`model ${backend.spec}: ${prompts.length} prompts (${prompts.filter((p) => p.kind === 'partial').length} partial), greedy, max ${maxTokens} new tokens${values.adapter ? `, adapter ${values.adapter}` : ''}`);
      console.log(formatTable(res.scores));
      if (values.out) console.log(`responses: ${values.out}`);
    }
    console.error(`[${res.responses.length} responses in ${secs.toFixed(1)} s, ${(res.responses.length / secs).toFixed(2)} responses/s]`);
    await backend.dispose();
    if (failures.length) throw new HeedError(`${failures.length} of ${failures.length + res.responses.length} generations failed on the backend (the scores above leave them out)`, 'run the same command again: finished answers come from the cache and only the failed ones are asked again');
    if (res.responses.length === 0) throw new HeedError('no prompt fits the model context with this --max-tokens', 'lower --max-tokens, or use --variant C (shortest prompts)');
    return 0;
  },
};
