import type { Command } from './main.js';
import { flags, parse } from './args.js';
import { HeedError } from '../errors.js';

const usage = 'heed ifs classify <file.jsonl> [--json] [--classifier F]';

const options = flags({
  json: { type: 'boolean', help: 'one JSON line per row (with label, label_name, prob) and a totals line' },
  classifier: { type: 'string', arg: 'FILE', default: 'data/ifs/classifier.safetensors', help: 'the IFS response classifier' },
});

export const command: Command = {
  path: ['ifs', 'classify'],
  summary: 'label texts (JSONL rows with a "text" field) as answer-like or continuation-like with the IFS classifier',
  usage,
  options,
  async run(argv) {
    const { values, positionals } = parse(argv, options, usage);
    if (positionals.length !== 1) throw new HeedError(positionals.length ? 'give one file' : 'missing input file', `usage: ${usage}`);
    if (positionals[0].trim() === '') throw new HeedError('the input file name is empty (classify takes a JSONL file of {"text": ...} rows, not a text)', `write the texts to a file, one {"text": "..."} per line; usage: ${usage}`);
    const { loadIfsClassifier } = await import('../eval/ifs/classifier.js');
    const { readJsonlRows } = await import('../eval/jsonl.js');
    const c = loadIfsClassifier(values.classifier);
    const rows = readJsonlRows(positionals[0]);
    let ok = 0, answers = 0;
    const bad: Array<{ line: number; error: string }> = [];
    for (const r of rows) {
      let error = r.error;
      if (r.value && typeof r.value.text !== 'string') error = 'no "text" string field';
      if (error || !r.value) {
        bad.push({ line: r.line, error: error! });
        if (values.json) console.log(JSON.stringify({ line: r.line, error }));
        continue;
      }
      // trimmed as `heed ifs` scores responses: an empty text is not answer-like (label 0, probability 0)
      const text = (r.value.text as string).trim();
      const res = text ? c.classify(text) : { label: 0 as const, name: 'continuation', prob: 0 };
      ok++;
      answers += res.label;
      if (values.json) console.log(JSON.stringify({ ...r.value, label: res.label, label_name: res.name, prob: Number(res.prob.toFixed(6)) }));
      else console.log(`${String(r.line).padStart(5)}  ${res.name.padEnd(12)} ${res.prob.toFixed(3)}  ${JSON.stringify((r.value.text as string).slice(0, 70))}`);
    }
    const summary = { rows: ok, answer: answers, continuation: ok - answers, answer_share: ok ? answers / ok : 0, bad: bad.length };
    if (values.json) console.log(JSON.stringify({ totals: summary }));
    else {
      console.log(`total ${ok}: ${answers} answer, ${ok - answers} continuation (answer share ${summary.answer_share.toFixed(3)})${bad.length ? `; ${bad.length} bad row(s)` : ''}`);
      for (const b of bad.slice(0, 10)) console.error(`[line ${b.line}: ${b.error}]`);
    }
    return 0;
  },
};
