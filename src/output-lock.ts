/**
 * One run at a time per output: a lock file beside the output names the process that holds it, and
 * leftovers of runs that died (SIGKILL, power loss) are cleared by the next run that takes the lock.
 */
import { randomBytes } from 'node:crypto';
import { link, open, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { QuantkitError, ioError } from './errors.js';

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

export interface OutputLock {
  release(): Promise<void>;
}

/**
 * Creates the lock file with its content already complete: written under a private name, then
 * hard-linked to the lock's name (atomic, and fails if the lock exists). A lock created empty and
 * filled afterwards can be read half-written by a competing run, which would take it for stale.
 * Filesystems without hard links get open-exclusive-then-write. False when the lock exists.
 */
async function createLock(path: string, content: string, scratch: string): Promise<boolean> {
  try {
    await link(scratch, path);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw e;
  }
  try {
    const fh = await open(path, 'wx');
    await fh.writeFile(content);
    await fh.close();
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

/** Takes `${out}.quantkit-lock`, or fails with ERR_OUTPUT_LOCKED while a live process holds it. */
export async function lockOutput(out: string): Promise<OutputLock> {
  const path = `${out}.quantkit-lock`;
  const content = JSON.stringify({ pid: process.pid, started: new Date().toISOString() });
  // a leftover name removeLeftovers clears should this process die before the finally below
  const scratch = `${out}.quantkit-tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    try {
      await writeFile(scratch, content, { flag: 'wx' });
    } catch (e) {
      throw ioError('ERR_IO', out, e, 'cannot create the output lock');
    }
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        if (await createLock(path, content, scratch)) {
          await removeLeftovers(out);
          return { release: () => rm(path, { force: true }) };
        }
      } catch (e) {
        throw ioError('ERR_IO', out, e, 'cannot create the output lock');
      }
      let holder = -1;
      try {
        holder = (JSON.parse(await readFile(path, 'utf8')) as { pid: number }).pid;
      } catch {
        // unreadable: a lock from a run that died while creating it without hard links
      }
      if (alive(holder) && holder !== process.pid)
        throw new QuantkitError('ERR_OUTPUT_LOCKED', `another quantkit run (pid ${holder}) is writing this output; wait for it or choose another -o`, { file: out });
      await rm(path, { force: true }); // stale: its process is gone
    }
    throw new QuantkitError('ERR_OUTPUT_LOCKED', 'could not take the output lock', { file: out });
  } finally {
    await rm(scratch, { force: true });
  }
}

/** Removes temporary and replaced outputs left by runs whose process no longer exists. */
async function removeLeftovers(out: string): Promise<void> {
  const prefix = `${basename(out)}.quantkit-`;
  const entries = await readdir(dirname(out)).catch(() => [] as string[]);
  for (const name of entries) {
    const m = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(tmp|old)-(\\d+)-[0-9a-f]+$`).exec(name);
    if (m && !alive(Number(m[2]))) await rm(join(dirname(out), name), { recursive: true, force: true });
  }
}
