/**
 * Property-based tests (fast-check): whatever bytes the readers and the addon are given, they either
 * work or fail with a clear, typed error; they never throw anything else and never crash the process.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { QuantkitError } from '../src/errors.js';
import { GgufReader } from '../src/formats/gguf-container.js';
import { addon } from '../src/native.js';
import { parseHeader } from '../src/safetensors/header.js';
import { SafetensorsReader } from '../src/safetensors/reader.js';
import { quantize } from '../src/quantize.js';
import { STORIES260K, tempDir } from './helpers/models.js';

const dir = tempDir();
const valid = readFileSync(join(STORIES260K, 'model.safetensors'));
const headerEnd = 8 + Number(valid.readBigUInt64LE(0));

async function readAll(path: string): Promise<'ok' | QuantkitError> {
  try {
    const r = await SafetensorsReader.open(path);
    try {
      for (const t of r.tensors) expect((await r.read(t)).length).toBe(t.end - t.begin);
    } finally {
      await r.close();
    }
    return 'ok';
  } catch (e) {
    if (e instanceof QuantkitError) return e;
    throw e;
  }
}

describe('safetensors reader under random damage', () => {
  it('byte flips in the header, truncations and forged lengths: parsed or a QuantkitError naming the file', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(headerEnd - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        fc.option(fc.nat(valid.length), { nil: undefined }),
        fc.option(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), { nil: undefined }),
        async (flips, cut, length) => {
          const bytes = Buffer.from(valid);
          for (const [at, v] of flips) bytes[at] = v;
          if (length !== undefined) bytes.writeBigUInt64LE(length, 0);
          const path = join(dir, `m${n++}.safetensors`);
          writeFileSync(path, cut !== undefined ? bytes.subarray(0, cut) : bytes);
          const r = await readAll(path);
          if (r !== 'ok') {
            expect(r.code).toMatch(/^ERR_(SAFETENSORS_HEADER|SAFETENSORS_DATA|CHECKPOINT)$/);
            expect(r.message.startsWith(path)).toBe(true);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('arbitrary headers: a QuantkitError, or tensors that tile the data section exactly', () => {
    const entry = fc.record({
      dtype: fc.oneof(fc.constantFrom('F32', 'BF16', 'F16', 'I8', 'U8', 'F64', 'BOOL', 'F8_E4M3'), fc.string(), fc.integer()),
      shape: fc.oneof(fc.array(fc.integer({ min: -2, max: 40 }), { maxLength: 3 }), fc.anything()),
      data_offsets: fc.oneof(fc.tuple(fc.integer({ min: -1, max: 300 }), fc.integer({ min: -1, max: 300 })), fc.anything()),
    });
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 8 }), entry, { maxKeys: 5 }), fc.integer({ min: 0, max: 400 }), (header, dataBytes) => {
        const json = new TextEncoder().encode(JSON.stringify(header));
        try {
          const h = parseHeader(json, 8 + json.length + dataBytes, 'x.safetensors');
          let cursor = 0;
          for (const t of h.tensors) {
            expect(t.begin).toBe(cursor);
            cursor = t.end;
          }
          expect(cursor).toBe(dataBytes);
        } catch (e) {
          expect(e).toBeInstanceOf(QuantkitError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('GGUF reader under random damage', () => {
  it('byte flips and truncations of a real quantkit GGUF: parsed or a QuantkitError', async () => {
    const { output } = await quantize(STORIES260K, { bits: 4, format: 'gguf', output: join(dir, 'g') });
    const name = 'stories260k-Q4_0.gguf';
    const good = readFileSync(join(output, name));
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(4095), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.option(fc.nat(good.length), { nil: undefined }), async (flips, cut) => {
        const bytes = Buffer.from(good);
        for (const [at, v] of flips) bytes[at] = v;
        const path = join(dir, `g${n++}.gguf`);
        writeFileSync(path, cut !== undefined ? bytes.subarray(0, cut) : bytes);
        try {
          const r = await GgufReader.open(path);
          try {
            for (const t of r.file.tensors) expect((await r.read(t)).length).toBe(t.bytes);
          } finally {
            await r.close();
          }
        } catch (e) {
          expect(e).toBeInstanceOf(QuantkitError);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('addon entry points under arbitrary arguments', () => {
  const A = addon();
  const num = fc.oneof(fc.integer({ min: -5, max: 300 }), fc.double(), fc.constantFrom(2 ** 53, 2 ** 40, NaN, Infinity), fc.string(), fc.constant(undefined));
  const arr = fc.oneof(
    fc.integer({ min: 0, max: 4096 }).map((n) => new Uint8Array(n)),
    fc.integer({ min: 0, max: 1024 }).map((n) => new Float32Array(n)),
    fc.integer({ min: 0, max: 64 }).map((n) => new Int8Array(n)),
    fc.anything(),
  );
  const args = fc.record({
    spec: fc.oneof(
      fc.record({ scheme: fc.constantFrom('q8_0', 'q4_0', 'q4_1', 'int_sym', 'int_asym', 'nope'), bits: num, group: num, scaleDtype: fc.constantFrom('F16', 'BF16', 'F32', 'F8') }),
      fc.anything(),
    ),
    rows: num,
    cols: num,
    src: arr,
    srcDtype: fc.constantFrom('F32', 'F16', 'BF16', 'X'),
    out: fc.oneof(fc.record({ data: arr, scales: arr, zeros: arr }), fc.anything()),
    parts: fc.oneof(fc.record({ data: arr, scales: arr, zeros: arr }), fc.anything()),
    threads: fc.oneof(fc.integer({ min: -1, max: 8 }), fc.constant(undefined)),
    control: fc.oneof(fc.constant(undefined), fc.constant(new BigInt64Array(2)), fc.constant(new BigInt64Array(1)), fc.anything()),
  });
  it('quantize, dequantize, errorStats and layout: a TypeError with a code, or a settled promise', async () => {
    await fc.assert(
      fc.asyncProperty(args, fc.constantFrom('quantize', 'dequantize', 'errorStats', 'layout'), async (a, fn) => {
        let result: unknown;
        try {
          result = (A[fn] as (x: unknown) => unknown)(fn === 'dequantize' ? { ...a, out: a.src } : a);
        } catch (e) {
          expect(e).toBeInstanceOf(TypeError);
          expect((e as { code?: string }).code).toBe('ERR_NATIVE_ARGUMENT');
          return;
        }
        if (result instanceof Promise) await result.catch((e) => expect(e).toBeInstanceOf(Error));
      }),
      { numRuns: 3000 },
    );
  });
});
