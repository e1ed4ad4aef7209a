import type { Command } from './main.js';
import { flags, parse, num } from './args.js';
import { HeedError } from '../errors.js';

const usage = 'heed ifs build --data F [--data F ...] --out prompts.jsonl [--partial-share 0.5] [--seed S] [--max-chars N] [--limit N] [--shuffle]';

const options = flags({
  data: { type: 'string', multiple: true, arg: 'FILE', help: 'conversation files the instructions come from (required)' },
  out: { type: 'string', short: 'o', arg: 'FILE', help: 'the prompt set to write, JSONL (required)' },
  'partial-share': { type: 'string', arg: 'X', default: '0.5', help: 'share of partial instructions (Ip) among the prompts' },
  seed: { type: 'string', arg: 'S', default: '0', help: 'seed of the fragment cuts and the order' },
  'max-chars': { type: 'string', arg: 'N', default: 'no limit', help: 'leave out instructions longer than N characters' },
  limit: { type: 'string', arg: 'N', default: 'all', help: 'keep the first N prompts' },
  shuffle: { type: 'boolean', default: 'off', help: 'write the prompts in a seeded shuffled order (so --limit N takes a mixed subset)' },
});

export const command: Command = {
  path: ['ifs', 'build'],
  summary: 'build an IFS prompt set (full instructions I and partial instructions Ip, with source ids) from conversation files',
  usage,
  options,
  async run(argv) {
    const { values } = parse(argv, options, usage, false);
    if (!values.data?.length) throw new HeedError('missing --data', `usage: ${usage}`);
    if (!values.out) throw new HeedError('missing --out', `usage: ${usage}`);
    const share = num(values['partial-share'], 'partial-share', { min: 0, max: 1 }) ?? 0.5;
    const seed = num(values.seed, 'seed', { int: true, min: 0 }) ?? 0;
    const maxChars = num(values['max-chars'], 'max-chars', { int: true, min: 1 });
    const limit = num(values.limit, 'limit', { int: true, min: 1 });
    const { readSources } = await import('../eval/ifs/classifier.js');
    const { buildPrompts } = await import('../eval/ifs/fragments.js');
    const { writeJsonl } = await import('../eval/jsonl.js');
    const { seededShuffle } = await import('../eval/ifs/prompts.js');
    const { rows, bad } = readSources(values.data, { needResponse: false }); // a prompt set needs instructions only (e.g. AlpacaEval's)
    let src = rows;
    const long = maxChars ? src.filter((r) => r.instruction.length > maxChars).length : 0;
    if (maxChars) src = src.filter((r) => r.instruction.length <= maxChars);
    const { prompts: all, skipped } = buildPrompts(src, { partialShare: share, seed });
    // --shuffle: a seeded order, so that the first N prompts (--limit, budget subsets) mix every source of the file
    const ordered = values.shuffle ? seededShuffle(all, seed) : all;
    const prompts = limit ? ordered.slice(0, limit) : ordered;
    writeJsonl(values.out, prompts);
    const np_ = prompts.filter((p) => p.kind === 'partial').length;
    console.log(`${values.out}: ${prompts.length} prompts (${np_} partial Ip, ${prompts.length - np_} full I) from ${rows.length} rows; skipped: ${skipped} with < 3 words${maxChars ? `, ${long} longer than ${maxChars} chars` : ''}, ${bad.length} bad rows`);
    for (const b of bad.slice(0, 5)) console.error(`[${b.file}:${b.line}: ${b.error}]`);
    return 0;
  },
};
