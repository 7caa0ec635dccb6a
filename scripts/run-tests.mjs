// Runs the test suite and prints the plain closing line `N passed, N failed` that CI counts.
// Builds first (TypeScript, then the CLI bundle, as npm run build does) so the CLI tests exercise the
// same dist/ that users run.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';

const run = (cmd, args) => spawnSync(cmd, args, { stdio: 'inherit' }).status ?? 1;

if (!existsSync('build/Release/quantkit.node')) {
  if (run('npm', ['run', 'build:native']) !== 0) process.exit(1);
}
if (run('npx', ['tsc', '-p', 'tsconfig.build.json']) !== 0 || run(process.execPath, ['scripts/bundle-cli.mjs']) !== 0) process.exit(1);
if (run('npx', ['tsc', '-p', 'tsconfig.json', '--noEmit']) !== 0) process.exit(1);

const results = '.vitest-results.json';
rmSync(results, { force: true });
const status = run('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile=${results}`, ...process.argv.slice(2)]);
let passed = 0, failed = 0, skipped = 0;
if (existsSync(results)) {
  const r = JSON.parse(readFileSync(results, 'utf8'));
  passed = r.numPassedTests;
  failed = r.numFailedTests + (r.numRuntimeErrorTestSuites ?? 0);
  skipped = r.numPendingTests + r.numTodoTests;
} else failed = 1;
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(status === 0 && failed === 0 ? 0 : 1);
