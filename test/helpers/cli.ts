/** Runs the built CLI (dist/) as users do: a child process, its exit code, stdout and stderr. */
import { spawnSync } from 'node:child_process';
import { CLI } from './models.js';

export function runCli(args: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: o.cwd, env: { ...process.env, ...o.env }, maxBuffer: 64 << 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
