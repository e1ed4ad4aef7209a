/**
 * `heed ui`'s HTTP server (Node only): the runs dashboard on 127.0.0.1, its JSON API, and server-sent events
 * when a run's files change (the server checks every run's metrics.jsonl size/mtime, summary.json and
 * checkpoints every `pollMs`). Read-only: it never writes into the runs folder, and serves only the runs it
 * found (names are looked up, never joined into paths).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HeedError } from '../errors.js';
import { dashboardHtml } from './dashboard-page.js';
import { BROWSER_PACKAGES, trainPageHtml } from './train-page.js';
import { describeRun, findRuns, readRunSafe, runName, runSignature, viewRuns } from './runs.js';

export interface UiOptions {
  root: string;
  port?: number;
  host?: string;
  pollMs?: number;
  /**
   * The static build of the training page (`npm run build:web`), served at /train/. Default: the package's
   * dist-web/ when it holds an index.html; null (or no build): the import-map page over dist/.
   */
  webDir?: string | null;
}

export interface UiServer {
  url: string;
  /** what /train/ serves: the static build's folder, or "modules" (the import-map page over dist/) */
  trainPage: string;
  close(): Promise<void>;
}

/** The package root (dist/web/server.js or src/web/server.ts → two levels up). */
const PKG = fileURLToPath(new URL('../../', import.meta.url));
const TYPES: Record<string, string> = { '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8', '.map': 'application/json', '.wasm': 'application/wasm' };
/** what a static build may hold besides scripts */
const STATIC_TYPES: Record<string, string> = { ...TYPES, '.html': 'text/html; charset=utf-8', '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.svg': 'image/svg+xml', '.png': 'image/png', '.safetensors': 'application/octet-stream', '.jsonl': 'application/octet-stream' };
/** A file of the static build for /train/<rel> (index.html for /train/), never outside it. */
function webFile(webDir: string, pathname: string): string | undefined {
  const raw = decodeURIComponent(pathname.replace(/^\/train\/?/, ''));
  const rel = raw ? normalize(raw).replace(/^\/+/, '') : 'index.html';
  if (rel.split(/[\\/]/).includes('..') || !STATIC_TYPES[extname(rel)]) return undefined;
  const file = join(webDir, rel);
  return existsSync(file) && statSync(file).isFile() ? file : undefined;
}
/** What the training page may load: heed's compiled modules, and the browser builds of its npm dependencies. */
function staticFile(pathname: string): string | undefined {
  const rel = normalize(decodeURIComponent(pathname)).replace(/^\/+/, '');
  if (rel.includes('..') || !TYPES[extname(rel)]) return undefined;
  const ok = rel.startsWith('dist/') || Object.values(BROWSER_PACKAGES).some((p) => rel.startsWith(`node_modules/${p.split('/').slice(0, p.startsWith('@') ? 2 : 1).join('/')}/`));
  const file = join(PKG, rel);
  return ok && existsSync(file) && statSync(file).isFile() ? file : undefined;
}

export async function startUi(o: UiOptions): Promise<UiServer> {
  const root = resolve(o.root);
  if (!existsSync(root)) throw new HeedError(`${o.root}: no such folder`, 'pass the folder your runs go to (the config\'s "out", default runs/); create it first if no run has started yet');
  if (!statSync(root).isDirectory()) throw new HeedError(`${o.root}: not a folder`, 'pass the folder your runs go to (default runs/)');
  const defaultWeb = join(PKG, 'dist-web');
  const webDir = o.webDir === null ? undefined : o.webDir !== undefined ? resolve(o.webDir) : existsSync(join(defaultWeb, 'index.html')) ? defaultWeb : undefined;
  if (webDir && !existsSync(join(webDir, 'index.html'))) throw new HeedError(`${o.webDir}: no index.html (not a build of the training page)`, 'run npm run build:web, which writes dist-web/');
  const host = o.host ?? '127.0.0.1';
  const pollMs = o.pollMs ?? 500;
  const clients = new Set<ServerResponse>();
  const runs = () => new Map(findRuns(root).map((d) => [runName(root, d), d]));

  let last = new Map<string, string>();
  const tick = () => {
    const now = new Map<string, string>();
    for (const [name, dir] of runs()) now.set(name, runSignature(dir));
    const changed = [...now].filter(([k, v]) => last.get(k) !== v).map(([k]) => k);
    const gone = [...last.keys()].filter((k) => !now.has(k));
    last = now;
    if (changed.length || gone.length) for (const c of clients) c.write(`data: ${JSON.stringify({ changed, gone })}\n\n`);
  };

  const send = (res: ServerResponse, code: number, type: string, body: string | Buffer) => {
    // cross-origin isolation: SharedArrayBuffer for jax-js's wasm thread pool in the page
    res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store', 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' });
    res.end(body);
  };
  const json = (res: ServerResponse, body: unknown, code = 200) => send(res, code, 'application/json; charset=utf-8', JSON.stringify(body));

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, { error: 'read-only server: GET only' }, 405);
    if (url.pathname === '/' || url.pathname === '/index.html') return send(res, 200, 'text/html; charset=utf-8', dashboardHtml(o.root, [{ href: '/train/', label: 'fine-tune in the browser' }]));
    if (url.pathname === '/train') {
      res.writeHead(301, { location: '/train/' }); // the page's URLs are relative to /train/
      return res.end();
    }
    if (webDir && url.pathname.startsWith('/train/')) {
      const f = webFile(webDir, url.pathname);
      return f ? send(res, 200, STATIC_TYPES[extname(f)], readFileSync(f)) : send(res, 404, 'text/plain; charset=utf-8', `not found: ${url.pathname}`);
    }
    if (url.pathname === '/train/') {
      if (!existsSync(join(PKG, 'dist/web/train-app.js'))) return send(res, 503, 'text/plain; charset=utf-8', 'the training page needs the compiled modules: run npm run build in the heed folder');
      return send(res, 200, 'text/html; charset=utf-8', trainPageHtml());
    }
    // the IFS classifier and prompt set, which the page loads into its in-memory file system (src/eval/ifs reads them)
    const ifsFile = /^\/train\/data\/ifs\/(classifier\.safetensors|prompts\.jsonl)$/.exec(url.pathname);
    if (ifsFile) return send(res, 200, 'application/octet-stream', readFileSync(join(PKG, 'data/ifs', ifsFile[1])));
    const file = staticFile(url.pathname);
    if (file) return send(res, 200, TYPES[extname(file)], readFileSync(file));
    if (url.pathname === '/api/runs') {
      const now = Date.now();
      const list = [...runs().values()].map((d) => describeRun(root, d, now));
      list.sort((a, b) => (a.status === 'running') !== (b.status === 'running') ? (a.status === 'running' ? -1 : 1) : b.updated - a.updated);
      return json(res, list);
    }
    if (url.pathname === '/api/view') {
      const all = runs();
      const wanted = (url.searchParams.get('runs') ?? '').split('\n').filter(Boolean);
      const unknown = wanted.filter((w) => !all.has(w));
      if (unknown.length) return json(res, { error: `unknown run(s): ${unknown.join(', ')}` }, 404);
      return json(res, viewRuns(wanted.map((w) => readRunSafe(all.get(w)!, w))));
    }
    if (url.pathname === '/api/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      res.write('retry: 2000\n\n');
      clients.add(res);
      req.on('close', () => clients.delete(res));
      return;
    }
    return send(res, 404, 'text/plain; charset=utf-8', `not found: ${url.pathname}`);
  };

  const server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (e) {
      json(res, { error: e instanceof HeedError ? e.oneLine() : (e as Error).message }, 500);
    }
  });
  await new Promise<void>((ok, bad) => {
    server.once('error', (e: NodeJS.ErrnoException) => bad(e.code === 'EADDRINUSE' ? new HeedError(`port ${o.port} on ${host} is in use`, 'pass another --port, or --port 0 for a free one') : e));
    server.listen(o.port ?? 0, host, () => ok());
  });
  // timers start once the port is ours (a failed listen must leave nothing running)
  tick();
  const timer = setInterval(tick, pollMs);
  const beat = setInterval(() => {
    for (const c of clients) c.write(': keep-alive\n\n');
  }, 15000);
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : o.port;
  return {
    url: `http://${host}:${port}/`,
    trainPage: webDir ?? 'modules',
    close: () =>
      new Promise<void>((ok) => {
        clearInterval(timer);
        clearInterval(beat);
        for (const c of clients) c.end();
        clients.clear();
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}
