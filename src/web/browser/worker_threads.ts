/** node:worker_threads for the browser page: browsers have real Web Workers, so this is never started. */
export class Worker {
  constructor() {
    throw new Error('node:worker_threads is not available in a browser');
  }
}
export const isMainThread = true;
export const parentPort = null;
export default { Worker, isMainThread, parentPort };
