/**
 * Issue 16, item 8: heed as a library. The package is packed (`npm pack`), unpacked into a scratch project's
 * node_modules as npm would install it (its dependencies linked from this checkout's node_modules: no network),
 * imported by name from an .mjs (load a model, read data, prepare it, generate, score IFS, train with a
 * callback), refused a path outside `exports`, and a .ts file using the types is type-checked (and a wrong
 * one is rejected, so the check checks).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, TINY, tmp } from './helpers.js';

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const sh = (cmd: string, args: string[], cwd: string) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

test('package.json exports one typed entry point, built into dist/', () => {
  assert.equal(pkg.exports['.'].types, './dist/index.d.ts');
  assert.equal(pkg.exports['.'].import, './dist/index.js');
  assert.equal(pkg.types, './dist/index.d.ts');
});

test('npm pack → install into a scratch project → import by name (.mjs) and type-check (.ts)', { timeout: 120_000 }, async () => {
  // the JS is built by `npm run build` (npm test builds first); the declarations by tsconfig.lib.json
  const js = join(ROOT, 'dist', 'index.js');
  if (!existsSync(js) || statSync(js).mtimeMs < statSync(join(ROOT, 'src', 'index.ts')).mtimeMs) sh(process.execPath, [TSC, '-p', '.'], ROOT);
  sh(process.execPath, [TSC, '-p', 'tsconfig.lib.json'], ROOT);
  assert.ok(existsSync(join(ROOT, 'dist', 'index.d.ts')));

  const dir = tmp('heed-lib-');
  const packed = JSON.parse(sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], ROOT));
  const tarball = join(dir, packed[0].filename);
  const listed = new Set<string>(packed[0].files.map((f: { path: string }) => f.path));
  for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/train/trainer.d.ts', 'models/tiny-dolly/model.safetensors', 'data/ifs/classifier.safetensors', 'data/ifs/prompts.jsonl']) assert.ok(listed.has(f), `${f} is in the package`);

  // install as npm does (unpack into node_modules/heed); the dependencies come from this checkout (offline)
  const proj = join(dir, 'proj');
  const nm = join(proj, 'node_modules');
  mkdirSync(join(nm, 'heed'), { recursive: true });
  sh('tar', ['-xzf', tarball, '--strip-components=1', '-C', join(nm, 'heed')], dir);
  for (const dep of [...Object.keys(pkg.dependencies), '@types/node']) {
    const at = join(nm, dep);
    mkdirSync(join(at, '..'), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules', dep), at, 'dir');
  }
  writeFileSync(join(proj, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module', dependencies: { heed: `file:${packed[0].filename}` } }));
  const data = join(proj, 'chats.jsonl');
  const rows = Array.from({ length: 12 }, (_, i) => ({ conversations: [{ from: 'human', value: `Name a number after ${i}.` }, { from: 'gpt', value: `${i + 1} comes after ${i}.` }] }));
  writeFileSync(data, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');

  writeFileSync(
    join(proj, 'app.mjs'),
    `import { fileURLToPath } from 'node:url';
import { initEngine, readConversations, loadTokenizer, DataPipeline, lossTokens, parseSpec, openModel, loadPromptSet, budgetSubset, loadIfsClassifier, scoreIfs, validateTrainConfig, train, HeedError } from 'heed';
const model = fileURLToPath(new URL('./node_modules/heed/models/tiny-dolly', import.meta.url));
await initEngine({ threads: 1 });
const { conversations, format } = await readConversations('chats.jsonl');
const pipe = new DataPipeline(loadTokenizer(model), { template: 'chatml', mask: 'output' });
const ex = pipe.prepare(conversations[0]).example;
const backend = await openModel(parseSpec(model), { maxTokens: 4 });
const [g] = await backend.gen.generate(['Name a colour.'], { maxTokens: 4 });
const prompts = budgetSubset(loadPromptSet().prompts, 2);
const ifs = await scoreIfs(backend.gen, loadIfsClassifier(), prompts, { variants: ['C'], maxTokens: 4, fits: (p) => backend.fits(p, 4) });
await backend.dispose();
const evals = [];
const cfg = validateTrainConfig({ model: process.argv[2], data: 'chats.jsonl', template: 'chatml', max_length: 64, batch_size: 4, steps: 2, eval: { split: 0.25 }, eval_every: 1, save_every: 100, lora: { r: 4, alpha: 8 }, out: 'runs', name: 'lib' }, 'app', process.cwd());
const s = await train(cfg, { quiet: true, callbacks: [{ name: 'spy', async onEval(ctx) { evals.push(ctx.step); return { metrics: { spy: ctx.step } }; } }] });
let refused = '';
try { validateTrainConfig({ model, data: 'chats.jsonl', lr: -1 }); } catch (e) { refused = e instanceof HeedError ? 'HeedError' : String(e); }
console.log(JSON.stringify({ format, conversations: conversations.length, exTokens: ex.ids.length, lossTokens: lossTokens(ex), generated: g.ids.length, ifs: ifs.scores[0].ifs.n, steps: s.steps, evals, final: s.exports?.final ?? null, refused }));
process.exit(0);
`,
  );
  const r = spawnSync(process.execPath, ['app.mjs', join(TINY, 'llama-gqa')], { cwd: proj, encoding: 'utf8', timeout: 90_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.equal(out.format, 'sharegpt');
  assert.equal(out.conversations, 12);
  assert.ok(out.lossTokens > 0 && out.lossTokens < out.exTokens, 'the output mask weights only the answer');
  assert.ok(out.generated > 0 && out.generated <= 4);
  assert.equal(out.ifs, 2);
  assert.equal(out.steps, 2);
  assert.deepEqual(out.evals, [1, 2]);
  assert.ok(out.final && existsSync(join(out.final, 'adapter_model.safetensors')));
  assert.equal(out.refused, 'HeedError');

  // the surface is deliberate: internal modules are not importable by path
  const deep = spawnSync(process.execPath, ['--input-type=module', '-e', "await import('heed/dist/cli/main.js')"], { cwd: proj, encoding: 'utf8' });
  assert.notEqual(deep.status, 0);
  assert.match(deep.stderr, /ERR_PACKAGE_PATH_NOT_EXPORTED/);

  // types: a .ts user of the API type-checks; a wrong use does not
  writeFileSync(join(proj, 'tsconfig.json'), JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: true, noEmit: true, types: ['node'] }, files: ['use.ts'] }));
  const good = `import { train, validateTrainConfig, openModel, scoreIfs, loadIfsClassifier, loadPromptSet, readConversations, type TrainerCallback, type RunSummary, type IfsScore, type ModelSpec, parseSpec } from 'heed';
const cb: TrainerCallback = { name: 'log', async onEval(ctx) { return { metrics: { seen: ctx.step + ctx.metrics.loss } }; } };
export async function run(model: string): Promise<number> {
  const spec: ModelSpec = parseSpec(model);
  const s: RunSummary = await train(validateTrainConfig({ model, data: 'chats.jsonl', steps: 1 }), { callbacks: [cb], log: (line: string) => console.log(line) });
  const b = await openModel(spec, { maxTokens: 8 });
  const res = await scoreIfs(b.gen, loadIfsClassifier(), loadPromptSet().prompts.slice(0, 2), { variants: ['C'] });
  const first: IfsScore = res.scores[0];
  const { conversations } = await readConversations('chats.jsonl', { format: 'sharegpt', onBadRow: 'skip' });
  return s.steps + first.ifs.value + first.ifs.ci[0] + conversations.length;
}
`;
  writeFileSync(join(proj, 'use.ts'), good);
  const ok = spawnSync(process.execPath, [TSC, '-p', '.'], { cwd: proj, encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  writeFileSync(join(proj, 'use.ts'), good.replace("{ format: 'sharegpt', onBadRow: 'skip' }", "{ format: 'csv' }"));
  const bad = spawnSync(process.execPath, [TSC, '-p', '.'], { cwd: proj, encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stdout + bad.stderr, /csv/);
});
