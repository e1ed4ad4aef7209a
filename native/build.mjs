// Optional build of the native GEMM addon (native/build/Release/heed_gemm.node) with node-gyp, offline.
// `npm run build:native`. Never fails the caller: without a compiler, node-gyp or Node's headers it prints
// why and exits 0, and heed keeps using the wasm engine. HEED_NATIVE_STRICT=1 makes a failed build exit 1.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const strict = process.env.HEED_NATIVE_STRICT === '1';
const done = (ok, msg) => {
  console.error(`heed native: ${msg}`);
  process.exit(ok || !strict ? 0 : 1);
};

// node-gyp: a local devDependency if there is one, else the copy bundled with npm
const prefix = path.resolve(path.dirname(process.execPath), '..');
const candidates = [
  path.join(here, '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  path.join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
];
const gyp = candidates.find((p) => existsSync(p));
if (!gyp) done(false, 'node-gyp not found (neither in node_modules nor bundled with npm); using the wasm engine');

// Node's headers: those installed with this node (Debian: /usr/include/node), so nothing is downloaded
const args = [gyp, 'rebuild', '--directory', here];
if (process.env.npm_config_nodedir) args.push(`--nodedir=${process.env.npm_config_nodedir}`);
else if (existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
else done(false, `Node's headers not found under ${path.join(prefix, 'include', 'node')} (set npm_config_nodedir); using the wasm engine`);

const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, npm_config_offline: 'true' } });
const out = path.join(here, 'build', 'Release', 'heed_gemm.node');
if (r.status === 0 && existsSync(out)) done(true, `built ${path.relative(process.cwd(), out)}`);
done(false, `build failed (node-gyp exited ${r.status ?? r.signal}); using the wasm engine`);
