/**
 * Writes the data of the implicit instruction tuning experiment (docs/implicit.md) from the Dolly subset:
 *   runs/implicit/data/full.jsonl         every training row (full instruction tuning, response-only tuning)
 *   runs/implicit/data/single-task.jsonl  the creative_writing training rows (single-task tuning)
 *   runs/implicit/data/prompts.jsonl      judged prompts: held-out rows of the other categories
 *   runs/implicit/data/ifs-prompts.jsonl  the IFS prompts (data/ifs/prompts.jsonl) whose source row no arm trained on
 *   runs/implicit/data/selection.json     the counts
 * Run from the repository root: node --import tsx examples/implicit/prepare.ts [dolly.jsonl] [--prompts N]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readInstructionRows } from '../../src/phased/rows.js';
import { selectImplicit, untrainedIfsPrompts } from '../../src/phased/implicit.js';
import { readJsonlRows, writeJsonl } from '../../src/eval/jsonl.js';

const args = process.argv.slice(2);
const pi = args.indexOf('--prompts');
const n = pi >= 0 ? Number(args[pi + 1]) : 60;
const data = args.find((a, i) => !a.startsWith('--') && i !== pi + 1) ?? '../shared/data/dolly_3k.jsonl';
const out = 'runs/implicit/data';
const sel = selectImplicit(readInstructionRows(data), { prompts: n });
mkdirSync(out, { recursive: true });
writeJsonl(join(out, 'full.jsonl'), sel.full.map((r) => r.raw));
writeJsonl(join(out, 'single-task.jsonl'), sel.singleTask.map((r) => r.raw));
writeJsonl(join(out, 'prompts.jsonl'), sel.prompts);
const ifsAll = readJsonlRows('data/ifs/prompts.jsonl').map((r) => r.value as { id: string; source_id?: string; instruction?: string; kind?: string });
const ifs = untrainedIfsPrompts(ifsAll, sel);
writeJsonl(join(out, 'ifs-prompts.jsonl'), ifs);
const ifsCounts = { ifs_prompts: ifs.length, ifs_partial: ifs.filter((p) => p.kind === 'partial').length, ifs_of: ifsAll.length };
writeFileSync(join(out, 'selection.json'), JSON.stringify({ data, ...sel.counts, ...ifsCounts }, null, 2) + '\n');
console.log(`implicit: ${JSON.stringify({ ...sel.counts, ...ifsCounts })}\nwrote ${out}/{full,single-task,prompts}.jsonl`);
