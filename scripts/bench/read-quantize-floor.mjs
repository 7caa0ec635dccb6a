/**
 * The floor under quantkit's end-to-end time (issue 17): Node's start, reading every 2-D bf16 tensor of
 * a safetensors file into two reused 2 MiB-page buffers (one thread, readSync), and one Q4_0/Q8_0
 * kernel call per tensor at 2 threads into a reused output. No plan, no error measurement, no output
 * file, no check: what any Node tool built on these kernels pays at least.
 *
 *   node scripts/bench/read-quantize-floor.mjs MODEL/model.safetensors q4_0|q8_0 [measure]
 */
import { openSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const addon = createRequire(import.meta.url)('node-gyp-build')(root);
const [file, scheme = 'q4_0', measureArg] = process.argv.slice(2);
if (!file || !['q4_0', 'q8_0'].includes(scheme)) throw new Error('usage: read-quantize-floor.mjs FILE.safetensors q4_0|q8_0 [measure]');
const fd = openSync(file, 'r');
const lengthBytes = Buffer.alloc(8);
readSync(fd, lengthBytes, 0, 8, 0);
const headerLength = Number(lengthBytes.readBigUInt64LE(0));
const headerBytes = Buffer.alloc(headerLength);
readSync(fd, headerBytes, 0, headerLength, 8);
const header = JSON.parse(headerBytes.toString());
const tensors = Object.entries(header).filter(([name, t]) => name !== '__metadata__' && t.dtype === 'BF16' && t.shape.length === 2);
const largest = Math.max(...tensors.map(([, t]) => t.data_offsets[1] - t.data_offsets[0]));
const input = [0, 1].map(() => new Uint8Array(addon.largeBuffer({ bytes: largest })));
const output = new Uint8Array(addon.largeBuffer({ bytes: largest }));
const spec = { scheme, bits: scheme === 'q8_0' ? 8 : 4, group: 32, scaleDtype: 'F16', method: 'rtn' };
let i = 0;
for (const [, t] of tensors) {
  const [rows, cols] = t.shape;
  const [begin, end] = t.data_offsets;
  const src = input[(i ^= 1)].subarray(0, end - begin);
  readSync(fd, src, 0, src.length, 8 + headerLength + begin);
  const layout = addon.layout({ spec, cols });
  await addon.quantize({ spec, rows, cols, src, srcDtype: 'BF16', out: { data: output.subarray(0, rows * layout.dataBytesPerRow) }, threads: 2, measure: measureArg === 'measure' });
}
