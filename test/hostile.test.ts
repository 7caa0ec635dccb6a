/**
 * Every case of test/fixtures/hostile (scripts/make-hostile-corpus.ts): the CLI exits non-zero (never
 * by a signal) with one line naming the file and tensor, writes nothing, and leaves the input as it was.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { HostileCase } from './helpers/hostile-case.js';
import { CLI, ROOT, STORIES260K, tempDir } from './helpers/models.js';

const corpus = join(ROOT, 'test', 'fixtures', 'hostile');
const cases = JSON.parse(readFileSync(join(corpus, 'cases.json'), 'utf8')) as HostileCase[];
const work = tempDir('quantkit-hostile-');

/** A digest of a directory tree (names, types, link targets, contents), to prove it was not touched. */
function digest(path: string): string {
  const h = createHash('sha256');
  const walk = (p: string, rel: string) => {
    const st = lstatSync(p);
    h.update(`${rel}\0${st.mode}\0`);
    if (st.isSymbolicLink()) h.update(readlinkSync(p));
    else if (st.isDirectory()) for (const n of readdirSync(p).sort()) walk(join(p, n), `${rel}/${n}`);
    else h.update(readFileSync(p));
  };
  walk(path, '.');
  return h.digest('hex');
}

describe('hostile inputs', () => {
  it('the corpus has at least 40 cases of every kind', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
    expect(cases.filter((c) => c.command === 'verify').length).toBeGreaterThanOrEqual(10);
    expect(cases.filter((c) => c.file.includes('index')).length).toBeGreaterThanOrEqual(5);
  });

  for (const c of cases) {
    it(`${c.name}: exit ${c.exit}, one line naming ${c.file}${c.tensor ? ` and '${c.tensor}'` : ''}`, () => {
      // Work on a copy so a bug that writes into the input could not damage the corpus.
      const input = join(work, c.name);
      cpSync(join(corpus, c.name), input, { recursive: true, verbatimSymlinks: true });
      const before = digest(input);
      const out = join(work, `${c.name}-out`);
      const args = c.command === 'quantize' ? ['quantize', join(input, c.target), '-o', out] : ['verify', join(input, c.target), '--against', STORIES260K];
      const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
      expect(r.signal).toBeNull();
      expect(r.status).toBe(c.exit);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(c.message);
      expect(lines[0]).toContain(c.file === '.' ? input : join(input, c.file));
      if (c.tensor) expect(lines[0]).toContain(`tensor '${c.tensor}'`);
      expect(r.stdout).toBe('');
      expect(existsSync(out)).toBe(false);
      expect(readdirSync(work).filter((f) => f.startsWith(`${c.name}-out`))).toEqual([]);
      expect(digest(input)).toBe(before);
    });
  }
});
