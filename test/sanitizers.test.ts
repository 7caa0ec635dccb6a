/**
 * The addon under sanitizers: a bounded libFuzzer run over the kernel entry points (clang, ASan +
 * UBSan, differential against the scalar reference), and part of this suite against an ASan + UBSan
 * build of the addon. .ci/run installs clang; outside CI the fuzz test is skipped when clang is missing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/models.js';

const haveClang = spawnSync('sh', ['-c', 'command -v clang++-14']).status === 0;

describe('sanitizers', () => {
  it.skipIf(!haveClang && !process.env.CI)('libFuzzer over the kernels finds nothing in 20 s', () => {
    expect(haveClang, 'clang++-14 must be installed (.ci/run does)').toBe(true);
    const r = spawnSync('bash', ['scripts/fuzz-kernels.sh', '20'], { cwd: ROOT, encoding: 'utf8' });
    const out = r.stdout + r.stderr;
    expect(out).not.toMatch(/ERROR: (AddressSanitizer|libFuzzer)|runtime error|deadly signal/);
    expect(r.status, out.slice(-2000)).toBe(0);
    const runs = Number(/Done (\d+) runs/.exec(out)?.[1] ?? 0);
    expect(runs).toBeGreaterThan(1000);
  }, 180_000);

  it('kernel and end-to-end tests pass against the ASan + UBSan build of the addon', () => {
    const env: Record<string, string> = { ...process.env } as Record<string, string>;
    for (const line of execFileSync('bash', ['scripts/build-asan.sh'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n')) {
      const m = /^export (\w+)=(.*)$/.exec(line);
      if (m) env[m[1]!] = m[2]!;
    }
    expect(env.QUANTKIT_ADDON).toMatch(/build-asan/);
    const results = join(ROOT, 'build-asan', 'results.json');
    rmSync(results, { force: true });
    const r = spawnSync('npx', ['vitest', 'run', 'test/kernels/kernels.test.ts', 'test/e2e/quantize.test.ts', 'test/property.test.ts', 'test/eval/binding.test.ts', 'test/quant/row-squares.test.ts', 'test/quant/row-chunks.test.ts', '--reporter=json', `--outputFile=${results}`], {
      cwd: ROOT,
      encoding: 'utf8',
      env,
    });
    const out = r.stdout + r.stderr;
    expect(out).not.toMatch(/ERROR: AddressSanitizer|runtime error:/);
    expect(r.status, out.slice(-3000)).toBe(0);
    const j = JSON.parse(readFileSync(results, 'utf8'));
    expect(j.numFailedTests).toBe(0);
    expect(j.numPassedTests).toBeGreaterThan(100);
  }, 300_000);
});
