/**
 * A fresh install is quiet and runs only the install scripts it needs: every dependency with an install
 * script has a decision in package.json's allowScripts (npm 11's install-script policy), and in CI the
 * `npm ci` output that .ci/run keeps has no `npm warn` line at all.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, tempDir } from './helpers/models.js';

const dir = tempDir('quantkit-install-');

/** The packages whose install scripts allowScripts does not decide (`npm install-scripts ls`, read-only). */
function pending(project: string): string[] {
  const r = spawnSync('npm', ['install-scripts', 'ls', '--json', '--offline'], { cwd: project, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { allowScripts: { name: string }[] }).allowScripts.map((p) => p.name);
}

const policy = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> }).allowScripts ?? {};

describe('install scripts', () => {
  it('every installed dependency with an install script is approved or denied in allowScripts', () => {
    expect(pending(ROOT)).toEqual([]);
  });

  it('a new dependency with an install script nobody decided on is caught by the same check', () => {
    const project = join(dir, 'project');
    mkdirSync(join(project, 'node_modules', 'new-dep'), { recursive: true });
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'p', version: '1.0.0', dependencies: { 'new-dep': '1.0.0' }, allowScripts: policy }));
    writeFileSync(join(project, 'node_modules', 'new-dep', 'package.json'), JSON.stringify({ name: 'new-dep', version: '1.0.0', scripts: { postinstall: 'node fetch-binaries.js' } }));
    expect(pending(project)).toEqual(['new-dep']);
  });

  it('no allowScripts entry is stale (each names an installed package that has an install script)', () => {
    const r = spawnSync('npm', ['install-scripts', 'prune', '--dry-run', '--json', '--offline'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { allowScripts: { removed: unknown[] } }).allowScripts.removed).toEqual([]);
  });

  // .ci/run keeps `npm ci`'s output of the clean clone it tests and names it here.
  it.skipIf(!process.env.QUANTKIT_NPM_CI_LOG)('npm ci on the clean clone printed no warning', () => {
    const log = readFileSync(process.env.QUANTKIT_NPM_CI_LOG!, 'utf8');
    expect(log).toMatch(/added \d+ packages/);
    expect(log.split('\n').filter((l) => /^npm warn/i.test(l))).toEqual([]);
  });
});
