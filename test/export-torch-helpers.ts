/** Shared by the torch export and watch tests: the Python with torch, and the job launcher. */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';

export const PYTHON = process.env.HEED_PYTHON ?? '/usr/bin/python3';
export function torchMissing(): string | undefined {
  const r = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
  if (r.status === 0) return undefined;
  const why = `${PYTHON} cannot import torch/numpy (apt-get install python3-torch libopenblas0-openmp)`;
  if (process.env.HEED_REQUIRE_TORCH === '1') throw new Error(`HEED_REQUIRE_TORCH=1 but ${why}`);
  return why;
}
/** `bash launch.sh --nproc_per_node 2 [-- trainArgs]` in the job folder; resolves with the exit code and output. */
export function launch(jobDir: string, trainArgs: string[] = [], env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((res) => {
    const c = spawn('bash', [join(jobDir, 'launch.sh'), '--nproc_per_node', '2', '--', '--quiet', ...trainArgs], {
      cwd: jobDir,
      env: { ...process.env, PYTHON, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (out += d));
    c.on('exit', (code) => res({ code, out }));
  });
}

