/**
 * The addon's CRC-32 (native/src/checksum: the implementation this CPU runs, the table loop where it has
 * no carry-less multiply) against zlib's on random bytes: every length to 300 and longer ones at odd
 * offsets into their buffer, running values carried across calls, views of other typed arrays; the
 * binding's refusals; and src/crc32.ts, which the writers call.
 */
import { randomBytes } from 'node:crypto';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32 } from '../../src/crc32.js';
import { addon } from '../../src/native.js';

const native = (data: Uint8Array, crc = 0) => addon().crc32({ data, crc });

describe('crc32', () => {
  it(`equals zlib's on every length and alignment (${addon().info().crc32})`, () => {
    const buf = randomBytes(3 << 20);
    for (let len = 0; len <= 300; len++)
      for (let at = 0; at < 4; at++) {
        const view = buf.subarray(at, at + len);
        const before = buf.readUInt32LE(len);
        expect(native(view, before)).toBe(zlibCrc32(view, before));
      }
    for (const len of [1023, 4096, 65_537, 1 << 20, (2 << 20) + 13]) {
      const view = buf.subarray(7, 7 + len);
      expect(native(view)).toBe(zlibCrc32(view));
    }
    // Written in pieces: the running value carries over.
    let running = 0;
    for (let at = 0; at < buf.length; ) {
      const n = Math.min(buf.length - at, 1 + ((at * 2654435761) >>> 12) % 200_000);
      running = native(buf.subarray(at, at + n), running);
      at += n;
    }
    expect(running).toBe(zlibCrc32(buf));
    const floats = new Float32Array([1.5, -2, 3.25, Number.NaN]);
    expect(native(floats as unknown as Uint8Array)).toBe(zlibCrc32(new Uint8Array(floats.buffer)));
    expect(native(new Uint8Array(0), 0x12345678)).toBe(0x12345678);
    const shared = new Uint8Array(new SharedArrayBuffer(200)).map((_, i) => (i * 37) & 255);
    expect(native(shared.subarray(3, 190))).toBe(zlibCrc32(Buffer.from(shared.subarray(3, 190))));
    // What the writers call: the same value, by the addon or (on a CPU with only the table loop) zlib.
    expect(crc32(buf.subarray(5), 77)).toBe(zlibCrc32(buf.subarray(5), 77));
  });

  it('refuses what is not bytes or not a 32-bit running value, with a TypeError', () => {
    const a = addon();
    const refused = (args: unknown) => {
      try {
        (a.crc32 as (x: unknown) => number)(args);
      } catch (e) {
        expect(e).toBeInstanceOf(TypeError);
        return (e as { code?: string }).code;
      }
      return 'accepted';
    };
    expect(refused({ data: 'abc', crc: 0 })).toBe('ERR_NATIVE_ARGUMENT');
    expect(refused({ data: new ArrayBuffer(8), crc: 0 })).toBe('ERR_NATIVE_ARGUMENT');
    expect(refused({ data: new Uint8Array(4), crc: -1 })).toBe('ERR_NATIVE_ARGUMENT');
    expect(refused({ data: new Uint8Array(4), crc: 2 ** 32 })).toBe('ERR_NATIVE_ARGUMENT');
    expect(refused({ data: new Uint8Array(4), crc: 1.5 })).toBe('ERR_NATIVE_ARGUMENT');
    expect(refused({ data: new Uint8Array(4) })).toBe('ERR_NATIVE_ARGUMENT');
    expect(refused(undefined)).toBe('ERR_NATIVE_ARGUMENT');
  });
});
