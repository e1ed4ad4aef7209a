/**
 * At most n async calls at once; a finished task hands its slot straight to the next waiting one. The OpenAI
 * client's concurrency limit and the judges'. No dependencies: the browser page reaches it (through the judges).
 */
export function semaphore(n: number) {
  let active = 0;
  const waiting: Array<() => void> = [];
  return async <T>(f: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((ok) => waiting.push(ok));
    else active++;
    try {
      return await f();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}
