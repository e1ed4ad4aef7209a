#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (built by `npm install` through the `prepare` script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  console.error('error: heed is not built (fix: run `npm install` or `npm run build` in the heed folder)');
  process.exit(2);
}
// a closed output pipe (heed data inspect ... | head) ends the command quietly, as other command-line tools do
for (const s of [process.stdout, process.stderr]) s.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});
const { run } = await import(main.href);
const code = await run(process.argv.slice(2));
// The engine's worker threads may keep the event loop alive: exit once stdout/stderr have drained.
const drain = (s) => new Promise((r) => (s.writableNeedDrain ? s.once('drain', r) : r()));
await Promise.all([drain(process.stdout), drain(process.stderr)]);
process.exit(code);
