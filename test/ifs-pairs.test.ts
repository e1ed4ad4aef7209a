import { test } from 'node:test';
import assert from 'node:assert/strict';
import { answerShape, clarifyReply, CLARIFY, NEGATIVE_TYPES, pairExamples, PERTURBATIONS, prefixedNegatives, SHAPES, PREFIX_KINDS } from '../src/eval/ifs/pairs.js';
import { shiftedCut, rowRng } from '../src/eval/ifs/fragments.js';
import { canonical, discourseFeatures, featurize, pairFeatures } from '../src/eval/text-classifier.js';
import { Prng } from '../src/data/prng.js';

const rows = Array.from({ length: 80 }, (_, i) => ({
  id: `r${i}`,
  dataset: i % 2 ? 'a' : 'b',
  instruction: `Tell me about the number ${i} and explain why it matters to people who count things`,
  response: `The number ${i} matters because it comes after ${i - 1}. People use it when they count apples, days and Paris streets.`,
}));

test('pairExamples (train): every pair type of the paper, exact texts, all three joins, openings on a share', () => {
  const ex = pairExamples(rows, 0);
  const types = new Set(ex.map((e) => e.type));
  for (const t of ['I,R', 'Ip,R', 'Ip,clarify', ...NEGATIVE_TYPES]) assert.ok(types.has(t as never), t);
  const byId = new Map(rows.map((r) => [r.id, r]));
  // the next instruction: the next row of the same dataset (r0 → r2, r1 → r3, last wraps around)
  const nextOf = (id: string) => {
    const r = byId.get(id)!;
    const same = rows.filter((x) => x.dataset === r.dataset);
    return same[(same.indexOf(r) + 1) % same.length];
  };
  for (const e of ex) {
    const r = byId.get(e.source_id)!;
    const text = e.prefix ? e.text.replace(/^(?:[-*•] |\d[.)] |#+ |> |(?:Sure!|Sure,|Certainly!|Of course!)(?: Here you go:)?[ \n])/, '') : e.text;
    assert.equal(e.label, e.type === 'I,R' || e.type === 'Ip,R' || e.type === 'Ip,clarify' ? 1 : 0, e.type);
    if (e.type === 'I,Ic') assert.equal(text, nextOf(e.source_id).instruction);
    if (e.type === 'I,Ic+R') assert.ok([' ', '\n', '\n\n'].some((j) => text === nextOf(e.source_id).instruction + j + nextOf(e.source_id).response), text);
    if (e.type === 'Ip,Ic' || e.type === 'Ip,Ic+R') {
      assert.ok(r.instruction.startsWith(e.prompt) && e.prompt.length < r.instruction.length);
      assert.ok(text.startsWith(r.instruction.slice(e.prompt.length).trim()), text);
    }
    if (e.type.startsWith('I,')) assert.equal(e.prompt, r.instruction);
  }
  assert.deepEqual(new Set(ex.filter((e) => e.join).map((e) => e.join)), new Set(['space', 'newline', 'blank']));
  const opened = ex.filter((e) => e.prefix);
  assert.ok(opened.length > ex.length * 0.15 && opened.length < ex.length * 0.35, `${opened.length}/${ex.length}`);
  assert.ok(opened.some((e) => e.label === 0) && opened.some((e) => e.label === 1), 'openings on answers and continuations alike');
  assert.deepEqual(pairExamples(rows, 0), ex, 'seeded');
  assert.deepEqual(pairExamples(rows.slice(0, 40), 0).filter((e) => e.source_id === 'r5' && e.type !== 'I,Ic' && e.type !== 'I,Ic+R'), ex.filter((e) => e.source_id === 'r5' && e.type !== 'I,Ic' && e.type !== 'I,Ic+R'), 'a row\'s own examples do not depend on the other rows');
});

test('pairExamples (test): every negative type for every row, synthesised shapes, clarification templates split', () => {
  const ex = pairExamples(rows, 1, { mode: 'test', templates: 'test' });
  for (const t of NEGATIVE_TYPES) assert.equal(ex.filter((e) => e.type === t).length, rows.length, t);
  const shapes = new Set(ex.map((e) => e.shape).filter(Boolean));
  for (const k of ['synth:fence', 'synth:table', 'synth:lyrics', 'synth:short', 'synth:lower', 'clarify']) assert.ok(shapes.has(k), k);
  const held = CLARIFY.filter((_, i) => i % 3 === 0).map((t) => t.split('{')[0]);
  for (const e of ex.filter((e) => e.type === 'Ip,clarify')) assert.ok(held.some((h) => e.text.startsWith(h)), e.text);
  const r = new Prng(3);
  for (let i = 0; i < 50; i++) assert.ok(!CLARIFY.filter((_, j) => j % 3 === 0).map((t) => t.split('{')[0]).some((h) => h && clarifyReply('Tell me about the history of', r, 'train').startsWith(h)));
  const opened = prefixedNegatives(ex, 0);
  assert.equal(opened.length, ex.filter((e) => e.label === 0).length * PREFIX_KINDS.length);
  assert.ok(opened.every((e) => e.label === 0 && e.prefix));
});

test('answer shapes: natural shapes are recognised, synthesised ones have the shape they claim', () => {
  assert.equal(answerShape('```python\nprint(1)\n```'), 'fence');
  assert.equal(answerShape('| a | b |\n|---|---|\n| 1 | 2 |'), 'table');
  assert.equal(answerShape('def f(x):\n    return x + 1\nprint(f(2))'), 'code');
  assert.equal(answerShape('(Verse 1)\nI walked along the road\nthe sky was grey\n\n(Chorus)\nOh my'), 'lyrics');
  assert.equal(answerShape('42'), 'short');
  assert.equal(answerShape('paris is the capital of france, and it is big.'), 'lower');
  assert.equal(answerShape('The capital of France is Paris, a large city.'), 'prose');
  const R = rows[7].response;
  const r = new Prng(0);
  assert.equal(answerShape(SHAPES.fence(R, r)!), 'fence');
  assert.equal(answerShape(SHAPES.table(R, r)!), 'table');
  assert.equal(answerShape(SHAPES.lyrics(R, r)!), 'lyrics');
  assert.equal(answerShape(SHAPES.short(R, r)!), 'short');
  assert.equal(SHAPES.lower(R, r), R.toLowerCase());
});

test('canonical(): formatting perturbations that carry no content leave the canonical text unchanged', () => {
  const t = 'The capital of France is Paris.\nIt has about two million people.';
  const c = canonical(t);
  for (const k of ['fence', 'lower', 'whitespace', 'crlf', 'bullets', 'numbered', 'heading', 'sure']) assert.equal(canonical(PERTURBATIONS[k](t)), c, k);
  assert.equal(canonical('Sure! Here you go:\n- one\n- two'), 'one\ntwo');
  assert.equal(canonical('Yes.'), 'yes.', 'a one-word answer is not taken for an interjection');
  assert.equal(canonical('```js\nconst x = 1;\n```'), 'const x = 1;');
  assert.equal(PERTURBATIONS.trunc100('x'.repeat(300)).length, 100);
  // the same canonical text gives the same features
  const cfg = { buckets: 1 << 12, maxChars: 600, charChars: 120, maxFeatures: 128, stats: true, structure: true, canon: true };
  assert.deepEqual(featurize(PERTURBATIONS.crlf(PERTURBATIONS.heading(t)), cfg), featurize(t, cfg));
});

test('pair features: where the prompt stops and how the text starts; an echo is seen', () => {
  const f = pairFeatures('what is the capital of', 'france? and why is it famous');
  assert.ok(f.includes('p:end:L'));
  assert.ok(f.includes('p:last×t0:of france'));
  assert.ok(pairFeatures('tell me about the history of rome please', 'tell me about the history of rome please. thanks').includes('p:echo'));
  assert.ok(!pairFeatures('tell me about the history of rome please', 'rome was founded in 753 bc.').includes('p:echo'));
  const cfg = { buckets: (1 << 12) + 256, maxChars: 600, charChars: 120, maxFeatures: 160, canon: true, pair: { buckets: 256, maxFeatures: 32 } };
  const a = featurize('Rome was founded in 753 BC.', cfg, 'Tell me about Rome');
  const b = featurize('Rome was founded in 753 BC.', cfg);
  assert.ok(a.idx.length > b.idx.length && a.idx.some((i) => i >= 1 << 12) && b.idx.every((i) => i < 1 << 12));
  // the cut of fragments.ts is what Ip is made from
  const cut = shiftedCut(rows[0].instruction, rowRng(0, 'x'));
  assert.ok(rows[0].instruction.startsWith(cut.partial));
});

test('discourse features: an instruction asks in the first person, an answer tells', () => {
  const q = "i'm trying to set up a cron job on my server. how do i run it every five minutes?";
  const a = 'you can add a line to your crontab. the first field is the minute.';
  const fq = discourseFeatures(q, q.match(/[\p{L}']+|[^\s\p{L}]/gu)!);
  const fa = discourseFeatures(a, a.match(/[\p{L}']+|[^\s\p{L}]/gu)!);
  assert.ok(fq.includes('d:1p×2p:true:false') && fa.includes('d:1p×2p:false:true'), `${fq} | ${fa}`);
  assert.ok(fq.some((x) => x.startsWith('d:q:1:')) && fa.some((x) => x.startsWith('d:q:0:')));
  assert.ok(fq.includes('d:reqN:true:true'));
});

test('canonical(): markers on fence lines and on "Sure!" do not hide them', () => {
  const code = '```python\nprint(1)\n```';
  for (const k of ['bullets', 'numbered', 'heading']) assert.equal(canonical(PERTURBATIONS[k](code)), canonical(code), k);
  assert.equal(canonical(PERTURBATIONS.heading('Sure! The answer is 4.')), canonical('Sure! The answer is 4.'));
});

test('caseStart: the case of the first letter survives canonical text (after markers, fences and "Sure!")', async () => {
  const { startCase, canonicalCased } = await import('../src/eval/text-classifier.js');
  assert.equal(startCase(canonicalCased('- Sure! the best way')), 'l');
  assert.equal(startCase(canonicalCased('```\nThe best way\n```')), 'U');
  assert.equal(startCase('42 is'), 'N');
  assert.equal(startCase('...'), 'none');
  const cfg = { buckets: 1 << 12, maxChars: 600, charChars: 120, maxFeatures: 128, canon: true, caseStart: true };
  assert.notDeepEqual(featurize('the capital is Paris.', cfg), featurize('The capital is Paris.', cfg));
  assert.deepEqual(featurize('the capital is Paris.', { ...cfg, caseStart: false }), featurize('The capital is Paris.', { ...cfg, caseStart: false }));
});

test('style features: a next task in the prompt\'s style, a same-line join, an all-lower-case text', async () => {
  const { styleFeatures } = await import('../src/eval/text-classifier.js');
  // the next instruction of a list: a question after a question, a task verb after a task verb
  const q = styleFeatures('what is the capital of france?', 'what is the largest river of europe?');
  assert.ok(q.includes('y:pk×tk:q:q') && q.includes('y:samew0:true:q'), `${q}`);
  const t = styleFeatures('write a poem about the sea.', 'write a story about a dog.');
  assert.ok(t.includes('y:pk×tk:t:t') && t.includes('y:samew0:true:t'), `${t}`);
  const a = styleFeatures('what is the capital of france?', 'the capital of france is paris.');
  assert.ok(a.includes('y:pk×tk:q:s') && a.includes('y:samew0:false:s'), `${a}`);
  // a request continued by its answer on the same line, against the request alone
  assert.ok(styleFeatures('list three colours.', 'name two rivers. the rhine and the danube are two rivers of europe.').some((x) => /^y:sameline:t:[1-3]:false$/.test(x)));
  assert.ok(styleFeatures('list three colours.', 'name two rivers.').includes('y:sameline:t:0:false'));
  // case beyond the first letter
  const lo = styleFeatures('what is the capital of france?', 'the capital is paris.', 'the capital is paris.');
  const up = styleFeatures('what is the capital of france?', 'the capital is paris.', 'the capital is Paris.');
  assert.ok(lo.some((x) => x.startsWith('y:case:l:false:?:')) && up.some((x) => x.startsWith('y:case:l:true:?:')), `${lo} | ${up}`);
  // only with the flag: the pair block without `style` is unchanged
  const cfg = { buckets: (1 << 12) + 256, maxChars: 600, charChars: 120, maxFeatures: 160, canon: true, pair: { buckets: 256, maxFeatures: 32 } };
  const plain = featurize('Name two rivers.', cfg, 'List three colours.');
  const styled = featurize('Name two rivers.', { ...cfg, pair: { ...cfg.pair, style: true } }, 'List three colours.');
  assert.ok(styled.idx.length > plain.idx.length);
});

test('training augmentation: a stated share of perturbed copies (labels kept), extra answer shapes; off = the same training set', async () => {
  const { trainingSets, AUG_SHAPE_KINDS } = await import('../src/eval/ifs/heldout.js');
  const { PERTURBATION_KINDS } = await import('../src/eval/ifs/pairs.js');
  const plain = trainingSets(rows, 0, 'all', []);
  // off (the shipped default) and share 0 change nothing: the shipped classifiers keep reproducing
  assert.deepEqual(trainingSets(rows, 0, 'all', [], { share: 0 }).main, plain.main);
  const aug = trainingSets(rows, 0, 'all', [], { share: 0.3, shapes: { share: 0.5 } });
  const n = pairExamples(rows, 0).length;
  const perturbed = PERTURBATION_KINDS.reduce((a, k) => a + (aug.augmented[k] ?? 0), 0);
  assert.ok(perturbed > n * 0.2 && perturbed < n * 0.4, `${perturbed} of ${n}`);
  for (const k of PERTURBATION_KINDS) assert.ok((aug.augmented[k] ?? 0) > 0, k);
  for (const k of AUG_SHAPE_KINDS) assert.ok((aug.augmented[`shape:${k}`] ?? 0) > 0, k);
  // every original example is still there, in order; each added text is a perturbation of an example with its label
  const orig = new Set(plain.main.map((e) => `${e.label}\u0000${e.text}`));
  const added = aug.main.filter((e) => !orig.has(`${e.label}\u0000${e.text}`));
  const shapes = Object.entries(aug.augmented).filter(([k]) => k.startsWith('shape:')).reduce((a, [, v]) => a + v, 0);
  assert.equal(aug.main.length, plain.main.length + perturbed + shapes);
  // a perturbation may leave a text as it was (CRLF of one line), so fewer new texts than copies
  assert.ok(added.length <= perturbed + shapes && added.length > (perturbed + shapes) * 0.7, `${added.length} new of ${perturbed + shapes}`);
  // lower case only, on half of the examples: copies of answers and of continuations, each with its original's label
  const low = trainingSets(rows, 0, 'all', [], { share: 0.5, kinds: ['lower'] });
  const labelOf = new Map(plain.main.map((e) => [e.text.toLowerCase(), e.label]));
  const lowered = low.main.filter((e) => !orig.has(`${e.label}\u0000${e.text}`));
  assert.ok(lowered.length > 20, `${lowered.length}`);
  for (const e of lowered) assert.equal(e.label, labelOf.get(e.text), e.text);
  assert.ok(lowered.some((e) => e.label === 0) && lowered.some((e) => e.label === 1), 'answers and continuations are both perturbed');
  assert.throws(() => trainingSets(rows, 0, 'all', [], { share: 0.1, kinds: ['upside-down'] }), /unknown perturbation "upside-down"/);
});
