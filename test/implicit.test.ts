import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { dollyCategory, selectImplicit, untrainedIfsPrompts } from '../src/phased/implicit.js';
import { readInstructionRows } from '../src/phased/rows.js';
import { cleanInstruction } from '../src/eval/ifs/fragments.js';
import { readJsonlRows } from '../src/eval/jsonl.js';
import { ROOT, SHARED } from './helpers.js';

const DOLLY = join(SHARED, 'data/dolly_3k.jsonl');

test('creative_writing rule: write/compose/… instructions without a context paragraph, through the wrappers', () => {
  assert.equal(dollyCategory('Plase answer the following request: Write a haiku about a naughty cat.\nAnswer:'), 'creative_writing');
  assert.equal(dollyCategory('Tell me how would you respond to the following request.\nwrite a short essay on California wild fire\n'), 'creative_writing');
  assert.equal(dollyCategory("Please write me a short children's bedtime story about a frog."), 'creative_writing');
  assert.equal(dollyCategory('Please write some key points on Booker prize from the given passage.\n\nThe Booker Prize is a literary award.'), 'other', 'a context paragraph: summarization');
  assert.equal(dollyCategory('Identify which instrument is string or percussion: Kpanlogo, Shamisen\nResponse:'), 'other');
  assert.equal(dollyCategory('What is a good way to get around without a car?'), 'other');
  assert.equal(dollyCategory('Who wrote the novel Dune?'), 'other', '"wrote" inside a question is not a writing task');
});

test('implicit experiment data: single-task rows are creative training rows; judged prompts are held-out rows of the other categories, none trained on by any arm', { skip: existsSync(DOLLY) ? false : `${DOLLY} not found (../shared beside the checkout)` }, () => {
  const rows = readInstructionRows(DOLLY);
  const sel = selectImplicit(rows, { prompts: 60 });
  assert.equal(sel.prompts.length, 60);
  assert.ok(sel.singleTask.length >= 30, `${sel.singleTask.length} creative rows`);
  for (const r of sel.singleTask) assert.equal(dollyCategory(r.instruction), 'creative_writing', r.id);
  const fullIds = new Set(sel.full.map((r) => r.id));
  for (const r of sel.singleTask) assert.ok(fullIds.has(r.id), 'single-task rows are a subset of the training rows');
  assert.equal(sel.singleTask.length, rows.filter((r) => dollyCategory(r.instruction) === 'creative_writing').length, 'every creative row is trained on by the single-task arm');
  const trained = new Set(sel.full.map((r) => cleanInstruction(r.instruction).toLowerCase()));
  const byId = new Map(rows.map((r) => [r.id, r]));
  for (const p of sel.prompts) {
    assert.ok(!fullIds.has(p.id), `${p.id} is a training row`);
    assert.equal(dollyCategory(byId.get(p.id)!.instruction), 'other', `${p.id} is creative writing`);
    assert.ok(!trained.has(p.instruction.toLowerCase()), `${p.id}: its instruction is also a trained instruction`);
    assert.equal(p.instruction, cleanInstruction(byId.get(p.id)!.instruction));
  }
  assert.equal(sel.counts.train + sel.counts.held_out, rows.length);
  assert.deepEqual(selectImplicit(rows, { prompts: 60 }).prompts, sel.prompts, 'deterministic');
  // IFS prompts (built from the same Dolly rows): only those whose source row no arm trained on
  const ifsAll = readJsonlRows(join(ROOT, 'data/ifs/prompts.jsonl')).map((r) => r.value as { id: string; source_id: string; instruction: string; kind: string });
  const ifs = untrainedIfsPrompts(ifsAll, sel);
  assert.ok(ifs.length >= 60 && ifs.length < ifsAll.length / 5, `${ifs.length} of ${ifsAll.length}`);
  assert.ok(ifs.filter((p) => p.kind === 'partial').length >= 30 && ifs.filter((p) => p.kind === 'full').length >= 30);
  for (const p of ifs) assert.ok(!fullIds.has(p.source_id) && !trained.has(cleanInstruction(p.instruction).toLowerCase()), p.id);
});

test('examples/implicit: the three arms differ only in data, mask and name', () => {
  const cfg = (arm: string) => parseYaml(readFileSync(join(ROOT, 'examples/implicit', `${arm}.yaml`), 'utf8')) as Record<string, unknown>;
  const [st, ro, full] = ['single-task', 'response-only', 'full'].map(cfg);
  assert.deepEqual([st.mask, ro.mask, full.mask], ['output', 'response-only', 'output']);
  assert.match(String(st.data), /single-task\.jsonl$/);
  assert.equal(ro.data, full.data);
  const rest = (c: Record<string, unknown>) => Object.fromEntries(Object.entries(c).filter(([k]) => !['data', 'mask', 'name'].includes(k)));
  assert.deepEqual(rest(st), rest(full));
  assert.deepEqual(rest(ro), rest(full));
});
