/**
 * Run-time dispatch and threads change no output byte: every ISA and every thread count gives the
 * same files and the same report; QUANTKIT_ISA refuses what the CPU lacks; cancellation and progress.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { addon } from '../../src/native.js';
import { type Progress, quantize } from '../../src/quantize.js';
import { QuantkitError } from '../../src/errors.js';
import { headerFor, writeRaw } from '../helpers/fixtures.js';
import { CLI, STORIES260K, TINYSTORIES656K, tempDir } from '../helpers/models.js';

const dir = tempDir();
const isas = addon().info().available;

function cli(env: Record<string, string>, ...args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
}

function filesOf(d: string): Map<string, Buffer> {
  return new Map(readdirSync(d).filter((f) => f !== 'quantization-report.json').map((f) => [f, readFileSync(join(d, f))]));
}

/** A bf16 checkpoint of `n` random [rows, cols] matrices, big enough for progress and cancellation. */
function bigModel(name: string, n: number, rows: number, cols: number): string {
  const d = join(dir, name);
  const tensors = Array.from({ length: n }, (_, i) => ({ name: `layers.${i}.weight`, dtype: 'BF16', shape: [rows, cols], bytes: rows * cols * 2 }));
  const { header, dataBytes } = headerFor(tensors);
  const data = new Uint8Array(dataBytes);
  let s = 7;
  for (let i = 0; i < data.length; i += 2) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = s >>> 24;
    data[i + 1] = 0x3c + ((s >>> 16) & 1) * 0x80; // small values of both signs
  }
  mkdirSync(d, { recursive: true });
  writeRaw(join(d, 'model.safetensors'), header, data);
  return d;
}

describe('every ISA and thread count writes the same bytes', () => {
  for (const method of [['search'], ['iq4nl'], ['gptq', '--calibration-samples', '4'], ['hqq', '--asym']])
    it(`stories260k gguf --method ${method[0]}: ${isas.join(', ')} x threads 1, 2`, () => {
      const runs: Map<string, Buffer>[] = [];
      for (const isa of isas)
        for (const threads of ['1', '2']) {
          const out = join(dir, `method-${method[0]}-${isa}-${threads}`);
          const r = cli({ QUANTKIT_ISA: isa }, 'quantize', STORIES260K, '--format', 'gguf', '--method', ...method, '-o', out, '--threads', threads, '--no-eval');
          expect(r.status, r.stderr).toBe(0);
          runs.push(filesOf(out));
        }
      for (const run of runs.slice(1)) for (const [name, bytes] of runs[0]!) expect(Buffer.compare(run.get(name)!, bytes), name).toBe(0);
    });

  for (const [label, model] of [['stories260k', STORIES260K], ['tinystories-656k', TINYSTORIES656K]] as const) {
    for (const format of ['gguf', 'safetensors']) {
      it(`${label} ${format}: ${isas.join(', ')} x threads 1, 2`, () => {
        const runs: { files: Map<string, Buffer>; report: { totals: { relRmse: number; maxAbsErr: number } } }[] = [];
        for (const isa of isas) {
          for (const threads of ['1', '2']) {
            const out = join(dir, `${label}-${format}-${isa}-${threads}`);
            // --method search: the asymmetric SIMD search on every ISA (auto would add its calibration, whose
            // GPTQ is ISA-independent code, to each of the six runs); --no-eval: bytes are what is compared.
            const r = cli({ QUANTKIT_ISA: isa }, 'quantize', model, '--format', format, '--bits', '4', '--asym', '--method', 'search', '-o', out, '--threads', threads, '--json', '--no-eval');
            expect(r.status, r.stderr).toBe(0);
            runs.push({ files: filesOf(out), report: JSON.parse(r.stdout) });
          }
        }
        const [first, ...rest] = runs;
        for (const run of rest) {
          expect([...run.files.keys()]).toEqual([...first!.files.keys()]);
          for (const [name, bytes] of first!.files) expect(Buffer.compare(run.files.get(name)!, bytes), name).toBe(0);
          // Error sums are merged per fixed chunk, so they agree across threads; across ISAs they may
          // differ in the last bits (different summation order).
          expect(Math.abs(run.report.totals.relRmse - first!.report.totals.relRmse) / first!.report.totals.relRmse).toBeLessThan(1e-12);
          expect(run.report.totals.maxAbsErr).toBe(first!.report.totals.maxAbsErr);
        }
      });
    }
  }

  it('QUANTKIT_ISA names the kernels in use and refuses what this CPU lacks', () => {
    const info = cli({ QUANTKIT_ISA: 'scalar' }, 'info', '--json');
    expect(JSON.parse(info.stdout).isa).toBe('scalar');
    for (const bogus of ['avx9000', ...['avx512', 'neon', 'avx2'].filter((i) => !isas.includes(i))]) {
      const r = cli({ QUANTKIT_ISA: bogus }, 'quantize', STORIES260K, '-o', join(dir, `bogus-${bogus}`));
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`QUANTKIT_ISA=${bogus} is not available on this CPU/build \\(available: ${isas.join(', ')}\\)`));
    }
  });
});

describe('progress and cancellation', () => {
  it('reports monotonic progress in bytes through both phases', async () => {
    const model = bigModel('progress', 4, 2048, 4096);
    const events: Progress[] = [];
    // --verify full: the second phase re-reads every tensor (the default measures while writing).
    const { report } = await quantize(model, { bits: 4, output: join(dir, 'progress-out'), verify: 'full', onProgress: (p) => events.push(p) });
    expect(report.totals.quantizedTensors).toBe(4);
    const q = events.filter((e) => e.phase === 'quantize'), v = events.filter((e) => e.phase === 'verify');
    expect(q.length).toBeGreaterThanOrEqual(4);
    expect(v.length).toBeGreaterThanOrEqual(4);
    expect(events.indexOf(v[0]!)).toBeGreaterThan(events.indexOf(q[q.length - 1]!));
    for (const phase of [q, v]) {
      for (let i = 1; i < phase.length; i++) expect(phase[i]!.bytesDone).toBeGreaterThanOrEqual(phase[i - 1]!.bytesDone);
      expect(phase[phase.length - 1]).toMatchObject({ done: 4, total: 4, bytesDone: 4 * 2048 * 4096 * 2, bytesTotal: 4 * 2048 * 4096 * 2 });
    }
  });

  it('an aborted run rejects with ERR_ABORTED and leaves nothing behind', async () => {
    const model = bigModel('cancel', 6, 4096, 4096);
    const output = join(dir, 'cancel-out');
    const controller = new AbortController();
    const err = await quantize(model, {
      bits: 4,
      output,
      threads: 1,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.bytesDone > 0) controller.abort(new Error('test'));
      },
    }).catch((e) => e);
    expect(err).toBeInstanceOf(QuantkitError);
    expect((err as QuantkitError).code).toBe('ERR_ABORTED');
    expect(existsSync(output)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.startsWith('cancel-out'))).toEqual([]);
  });

  it('SIGINT stops the CLI with exit 130 and no partial output', async () => {
    const model = join(dir, 'cancel');
    const output = join(dir, 'sigint-out');
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [CLI, 'quantize', model, '-o', output, '--threads', '1'], { env: { ...process.env, QUANTKIT_ISA: 'scalar' } });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    let running = true;
    const exited = new Promise<number | null>((res) => child.on('exit', (c) => ((running = false), res(c))));
    // Interrupt once the run has started writing (its temporary output exists), however slow start-up is.
    const started = Date.now();
    while (running && !readdirSync(dir).some((f) => f.startsWith('sigint-out.quantkit-tmp')) && Date.now() - started < 30_000) await new Promise((r) => setTimeout(r, 10));
    child.kill('SIGINT');
    const code = await exited;
    expect(stderr).toMatch(/interrupted/);
    expect(code).toBe(130);
    expect(existsSync(output)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.startsWith('sigint-out'))).toEqual([]);
  });
});
