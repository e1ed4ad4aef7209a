import type { Command } from './main.js';
import { flags, parse, num } from './args.js';
import { evalModelOptions } from './common.js';
import { HeedError } from '../errors.js';

const usage = 'heed ifs --model <dir|gguf:file|openai:url#model> [--prompts alpaca-eval|dolly|F] [--train-data F]... [--keep-overlap] [--variant A|B|C|all] [--limit N] [--max-tokens N] [--batch N] [--out F] [--adapter rules[:preset|:file.json]] [--classifier F] [--json] [--device wasm|webgpu]';

const options = flags({
  ...evalModelOptions,
  variant: { ...evalModelOptions.variant, arg: 'A|B|C|all', default: 'all' },
  'max-tokens': { ...evalModelOptions['max-tokens'], default: '64' },
  prompts: { type: 'string', arg: 'alpaca-eval|dolly|FILE', default: 'alpaca-eval', help: 'an IFS prompt set: a shipped one by name or a file made by heed ifs build' },
  'train-data': { type: 'string', multiple: true, arg: 'FILE', default: "the run's data for a folder heed train made", help: 'training data whose instructions are excluded from the prompts (repeatable)' },
  'keep-overlap': { type: 'boolean', default: 'off', help: 'keep prompts whose instruction is in the training data (with a warning)' },
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
    const { loadPromptSet, IFS_CLI_DEFAULT_SET } = await import('../eval/ifs/prompts.js');
    const { loadIfsClassifier, loadIfsPairClassifier } = await import('../eval/ifs/classifier.js');
    const classifier = loadIfsClassifier(values.classifier);
    const pair = values.classifier ? undefined : loadIfsPairClassifier(); // IFS-pair beside IFS (src/eval/ifs/score.ts)
    const setName = values.prompts ?? IFS_CLI_DEFAULT_SET;
    const set = loadPromptSet(setName);
    if (set.bad.length) console.error(`[prompts: ${set.bad.length} bad row(s) skipped; first at line ${set.bad[0].line}: ${set.bad[0].error}]`);
    const { modelGenerator, planned, failureNote, ifsOverlap, batchOom } = await import('./ifs-common.js');
    // overlap with the training data first, so that --limit picks from the prompts that are kept
    const overlap = await ifsOverlap(values.model, values['train-data'], set.prompts, !!values['keep-overlap']);
    if (overlap.prompts.length === 0) throw new HeedError(`every IFS prompt of ${setName} overlaps the training data`, 'use another prompt set (--prompts alpaca-eval|dolly|FILE), or --keep-overlap to score them anyway');
    const prompts = limit ? budgetSubset(overlap.prompts, limit) : overlap.prompts;
    const { gen, fits, logitsProcessors, backend } = await modelGenerator(values.model, { adapter: values.adapter, device: values.device, threads: values.threads, maxTokens });
    const { createWriteStream } = await import('node:fs');
    const out = values.out ? createWriteStream(values.out) : undefined;
    const variants = (v === 'ALL' ? ['A', 'B', 'C'] : [v]) as Array<'A' | 'B' | 'C'>;
    const { wrapPrompt } = await import('../eval/ifs/score.js');
    const fitting = variants.map((x) => prompts.filter((p) => fits(wrapPrompt(p.prompt, x))).length);
    const total = fitting.reduce((a, b) => a + b, 0);
    const skips = fitting.map((n, i) => (n < prompts.length ? `${prompts.length - n} of variant ${variants[i]} too long for the context` : '')).filter(Boolean);
    const plan = planned('ifs', total, `${prompts.length} prompts of ${setName} × ${variants.length} variant(s)${overlap.report?.excluded ? ` (${overlap.report.excluded} overlapping prompts excluded)` : ''}${skips.length ? `, less ${skips.join(', ')}` : ''}, up to ${maxTokens} new tokens each`);
    const failures: Array<{ id: string; variant: string; error: string }> = [];
    let generated = 0;
    const t0 = performance.now();
    const res = await batchOom(() => scoreIfs(gen, classifier, prompts, {
      variants,
      maxTokens,
      batchSize,
      fits,
      pair,
      generate: { logitsProcessors },
      onProgress: () => plan.update(generated),
      onResponse: (r) => {
        generated++;
        out?.write(JSON.stringify(r) + '\n');
      },
      onFailure: (f) => {
        generated++;
        failures.push(f);
      },
    }), batchSize, () => `after ${generated} of ${total} generations`);
    if (out) await new Promise<void>((ok) => out.end(ok));
    const secs = (performance.now() - t0) / 1000;
    for (const s of res.scores) if (s.skipped) console.error(`[variant ${s.variant}: ${s.skipped} prompt(s) skipped: prompt + --max-tokens ${maxTokens} exceed the model's context]`);
    if (failures.length) console.error(failureNote(failures.length, `${failures[0].id} (variant ${failures[0].variant}): ${failures[0].error}`));
    const result = { model: backend.spec, prompt_set: setName, prompts: prompts.length, max_tokens: maxTokens, decoding: 'greedy', adapter: values.adapter ?? null, scores: res.scores, overlap: overlap.report, seconds: secs };
    const summaryFile = values.out ? values.out.replace(/\.jsonl$/, '') + '.summary.json' : undefined;
    if (summaryFile) (await import('node:fs')).writeFileSync(summaryFile, JSON.stringify(result, null, 2) + '\n');
    if (values.json) console.log(JSON.stringify(result, null, 2));
    else {
      console.log(`model ${backend.spec}: ${prompts.length} prompts of ${setName} (${prompts.filter((p) => p.kind === 'partial').length} partial), greedy, max ${maxTokens} new tokens${values.adapter ? `, adapter ${values.adapter}` : ''}`);
      console.log(formatTable(res.scores));
      if (overlap.report?.overlapping_prompts) console.log(`overlap with the training data: ${overlap.report.overlapping_prompts} prompt(s) ${overlap.report.kept ? 'kept (--keep-overlap)' : 'excluded'}`);
      if (values.out) console.log(`responses: ${values.out}; result: ${summaryFile}`);
    }
    console.error(`[${res.responses.length} responses in ${secs.toFixed(1)} s, ${(res.responses.length / secs).toFixed(2)} responses/s]`);
    await backend.dispose();
    if (failures.length) throw new HeedError(`${failures.length} of ${failures.length + res.responses.length} generations failed on the backend (the scores above leave them out)`, 'run the same command again: finished answers come from the cache and only the failed ones are asked again');
    if (res.responses.length === 0) throw new HeedError('no prompt fits the model context with this --max-tokens', 'lower --max-tokens, or use --variant C (shortest prompts)');
    return 0;
  },
};
