/** node:url for the browser page. */
export const fileURLToPath = (u: string | URL) => decodeURIComponent(new URL(String(u)).pathname);
export const pathToFileURL = (p: string) => new URL(`file://${p}`);
export default { fileURLToPath, pathToFileURL };
