/**
 * The default thread count: the CPUs of the affinity mask, capped by the tightest cgroup CPU quota along
 * the process's cgroup path (v2 cpu.max, v1 cfs quota/period), read from a fake cgroup tree here.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { availableCpus, cgroupCpuLimit, parseCfsQuota, parseCpuMax, parseProcCgroup } from '../src/cpus.js';
import { defaultThreads } from '../src/quantize.js';
import { tempDir } from './helpers/models.js';

const root = tempDir();

function tree(name: string, files: Record<string, string>): string {
  const base = join(root, name);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(base, path, '..'), { recursive: true });
    writeFileSync(join(base, path), text);
  }
  return base;
}

describe('cgroup CPU quota', () => {
  it('parses cpu.max, cfs quota and /proc/self/cgroup', () => {
    expect(parseCpuMax('max 100000\n')).toBeNull();
    expect(parseCpuMax('200000 100000\n')).toBe(2);
    expect(parseCpuMax('150000 100000')).toBe(1.5);
    expect(parseCfsQuota('-1\n', '100000\n')).toBeNull();
    expect(parseCfsQuota('50000\n', '100000\n')).toBe(0.5);
    expect(parseProcCgroup('0::/user.slice/job\n')).toEqual({ v2: '/user.slice/job' });
    expect(parseProcCgroup('4:memory:/m\n3:cpu,cpuacct:/docker/abc\n0::/\n')).toEqual({ v1cpu: '/docker/abc', v2: '/' });
  });

  it('v2: the tightest cpu.max along the path applies', () => {
    const base = tree('v2', { 'cpu.max': 'max 100000\n', 'a/cpu.max': '300000 100000\n', 'a/b/cpu.max': 'max 100000\n' });
    expect(cgroupCpuLimit(base, '0::/a/b\n')).toBe(3);
    expect(cgroupCpuLimit(base, '0::/\n')).toBeNull();
  });

  it('v1: cpu controller quota and period', () => {
    const base = tree('v1', { 'cpu/docker/x/cpu.cfs_quota_us': '150000\n', 'cpu/docker/x/cpu.cfs_period_us': '100000\n', 'cpu/cpu.cfs_quota_us': '-1\n', 'cpu/cpu.cfs_period_us': '100000\n' });
    expect(cgroupCpuLimit(base, '3:cpu,cpuacct:/docker/x\n')).toBe(1.5);
    expect(cgroupCpuLimit(join(root, 'nothing-here'), '3:cpu,cpuacct:/docker/x\n')).toBeNull();
  });

  it('threads: the affinity mask capped by the quota rounded up, at least 1', () => {
    expect(availableCpus(64, 2)).toBe(2);
    expect(availableCpus(64, 1.5)).toBe(2);
    expect(availableCpus(4, null)).toBe(4);
    expect(availableCpus(2, 8)).toBe(2);
    expect(availableCpus(1, 0.1)).toBe(1);
    // On this machine: never more than the affinity mask allows.
    expect(defaultThreads()).toBeGreaterThanOrEqual(1);
    expect(defaultThreads()).toBeLessThanOrEqual(availableParallelism());
  });
});
