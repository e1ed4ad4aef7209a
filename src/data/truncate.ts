/**
 * Truncation to a maximum length (docs/data.md, "Truncation"):
 *  - drop            rows longer than maxLength are dropped (listed by id)
 *  - truncate-right  keep the first maxLength tokens (the end of the answer and its EOS are lost)
 *  - truncate-left   keep the last maxLength tokens (the start of the prompt, and BOS, are lost);
 *                    the new first token gets weight 0 since nothing predicts it
 * A row left with no loss-bearing token ("vanished") is excluded and listed: it would add nothing
 * but padding, and a batch made only of such rows would have zero loss weight.
 */
import { HeedError } from '../errors.js';
import type { Example } from './types.js';

export type TruncationPolicy = 'drop' | 'truncate-right' | 'truncate-left';
export const TRUNCATION_POLICIES: readonly TruncationPolicy[] = ['drop', 'truncate-right', 'truncate-left'];

export type TruncateStatus = 'ok' | 'truncated' | 'dropped' | 'vanished';

export function parseTruncation(s: string): TruncationPolicy {
  if ((TRUNCATION_POLICIES as readonly string[]).includes(s)) return s as TruncationPolicy;
  throw new HeedError(`unknown truncation policy "${s}"`, `use one of ${TRUNCATION_POLICIES.join(', ')}`);
}

const hasLoss = (w: Float32Array) => w.some((x) => x > 0);

/** Apply the policy; `example` is set for 'ok' and 'truncated'. Rows with no loss at all come back 'vanished'. */
export function truncateExample(ex: Example, maxLength: number | undefined, policy: TruncationPolicy): { status: TruncateStatus; example?: Example } {
  if (!hasLoss(ex.weights)) return { status: 'vanished' };
  if (maxLength === undefined || ex.ids.length <= maxLength) return { status: 'ok', example: ex };
  if (policy === 'drop') return { status: 'dropped' };
  const n = ex.ids.length;
  const [s, e] = policy === 'truncate-right' ? [0, maxLength] : [n - maxLength, n];
  const weights = ex.weights.slice(s, e);
  weights[0] = 0;
  const out: Example = { id: ex.id, line: ex.line, ids: ex.ids.slice(s, e), weights, kinds: ex.kinds.slice(s, e), truncated: true };
  if (!hasLoss(weights)) return { status: 'vanished' };
  return { status: 'truncated', example: out };
}

/** Counts and ids of what truncation did to a data set. */
export class TruncationLog {
  truncated = 0;
  readonly dropped: string[] = [];
  /** rows whose loss-bearing tokens vanished (after truncation, or none to begin with) */
  readonly vanished: string[] = [];
  add(id: string, status: TruncateStatus): void {
    if (status === 'truncated') this.truncated++;
    else if (status === 'dropped') this.dropped.push(id);
    else if (status === 'vanished') this.vanished.push(id);
  }
}
