/**
 * How many CPUs this process may really use: the CPUs it is allowed to run on (sched affinity, which
 * os.availableParallelism reports) capped by a cgroup CPU quota (a container started with --cpus=2 on
 * a 64-core host sees 64 CPUs but gets the time of 2; threads beyond that only contend). Reads cgroup v2
 * `cpu.max` and v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us`, along the process's cgroup path up to the
 * root, so the tightest limit of any ancestor applies.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

/** CPUs granted by a cgroup v2 `cpu.max` line ("max 100000" or "200000 100000"), or null when unlimited. */
export function parseCpuMax(text: string): number | null {
  const [quota, period] = text.trim().split(/\s+/);
  if (!quota || quota === 'max') return null;
  const q = Number(quota), p = Number(period ?? 100000);
  return q > 0 && p > 0 ? q / p : null;
}

/** CPUs granted by cgroup v1 quota and period files (quota -1: unlimited). */
export function parseCfsQuota(quotaText: string, periodText: string): number | null {
  const q = Number(quotaText.trim()), p = Number(periodText.trim());
  return q > 0 && p > 0 ? q / p : null;
}

/** The cgroup paths of this process from /proc/self/cgroup: the v2 path and the v1 `cpu` controller's. */
export function parseProcCgroup(text: string): { v2?: string; v1cpu?: string } {
  const out: { v2?: string; v1cpu?: string } = {};
  for (const line of text.split('\n')) {
    const [id, controllers, path] = line.split(':');
    if (path === undefined) continue;
    if (id === '0' && controllers === '') out.v2 = path;
    else if (controllers!.split(',').includes('cpu')) out.v1cpu = path;
  }
  return out;
}

/** `dir` and its ancestors, deepest first ("/a/b" -> "/a/b", "/a", "/"). */
function ancestors(dir: string): string[] {
  const parts = dir.split('/').filter(Boolean);
  return Array.from({ length: parts.length + 1 }, (_, i) => '/' + parts.slice(0, parts.length - i).join('/'));
}

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/**
 * The tightest CPU quota (in CPUs, fractional) of this process's cgroups, or null when none is set.
 * `root` is where the cgroup file systems are mounted (a test passes a fake tree).
 */
export function cgroupCpuLimit(root = '/sys/fs/cgroup', procCgroup = read('/proc/self/cgroup') ?? ''): number | null {
  const { v2, v1cpu } = parseProcCgroup(procCgroup);
  const limits: number[] = [];
  if (v2 !== undefined)
    for (const d of ancestors(v2)) {
      const t = read(join(root, d, 'cpu.max'));
      const n = t === null ? null : parseCpuMax(t);
      if (n !== null) limits.push(n);
    }
  if (v1cpu !== undefined)
    for (const base of [join(root, 'cpu'), join(root, 'cpu,cpuacct')])
      for (const d of ancestors(v1cpu)) {
        const q = read(join(base, d, 'cpu.cfs_quota_us')), p = read(join(base, d, 'cpu.cfs_period_us'));
        const n = q === null || p === null ? null : parseCfsQuota(q, p);
        if (n !== null) limits.push(n);
      }
  return limits.length ? Math.min(...limits) : null;
}

/** Threads to use by default: the CPUs this process may run on, capped by its cgroup quota (at least 1). */
export function availableCpus(affinity = availableParallelism(), quota = cgroupCpuLimit()): number {
  return Math.max(1, quota === null ? affinity : Math.min(affinity, Math.ceil(quota)));
}
