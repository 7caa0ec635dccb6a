/**
 * quantize's verification modes: the default ("fast") measures every tensor's error from the buffers
 * before they are written, hashes the files as written and re-opens them; it must report exactly what
 * the full re-read (`verifyOutput`, `--verify full`, `quantkit verify`) reports, and its checksums must
 * be those of the files on disk. The checks it relies on must fail when what they check is wrong.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { AtomicFile, takeChecksums, watchChecksums } from '../src/atomic-file.js';
import { BufferPool } from '../src/buffer-pool.js';
import { Checkpoint } from '../src/checkpoint.js';
import { QuantkitError } from '../src/errors.js';
import { planQuantization } from '../src/plan.js';
import { type QuantizeRunOptions, quantize } from '../src/quantize.js';
import { verifyOutput } from '../src/verify.js';
import { Measurements, checkWritten, compareChecksums } from '../src/written-check.js';
import { CLI, STORIES260K, TINYSTORIES656K, tempDir } from './helpers/models.js';

const dir = tempDir();
let n = 0;

const CASES: [string, string, Omit<QuantizeRunOptions, 'output'>][] = [
  ['stories260k runnable GGUF Q4_0 (rope rows reordered, norms converted)', STORIES260K, { bits: 4, format: 'gguf', ggufType: 'Q4_0' }],
  ['tinystories-656k packed safetensors int4 asym g32, norms kept', TINYSTORIES656K, { bits: 4, mode: 'asym', format: 'safetensors', keep: ['*norm*'] }],
  ['stories260k GGUF Q4_K_M (K-quants)', STORIES260K, { bits: 4, format: 'gguf', ggufType: 'Q4_K_M' }],
  ['stories260k gguf-raw Q8_0 --method search', STORIES260K, { bits: 8, format: 'gguf-raw', quantMethod: 'search' }],
];

describe('fast verification reports what the full re-read reports', () => {
  for (const [label, model, o] of CASES)
    it(label, async () => {
      const fast = await quantize(model, { ...o, output: join(dir, `fast${n++}`), threads: 2 });
      expect(fast.report.verification.mode).toBe('fast');
      const full = await quantize(model, { ...o, output: join(dir, `full${n++}`), threads: 2, verify: 'full' });
      expect(full.report.verification.mode).toBe('full');
      // Same bytes either way, and the same per-tensor errors as an independent re-read of the output.
      const reread = await verifyOutput(fast.output, model, { threads: 1 });
      expect(fast.report.tensors).toEqual(reread.tensors);
      expect(fast.report.tensors).toEqual(full.report.tensors);
      expect(fast.report.totals).toEqual(full.report.totals);
      expect(fast.report.tensors.some((t) => t.treatment === 'quantized' && t.relRmse > 0)).toBe(true);
      // The checksums are those of the files now on disk, and cover the weights files.
      expect(fast.report.verification.checksums.length).toBeGreaterThan(0);
      for (const c of fast.report.verification.checksums) {
        const bytes = readFileSync(join(fast.output, c.name));
        expect(bytes.length).toBe(c.bytes);
        expect(crc32(bytes).toString(16).padStart(8, '0')).toBe(c.crc32);
      }
      expect(fast.report.verification.checksums.map((c) => c.name)).toEqual(expect.arrayContaining(fast.plan.files.filter((f) => f.kind === 'weights').map((f) => f.name)));
      expect(full.report.verification.checksums).toEqual(fast.report.verification.checksums);
      expect(fast.report.peak_rss_bytes).toBeGreaterThan(10 * 2 ** 20);
    });

  it('ONNX output keeps the full re-read (its writer reorders tensors into initializers)', async () => {
    const r = await quantize(STORIES260K, { bits: 4, format: 'onnx', output: join(dir, `onnx${n++}`), threads: 1 });
    expect(r.report.verification.mode).toBe('full');
  });
});

describe('the checks fast verification relies on fail when they should', () => {
  it('a file changed on disk after it was written no longer matches its checksum', async () => {
    const sub = join(dir, `crc${n++}`);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(sub);
    watchChecksums(sub);
    const f = await AtomicFile.create(join(sub, 'w.bin'));
    await f.write(new Uint8Array(100_000).fill(7));
    await f.commit();
    const written = takeChecksums(sub);
    expect(written.get(join(sub, 'w.bin'))).toEqual({ bytes: 100_000, crc32: crc32(new Uint8Array(100_000).fill(7)) });
    await compareChecksums(written, new BufferPool());
    const bytes = readFileSync(join(sub, 'w.bin'));
    bytes[54_321] = bytes[54_321]! ^ 1;
    writeFileSync(join(sub, 'w.bin'), bytes);
    const err = await compareChecksums(written, new BufferPool()).catch((e) => e);
    expect(err).toBeInstanceOf(QuantkitError);
    expect((err as QuantkitError).code).toBe('ERR_VERIFY');
    expect(String(err.message)).toMatch(/differs from the bytes written/);
  });

  it('an output tensor without a measurement from this run is refused', async () => {
    const out = join(dir, `unmeasured${n++}`);
    await quantize(STORIES260K, { bits: 4, format: 'gguf-raw', output: out, threads: 1 });
    const ckpt = await Checkpoint.open(STORIES260K);
    try {
      const plan = await planQuantization(ckpt, { bits: 4, format: 'gguf-raw' });
      const err = await checkWritten(out, ckpt, plan, new Measurements()).catch((e) => e);
      expect((err as QuantkitError).code).toBe('ERR_VERIFY');
      expect(String(err.message)).toMatch(/no measurement/);
    } finally {
      await ckpt.close();
    }
  });
});

describe('CLI summary', () => {
  // rtn and --no-eval: the verification is what is tested here, not auto's calibration or the evaluation.
  it('names the verification that ran and prints the peak RSS', () => {
    for (const mode of ['fast', 'full']) {
      const r = spawnSync(process.execPath, [CLI, 'quantize', STORIES260K, '--bits', '4', '--method', 'rtn', '--no-eval', '-o', join(dir, `cli-${mode}`), '--verify', mode], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`verification: ${mode}`));
      const rss = /peak RSS: (\d+) MiB/.exec(r.stdout);
      expect(rss).not.toBeNull();
      expect(Number(rss![1])).toBeGreaterThan(10);
    }
    const bad = spawnSync(process.execPath, [CLI, 'quantize', STORIES260K, '--verify', 'some', '-o', join(dir, 'cli-bad')], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
  });
});
