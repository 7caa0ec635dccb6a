/**
 * Bundles the command-line entry points (dist/cli/quantkit.js, dist/cli/quantize.js, compiled by tsc)
 * into single ES modules in place, the code they share in one chunk beside them. A cold start of the
 * unbundled CLI spent 0.1-0.15 s resolving and compiling ~150 module files before the first tensor was
 * read; the bundle is one file to read and compile (docs/benchmarks.md). The library (dist/index.js)
 * stays unbundled. Left out of the bundle: Node's built-ins, the optional onnxruntime-node, and what
 * the code loads with createRequire at run time (the addon through node-gyp-build, protobufjs).
 */
import { build } from 'esbuild';
import { readdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist', 'cli');

// Chunks of an earlier bundle (their names change with their contents).
for (const f of readdirSync(cli)) if (/^cli-[A-Z0-9]+\.js$/.test(f)) rmSync(join(cli, f));

await build({
  entryPoints: [join(cli, 'quantkit.js'), join(cli, 'quantize.js')],
  outdir: cli,
  allowOverwrite: true,
  bundle: true,
  splitting: true,
  chunkNames: 'cli-[hash]',
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['onnxruntime-node'],
  // Bundled CommonJS dependencies call require(); an ES module has none unless it is made.
  banner: { js: "import { createRequire as __quantkitCreateRequire } from 'node:module'; const require = __quantkitCreateRequire(import.meta.url);" },
  logLevel: 'warning',
  legalComments: 'none',
});
