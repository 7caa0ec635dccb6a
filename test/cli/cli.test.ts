/** The command line as users run it: exit codes, one-line errors naming file and tensor, no partial output. */
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, ROOT, STORIES260K, TINYSTORIES656K, tempDir } from '../helpers/models.js';
import { writeRaw } from '../helpers/fixtures.js';

const dir = tempDir();

/** dist/, the addon and the runtime dependency closure copied into a world-readable directory. */
function publicRuntimeCopy(to: string): string {
  const copy = (rel: string) => cpSync(join(ROOT, rel), join(to, rel), { recursive: true });
  copy('dist');
  copy('build/Release/quantkit.node');
  copy('package.json');
  const seen = new Set<string>();
  const depsOf = (pkgDir: string): string[] => {
    const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    const nested = join(pkgDir, 'node_modules');
    // Packages nested under this one resolve their own dependencies from the top level too.
    const inner = existsSync(nested) ? readdirSync(nested).flatMap((n) => depsOf(join(nested, n))) : [];
    return [...Object.keys(pkg.dependencies ?? {}), ...inner];
  };
  const visit = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    copy(join('node_modules', name));
    for (const dep of depsOf(join(ROOT, 'node_modules', name))) visit(dep);
  };
  const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  for (const dep of Object.keys(root.dependencies)) if (existsSync(join(ROOT, 'node_modules', dep, 'package.json')) && !/^(cmake-js|node-addon-api|node-api-headers)$/.test(dep)) visit(dep);
  spawnSync('chmod', ['-R', 'a+rX', to]);
  return to;
}

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: dir });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** A copy of stories260k with its weights file replaced or damaged. */
function brokenModel(name: string, damage: (weights: string) => void): string {
  const d = join(dir, name);
  cpSync(STORIES260K, d, { recursive: true });
  damage(join(d, 'model.safetensors'));
  return d;
}

describe('quantkit CLI', () => {
  it('quantize --bits 4 writes a verified output and prints a summary', () => {
    const out = join(dir, 'ok');
    const r = cli('quantize', '--bits', '4', STORIES260K, '-o', out);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/36 tensors quantized/); // the default (auto) quantizes every matrix, the tied embedding too
    expect(r.stdout).toMatch(/sizes equal the prediction, byte for byte/);
    const report = JSON.parse(readFileSync(join(out, 'quantization-report.json'), 'utf8'));
    expect(report.tensors).toHaveLength(47);
    expect(report.sizes.length).toBeGreaterThan(2);
  });

  it('the quantize bin is quantkit quantize, and --json prints one machine-readable object', () => {
    const out = join(dir, 'json');
    const r = spawnSync(process.execPath, [join(ROOT, 'dist', 'cli', 'quantize.js'), '--bits', '8', '--format', 'gguf', STORIES260K, '-o', out, '--json'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.format).toBe('gguf');
    expect(j.totals.relRmse).toBeLessThan(0.01);
    expect(j.totals.quantizedTensors).toBe(31);
  });

  it('plan and --dry-run print exact sizes and write nothing', () => {
    const out = join(dir, 'dry');
    const r = cli('quantize', STORIES260K, '-o', out, '--dry-run');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/model\.safetensors\s+\d+ bytes/);
    expect(existsSync(out)).toBe(false);
    const p = cli('plan', STORIES260K, '--format', 'gguf', '--json');
    const plan = JSON.parse(p.stdout);
    const real = cli('quantize', STORIES260K, '--format', 'gguf', '-o', join(dir, 'planned'), '--json');
    const report = JSON.parse(real.stdout);
    expect(plan.files.map((f: { bytes: number }) => f.bytes)).toEqual(report.sizes.map((s: { actual: number }) => s.actual));
  });

  it('verify --against re-checks an output; --max-rel-rmse fails it with exit 5', () => {
    const out = join(dir, 'verify-me');
    expect(cli('quantize', STORIES260K, '-o', out).code).toBe(0);
    const v = cli('verify', out, '--against', STORIES260K, '--json');
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout).totals.quantizedTensors).toBe(36);
    const strict = cli('verify', out, '--against', STORIES260K, '--max-rel-rmse', '0.05');
    expect(strict.code).toBe(5);
    expect(strict.stderr).toMatch(/exceed --max-rel-rmse 0.05/);
  });

  it('--max-rel-rmse on quantize fails the run and publishes nothing', () => {
    const out = join(dir, 'strict');
    const r = cli('quantize', STORIES260K, '-o', out, '--max-rel-rmse', '0.01');
    expect(r.code).toBe(5);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.startsWith('strict'))).toEqual([]);
  });

  it('refuses an existing output without --force, replaces it with --force', () => {
    const out = join(dir, 'exists');
    mkdirSync(out);
    writeFileSync(join(out, 'keep-me'), 'x');
    const r = cli('quantize', STORIES260K, '-o', out);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/already exists \(use --force/);
    expect(readFileSync(join(out, 'keep-me'), 'utf8')).toBe('x');
    expect(cli('quantize', STORIES260K, '-o', out, '--force').code).toBe(0);
    expect(existsSync(join(out, 'keep-me'))).toBe(false);
    expect(existsSync(join(out, 'model.safetensors'))).toBe(true);
  });

  it('refuses an output inside (or equal to, or containing) the input', () => {
    const model = join(dir, 'model-copy');
    cpSync(STORIES260K, model, { recursive: true });
    for (const out of [join(model, 'q'), model, dir]) {
      const r = cli('quantize', model, '-o', out, '--force');
      expect(r.code, out).toBe(4);
      expect(r.stderr).toMatch(/overlaps the input/);
    }
    expect(readdirSync(model).sort()).toEqual(readdirSync(STORIES260K).sort());
    // ... also through a symbolic link that points into the input
    const link = join(dir, 'link-into-model');
    symlinkSync(model, link);
    const r = cli('quantize', model, '-o', join(link, 'q'));
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/overlaps the input/);
    expect(existsSync(join(model, 'q'))).toBe(false);
  });

  it('quantize --method gptq: the same seed gives the same bytes, another seed other bytes; the report records the calibration', () => {
    const run = (name: string, seed: string) => {
      const out = join(dir, name);
      const r = cli('quantize', '--method', 'gptq', '--format', 'gguf', '--calibration-samples', '8', '--calibration-length', '64', '--seed', seed, STORIES260K, '-o', out);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/sizes equal the prediction, byte for byte/);
      return { bytes: readFileSync(join(out, 'stories260k-Q4_0.gguf')), report: JSON.parse(readFileSync(join(out, 'quantization-report.json'), 'utf8')) };
    };
    const a = run('gptq-a', '5');
    const b = run('gptq-b', '5');
    const c = run('gptq-c', '6');
    expect(a.bytes.equals(b.bytes)).toBe(true);
    expect(a.bytes.equals(c.bytes)).toBe(false);
    expect(a.bytes.length).toBe(c.bytes.length);
    expect(a.report.calibration).toEqual({ samples: 8, length: 64, seed: 5, damp: 0.1 });
    // every quantized tensor, the tied embedding (llama.cpp's output head) included, went through GPTQ
    const quantized = a.report.plan.filter((p: { treatment: string }) => p.treatment === 'quantized');
    expect(quantized).toHaveLength(31);
    expect(quantized.every((p: { format: string }) => p.format === 'Q4_0 gptq')).toBe(true);
  });

  it('usage errors exit 2 with a clear message', () => {
    expect(cli('quantize', STORIES260K, '--method', 'search', '--seed', '1').stderr).toMatch(/apply to --method auto, gptq or iq4nl-gptq/);
    expect(cli('quantize', STORIES260K, '--method', 'gptq', '--asym').stderr).toMatch(/--method gptq covers symmetric codes: use --sym/);
    expect(cli('quantize', STORIES260K, '--method', 'gptq', '--calibration-length', '1').code).toBe(2);
    expect(cli('quantize', STORIES260K, '--method', 'gptq', '--calibration-length', '4096').stderr).toMatch(/exceeds the model's context \(512\)/);
    expect(cli('quantize', STORIES260K, '--bits', '3').code).toBe(2);
    const r = cli('quantize', STORIES260K, '--group-size', 'abc');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--group-size must be a positive integer or 'row'/);
    expect(cli('quantize', STORIES260K, '--sym', '--asym').code).toBe(2);
    expect(cli('quantize', STORIES260K, '--bits-for', 'x=5').stderr).toMatch(/GLOB=4 or GLOB=8/);
    expect(cli('frobnicate').code).toBe(2);
  });

  const broken: [string, (w: string) => void, RegExp][] = [
    ['a truncated file', (w) => writeFileSync(w, readFileSync(w).subarray(0, 100_000)), /model\.safetensors: .*truncated/],
    ['a malformed header', (w) => writeRaw(w, '{"a": nope}'), /model\.safetensors: header is not valid JSON/],
    ['overlapping offsets', (w) => writeRaw(w, { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12), /model\.safetensors: tensor 'b': .*overlap/],
    ['a wrong byte span', (w) => writeRaw(w, { 'w.weight': { dtype: 'BF16', shape: [4, 32], data_offsets: [0, 100] } }, 100), /model\.safetensors: tensor 'w\.weight': .*needs 256 bytes but data_offsets span 100/],
  ];
  for (const [label, damage, msg] of broken) {
    it(`bad input (${label}): one line naming the file, exit 3, nothing written`, () => {
      const model = brokenModel(label.replace(/\W+/g, '-'), damage);
      const out = join(dir, `out-${label.replace(/\W+/g, '-')}`);
      const r = cli('quantize', model, '-o', out);
      expect(r.code).toBe(3);
      expect(r.signal).toBeNull();
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(msg);
      expect(existsSync(out)).toBe(false);
    });
  }

  it('bad input (missing shard): names the index and the shard', () => {
    const model = join(dir, 'missing-shard');
    mkdirSync(model);
    writeFileSync(join(model, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { 'a.weight': 'model-00001-of-00002.safetensors' } }));
    const r = cli('quantize', model, '-o', join(dir, 'ms-out'));
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/model\.safetensors\.index\.json: tensor 'a\.weight': shard 'model-00001-of-00002\.safetensors' is missing/);
  });

  it('bad input (unreadable directory): exit 3 naming it (run as an unprivileged user when root)', () => {
    // root reads anything; setpriv drops to nobody so that the permission check is real under CI too.
    // nobody may not be able to reach this checkout (a clone in a 0700 directory), so the CLI runs from
    // a world-readable copy of what it needs at run time: dist/, the addon, and yargs with its dependencies.
    const asRoot = process.getuid?.() === 0;
    const base = join(dir, 'perm');
    mkdirSync(base);
    chmodSync(base, 0o777);
    chmodSync(dir, 0o755);
    const runtime = asRoot ? publicRuntimeCopy(join(base, 'runtime')) : ROOT;
    const model = join(base, 'unreadable');
    cpSync(STORIES260K, model, { recursive: true });
    chmodSync(model, 0o000);
    const argv = [join(runtime, 'dist', 'cli', 'quantkit.js'), 'quantize', model, '-o', join(base, 'ur-out')];
    const r = asRoot
      ? spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, ...argv], { encoding: 'utf8' })
      : spawnSync(process.execPath, argv, { encoding: 'utf8' });
    chmodSync(model, 0o755);
    expect(r.stderr).toMatch(/unreadable.*EACCES/);
    expect(r.status).toBe(3);
    expect(existsSync(join(base, 'ur-out'))).toBe(false);
  });

  it('bad input (unreadable weights file, even as root): a directory named like the file', () => {
    const model = join(dir, 'weights-dir');
    mkdirSync(join(model, 'model.safetensors'), { recursive: true });
    const r = cli('quantize', model, '-o', join(dir, 'wd-out'));
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/model\.safetensors: not a regular file/);
  });

  it('a model path that does not exist', () => {
    const r = cli('quantize', join(dir, 'nope'), '-o', join(dir, 'nope-out'));
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/nope: cannot open model: ENOENT/);
  });

  it('draws a progress bar on stderr only when it is a terminal', () => {
    const out = join(dir, 'tty');
    // script(1) gives the CLI a pseudo-terminal; the bar redraws one line with \r and an erase sequence.
    // --verify full: its re-read is the second phase the bar draws (the default measures while writing).
    const cmd = [process.execPath, CLI, 'quantize', TINYSTORIES656K, '-o', out, '--threads', '1', '--verify', 'full'].map((a) => `'${a}'`).join(' ');
    const tty = spawnSync('script', ['-qfec', cmd, '/dev/null'], { encoding: 'utf8' });
    expect(tty.status).toBe(0);
    expect(tty.stdout).toMatch(/\r\x1b\[2Kquantize +\[#*\.*\] \d+\/20 /);
    expect(tty.stdout).toMatch(/\r\x1b\[2Kverify +\[/);
    expect(tty.stdout).toMatch(/15 tensors quantized/);
    const plain = cli('quantize', TINYSTORIES656K, '-o', out, '--force');
    expect(plain.stderr).toBe('');
  });

  it('info names the kernel instruction set', () => {
    const r = cli('info', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.available).toContain('scalar');
    expect(j.available).toContain(j.isa);
  });
});

describe('a single .safetensors file as input', () => {
  it('quantizes it beside itself, copies no neighbouring files, and refuses an output that would contain it', () => {
    const d = join(dir, 'loose');
    mkdirSync(d);
    cpSync(join(STORIES260K, 'model.safetensors'), join(d, 'weights.safetensors'));
    writeFileSync(join(d, 'notes.md'), 'unrelated');
    const out = join(d, 'q');
    const r = cli('quantize', join(d, 'weights.safetensors'), '-o', out);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['config.json', 'model.safetensors', 'quantization-report.json']);
    const refused = cli('quantize', join(d, 'weights.safetensors'), '-o', d, '--force');
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/overlaps the input/);
    expect(existsSync(join(d, 'weights.safetensors'))).toBe(true);
  });
});
