// Quantizes and dequantizes the cases of a ggml_reference request file (native/test/ggml_reference.c)
// with quantkit's addon, in a process of its own so that QUANTKIT_ISA picks the instruction set, and
// writes the driver's output format: per case the quantized bytes, then the dequantized floats.
//   node quantize-cases.mjs REQUEST CASES_JSON OUTPUT
// CASES_JSON: one {spec, srcDtype} per record of REQUEST, in order; for srcDtype 'BF16' the request's
// floats are bf16 values, handed to the addon as bf16 (their top 16 bits).
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [requestPath, casesPath, outputPath] = process.argv.slice(2);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
const addon = process.env.QUANTKIT_ADDON ? require(process.env.QUANTKIT_ADDON) : require('node-gyp-build')(root);

const request = readFileSync(requestPath);
const cases = JSON.parse(readFileSync(casesPath, 'utf8'));
const chunks = [];
let at = 0;
const floats = (n) => {
  const v = new Float32Array(request.buffer.slice(request.byteOffset + at, request.byteOffset + at + 4 * n));
  at += 4 * n;
  return v;
};
for (const c of cases) {
  const [, rows, cols, hasImatrix] = [0, 1, 2, 3].map((k) => request.readInt32LE(at + 4 * k));
  at += 16;
  const weights = hasImatrix ? floats(cols) : undefined;
  const x = floats(rows * cols);
  const src = c.srcDtype === 'BF16' ? new Uint8Array(Uint16Array.from(new Uint32Array(x.buffer), (u) => u >>> 16).buffer) : new Uint8Array(x.buffer);
  const layout = addon.layout({ spec: c.spec, cols });
  if (layout.error) throw new Error(`${c.spec.scheme}: ${layout.error}`);
  const parts = { data: new Uint8Array(rows * layout.dataBytesPerRow) };
  const status = await addon.quantize({ spec: c.spec, rows, cols, src, srcDtype: c.srcDtype, out: parts, ...(weights ? { weights } : {}) });
  if (status.nonfinite || status.scaleOverflow) throw new Error(`${c.spec.scheme}: unexpected status ${JSON.stringify(status)}`);
  const y = new Float32Array(rows * cols);
  await addon.dequantize({ spec: c.spec, rows, cols, parts, out: y });
  chunks.push(parts.data, new Uint8Array(y.buffer));
}
writeFileSync(outputPath, Buffer.concat(chunks));
console.log(addon.info().isa);
