/**
 * Builds data/pretrain/dolly-plain.txt: the instruction texts and the response texts of the Dolly subset as
 * separate plain-text documents (never paired, no template), in a seeded shuffled order, separated by lines
 * holding exactly <|endoftext|>. A base model trained on it has seen questions and requests as text to
 * continue, and answers as prose — but never an instruction followed by its answer.
 * The instructions of the first 200 IFS prompts (the pool the demo, IFS early stopping and `heed ifs --limit`
 * up to 200 draw from: budgetSubset takes the first partial and full prompts) are left out, so the base model
 * has not memorised the instructions it is evaluated on.
 *   node --import tsx scripts/make-pretrain-corpus.ts [../shared/data/dolly_3k.jsonl]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { sourceFromRecord } from '../src/eval/ifs/fragments.js';
import { loadPromptSet } from '../src/eval/ifs/prompts.js';
import { budgetSubset } from '../src/eval/ifs/score.js';
import { mulberry32 } from '../src/models/random.js';
import { repoPath } from '../src/eval/jsonl.js';

const src = process.argv[2] ?? repoPath('..', 'shared', 'data', 'dolly_3k.jsonl');
const held = new Set(budgetSubset(loadPromptSet().prompts, 200).map((p) => p.source_id));
const docs: string[] = [];
let skipped = 0;
let heldOut = 0;
let rows = 0;
for (const line of readFileSync(src, 'utf8').split('\n').filter(Boolean)) {
  const s = sourceFromRecord(JSON.parse(line), '');
  if ('error' in s) {
    skipped++;
    continue;
  }
  rows++;
  const clean = (t: string) => t.replace(/\r\n/g, '\n').trim();
  if (held.has(s.id)) heldOut++;
  else docs.push(clean(s.instruction));
  docs.push(clean(s.response));
}
const rand = mulberry32(20261121);
for (let i = docs.length - 1; i > 0; i--) {
  const j = Math.floor(rand() * (i + 1));
  [docs[i], docs[j]] = [docs[j], docs[i]];
}
const out = repoPath('data', 'pretrain', 'dolly-plain.txt');
writeFileSync(out, docs.filter(Boolean).join('\n<|endoftext|>\n') + '\n');
console.error(`${out}: ${docs.length} documents: ${rows} responses and ${rows - heldOut} instructions (those of ${heldOut} rows are held out for IFS); ${skipped} rows skipped`);
