#!/usr/bin/env node
// npm's install step for quantkit: use the prebuilt addon when one loads on this machine (no compiler
// needed), otherwise build it from source with cmake-js (offline: headers come from npm packages).
// QUANTKIT_BUILD_FROM_SOURCE=1 forces the source build.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

if (!process.env.QUANTKIT_BUILD_FROM_SOURCE) {
  try {
    require('node-gyp-build')(root);
    process.exit(0);
  } catch {
    // no binary for this platform, or it does not load here: build one
  }
}
const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
const r = spawnSync(process.execPath, [cmakeJs, 'compile', '--directory', join(root, 'native'), '--out', join(root, 'build')], { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 1);
