// Writes the tiny random checkpoints used by the tests: node --import tsx scripts/make-tiny.ts [outDir]
import { join } from 'node:path';
import { TINY_CONFIGS, writeTinyModel } from '../src/models/tiny.js';
const out = process.argv[2] ?? 'test/fixtures/tiny';
let seed = 1;
for (const name of Object.keys(TINY_CONFIGS)) {
  writeTinyModel(join(out, name), name, seed++);
  console.log(`wrote ${join(out, name)}`);
}
