/**
 * `npm run build:web`: the training page as a static web app, bundled by Vite into dist-web/ (index.html, assets/,
 * data/ifs/ — the IFS classifier and prompt set the page fetches). Any static server hosts it from any path
 * (relative URLs); `heed ui` serves it at /train/ when it exists. The bundle is heed's own modules, as the
 * import-map page runs them: node:* builtins the modules use resolve to the shims in src/web/browser/, npm
 * packages to their browser builds; what only Node code paths reach (dynamic imports of node:child_process,
 * node-llama-cpp, openai, webgpu, …) stays an external import in a chunk the page never loads.
 */
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { NODE_SHIMS, trainPageHtml } from './train-page.js';

const PKG = fileURLToPath(new URL('../../', import.meta.url));
/** packages only Node code paths import (dynamically): left out of the bundle */
const NODE_ONLY = ['node-llama-cpp', 'openai', 'webgpu', 'playwright-core'];
export const IFS_FILES = ['classifier.safetensors', 'prompts.jsonl'];

export interface WebBuild {
  outDir: string;
  files: number;
  bytes: number;
  seconds: number;
}

export async function buildWeb(outDir = join(PKG, 'dist-web'), o: { quiet?: boolean } = {}): Promise<WebBuild> {
  const t0 = performance.now();
  const { build } = await import('vite');
  const out = resolve(outDir);
  // Vite builds from an HTML entry: the page's HTML in a scratch root, its script the TypeScript source
  const root = join(PKG, '.tmp', 'web-build');
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'index.html'), trainPageHtml({ script: '/src/web/train-app.ts' }));
  const alias = NODE_SHIMS.map((n) => ({ find: new RegExp(`^(node:)?${n}$`), replacement: join(PKG, 'src/web/browser', `${n}.ts`) }));
  // the external test sees ids before the aliases: the shimmed builtins must not be external
  const builtins = new Set(builtinModules.filter((m) => !NODE_SHIMS.includes(m)).flatMap((m) => [m, `node:${m}`]));
  const res = await build({
    configFile: false,
    root,
    base: './',
    logLevel: o.quiet ? 'warn' : 'info',
    resolve: { alias: [{ find: /^\/src\//, replacement: join(PKG, 'src') + '/' }, ...alias] },
    build: {
      outDir: out,
      emptyOutDir: true,
      target: 'es2022',
      sourcemap: true,
      chunkSizeWarningLimit: 8192,
      rollupOptions: {
        external: (id: string) => builtins.has(id) || NODE_ONLY.some((p) => id === p || id.startsWith(`${p}/`)),
      },
    },
  });
  rmSync(root, { recursive: true, force: true });
  mkdirSync(join(out, 'data', 'ifs'), { recursive: true });
  for (const f of IFS_FILES) copyFileSync(join(PKG, 'data', 'ifs', f), join(out, 'data', 'ifs', f));
  const outputs = (Array.isArray(res) ? res : [res]).flatMap((r) => ('output' in r ? r.output : []));
  const bytes = outputs.reduce((s, x) => s + ('code' in x ? x.code.length : typeof x.source === 'string' ? x.source.length : x.source.byteLength), 0);
  return { outDir: out, files: outputs.length + IFS_FILES.length, bytes, seconds: (performance.now() - t0) / 1000 };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const r = await buildWeb(process.argv[2]);
  process.stdout.write(`dist-web: ${r.files} files, ${(r.bytes / 2 ** 20).toFixed(1)} MiB of bundle in ${r.seconds.toFixed(1)} s → ${r.outDir}\nserve it with heed ui (at /train/) or any static server, e.g. npx vite preview --outDir dist-web\n`);
}
