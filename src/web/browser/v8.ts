/** node:v8 for the browser page: flags are the browser's business. */
export const setFlagsFromString = (_flags: string) => {};
export default { setFlagsFromString };
