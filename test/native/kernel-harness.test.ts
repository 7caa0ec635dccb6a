/**
 * The native harness (native/test/kernel_test.cc) compares every SIMD table with the scalar reference
 * bit for bit, and every CRC-32 implementation with the table loop. Here it runs for this CPU, and for
 * aarch64 (NEON, ARMv8 CRC32) under qemu-user (Debian's cross compiler and qemu-user; .ci/run installs
 * both, so in CI their absence is a failure, not a skip).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { addon } from '../../src/native.js';
import { ROOT } from '../helpers/models.js';

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const crossTools = have('aarch64-linux-gnu-g++') && have('qemu-aarch64');

function build(target: string): string {
  return execFileSync('bash', ['scripts/build-kernel-test.sh', target], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').pop()!;
}

// Each test compiles every kernel file (in parallel, scripts/build-kernel-test.sh): about 30 s of CPU on
// this machine, more when other work shares the cores.
const BUILD_TIMEOUT = 300_000;

describe('kernel harness: every SIMD table equals the scalar reference', () => {
  it('on this CPU', () => {
    const bin = build('native');
    const r = spawnSync(bin, [], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, QUANTKIT_ISA: '' } });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // The harness sees the same tables as the addon, and every non-scalar one matched.
    const available = /kernel_test: available: (.*)/.exec(r.stdout)![1]!.split(' ');
    expect(available).toEqual(addon().info().available);
    for (const isa of available.filter((i) => i !== 'scalar')) expect(r.stdout).toMatch(new RegExp(`${isa} matches scalar on \\d+ cases`));
    // CRC-32: every implementation this CPU runs matched the table reference, and the addon uses the last.
    const crcs = /crc32 available: (.*)/.exec(r.stdout)![1]!.split(' ');
    for (const impl of crcs.filter((i) => i !== 'table')) expect(r.stdout).toMatch(new RegExp(`crc32 ${impl} matches table on \\d+ cases`));
    expect(addon().info().crc32).toBe(crcs[crcs.length - 1]);
    if (crcs.length === 1) console.log('kernel harness: this CPU has no PCLMULQDQ, only the CRC-32 table loop was checked');
    // AVX-512 is the default table where the CPU has it: its parity is checked above whenever it can run.
    if (available.includes('avx512')) expect(addon().info().isa).toBe(process.env.QUANTKIT_ISA || 'avx512');
    else console.log('kernel harness: this CPU has no AVX-512 F/BW/VL, the AVX-512 parity check was skipped');
  }, BUILD_TIMEOUT);

  it.skipIf(!crossTools && !process.env.CI)('aarch64 NEON under qemu-user', () => {
    expect(crossTools, 'aarch64-linux-gnu-g++ and qemu-aarch64 must be installed (.ci/run does)').toBe(true);
    const bin = build('aarch64');
    const r = spawnSync('qemu-aarch64', [bin], { cwd: ROOT, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/neon matches scalar on \d+ cases/);
    expect(r.stdout).toMatch(/crc32 armv8-crc matches table on \d+ cases/);
  }, BUILD_TIMEOUT);
});
