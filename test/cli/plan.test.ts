/**
 * `plan` and `quantize --dry-run` read local files only: a hub id comes from the Hugging Face cache
 * (as `quantize` would use it), never from the network; a missing path says so.
 */
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { STORIES260K, tempDir } from '../helpers/models.js';

const dir = tempDir('quantkit-plan-');

describe('plan of a hub id', () => {
  it('reads the cached snapshot, offline', () => {
    const cache = join(dir, 'hub');
    const commit = 'a'.repeat(40);
    const repo = join(cache, 'models--org--tiny');
    mkdirSync(join(repo, 'refs'), { recursive: true });
    writeFileSync(join(repo, 'refs', 'main'), commit);
    cpSync(STORIES260K, join(repo, 'snapshots', commit), { recursive: true });
    for (const args of [['plan', 'org/tiny', '--json'], ['quantize', '--dry-run', 'org/tiny', '--json']]) {
      const r = runCli(args, { env: { HF_HUB_CACHE: cache, HF_ENDPOINT: 'http://127.0.0.1:9' } });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).model).toBe(join(repo, 'snapshots', commit));
    }
  });

  it('not cached, or a mistyped path: exit 3, nothing fetched', () => {
    const r = runCli(['plan', 'org/absent'], { env: { HF_HUB_CACHE: join(dir, 'empty'), HF_ENDPOINT: 'http://127.0.0.1:9' } });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^quantkit: org\/absent: no such file or directory, nor a hub repository in the Hugging Face cache: plan reads local files only \(for a hub id: quantkit pull org\/absent first/);
  });
});
