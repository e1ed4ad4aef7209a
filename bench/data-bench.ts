/**
 * Data pipeline benchmark (not a test): tokenize + mask + pack a data file.
 *   npm run bench:data [-- --data F --model DIR --template T --mask M --seq-len N]
 * Defaults: ../shared/data/lima.jsonl, the SmolLM2-135M-Instruct tokenizer, its ChatML format, the
 * output mask, rows truncated (right) and packed to 2048 tokens. Writes bench/results/data-bench.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { DataPipeline } from '../src/data/pipeline.js';
import { newReport, streamDataset } from '../src/data/dataset.js';
import { defaultPadId, packExamples } from '../src/data/pack.js';
import type { Example } from '../src/data/types.js';

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: fileURLToPath(new URL('../../shared/data/lima.jsonl', import.meta.url)) },
    model: { type: 'string', default: fileURLToPath(new URL('../../shared/tokenizers/SmolLM2-135M-Instruct', import.meta.url)) },
    template: { type: 'string', default: 'chatml' },
    mask: { type: 'string', default: 'output' },
    'seq-len': { type: 'string', default: '2048' },
  },
});
const seqLen = Number(values['seq-len']);

const t0 = performance.now();
const tok = loadTokenizer(values.model!);
const pipeline = new DataPipeline(tok, { template: values.template, mask: values.mask });
const t1 = performance.now();
const report = newReport(values.data!, 'skip');
const examples: Example[] = [];
let tokens = 0;
for await (const it of streamDataset(values.data!, pipeline, { onBadRow: 'skip', maxLength: seqLen, truncation: 'truncate-right' }, report)) {
  tokens += it.prepared.example.ids.length;
  if (it.example) examples.push(it.example);
}
const t2 = performance.now();
const packs = packExamples(examples, { seqLen, padId: defaultPadId(tok) });
const t3 = performance.now();

const rows = report.load.rows;
const prepS = (t2 - t1) / 1000;
const totalS = (t3 - t1) / 1000;
const used = packs.reduce((a, p) => a + p.length, 0);
const result = {
  date: new Date().toISOString(),
  node: process.version,
  cpus: cpus().length,
  data: values.data,
  model: values.model,
  template: pipeline.template.name,
  mask: pipeline.maskName,
  seqLen,
  rows,
  badRows: report.bad.count,
  tokens,
  keptRows: examples.length,
  truncatedRows: report.truncation.truncated,
  packs: packs.length,
  packFill: used / (packs.length * seqLen),
  seconds: { loadTokenizer: (t1 - t0) / 1000, tokenizeAndMask: prepS, pack: (t3 - t2) / 1000, total: totalS },
  rowsPerSecond: rows / totalS,
  tokensPerSecond: tokens / totalS,
};
console.log(
  `${rows} rows, ${tokens.toLocaleString('en-US')} tokens: tokenize+mask ${prepS.toFixed(2)} s, pack ${result.seconds.pack.toFixed(3)} s, total ${totalS.toFixed(2)} s ` +
    `(${Math.round(result.rowsPerSecond)} rows/s, ${Math.round(result.tokensPerSecond).toLocaleString('en-US')} tokens/s); ${packs.length} packs of ${seqLen}, ${(100 * result.packFill).toFixed(1)}% full; tokenizer load ${result.seconds.loadTokenizer.toFixed(2)} s`,
);
const dir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(dir, { recursive: true });
writeFileSync(dir + 'data-bench.json', JSON.stringify(result, null, 2) + '\n');
console.log(`wrote ${dir}data-bench.json`);
