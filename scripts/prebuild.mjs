#!/usr/bin/env node
// Puts the addon into prebuilds/<platform>-<arch>/quantkit.napi.node, the layout node-gyp-build loads,
// so `npm install quantkit` needs no compiler on that platform. One N-API 8 binary serves every
// supported Node version (>= 20.19).
//   node scripts/prebuild.mjs            linux-x64 from build/Release (built first if missing)
//   node scripts/prebuild.mjs --arm64    also linux-arm64, cross-compiled with g++-aarch64-linux-gnu
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root });
  if (r.status !== 0) process.exit(r.status ?? 1);
};

const built = join(root, 'build', 'Release', 'quantkit.node');
if (!existsSync(built)) run(process.execPath, [cmakeJs, 'compile', '--directory', 'native', '--out', 'build']);
const host = `${process.platform}-${process.arch}`;
mkdirSync(join(root, 'prebuilds', host), { recursive: true });
copyFileSync(built, join(root, 'prebuilds', host, 'quantkit.napi.node'));
run('strip', ['--strip-unneeded', join(root, 'prebuilds', host, 'quantkit.napi.node')]);
console.log(`prebuilds/${host}/quantkit.napi.node`);

if (process.argv.includes('--arm64')) {
  run(process.execPath, [cmakeJs, 'compile', '--directory', 'native', '--out', 'build-arm64', '--CDCMAKE_SYSTEM_NAME=Linux', '--CDCMAKE_SYSTEM_PROCESSOR=aarch64', '--CDCMAKE_C_COMPILER=aarch64-linux-gnu-gcc', '--CDCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++']);
  mkdirSync(join(root, 'prebuilds', 'linux-arm64'), { recursive: true });
  copyFileSync(join(root, 'build-arm64', 'Release', 'quantkit.node'), join(root, 'prebuilds', 'linux-arm64', 'quantkit.napi.node'));
  run('aarch64-linux-gnu-strip', ['--strip-unneeded', join(root, 'prebuilds', 'linux-arm64', 'quantkit.napi.node')]);
  console.log('prebuilds/linux-arm64/quantkit.napi.node');
}
