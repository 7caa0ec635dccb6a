/**
 * llama.cpp's importance matrix: `quantkit imatrix` (computeImatrix + writeImatrixFile) writes what
 * llama-imatrix writes and reads back; files llama.cpp's own llama-imatrix wrote (GGUF and the legacy
 * .dat, test/fixtures/imatrix/, scripts/make-imatrix-fixture.sh) read with llama-quantize's values and
 * agree with quantkit's forward pass; `quantize --imatrix` uses it where llama-quantize does, changes the
 * bytes, lowers the importance-weighted error, and refuses a file made for another model.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { GgufReader } from '../../src/formats/gguf-container.js';
import { imatrixValues, readImatrixFile, writeImatrixFile, type ImatrixFile } from '../../src/formats/imatrix-file.js';
import { fromConfig } from '../../src/estimate/model.js';
import { computeImatrix } from '../../src/imatrix.js';
import { planQuantization } from '../../src/plan.js';
import { addon } from '../../src/native.js';
import { quantize } from '../../src/quantize.js';
import { CLI, ROOT, STORIES260K, TINYSTORIES656K, tempDir } from '../helpers/models.js';

const TEXT = join(ROOT, 'data', 'tinystories-valid-excerpt.txt');
const FIXTURES = join(ROOT, 'test', 'fixtures', 'imatrix');
const ggufIn = (dir: string) => join(dir, readdirSync(dir).find((f) => f.endsWith('.gguf'))!);

describe('quantkit imatrix', () => {
  let dir: string, file: string;
  let computed: Omit<ImatrixFile, 'path' | 'format'>;

  beforeAll(async () => {
    dir = tempDir('quantkit-imatrix-');
    file = join(dir, 'stories260k.imatrix.gguf');
    computed = await computeImatrix(STORIES260K, { text: TEXT, ctx: 128, chunks: 4, threads: 2 });
    await writeImatrixFile(file, computed);
  }, 60_000);

  it("writes llama-imatrix's GGUF layout: metadata, <tensor>.in_sum2 [cols, 1] and <tensor>.counts [1, 1] F32, sorted by name", async () => {
    const r = await GgufReader.open(file);
    try {
      expect(r.file.kvs.get('general.type')!.value).toBe('imatrix');
      expect(r.file.kvs.get('imatrix.datasets')!.value).toEqual([TEXT]);
      expect(r.file.kvs.get('imatrix.chunk_count')!.value).toBe(4);
      expect(r.file.kvs.get('imatrix.chunk_size')!.value).toBe(128);
      const names = r.file.tensors.map((t) => t.name);
      // Every blk.* matrix of the model (5 layers x 7), nothing else (llama-imatrix skips token_embd and the tied output).
      expect(names.length).toBe(2 * 35);
      expect(names.filter((n) => n.endsWith('.in_sum2')).map((n) => n.slice(0, -8))).toEqual([...names.filter((n) => n.endsWith('.in_sum2')).map((n) => n.slice(0, -8))].sort());
      const down = r.file.tensors.find((t) => t.name === 'blk.0.ffn_down.weight.in_sum2')!;
      expect(down.ne).toEqual([172, 1]);
      expect(r.file.tensors.find((t) => t.name === 'blk.0.ffn_down.weight.counts')!.ne).toEqual([1, 1]);
      expect(r.file.tensors.every((t) => t.type === 'F32')).toBe(true);
    } finally {
      await r.close();
    }
  });

  it('reads back what it wrote: sums, counts (tokens seen) and the mean squares llama-quantize uses', async () => {
    const f = await readImatrixFile(file);
    expect(f.format).toBe('gguf');
    expect([...f.entries.keys()].sort()).toEqual([...computed.entries.keys()].sort());
    for (const [name, e] of computed.entries) {
      expect(f.entries.get(name)!.sums).toEqual(e.sums);
      expect(f.entries.get(name)!.counts).toEqual([4 * 128]);
    }
    const v = imatrixValues(f).get('blk.2.attn_q.weight')!;
    const sums = computed.entries.get('blk.2.attn_q.weight')!.sums;
    expect(v[5]).toBe(Math.fround(sums[5]! / 512));
    // q, k and v read the same normed input; every column saw activation.
    expect(computed.entries.get('blk.2.attn_k.weight')!.sums).toEqual(sums);
    expect(Math.min(...v)).toBeGreaterThan(0);
  });

  it('quantize --imatrix: the tensors with an entry change, the importance-weighted error drops, the file records it', async () => {
    const rtn = join(dir, 'rtn'), im = join(dir, 'im');
    await quantize(STORIES260K, { bits: 4, format: 'gguf', ggufType: 'Q4_0', output: rtn, threads: 2 });
    const r = await quantize(STORIES260K, { bits: 4, format: 'gguf', ggufType: 'Q4_0', imatrix: file, output: im, threads: 2 });
    expect(r.plan.entries.filter((e) => e.treatment.kind === 'quantize' && e.treatment.label === 'Q4_0 imatrix').length).toBe(30); // 5 layers x q,k,v,o,gate,up (down is 172 wide: F16)
    const a = await GgufReader.open(ggufIn(rtn)), b = await GgufReader.open(ggufIn(im));
    try {
      expect(b.file.kvs.get('quantize.imatrix.file')!.value).toBe(file);
      expect(b.file.kvs.get('quantize.imatrix.entries_count')!.value).toBe(35);
      expect(b.file.kvs.get('quantize.imatrix.chunks_count')!.value).toBe(4);
      const values = imatrixValues(await readImatrixFile(file));
      let errRtn = 0, errIm = 0, changed = 0;
      for (const t of b.file.tensors.filter((x) => x.type === 'Q4_0')) {
        const ta = a.file.tensors.find((x) => x.name === t.name)!;
        const qa = await a.read(ta), qb = await b.read(t);
        const w = values.get(t.name);
        if (!w) {
          expect(Buffer.from(qb).equals(Buffer.from(qa)), t.name).toBe(true);
          continue;
        }
        if (!Buffer.from(qb).equals(Buffer.from(qa))) changed++;
        // importance-weighted squared error of each against the bf16 source GGUF values
        const cols = t.ne[0]!, rows = t.ne[1]!;
        const spec = { scheme: 'q4_0' as const, bits: 4, group: 32, scaleDtype: 'F16' as const };
        const da = new Float32Array(rows * cols), db = new Float32Array(rows * cols);
        await addon().dequantize({ spec, rows, cols, parts: { data: qa }, out: da });
        await addon().dequantize({ spec, rows, cols, parts: { data: qb }, out: db });
        const src = sourceOf(t.name);
        for (let i = 0; i < rows * cols; i++) {
          errRtn += w[i % cols]! * (da[i]! - src[i]!) ** 2;
          errIm += w[i % cols]! * (db[i]! - src[i]!) ** 2;
        }
      }
      expect(changed).toBe(30);
      expect(errIm).toBeLessThan(0.95 * errRtn);
    } finally {
      await a.close();
      await b.close();
    }
  });

  let bf16: Map<string, Float32Array>;
  const sourceOf = (name: string) => bf16.get(name)!;
  beforeAll(async () => {
    const out = join(tempDir('quantkit-imatrix-bf16-'), 'bf16');
    await quantize(STORIES260K, { bits: 4, format: 'gguf', ggufType: 'F32', output: out, threads: 2 });
    const r = await GgufReader.open(ggufIn(out));
    try {
      bf16 = new Map();
      for (const t of r.file.tensors) {
        const d = await r.read(t);
        bf16.set(t.name, new Float32Array(d.buffer, d.byteOffset, d.length / 4));
      }
    } finally {
      await r.close();
    }
  }, 60_000);

  it("refuses an importance matrix whose column counts are another model's, naming the file and the tensor", async () => {
    const err = await quantize(TINYSTORIES656K, { bits: 4, format: 'gguf', ggufType: 'Q4_0', imatrix: file, output: join(dir, 'wrong'), threads: 2 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_PLAN', file, tensor: expect.stringMatching(/^model\.layers\.\d\./) });
    expect(String((err as Error).message)).toMatch(/^.*the importance matrix has (64|172) columns for blk\.0\.\w+\.weight, the tensor has (128|384): it was computed for another model$/);
    expect(readdirSync(dir)).not.toContain('wrong');
  });

  it('refuses --imatrix outside GGUF and with another --method', async () => {
    await expect(quantize(STORIES260K, { bits: 4, format: 'safetensors', imatrix: file, output: join(dir, 'st') })).rejects.toMatchObject({ code: 'ERR_USAGE' });
    await expect(quantize(STORIES260K, { bits: 4, format: 'gguf', quantMethod: 'search', imatrix: file, output: join(dir, 'st') })).rejects.toMatchObject({ code: 'ERR_USAGE' });
  });

  it('the CLI: quantkit imatrix writes the file and says what it holds; a chunk too short is a usage error', async () => {
    const out = join(dir, 'cli.imatrix.gguf');
    const r = spawnSync(process.execPath, [CLI, 'imatrix', STORIES260K, '--text', TEXT, '--ctx', '64', '--chunks', '3', '-o', out, '--threads', '1'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${out}: 35 tensors, 3 chunks of 64 tokens\n`);
    const f = await readImatrixFile(out);
    expect(f.chunkCount).toBe(3);
    expect(f.entries.get('blk.4.ffn_down.weight')!.counts).toEqual([192]);
    const bad = spawnSync(process.execPath, [CLI, 'imatrix', STORIES260K, '--text', TEXT, '--ctx', '8', '-o', join(dir, 'bad.gguf')], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--ctx must be an integer from 16/);
    expect(readdirSync(dir)).not.toContain('bad.gguf');
  });

  it('the CLI: quantize --imatrix without --method runs llama-quantize\'s method (rtn with the matrix); an explicit other --method is refused', () => {
    const out = join(dir, 'cli-q4km');
    const r = spawnSync(process.execPath, [CLI, 'quantize', '--format', 'gguf', '--gguf-type', 'Q4_K_M', '--imatrix', file, STORIES260K, '-o', out, '--json'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).options.quantMethod).toBe('rtn');
    const bad = spawnSync(process.execPath, [CLI, 'quantize', '--format', 'gguf', '--gguf-type', 'Q4_K_M', '--imatrix', file, '--method', 'auto', STORIES260K, '-o', join(dir, 'cli-bad')], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--imatrix is llama-quantize's own method: leave --method at rtn \(got auto\)/);
  });

  it('refuses a file that is no importance matrix, naming it', async () => {
    const model = ggufIn(join(dir, 'rtn'));
    await expect(readImatrixFile(model)).rejects.toMatchObject({ code: 'ERR_GGUF', file: model });
    const text = join(ROOT, 'README.md');
    await expect(readImatrixFile(text)).rejects.toMatchObject({ code: 'ERR_GGUF', file: text });
  });
});

describe("llama.cpp's type rules with an importance matrix", () => {
  // llama-8l of test/fixtures/llama-quantize-types.json: 8 layers, rows of 256 and 512. With an
  // importance matrix, llama-quantize 80fb11a wrote blk.0.ffn_down as Q4_1 in a --no-pure Q4_0 file and
  // kept IQ4_NL's blk.0.ffn_down IQ4_NL (Q5_K without one); both files were byte-identical to quantkit's
  // (docs/benchmarks.md, 2026-12-06).
  const config = (JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', 'llama-quantize-types.json'), 'utf8')) as { models: Record<string, { config: Record<string, unknown> }> }).models['llama-8l']!.config;
  const typeOf = async (ggufType: 'Q4_0' | 'IQ4_NL', imatrix?: string) => {
    const { checkpoint } = fromConfig(config, 'llama-8l/config.json', 'llama-8l');
    const plan = await planQuantization(checkpoint, { bits: 4, format: 'gguf', ggufType, pure: false, ...(imatrix ? { imatrix } : {}) }).finally(() => checkpoint.close());
    return (name: string) => plan.entries.find((e) => e.treatment.outputName === name)!.treatment;
  };

  it('Q4_0 --no-pure: the first eighth of ffn_down becomes Q4_1; IQ4_NL: ffn_down keeps IQ4_NL instead of Q5_K', async () => {
    const dir = tempDir('quantkit-imatrix-rules-');
    const file = join(dir, 'l8.imatrix.gguf');
    const entries = new Map<string, { sums: Float32Array; counts: number[] }>();
    for (let l = 0; l < 8; l++) {
      for (const t of ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up']) entries.set(`blk.${l}.${t}.weight`, { sums: new Float32Array(256).fill(2), counts: [4] });
      entries.set(`blk.${l}.ffn_down.weight`, { sums: new Float32Array(512).fill(2), counts: [4] });
    }
    await writeImatrixFile(file, { entries, datasets: ['x'], chunkCount: 1, chunkSize: 4 });
    const [q40, q40im, iq, iqim] = await Promise.all([typeOf('Q4_0'), typeOf('Q4_0', file), typeOf('IQ4_NL'), typeOf('IQ4_NL', file)]);
    expect(q40('blk.0.ffn_down.weight')).toMatchObject({ label: 'Q4_0' });
    expect(q40im('blk.0.ffn_down.weight')).toMatchObject({ label: 'Q4_1 imatrix' });
    expect(q40im('blk.1.ffn_down.weight')).toMatchObject({ label: 'Q4_0 imatrix' });
    expect(q40im('output.weight')).toMatchObject({ label: 'Q6_K', note: expect.stringMatching(/no entry in the importance matrix/) });
    expect(iq('blk.0.ffn_down.weight')).toMatchObject({ label: 'Q5_K' });
    expect(iqim('blk.0.ffn_down.weight')).toMatchObject({ label: 'IQ4_NL imatrix' });
  });
});

describe("llama.cpp's own imatrix files (llama-imatrix on stories260k, test/fixtures/imatrix)", () => {
  it('reads the GGUF and the legacy .dat it wrote to the same mean squares, and they agree with quantkit\'s forward pass', async () => {
    const gguf = await readImatrixFile(join(FIXTURES, 'stories260k.llama-imatrix.gguf'));
    const dat = await readImatrixFile(join(FIXTURES, 'stories260k.llama-imatrix.dat'));
    const about = JSON.parse(readFileSync(join(FIXTURES, 'about.json'), 'utf8')) as { ctx: number; chunks: number };
    expect(gguf.format).toBe('gguf');
    expect(dat.format).toBe('legacy');
    expect(gguf.chunkCount).toBe(about.chunks);
    expect(gguf.chunkSize).toBe(about.ctx);
    expect([...dat.entries.keys()].sort()).toEqual([...gguf.entries.keys()].sort());
    expect(gguf.entries.size).toBe(35);
    const g = imatrixValues(gguf), d = imatrixValues(dat);
    const ours = imatrixValues({ path: '', format: 'gguf', ...(await computeImatrix(STORIES260K, { text: TEXT, ctx: about.ctx, chunks: about.chunks, threads: 2 })) });
    for (const [name, v] of g) {
      const w = d.get(name)!;
      // .dat stores mean * ncall in f32: the same means to rounding
      for (let i = 0; i < v.length; i++) expect(Math.abs(w[i]! - v[i]!)).toBeLessThanOrEqual(1e-5 * Math.abs(v[i]!) + 1e-12);
      // another forward pass (ggml's arithmetic, llama.cpp's tokenizer): close, not equal (measured: worst
      // tensor's correlation 0.993, median relative difference 0.5%)
      const o = ours.get(name)!;
      expect(o.length, name).toBe(v.length);
      expect(correlation(o, v), name).toBeGreaterThan(0.98);
    }
  }, 60_000);
});

function correlation(a: Float32Array, b: Float32Array): number {
  const n = a.length;
  const ma = a.reduce((s, x) => s + x, 0) / n, mb = b.reduce((s, x) => s + x, 0) / n;
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < n; i++) {
    ab += (a[i]! - ma) * (b[i]! - mb);
    aa += (a[i]! - ma) ** 2;
    bb += (b[i]! - mb) ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}
