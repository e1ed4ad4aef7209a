/**
 * The training page's HTML. Its script is heed's own compiled modules (dist/), loaded as ES modules; an import
 * map points the npm packages at their browser builds and node:* at the shims in src/web/browser/.
 */
export const BROWSER_PACKAGES: Record<string, string> = {
  '@jax-js/jax': '@jax-js/jax/dist/index.js',
  '@huggingface/tokenizers': '@huggingface/tokenizers/dist/tokenizers.mjs',
  '@huggingface/jinja': '@huggingface/jinja/dist/index.js',
  yaml: 'yaml/browser/index.js',
  zod: 'zod/index.js',
};
export const NODE_SHIMS = ['fs', 'path', 'os', 'v8', 'url', 'buffer', 'worker_threads', 'crypto'];

/**
 * The page. Default: heed ui's import-map page over dist/. `{ script }`: the page without an import map, for the
 * Vite build (src/web/build.ts), whose bundle resolves the same names at build time.
 */
export function trainPageHtml(o: { script?: string } = {}): string {
  const imports: Record<string, string> = {};
  for (const [k, v] of Object.entries(BROWSER_PACKAGES)) imports[k] = `/node_modules/${v}`;
  for (const n of NODE_SHIMS) imports[`node:${n}`] = `/dist/web/browser/${n}.js`;
  const script = o.script ?? '/dist/web/train-app.js';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>heed · fine-tune in this tab</title>
${o.script ? '' : `<script type="importmap">${JSON.stringify({ imports })}</script>`}
<style>
body{font-family:system-ui,sans-serif;max-width:1100px;margin:0 auto;padding:12px 18px;color:#111}
h1{font-size:20px}h2{font-size:15px;margin:14px 0 6px}section{border:1px solid #e5e7eb;border-radius:8px;padding:8px 12px;margin:10px 0}
.ok{color:#15803d}.warn{color:#b45309}.error{color:#b91c1c;font-weight:600}
table{border-collapse:collapse;font-size:13px}td,th{border-bottom:1px solid #eee;padding:3px 8px;text-align:left}
.row{font-family:ui-monospace,monospace;font-size:12px;white-space:pre-wrap;border-left:3px solid #e5e7eb;padding:4px 8px;margin:6px 0}
.row .id{color:#6b7280;margin-right:8px}.gens{display:grid;grid-template-columns:1fr 1fr;gap:12px}
pre{white-space:pre-wrap;background:#f9fafb;padding:8px;min-height:3em;font-size:12px}
.charts{display:flex;flex-wrap:wrap;gap:8px}
label{margin-right:12px;font-size:13px}input[type=number]{width:5em}
</style></head><body>
<h1>Fine-tune in this tab <span style="font-weight:normal;font-size:13px"><a href="/">← runs dashboard</a></span></h1>
<p style="font-size:13px">Files you pick stay in this tab (an in-memory file system): nothing is uploaded. The code is heed's own (data, LoRA trainer, generation), the same modules as the CLI. <span id="device">starting the engine…</span></p>
<p id="error"></p>
<section><h2>1 · Model folder and data</h2>
<label>model folder <input type="file" id="model-dir" webkitdirectory multiple></label>
<label>or its files <input type="file" id="model-files" multiple></label>
<label>JSONL data <input type="file" id="data-file" accept=".jsonl,.json"></label>
<div style="font-size:13px">(or drop the files on the page) · <span id="model-info"></span> · <span id="data-info"></span></div></section>
<section><h2>2 · Data: stats and loss mask (as heed data stats / inspect)</h2>
<label>template <select id="template"><option>plain</option><option>alpaca</option><option>chatml</option><option>tulu</option><option value="auto">auto</option></select></label>
<label>mask <select id="mask"><option>output</option><option>instruction</option><option>response-only</option><option>last-turn</option></select></label>
<label>max length <input type="number" id="max-length" value="64" min="8"></label>
<div id="stats"></div><div id="preview"></div><p style="font-size:12px;color:#555">Green = loss-bearing tokens (darker = larger weight).</p></section>
<section><h2>3 · LoRA fine-tuning</h2>
<label>steps <input type="number" id="steps" value="40" min="2"></label><label>lr <input type="number" id="lr" value="0.003" step="0.001"></label>
<label>IFS every <input type="number" id="ifs-every" value="10" min="0"> steps</label><label>on <input type="number" id="ifs-budget" value="16" min="2"> prompts</label><label>variant <select id="ifs-variant"><option>C</option><option>A</option><option>B</option></select></label>
<button id="start" disabled>start</button> <button id="stop" disabled>stop</button> <span id="status"></span>
<div class="charts"><div id="loss"></div><div id="ifs"></div></div></section>
<section><h2>4 · Generate: base vs tuned, and download</h2>
<input id="prompt" value="Name a color." size="40"> <button id="generate" disabled>generate (greedy)</button>
<button id="download" disabled>download tuned model (Hugging Face folder, .zip)</button>
<button id="download-gguf" disabled>download GGUF (f32, for llama.cpp)</button> <span id="download-info" style="font-size:12px"></span>
<div class="gens"><div><b>base</b><pre id="gen-base"></pre></div><div><b>tuned</b><pre id="gen-tuned"></pre></div></div></section>
<script type="module" src="${script}"></script>
</body></html>
`;
}
