/**
 * The output lock: created with its content complete (a hard link to a fully written file), so a
 * competing run never reads it half-written and mistakes it for stale; without hard links it falls
 * back to open-exclusive-then-write. Contention between processes is in faults.test.ts.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { lockOutput } from '../src/output-lock.js';
import { tempDir } from './helpers/models.js';

const original = vi.hoisted(() => ({ link: undefined as unknown as typeof import('node:fs/promises').link }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const m = await importOriginal<typeof import('node:fs/promises')>();
  original.link = m.link;
  return { ...m, link: vi.fn(m.link) };
});

const dir = tempDir('quantkit-lock-');
const entries = (base: string) => readdirSync(dir).filter((f) => f.startsWith(`${base}.quantkit-`));
const link = vi.mocked(fsp.link);

describe('output lock', () => {
  for (const hardLinks of [true, false]) {
    it(hardLinks ? 'appears with its content complete, holds this pid, refuses while a live process holds it' : 'works the same without hard links', async () => {
      const base = hardLinks ? 'linked' : 'plain';
      const out = join(dir, base);
      link.mockClear();
      if (hardLinks) {
        // whatever is linked to the lock's name is already complete
        link.mockImplementation(async (from, to) => {
          expect(JSON.parse(readFileSync(from, 'utf8')).pid).toBe(process.pid);
          return original.link(from, to);
        });
      } else {
        link.mockRejectedValue(Object.assign(new Error('no hard links here'), { code: 'EPERM' }));
      }
      try {
        const lock = await lockOutput(out);
        expect(link).toHaveBeenCalled();
        expect(JSON.parse(readFileSync(`${out}.quantkit-lock`, 'utf8')).pid).toBe(process.pid);
        expect(entries(base)).toEqual([`${base}.quantkit-lock`]);  // no scratch file left
        await lock.release();
        expect(existsSync(`${out}.quantkit-lock`)).toBe(false);

        // held by another live process (our parent): refused, naming it; its lock is left alone
        writeFileSync(`${out}.quantkit-lock`, JSON.stringify({ pid: process.ppid }));
        await expect(lockOutput(out)).rejects.toMatchObject({ code: 'ERR_OUTPUT_LOCKED', message: expect.stringContaining(`pid ${process.ppid}`) });
        expect(JSON.parse(readFileSync(`${out}.quantkit-lock`, 'utf8')).pid).toBe(process.ppid);
        expect(entries(base)).toEqual([`${base}.quantkit-lock`]);
      } finally {
        link.mockImplementation(original.link);
      }
    });
  }
});
