import type { Command } from './main.js';
import { HeedError } from '../errors.js';
export const command: Command = { path: ['objecqa'], summary: 'ObjecQA', usage: 'heed objecqa', async run() { throw new HeedError('not yet', 'later'); } };
