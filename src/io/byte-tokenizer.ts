/**
 * A byte-level BPE tokenizer.json (GPT-2 byte→unicode alphabet, optional merges) built by project code, for
 * tiny test models and small pretraining runs. The result is a standard Hugging Face tokenizer.json.
 */

/** GPT-2's bytes_to_unicode table: byte value → printable character. */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let i = 33; i <= 126; i++) bs.push(i);
  for (let i = 161; i <= 172; i++) bs.push(i);
  for (let i = 174; i <= 255; i++) bs.push(i);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  const table: string[] = new Array(256);
  bs.forEach((b, i) => (table[b] = String.fromCharCode(cs[i])));
  return table;
}

export interface ByteTokenizerSpec {
  /** special tokens, given ids 0..k-1 in this order */
  specials: string[];
  /** merges as pairs of existing token strings, in priority order; each adds one token */
  merges?: Array<[string, string]>;
}

export function byteLevelTokenizerJson(spec: ByteTokenizerSpec): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  let id = 0;
  const added = spec.specials.map((content) => ({ id: id++, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  for (const a of added) vocab[a.content] = a.id;
  for (const ch of bytesToUnicode()) vocab[ch] = id++;
  for (const [a, b] of spec.merges ?? []) {
    if (vocab[a + b] === undefined) vocab[a + b] = id++;
  }
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: (spec.merges ?? []).map(([a, b]) => [a, b]) },
  };
}
