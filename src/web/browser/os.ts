/** node:os for the browser page. */
export const endianness = () => 'LE' as const;
export const cpus = () => Array.from({ length: navigator.hardwareConcurrency || 1 }, () => ({ model: 'browser' }));
export const availableParallelism = () => navigator.hardwareConcurrency || 1;
export const tmpdir = () => '/tmp';
export const platform = () => 'browser';
export const hostname = () => 'browser';
export const homedir = () => '/home';
export default { endianness, cpus, availableParallelism, tmpdir, platform, hostname, homedir };
