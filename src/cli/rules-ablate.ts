import type { Command } from './main.js';
import { flags, parse, num } from './args.js';
import { evalModelOptions } from './common.js';
import { HeedError } from '../errors.js';

const usage = 'heed rules ablate --model <dir|gguf:file> [--rules preset|file.json] [--variant A|B|C|H|all] [--limit N] [--max-tokens N] [--batch N] [--prompts F] [--classifier F] [--out F] [--json] [--device wasm|webgpu]';

const options = flags({
  ...evalModelOptions,
  model: { ...evalModelOptions.model, help: 'the model: a folder or gguf:<file> (the adapter needs logits; required)' },
  variant: { ...evalModelOptions.variant, arg: 'A|B|C|H|all', default: 'H', help: "prompt wrapper: H = the paper's <|user|>/<|assistant|> template, A = Alpaca, B = \"### Response:\" suffix, C = bare" },
  limit: { ...evalModelOptions.limit, default: '100' },
  'max-tokens': { ...evalModelOptions['max-tokens'], default: '64' },
  rules: { type: 'string', arg: 'preset|file.json', default: 'default', help: 'the rules to ablate (presets: default, hewitt-2024)' },
  prompts: { type: 'string', arg: 'FILE', default: 'the shipped IFS prompt set', help: 'an IFS prompt set (heed ifs build)' },
  classifier: { type: 'string', arg: 'FILE', default: 'data/ifs/classifier.safetensors', help: 'the IFS response classifier' },
});

export const command: Command = {
  path: ['rules', 'ablate'],
  summary: 'rule ablation (Hewitt et al. 2024): IFS of the base model alone, with all rules, and with each rule group removed',
  usage,
  options,
  async run(argv) {
    const { values, positionals } = parse(argv, options, usage);
    if (positionals.length) throw new HeedError(`unexpected argument "${positionals[0]}"`, `usage: ${usage}`);
    if (!values.model) throw new HeedError('missing --model', `usage: ${usage}`);
    const v = (values.variant ?? 'H').toUpperCase();
    if (!['A', 'B', 'C', 'H', 'ALL'].includes(v)) throw new HeedError(`--variant must be A, B, C, H or all, got "${values.variant}"`, 'H = the paper\'s <|user|>/<|assistant|> template (default), A = Alpaca wrapper, B = "### Response:" suffix, C = no prompt');
    const variants = (v === 'ALL' ? ['H', 'A', 'B', 'C'] : [v]) as Array<'A' | 'B' | 'C' | 'H'>;
    const limit = num(values.limit, 'limit', { int: true, min: 1 }) ?? 100;
    const batchSize = num(values.batch, 'batch', { int: true, min: 1 });
    const { DEFAULT_MAX_TOKENS, budgetSubset } = await import('../eval/ifs/score.js');
    const maxTokens = num(values['max-tokens'], 'max-tokens', { int: true, min: 1 }) ?? DEFAULT_MAX_TOKENS;
    const { loadRules } = await import('../decode/rules.js');
    const rules = loadRules(values.rules);
    const { loadPromptSet } = await import('../eval/ifs/prompts.js');
    const { loadIfsClassifier } = await import('../eval/ifs/classifier.js');
    const classifier = loadIfsClassifier(values.classifier);
    const set = loadPromptSet(values.prompts);
    const prompts = budgetSubset(set.prompts, limit);
    const { modelGenerator, progressBar } = await import('./ifs-common.js');
    const { gen, fits, tokenizer, backend } = await modelGenerator(values.model, { device: values.device, threads: values.threads, maxTokens, needLogits: 'heed rules ablate (the rule adapter)' });
    const { runAblation, formatAblation } = await import('../eval/ifs/ablate.js');
    const { createWriteStream } = await import('node:fs');
    const out = values.out ? createWriteStream(values.out) : undefined;
    let bar = progressBar('ablate');
    const t0 = performance.now();
    const rows = await runAblation(gen, tokenizer, classifier, prompts, rules, {
      variants,
      maxTokens,
      batchSize,
      fits,
      onConfig: (c, i) => {
        bar = progressBar(`[${i + 1}/5] ${c.name}`);
      },
      onProgress: (d, t) => bar.update(d, t),
      onResponse: (config, r) => out?.write(JSON.stringify({ config, ...r }) + '\n'),
    });
    if (out) await new Promise<void>((ok) => out.end(ok));
    const secs = (performance.now() - t0) / 1000;
    const skipped = rows[0].scores.filter((s) => s.skipped).map((s) => `${s.variant}: ${s.skipped}`);
    if (skipped.length) console.error(`[prompts skipped (prompt + --max-tokens ${maxTokens} exceed the model's context): ${skipped.join(', ')}]`);
    if (values.json) console.log(JSON.stringify({ model: backend.spec, rules: rules.name ?? values.rules ?? 'default', variants, prompts: prompts.length, max_tokens: maxTokens, decoding: 'greedy', rows, seconds: secs }, null, 2));
    else {
      console.log(`model ${backend.spec}, rules ${rules.name ?? values.rules ?? 'default'}: ${prompts.length} prompts (${prompts.filter((p) => p.kind === 'partial').length} partial), greedy, max ${maxTokens} new tokens, variant${variants.length > 1 ? 's' : ''} ${variants.join(', ')}`);
      console.log(formatAblation(rows));
      if (values.out) console.log(`responses: ${values.out}`);
    }
    console.error(`[${(secs).toFixed(1)} s]`);
    return 0;
  },
};
