/**
 * Faults: SIGKILL at random moments, a full disk, a read-only output, two runs on one output, stale
 * locks. Afterwards the output location holds nothing new or a complete result that verify accepts.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { headerFor, writeRaw } from './helpers/fixtures.js';
import { CLI, TINYSTORIES656K, tempDir } from './helpers/models.js';

const dir = tempDir('quantkit-faults-');

function cli(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
}

/** ~100 MB of bf16 matrices: a run long enough to be interrupted (with the scalar kernels). */
function mediumModel(): string {
  const d = join(dir, 'medium');
  if (existsSync(d)) return d;
  mkdirSync(d);
  const tensors = Array.from({ length: 6 }, (_, i) => ({ name: `layers.${i}.weight`, dtype: 'BF16', shape: [2048, 4096], bytes: 2048 * 4096 * 2 }));
  const { header, dataBytes } = headerFor(tensors);
  const data = new Uint8Array(dataBytes);
  for (let i = 0; i < data.length; i += 2) data[i + 1] = 0x3c + (i % 7);
  writeRaw(join(d, 'model.safetensors'), header, data);
  return d;
}

function leftovers(parent: string, base: string): string[] {
  return readdirSync(parent).filter((f) => f.startsWith(`${base}.quantkit-`));
}

const mounts: string[] = [];
afterAll(() => {
  for (const m of mounts) spawnSync('umount', [m]);
});
function mountTmpfs(name: string, options: string): string {
  const m = join(dir, name);
  mkdirSync(m, { recursive: true });
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', m], { encoding: 'utf8' });
  expect(r.status, `mount tmpfs (root is needed, as in CI): ${r.stderr}`).toBe(0);
  mounts.push(m);
  return m;
}

describe('faults', () => {
  it('SIGKILL at random moments leaves nothing or a complete, verifiable output; a re-run succeeds', async () => {
    const model = mediumModel();
    for (const [i, delay] of [80, 400, 900, 1600].entries()) {
      const out = join(dir, `killed-${i}`);
      const child = spawn(process.execPath, [CLI, 'quantize', model, '-o', out, '--threads', '1'], { env: { ...process.env, QUANTKIT_ISA: 'scalar' } });
      const exited = new Promise((r) => child.on('exit', r));
      await new Promise((r) => setTimeout(r, delay));
      child.kill('SIGKILL');
      await exited;
      if (existsSync(out)) expect(cli(['verify', out, '--against', model]).status, `${out} exists and must verify`).toBe(0);
      const again = cli(['quantize', model, '-o', out, '--force']);
      expect(again.status, again.stderr).toBe(0);
      expect(cli(['verify', out, '--against', model]).status).toBe(0);
      expect(leftovers(dir, `killed-${i}`)).toEqual([]);
    }
  }, 120_000);

  it('a full disk: a clean error, exit 4, nothing left on the disk', () => {
    const m = mountTmpfs('full', 'size=256k');
    const r = cli(['quantize', TINYSTORIES656K, '-o', join(m, 'out')]);
    expect(r.status).toBe(4);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/ENOSPC/);
    expect(readdirSync(m)).toEqual([]);
  });

  it('a read-only output directory: a clean error, exit 4', () => {
    const m = mountTmpfs('ro', 'ro,size=1m');
    const r = cli(['quantize', TINYSTORIES656K, '-o', join(m, 'out')]);
    expect(r.status).toBe(4);
    expect(r.stderr).toMatch(/EROFS/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('two runs on one output: the second fails clearly, the first completes', async () => {
    const model = mediumModel();
    const out = join(dir, 'contended');
    const first = spawn(process.execPath, [CLI, 'quantize', model, '-o', out, '--threads', '1'], { env: { ...process.env, QUANTKIT_ISA: 'scalar' } });
    const firstExit = new Promise<number | null>((r) => first.on('exit', r));
    // Wait until the first run holds the lock, then pause it there: the second run meets the lock
    // however fast the first would otherwise finish.
    for (let i = 0; i < 500 && !existsSync(`${out}.quantkit-lock`); i++) await new Promise((r) => setTimeout(r, 10));
    expect(existsSync(`${out}.quantkit-lock`)).toBe(true);
    first.kill('SIGSTOP');
    const second = cli(['quantize', model, '-o', out]);
    first.kill('SIGCONT');
    expect(second.status).toBe(4);
    expect(second.stderr).toMatch(new RegExp(`another quantkit run \\(pid ${first.pid}\\) is writing this output`));
    expect(await firstExit).toBe(0);
    expect(cli(['verify', out, '--against', model]).status).toBe(0);
    expect(leftovers(dir, 'contended')).toEqual([]);
  });

  it('a stale lock and leftovers of a dead process are cleared', () => {
    const out = join(dir, 'stale');
    writeFileSync(`${out}.quantkit-lock`, JSON.stringify({ pid: 2 ** 22 + 12345 }));
    mkdirSync(`${out}.quantkit-tmp-${2 ** 22 + 12345}-deadbeef`);
    const r = cli(['quantize', TINYSTORIES656K, '-o', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(leftovers(dir, 'stale')).toEqual([]);
  });
});
