/**
 * Reading data files: JSONL (streamed) and JSON arrays (read whole).
 *
 * JSONL is streamed chunk by chunk and split into lines on the byte 0x0A, then each line is decoded
 * with a fatal UTF-8 decoder. (node:readline would decode the stream itself and silently replace invalid
 * bytes with U+FFFD; splitting bytes first is what lets an invalid line become a reported bad row.)
 * Memory use is one chunk plus the longest line, so files larger than memory work.
 *
 * A JSON array is read whole (the file must fit in memory), decoded fatally, and split into its
 * top-level elements by a small scanner that remembers the line each element starts on, so a broken
 * element is reported with its line and the other elements still load.
 */
import { closeSync, createReadStream, lstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { HeedError, fromSystemError } from '../errors.js';
import type { BadRow } from './types.js';

export type FileKind = 'jsonl' | 'json';

export interface RawRecord {
  line: number;
  value?: unknown;
  bad?: BadRow;
}

export interface ReadInfo {
  kind: FileKind;
  /** blank lines of a JSONL file (not rows; counted so nothing disappears unseen) */
  blankLines: number;
}

const EMPTY_FIX = 'a data file holds one JSON object per line (JSONL) or one JSON array of objects';

function isDanglingLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

const NOT_YET = 'heed reads JSONL (one JSON object per line) or a JSON array; this format is not supported yet';

/** Binary formats recognised by their magic bytes (or name): one line instead of N malformed-JSON rows. */
function refuseOtherFormats(path: string, head: Buffer): void {
  const lower = path.toLowerCase();
  if ((head.length >= 4 && head.subarray(0, 4).toString('latin1') === 'PAR1') || lower.endsWith('.parquet'))
    throw new HeedError(`${path}: is a Parquet file: not supported yet (${NOT_YET})`, `convert it to JSONL, e.g. python -c "import pandas as pd; pd.read_parquet('${path}').to_json('data.jsonl', orient='records', lines=True, force_ascii=False)"`);
  if ((head.length >= 6 && head.subarray(0, 6).toString('latin1') === 'ARROW1') || lower.endsWith('.arrow'))
    throw new HeedError(`${path}: is an Arrow file: not supported yet (${NOT_YET})`, 'convert it to JSONL, e.g. with datasets: Dataset.from_file(path).to_json("data.jsonl")');
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04)
    throw new HeedError(`${path}: is a ZIP archive (or a spreadsheet such as .xlsx): not supported yet (${NOT_YET})`, 'unzip it, or export the sheet as JSONL');
}

/**
 * A file whose first non-blank byte is neither `{` nor `[`: a CSV/TSV (by name, or a first line with
 * commas/tabs that is not JSON) is refused in one line. Anything else is read as JSONL (bad rows say why).
 */
function refuseCsv(path: string, from: Buffer): void {
  const lower = path.toLowerCase();
  const nl = from.indexOf(0x0a);
  const first = from.subarray(0, nl < 0 ? from.length : nl).toString('utf8').replace(/\r$/, '');
  let json = true;
  try {
    JSON.parse(first);
  } catch {
    json = false;
  }
  const named = /\.(csv|tsv|tab)$/.test(lower);
  const looks = !json && (first.includes(',') || first.includes('\t'));
  if (!named && !looks) return;
  const kind = lower.endsWith('.tsv') || lower.endsWith('.tab') || (!first.includes(',') && first.includes('\t')) ? 'TSV' : 'CSV';
  throw new HeedError(
    `${path}: looks like ${kind} (first line: ${JSON.stringify(first.slice(0, 60))}): not supported yet (${NOT_YET})`,
    `convert it to JSONL, e.g. python -c "import pandas as pd; pd.read_csv('${path}'${kind === 'TSV' ? ", sep='\\t'" : ''}).to_json('data.jsonl', orient='records', lines=True, force_ascii=False)"`,
  );
}

/** Look at the first non-blank byte: `[` is a JSON array, anything else is JSONL. */
export function detectFileKind(path: string): FileKind {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new HeedError(`${path}: data file not found${isDanglingLink(path) ? ' (a symbolic link to a missing file)' : ''}`, 'check the --data path');
    throw fromSystemError(e) ?? e;
  }
  if (st.isDirectory()) throw new HeedError(`${path}: is a folder, not a data file`, 'pass a .jsonl or .json file to --data');
  // a pipe, socket or device has size 0 and can be read only once: refuse it instead of calling it empty
  if (!st.isFile()) throw new HeedError(`${path}: is a ${st.isFIFO() ? 'pipe (FIFO)' : st.isSocket() ? 'socket' : 'device'}, not a regular file`, 'save the data to a file first (e.g. cmd > data.jsonl) and pass that file');
  if (st.size === 0) throw new HeedError(`${path}: file is empty (no rows)`, EMPTY_FIX);
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(65536);
    let pos = 0;
    let first = true;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) break;
      let i = 0;
      if (first && n >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) throw new HeedError(`${path}: is gzip-compressed`, `decompress it first (gunzip -k ${path})`);
      if (first && n >= 2 && ((buf[0] === 0xff && buf[1] === 0xfe) || (buf[0] === 0xfe && buf[1] === 0xff)))
        throw new HeedError(`${path}: is UTF-16 (byte order mark ${buf[0] === 0xff ? 'FF FE' : 'FE FF'}), not UTF-8`, `re-encode it: iconv -f UTF-16 -t UTF-8 ${path} > out.jsonl`);
      if (first) refuseOtherFormats(path, buf.subarray(0, n));
      if (first && n >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) i = 3;
      first = false;
      for (; i < n; i++) {
        const c = buf[i];
        if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
        if (c !== 0x5b && c !== 0x7b) refuseCsv(path, buf.subarray(i, n));
        return c === 0x5b ? 'json' : 'jsonl';
      }
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
  throw new HeedError(`${path}: file is empty (only whitespace, no rows)`, EMPTY_FIX);
}

/** Lines of a file as raw bytes, split on 0x0A; streams in 1 MiB chunks. */
export async function* byteLines(path: string): AsyncGenerator<{ line: number; bytes: Buffer }> {
  let carry: Buffer[] = [];
  let line = 1;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      let bytes = chunk.subarray(start, nl);
      if (carry.length) {
        carry.push(bytes);
        bytes = Buffer.concat(carry);
        carry = [];
      }
      yield { line, bytes };
      line++;
      start = nl + 1;
    }
    if (start < chunk.length) carry.push(chunk.subarray(start));
  }
  if (carry.length) yield { line, bytes: Buffer.concat(carry) };
}

const isBlank = (s: string) => /^\s*$/.test(s);

/** Byte offset of the first invalid UTF-8 sequence (used only for the message; validity is decided by TextDecoder). */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    const need = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : 0;
    if (need === 0) return i;
    for (let k = 1; k <= need; k++) if (i + k >= b.length || (b[i + k] & 0xc0) !== 0x80) return i;
    const c1 = b[i + 1];
    if ((c === 0xe0 && c1 < 0xa0) || (c === 0xed && c1 > 0x9f) || (c === 0xf0 && c1 < 0x90) || (c === 0xf4 && c1 > 0x8f)) return i;
    i += need + 1;
  }
  return -1;
}

function where(bytes: Uint8Array): string {
  const at = firstInvalidUtf8(bytes);
  return at < 0 ? '' : ` (byte 0x${bytes[at].toString(16).padStart(2, '0')} at byte column ${at + 1})`;
}

function parseLine(text: string, line: number): RawRecord {
  try {
    return { line, value: JSON.parse(text) };
  } catch (e) {
    return { line, bad: { line, reason: 'malformed-json', message: `malformed JSON (${(e as Error).message})` } };
  }
}

/** Records of a JSONL file, streamed. Invalid UTF-8 and malformed JSON become bad records, never exceptions. */
export async function* readJsonl(path: string, info: ReadInfo): AsyncGenerator<RawRecord> {
  const dec = new TextDecoder('utf-8', { fatal: true });
  for await (const { line, bytes } of byteLines(path)) {
    let text: string;
    try {
      text = dec.decode(bytes);
    } catch {
      yield { line, bad: { line, reason: 'invalid-utf8', message: `invalid UTF-8${where(bytes)}` } };
      continue;
    }
    if (text.endsWith('\r')) text = text.slice(0, -1);
    if (isBlank(text)) {
      info.blankLines++;
      continue;
    }
    yield parseLine(text, line);
  }
}

/**
 * Records of a JSON array file (read whole). The array must be valid JSON: a syntax error anywhere is a
 * file-level error naming the line of the broken element (convert to JSONL to skip single broken rows).
 * Elements that are valid JSON but not valid rows are bad records with the line they start on.
 */
export function* readJsonArray(path: string): Generator<RawRecord> {
  const bytes = readFileSync(path);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const at = Math.max(0, firstInvalidUtf8(bytes));
    let line = 1;
    for (let i = 0; i < at; i++) if (bytes[i] === 0x0a) line++;
    let col = at;
    while (col > 0 && bytes[col - 1] !== 0x0a) col--;
    throw new HeedError(`${path}:${line}: invalid UTF-8 in a JSON array file${where(bytes.subarray(col))}`, 're-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8), or convert it to JSONL so that only the bad rows are skipped');
  }
  let whole: unknown;
  let parseError: string | undefined;
  try {
    whole = JSON.parse(text);
  } catch (e) {
    parseError = (e as Error).message.split('\n')[0];
  }
  if (parseError === undefined && !Array.isArray(whole)) throw new HeedError(`${path}: the file is JSON but not an array`, 'a .json data file must be one array of row objects (or use JSONL: one object per line)');
  const { elements, unclosedAt } = scanArray(text, path);
  if (parseError !== undefined) {
    for (const el of elements.slice(0, unclosedAt === undefined ? undefined : -1)) {
      try {
        JSON.parse(el.src);
      } catch (e) {
        throw new HeedError(`${path}:${el.line}: malformed JSON in array element ${el.index + 1} (${(e as Error).message.split('\n')[0]})`, 'repair that element; or convert the file to JSONL (one row per line), where --on-bad-row skip can skip single broken rows');
      }
    }
    if (unclosedAt !== undefined) throw new HeedError(`${path}:${unclosedAt}: the JSON array is not closed (missing ] or an unterminated string/object from this line on)`, 'repair the file; or convert it to JSONL (one row per line)');
    throw new HeedError(`${path}: malformed JSON (${parseError})`, 'repair the file; or convert it to JSONL (one row per line)');
  }
  const arr = whole as unknown[];
  if (arr.length === 0) throw new HeedError(`${path}: the JSON array is empty (no rows)`, EMPTY_FIX);
  for (let k = 0; k < arr.length; k++) {
    const line = elements[k]?.line ?? 0;
    yield { line, value: arr[k] };
  }
}

/**
 * Top-level elements of a JSON array text with the line each starts on. Exact for valid JSON; for
 * invalid JSON it still splits up to the first broken element (used only to name its line).
 */
interface Scanned {
  elements: Array<{ index: number; line: number; src: string }>;
  /** line where an element starts that runs to the end of the file (array not closed) */
  unclosedAt?: number;
}

function scanArray(text: string, path: string): Scanned {
  const out: Scanned['elements'] = [];
  let i = 0;
  let line = 1;
  const n = text.length;
  const skipWs = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x0a) line++;
      else if (c !== 0x20 && c !== 0x0d && c !== 0x09 && c !== 0xfeff) break;
      i++;
    }
  };
  skipWs();
  if (text[i] !== '[') throw new HeedError(`${path}:${line}: expected a JSON array`, 'a .json data file must be one array of row objects');
  i++;
  skipWs();
  if (text[i] === ']') return { elements: out };
  for (let index = 0; ; index++) {
    skipWs();
    const start = i;
    const startLine = line;
    const stack: number[] = [];
    let inStr = false;
    let end = false;
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x0a) line++;
      if (inStr) {
        if (c === 0x5c) i++;
        else if (c === 0x22) inStr = false;
        continue;
      }
      if (c === 0x22) inStr = true;
      else if (c === 0x7b || c === 0x5b) stack.push(c);
      else if (c === 0x7d || c === 0x5d) {
        if (stack.length === 0) {
          end = c === 0x5d;
          break;
        }
        const open = stack.pop();
        if ((open === 0x7b) !== (c === 0x7d)) {
          // mismatched bracket: this element is broken
          out.push({ index, line: startLine, src: text.slice(start, i + 1) });
          return { elements: out };
        }
      } else if (c === 0x2c && stack.length === 0) break;
    }
    if (i >= n) {
      const src = text.slice(start).trim();
      if (src) out.push({ index, line: startLine, src });
      return { elements: out, unclosedAt: startLine };
    }
    out.push({ index, line: startLine, src: text.slice(start, i).trim() });
    i++;
    if (end) return { elements: out };
  }
}

/** Records of a data file of either kind. */
export async function* readRecords(path: string, info?: Partial<ReadInfo>): AsyncGenerator<RawRecord> {
  const kind = detectFileKind(path);
  const inf = info as ReadInfo | undefined;
  const sink: ReadInfo = inf ?? { kind, blankLines: 0 };
  sink.kind = kind;
  sink.blankLines ??= 0;
  if (kind === 'jsonl') yield* readJsonl(path, sink);
  else yield* readJsonArray(path);
}
