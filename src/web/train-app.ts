/**
 * The browser training page: the user's model folder and JSONL file go into the tab's in-memory file system
 * (src/web/browser/fs.ts; nothing is uploaded), and then the same modules as the CLI run on them: DataPipeline +
 * computeStats (`heed data stats`), streamDataset + rowJson (`heed data inspect`), train() with LoRA (`heed
 * train`), EngineGenerator (`heed generate`). WebGPU when the browser has it, else wasm, said on the page.
 */
import './browser/globals.js'; // must stay the first import: process/Buffer before heed's modules load
import { putFile, listFiles, fileBytes, readFileSync, existsSync, rmSync } from './browser/fs.js';
import { initEngine, type EngineInfo } from '../engine/index.js';
import { HeedError } from '../errors.js';
import { loadTokenizer } from '../io/tokenizer.js';
import { readModelConfig, parameterCount } from '../models/config.js';
import { loadModel, disposeParams } from '../models/load.js';
import { DataPipeline } from '../data/pipeline.js';
import { computeStats } from '../data/stats.js';
import { newReport, streamDataset } from '../data/dataset.js';
import { rowJson } from '../data/inspect.js';
import { parseTruncation } from '../data/truncate.js';
import { validateTrainConfig } from '../train/config.js';
import { train } from '../train/trainer.js';
import { EngineGenerator } from '../decode/generate.js';
import { lineChart } from '../report/svg.js';
import { zip } from './zip.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const MODEL = '/model';
const DATA = '/data.jsonl';
const RUNS = '/runs';
/** weights above this are refused before loading: f32 params + LoRA training state must fit a tab's memory */
export const MAX_WEIGHT_BYTES = 1.5 * 2 ** 30;

let engine: EngineInfo | undefined;
let checkpoint: string | undefined;
const interrupt = { stop: false };

function say(id: string, text: string, cls = '') {
  const el = $(id);
  el.textContent = text;
  el.className = cls;
}
function fail(e: unknown) {
  const msg = e instanceof HeedError ? e.oneLine() : (e as Error).message;
  say('error', msg, 'error');
  document.body.dataset.error = msg;
}
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

async function startEngine(): Promise<EngineInfo> {
  if (engine) return engine;
  try {
    engine = await initEngine({ device: 'webgpu', threads: 1 });
    say('device', 'training on WebGPU', 'ok');
  } catch (e) {
    engine = await initEngine({ device: 'wasm', threads: 1 });
    say('device', `WebGPU is not available in this browser (${e instanceof HeedError ? e.message : (e as Error).message}): training on wasm (CPU), slower`, 'warn');
  }
  document.body.dataset.device = engine.device;
  return engine;
}

async function loadModelFiles(list: FileList | File[]) {
  const files = [...list];
  if (!files.length) return;
  // a picked folder: "name/config.json"; dropped or multi-selected files: "config.json"
  const rel = (f: File) => ((f as File & { webkitRelativePath?: string }).webkitRelativePath || f.name).split('/').slice(-1)[0];
  const weights = files.filter((f) => rel(f).endsWith('.safetensors')).reduce((s, f) => s + f.size, 0);
  const names = files.map(rel);
  if (!names.includes('config.json')) throw new HeedError('the model folder has no config.json', 'pick a Hugging Face model folder (config.json, model.safetensors, tokenizer.json)');
  if (!names.includes('tokenizer.json')) throw new HeedError('the model folder has no tokenizer.json', 'pick a Hugging Face model folder with its tokenizer (tokenizer.json)');
  if (weights > MAX_WEIGHT_BYTES) throw new HeedError(`the weights are ${(weights / 2 ** 30).toFixed(2)} GiB: too big for a browser tab (limit ${(MAX_WEIGHT_BYTES / 2 ** 30).toFixed(1)} GiB with LoRA training state)`, 'pick a smaller model, or train it with heed train on the command line');
  rmSync(MODEL, { recursive: true, force: true }); // a new pick replaces the old folder, files and all
  delete document.body.dataset.model;
  for (const f of files) if (!/\.(bin|pt|pth|gguf)$/.test(rel(f))) putFile(`${MODEL}/${rel(f)}`, new Uint8Array(await f.arrayBuffer()));
  const { config } = readModelConfig(MODEL); // unsupported architectures fail here with heed's own message
  loadTokenizer(MODEL);
  say('model-info', `${config.modelType} · ${(parameterCount(config) / 1e6).toFixed(2)}M parameters · ${(weights / 2 ** 20).toFixed(1)} MiB of weights`, 'ok');
  document.body.dataset.model = 'loaded';
  await maybeInspect();
}

async function loadDataFile(f: File | undefined) {
  if (!f) return;
  putFile(DATA, new Uint8Array(await f.arrayBuffer()));
  say('data-info', `${f.name}: ${(f.size / 1024).toFixed(1)} KiB`, 'ok');
  document.body.dataset.data = 'loaded';
  await maybeInspect();
}

function pipeline() {
  const tok = loadTokenizer(MODEL);
  return new DataPipeline(tok, { template: ($('template') as HTMLSelectElement).value, mask: ($('mask') as HTMLSelectElement).value });
}
const dataOpts = () => ({ onBadRow: 'fail' as const, maxLength: Number(($('max-length') as HTMLInputElement).value), truncation: parseTruncation('drop') });

/** data stats and the mask preview: the code behind heed data stats / heed data inspect */
async function maybeInspect() {
  if (!existsSync(`${MODEL}/config.json`) || !existsSync(DATA)) return;
  say('error', '');
  const p = pipeline();
  const s = await computeStats(DATA, p, dataOpts());
  $('stats').innerHTML = `<table><tr><th>rows</th><td>${s.rows.good} good, ${s.rows.kept} kept, ${s.rows.dropped} dropped (longer than ${s.maxLength})</td></tr><tr><th>tokens</th><td>${s.tokens.total} (mean ${s.tokens.perRow.mean.toFixed(1)}/row, max ${s.tokens.perRow.max})</td></tr><tr><th>loss-bearing</th><td>${s.loss.keptTokens} tokens</td></tr><tr><th>instruction/output</th><td>${Number.isFinite(s.ratio.ratio) ? s.ratio.ratio.toFixed(2) : '—'}: ${esc(s.ratio.reading)}</td></tr><tr><th>template · mask</th><td>${esc(s.template)} · ${esc(s.mask)}</td></tr></table>`;
  const rows: string[] = [];
  const report = newReport(DATA, 'fail');
  for await (const it of streamDataset(DATA, p, dataOpts(), report)) {
    const r = rowJson(it.example ?? it.prepared.example, p.enc);
    rows.push(`<div class="row"><span class="id">${esc(r.id)}</span>${r.runs.map((x) => `<span class="w" style="background:rgba(22,163,74,${(0.15 + 0.6 * x.weight) * (x.weight > 0 ? 1 : 0)})" title="weight ${x.weight}">${esc(x.text)}</span>`).join('')}</div>`);
    if (rows.length >= 3) break;
  }
  $('preview').innerHTML = rows.join('');
  document.body.dataset.inspected = String(s.rows.kept);
  ($('start') as HTMLButtonElement).disabled = s.rows.kept === 0;
}

function drawLoss() {
  if (!existsSync(`${RUNS}/web/metrics.jsonl`)) return 0;
  const ms = (readFileSync(`${RUNS}/web/metrics.jsonl`, 'utf8') as string).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  $('loss').innerHTML = lineChart({ id: 'web-loss', title: 'Training loss (LoRA)', xLabel: 'step', yLabel: 'loss', series: [{ name: 'loss', points: ms.map((m) => [m.step, m.loss] as [number, number]) }], width: 640, height: 260 });
  $('loss').dataset.points = String(ms.length);
  return ms.length;
}

async function startTraining() {
  ($('start') as HTMLButtonElement).disabled = true;
  ($('stop') as HTMLButtonElement).disabled = false;
  ($('download') as HTMLButtonElement).disabled = true;
  checkpoint = undefined;
  interrupt.stop = false;
  const info = await startEngine();
  const steps = Number(($('steps') as HTMLInputElement).value);
  const cfg = validateTrainConfig({
    model: MODEL, data: DATA, template: ($('template') as HTMLSelectElement).value, mask: ($('mask') as HTMLSelectElement).value,
    max_length: Number(($('max-length') as HTMLInputElement).value), truncation: 'drop', batch_size: 2, steps, lr: Number(($('lr') as HTMLInputElement).value),
    warmup_steps: Math.min(5, steps - 1), eval_every: steps + 1, save_every: steps + 1, seed: 1, out: RUNS, name: 'web', device: info.device,
    lora: { r: 8, alpha: 16 },
  });
  const timer = setInterval(drawLoss, 250);
  say('status', 'training…');
  try {
    const s = await train(cfg, { quiet: true, interrupt });
    checkpoint = s.last_checkpoint ?? undefined;
    say('status', `${s.interrupted ? 'stopped' : 'done'} at step ${s.steps} (${Number(s.tokens_per_s).toFixed(0)} tokens/s on ${info.device})`, 'ok');
    document.body.dataset.trained = String(s.steps);
    ($('download') as HTMLButtonElement).disabled = !checkpoint;
    ($('generate') as HTMLButtonElement).disabled = !checkpoint;
  } finally {
    clearInterval(timer);
    drawLoss();
    ($('stop') as HTMLButtonElement).disabled = true;
    ($('start') as HTMLButtonElement).disabled = false;
  }
}

async function generateBoth() {
  if (!checkpoint) return;
  await startEngine();
  const prompt = ($('prompt') as HTMLInputElement).value;
  for (const [dir, out] of [[MODEL, 'gen-base'], [checkpoint, 'gen-tuned']] as const) {
    const m = await loadModel(dir);
    const g = new EngineGenerator(m);
    const [r] = await g.generate([prompt], { maxTokens: 24, temperature: 0 });
    $(out).textContent = r.text;
    g.dispose();
    disposeParams(m.params);
  }
  document.body.dataset.generated = '1';
}

/** The tuned checkpoint as a Hugging Face folder (zip): weights, config, tokenizer, PEFT adapter; no trainer state. */
function download() {
  if (!checkpoint) return;
  const files = listFiles(checkpoint).filter((f) => !/\/(optimizer\.safetensors|trainer_state\.json)$/.test(f));
  const name = 'heed-lora-tuned';
  const blob = new Blob([zip(files.map((f) => ({ name: `${name}/${f.slice(checkpoint!.length + 1)}`, data: fileBytes(f)! })))  as BlobPart], { type: 'application/zip' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `${name}.zip`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const guard = (f: (...a: any[]) => Promise<void> | void) => async (...a: any[]) => {
  try {
    await f(...a);
  } catch (e) {
    fail(e);
  }
};
$('model-files').addEventListener('change', guard(() => loadModelFiles(($('model-files') as HTMLInputElement).files!)));
$('model-dir').addEventListener('change', guard(() => loadModelFiles(($('model-dir') as HTMLInputElement).files!)));
$('data-file').addEventListener('change', guard(() => loadDataFile(($('data-file') as HTMLInputElement).files![0])));
for (const id of ['template', 'mask', 'max-length']) $(id).addEventListener('change', guard(maybeInspect));
$('start').addEventListener('click', guard(startTraining));
$('stop').addEventListener('click', () => {
  interrupt.stop = true;
  say('status', 'stopping after this step…');
});
$('generate').addEventListener('click', guard(generateBoth));
$('download').addEventListener('click', guard(download));
document.addEventListener('dragover', (e) => e.preventDefault());
document.addEventListener('drop', guard(async (e: DragEvent) => {
  e.preventDefault();
  const files = [...(e.dataTransfer?.files ?? [])];
  const data = files.find((f) => /\.jsonl?$/.test(f.name));
  const model = files.filter((f) => f !== data);
  if (model.length) await loadModelFiles(model);
  if (data) await loadDataFile(data);
}));
void guard(async () => {
  await startEngine();
  document.body.dataset.ready = '1';
})();
