/**
 * Bundles the command-line entry points (dist/cli/quantkit.js, dist/cli/quantize.js, compiled by tsc)
 * into single ES modules in place, the code they share in one chunk beside them. A cold start of the
 * unbundled CLI spent 0.1-0.15 s resolving and compiling ~150 module files before the first tensor was
 * read; the bundle is one file to read and compile (docs/benchmarks.md). The library (dist/index.js)
 * stays unbundled. Left out of the bundle: Node's built-ins, the optional onnxruntime-node, and what
 * the code loads with createRequire at run time (the addon through node-gyp-build, protobufjs).
 */
import { build } from 'esbuild';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist', 'cli');

const BANNER = "import { createRequire as __quantkitCreateRequire } from 'node:module'; const require = __quantkitCreateRequire(import.meta.url);";
// The entry points are bundled in place: they must be tsc's output, not an earlier bundle.
for (const entry of ['quantkit.js', 'quantize.js'])
  if (readFileSync(join(cli, entry), 'utf8').includes(BANNER)) {
    console.error(`bundle-cli: dist/cli/${entry} is already a bundle: run npm run build (tsc, then this)`);
    process.exit(1);
  }

// Chunks of an earlier bundle (their names change with their contents).
for (const f of readdirSync(cli)) if (/^cli-[A-Z0-9]+\.js$/.test(f)) rmSync(join(cli, f));

/**
 * string-width (under yargs' help layout) builds an Intl.Segmenter and an RGI_Emoji regular expression
 * when it is loaded: 30-35 ms of every start-up, for help text that a run never renders. In the bundle
 * both are made on first use instead (the same objects, the same widths when help is printed). A
 * string-width whose source no longer has these lines is bundled as it is.
 */
const lazyStringWidth = {
  name: 'lazy-string-width',
  setup(b) {
    b.onLoad({ filter: /[\\/]string-width[\\/]index\.js$/ }, (args) => {
      const contents = readFileSync(args.path, 'utf8')
        .replace(/^const segmenter = new Intl\.Segmenter\(\);$/m, 'let madeSegmenter;\nconst segmenter = { segment: (s) => (madeSegmenter ??= new Intl.Segmenter()).segment(s) };')
        .replace(/^const rgiEmojiRegex = (\/.*\/v);$/m, 'let madeRgiEmojiRegex;\nconst rgiEmojiRegex = { test: (s) => (madeRgiEmojiRegex ??= $1).test(s) };');
      return { contents, loader: 'js' };
    });
  },
};

await build({
  plugins: [lazyStringWidth],
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
  banner: { js: BANNER },
  logLevel: 'warning',
  legalComments: 'none',
});
