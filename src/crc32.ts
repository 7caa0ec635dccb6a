/**
 * CRC-32 as zlib computes it (IEEE 802.3, the checksums in quantization-report.json): by the addon where
 * the CPU has carry-less multiplication (x86 PCLMULQDQ, 12-15 GB/s here) or ARMv8's CRC32 instructions
 * (native/src/checksum), about 3x zlib's 3.9-5 GB/s, on the main thread that also hands every output
 * byte to the file; by zlib elsewhere (the addon's own table loop, its reference, runs 1.9 GB/s).
 */
import { crc32 as zlibCrc32 } from 'node:zlib';
import { addon } from './native.js';

let native: boolean | undefined;

/** The running CRC-32 of the bytes before (`crc`, 0 for none) updated with `data`: zlib's crc32(data, crc). */
export function crc32(data: Uint8Array, crc = 0): number {
  // An addon built before crc32 existed (an old prebuild) has no such function; 'table' is the addon's
  // reference loop, slower than zlib's.
  native ??= typeof addon().crc32 === 'function' && addon().info().crc32 !== 'table';
  return native ? addon().crc32({ data, crc }) : zlibCrc32(data, crc);
}
