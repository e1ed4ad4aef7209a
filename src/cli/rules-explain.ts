import type { Command } from './main.js';
import { flags, parse } from './args.js';
import { HeedError } from '../errors.js';

const usage = 'heed rules explain --model <dir> [--rules preset|file.json] [--json]';

const options = flags({
  model: { type: 'string', short: 'm', arg: 'DIR', help: 'a model folder (tokenizer files alone are enough; or give it as the argument)' },
  rules: { type: 'string', arg: 'preset|file.json', default: 'default', help: 'the rules to explain (presets: default, hewitt-2024)' },
  json: { type: 'boolean', help: 'print the rows as JSON' },
});

export const command: Command = {
  path: ['rules', 'explain'],
  summary: 'show which token ids (and pieces) each rule of a rules adapter touches in a model tokenizer; a folder with only tokenizer files is enough',
  usage,
  options,
  async run(argv) {
    const { values, positionals } = parse(argv, options, usage);
    const dir = values.model ?? positionals[0];
    if (!dir) throw new HeedError('missing --model', `usage: ${usage}`);
    const { loadTokenizer } = await import('../io/tokenizer.js');
    const { loadRules, compileRules, pieceStyle } = await import('../decode/rules.js');
    const tok = loadTokenizer(dir);
    const rules = loadRules(values.rules);
    const c = compileRules(rules, tok);
    const piece = (i: number) => tok.idToToken(i) ?? `#${i}`;
    type Row = { rule: string; string: string; ids: number[]; pieces: string[]; delta: number | string };
    const rows: Row[] = [];
    if (rules.eos) {
      const ramp = `+${rules.eos.slope}·n/${rules.eos.cap} for 0<n<${rules.eos.cap}, then ${rules.eos.afterCap === 'hold' ? `+${rules.eos.slope}` : '0'}`;
      rows.push({ rule: 'eos', string: tok.eosToken ?? '', ids: c.eosIds, pieces: c.eosIds.map(piece), delta: ramp });
    }
    for (const t of c.tokens) rows.push({ rule: 'uniform', string: t.string, ids: t.ids, pieces: t.pieces, delta: t.delta });
    if (values.json) {
      console.log(JSON.stringify(rows, null, 2));
      return 0;
    }
    console.log(`rules      ${rules.name ?? values.rules ?? 'default'}${rules.description ? ` — ${rules.description}` : ''}`);
    console.log(`tokenizer  ${dir} (${pieceStyle(tok)} pieces, ${tok.vocabSize} ids)`);
    console.log(`weight     ${rules.weight} (next = argmax log_softmax(base) + ${rules.weight}·log_softmax(rules))`);
    console.log(`repetition ${rules.repetition ? `−${rules.repetition.penalty} once per distinct id already present, scope ${rules.repetition.scope}` : 'off'}`);
    console.log('');
    const w = Math.max(6, ...rows.map((r) => JSON.stringify(r.string).length));
    console.log(`${'rule'.padEnd(8)} ${'string'.padEnd(w)} ${'delta'.padStart(6)}  ids (pieces)`);
    for (const r of rows) {
      const ids = r.ids.length ? r.ids.map((i, k) => `${i} ${r.pieces[k]}`).join(', ') : `(no single token; encodes as ${JSON.stringify(tok.tokens(r.string))})`;
      const delta = typeof r.delta === 'number' ? (r.delta > 0 ? `+${r.delta}` : String(r.delta)) : 'ramp';
      console.log(`${r.rule.padEnd(8)} ${JSON.stringify(r.string).padEnd(w)} ${delta.padStart(6)}  ${ids}${typeof r.delta === 'string' ? `  [${r.delta}]` : ''}`);
    }
    return 0;
  },
};
