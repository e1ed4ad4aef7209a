/** Shared pieces of the IFS / ObjecQA commands: progress bar, model generator with --adapter, fit check. */
import { HeedError } from '../errors.js';
import { startEngine } from './common.js';
import { Progress } from './progress.js';

/** A progress bar with rate and ETA on stderr: the shared Progress line, driven by (done, total). */
export function progressBar(label: string) {
  const p = new Progress(label, 0); // the clock starts now, not at the first finished batch
  return {
    update(done: number, total: number) {
      p.setTotal(total);
      p.update(done, {}, done >= total);
      if (done >= total) p.done();
    },
  };
}

export const ADAPTER_FIX = 'use --adapter rules (default preset), --adapter rules:hewitt-2024 or --adapter rules:path/to/rules.json';

export function checkAdapter(adapter: string | undefined): void {
  if (adapter !== undefined && adapter !== 'rules' && !adapter.startsWith('rules:')) throw new HeedError(`--adapter "${adapter}" is not known`, ADAPTER_FIX);
}

/** Load a model folder as a TextGenerator (+ a fit check against its context), with the rule adapter if asked. */
export async function modelGenerator(dir: string, o: { adapter?: string; device?: unknown; threads?: unknown; maxTokens: number }) {
  checkAdapter(o.adapter);
  await startEngine(o.device, o.threads);
  const { openGenerator } = await import('../eval/generator.js');
  return openGenerator(dir, { rules: o.adapter === undefined ? undefined : o.adapter.slice('rules:'.length), maxTokens: o.maxTokens });
}
