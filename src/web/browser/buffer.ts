/** node:buffer for the browser page (the engine's Node worker polyfill is not used in a browser). */
export const resolveObjectURL = () => undefined;
export const Buffer = (globalThis as unknown as { Buffer: unknown }).Buffer;
export default { resolveObjectURL, Buffer };
