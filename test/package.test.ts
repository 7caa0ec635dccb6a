/**
 * The npm package as users get it: `npm pack` with the prebuilt addon, installed into an empty project
 * from the local npm cache (the registry for what is not cached) with no C/C++ compiler, cmake or make
 * on PATH; the CLI quantizes the bundled model and a small TypeScript file type-checks against the
 * published .d.ts (and a wrong one does not).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, realpathSync, statSync, symlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, tempDir } from './helpers/models.js';

const dir = tempDir('quantkit-pack-');

function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { code: r.status, out: `${r.stdout}\n${r.stderr}` };
}

/** A PATH holding node, npm, npx and sh only: any attempt to compile would fail. */
function bareBin(): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  symlinkSync('/bin/sh', join(bin, 'sh'));
  const nodeDir = dirname(process.execPath);
  symlinkSync(process.execPath, join(bin, 'node'));
  for (const tool of ['npm', 'npx']) symlinkSync(realpathSync(join(nodeDir, tool)), join(bin, tool));
  return bin;
}

describe('npm package', () => {
  it('installs without a compiler, runs `npx quantize`, and types its library API', () => {
    const pre = sh(process.execPath, ['scripts/prebuild.mjs'], ROOT);
    expect(pre.code, pre.out).toBe(0);
    const packDir = join(dir, 'pack');
    mkdirSync(packDir);
    const pack = sh('npm', ['pack', '--pack-destination', packDir, '--json'], ROOT);
    expect(pack.code, pack.out).toBe(0);
    const tarball = join(packDir, readdirSync(packDir).find((f) => f.endsWith('.tgz'))!);
    const info = JSON.parse(pack.out.slice(pack.out.indexOf('['), pack.out.lastIndexOf(']') + 1))[0] as { files: { path: string }[]; size: number; unpackedSize: number };
    const paths = info.files.map((f) => f.path);
    expect(paths).toContain('prebuilds/linux-x64/quantkit.napi.node');
    expect(paths).toContain('models/stories260k/LICENSE');
    expect(paths.some((p) => p.startsWith('test/') || p.startsWith('native/test/') || p.startsWith('build/'))).toBe(false);
    console.log(`npm pack: ${info.size} bytes packed, ${info.unpackedSize} unpacked, ${paths.length} files`);

    const app = join(dir, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', type: 'module', private: true }));
    const env = { ...process.env, PATH: bareBin(), npm_config_nodedir: '', npm_config_audit: 'false', npm_config_fund: 'false' };
    for (const tool of ['cc', 'gcc', 'g++', 'c++', 'cmake', 'make']) expect(sh('/bin/sh', ['-c', `command -v ${tool}`], app, env).code, tool).not.toBe(0);
    // --prefer-offline: the dependencies' tarballs come from the cache `npm ci` filled; their registry
    // metadata (which `npm ci` never fetches, the lockfile pins the tarballs) may come from the registry,
    // the one host these machines reach. What is tested is that nothing is compiled or downloaded for the
    // addon itself.
    const install = sh('npm', ['install', '--prefer-offline', tarball], app, env);
    expect(install.code, install.out).toBe(0);
    expect(existsSync(join(app, 'node_modules', 'quantkit', 'build'))).toBe(false); // nothing compiled

    const run = sh('npx', ['quantize', '--bits', '4', 'node_modules/quantkit/models/stories260k', '-o', 'out', '-q'], app, env);
    expect(run.code, run.out).toBe(0);
    expect(readdirSync(join(app, 'out')).some((f) => f.endsWith('.safetensors'))).toBe(true);
    // report finds the evaluation text shipped in the package (data/) and runs the forward pass.
    const rep = sh('npx', ['quantkit', 'report', 'node_modules/quantkit/models/stories260k', '--bits', '4', '--group-size', '32', '--mode', 'sym', '--method', 'iq4nl', '--format', 'gguf', '-o', 'rep'], app, env);
    expect(rep.code, rep.out).toBe(0);
    expect(JSON.parse(readFileSync(join(app, 'rep', 'report.json'), 'utf8')).eval.tokens).toBe(6989);

    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', noEmit: true, skipLibCheck: false, types: ['node'], typeRoots: [join(ROOT, 'node_modules', '@types')] }, include: ['check.ts'] }));
    writeFileSync(join(app, 'check.ts'), [
      "import { quantize, estimate, pull, verifyOutput, report, QuantkitError, type EstimateOptions, type QuantizeRunOptions, type ReportRunOptions } from 'quantkit';",
      "const options: QuantizeRunOptions = { bits: 4, format: 'gguf', ggufType: 'mobile', onProgress: (p) => console.log(p.phase, p.bytesDone), signal: AbortSignal.timeout(60_000) };",
      "const scenario: EstimateOptions = { scenario: 'finetune', method: 'qlora', gpu: 'T4' };",
      'export async function pipeline(): Promise<number> {',
      "  const { snapshot } = await pull('org/name', { revision: 'main' });",
      '  const e = await estimate(snapshot, scenario);',
      '  const { output, report: written } = await quantize(snapshot, options);',
      '  const v = await verifyOutput(output, snapshot);',
      "  const sweep: ReportRunOptions = { bits: [4], methods: ['rtn', 'iq4nl'], formats: ['gguf'], output: 'sweep' };",
      '  const r = await report(snapshot, sweep);',
      '  if (r.report.variants[0]?.model?.perplexity === undefined) return -1;',
      '  if (!(e instanceof QuantkitError)) return e.peak_bytes + written.totals.relRmse + v.totals.rmse;',
      '  return 0;',
      '}',
    ].join('\n'));
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const ok = sh(process.execPath, [tsc, '-p', '.'], app, env);
    expect(ok.code, ok.out).toBe(0);
    writeFileSync(join(app, 'check.ts'), "import { estimate } from 'quantkit';\nexport const bad: string = (await estimate('m')).peak_bytes;\n");
    const wrong = sh(process.execPath, [tsc, '-p', '.'], app, env);
    expect(wrong.code).not.toBe(0);
    expect(wrong.out).toMatch(/Type 'number' is not assignable to type 'string'/);
    expect(statSync(tarball).size).toBeGreaterThan(100_000);
  }, 300_000);
});
