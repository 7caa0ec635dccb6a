/**
 * Writes test/fixtures/hostile/: malformed checkpoints (safetensors, sharded indexes) for `quantize`
 * and malformed GGUF outputs for `verify`, each in its own directory, with cases.json saying what
 * quantkit must answer (exit code, a message naming the file and, where there is one, the tensor).
 *   npx tsx scripts/make-hostile-corpus.ts
 */
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { GgufValueType, encodeGgufHeader } from '../src/formats/gguf-container.js';
import type { HostileCase } from '../test/helpers/hostile-case.js';

const root = resolve(import.meta.dirname, '..', 'test', 'fixtures', 'hostile');
rmSync(root, { recursive: true, force: true });
mkdirSync(root, { recursive: true });

type Case = HostileCase;
const cases: Case[] = [];

function file(header: string | Uint8Array, data: Uint8Array | number = 0, lengthOverride?: bigint): Uint8Array {
  const h = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const d = typeof data === 'number' ? new Uint8Array(data).fill(0x3c) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}

const W = 'w.weight';
const okEntry = (dtype = 'BF16', shape = [2, 32], b = 0, e = 128) => ({ dtype, shape, data_offsets: [b, e] });

/** A one-file model directory. */
function st(name: string, bytes: Uint8Array, exit: number, message: string, tensor?: string) {
  const d = join(root, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'model.safetensors'), bytes);
  cases.push({ name, command: 'quantize', target: '.', exit, message, file: 'model.safetensors', ...(tensor ? { tensor } : {}) });
}
const js = (o: unknown) => JSON.stringify(o);
const f32 = (values: number[]) => new Uint8Array(Float32Array.from(values).buffer);

st('empty-file', new Uint8Array(0), 3, 'too short for a safetensors header');
st('truncated-length-prefix', new Uint8Array([1, 2, 3, 4, 5]), 3, 'too short');
st('header-length-past-end', file('{}', 0, 4096n), 3, 'runs past the end');
st('header-length-2-pow-63', file('{}', 0, 2n ** 63n), 3, 'exceeds the 100000000-byte limit');
st('header-length-over-100mb', file('{}', 0, 100_000_001n), 3, 'exceeds the 100000000-byte limit');
st('header-not-utf8', file(new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])), 3, 'not valid UTF-8');
st('header-json-array', file('[1,2,3]'), 3, 'not an object');
st('header-json-number', file('42'), 3, 'not an object');
st('header-json-invalid', file('{"w.weight": {"dtype": "BF16",'), 3, 'not valid JSON');
st('header-json-too-deep', file('['.repeat(100) + ']'.repeat(100)), 3, 'not valid JSON');
st('duplicate-names', file(`{"${W}":${js(okEntry())},"${W}":${js(okEntry())}}`, 128), 3, `duplicate key '${W}'`);
st('unknown-dtype', file(js({ [W]: okEntry('Q4_K') }), 128), 3, 'unknown dtype', W);
st('dtype-not-string', file(js({ [W]: { ...okEntry(), dtype: 7 } }), 128), 3, 'unknown dtype', W);
st('entry-not-object', file(js({ [W]: [1, 2] }), 0), 3, 'entry is not an object', W);
st('negative-dimension', file(js({ [W]: okEntry('BF16', [-2, 32]) }), 128), 3, 'non-negative integers', W);
st('fractional-dimension', file(js({ [W]: okEntry('BF16', [2.5, 32]) }), 128), 3, 'non-negative integers', W);
st('huge-dimension', file(`{"${W}":{"dtype":"BF16","shape":[100000000000000000000,32],"data_offsets":[0,128]}}`, 128), 3, 'non-negative integers', W);
st('overflowing-shape', file(js({ [W]: okEntry('F64', [2 ** 26, 2 ** 26, 2 ** 26]) }), 128), 3, 'overflows', W);
st('span-mismatch', file(js({ [W]: okEntry('BF16', [2, 32], 0, 100) }), 100), 3, 'needs 128 bytes but data_offsets span 100', W);
st('zero-size-tensor-with-bytes', file(js({ [W]: okEntry('BF16', [0, 32], 0, 4) }), 4), 3, 'needs 0 bytes', W);
st('offsets-reversed', file(js({ [W]: okEntry('BF16', [2, 32], 128, 0) }), 128), 3, 'end before they begin', W);
st('offsets-not-a-pair', file(js({ [W]: { ...okEntry(), data_offsets: [0] } }), 128), 3, 'not a pair', W);
st('offsets-not-from-zero', file(js({ [W]: okEntry('BF16', [2, 32], 64, 192) }), 192), 3, 'leave a hole', W);
st('overlapping-tensors', file(js({ 'a.weight': okEntry('BF16', [2, 32], 0, 128), 'b.weight': okEntry('BF16', [2, 32], 64, 192) }), 192), 3, 'overlap', 'b.weight');
st('hole-between-tensors', file(js({ 'a.weight': okEntry('BF16', [2, 32], 0, 128), 'b.weight': okEntry('BF16', [2, 32], 192, 320) }), 320), 3, 'hole', 'b.weight');
st('offsets-past-end', file(js({ [W]: okEntry('BF16', [4, 32], 0, 256) }), 128), 3, 'truncated');
st('trailing-bytes', file(js({ [W]: okEntry() }), 200), 3, 'trailing bytes');
st('metadata-non-string', file(js({ __metadata__: { format: 1 }, [W]: okEntry() }), 128), 3, "__metadata__ value for 'format' is not a string");
st('metadata-not-object', file(js({ __metadata__: ['pt'], [W]: okEntry() }), 128), 3, '__metadata__ is not an object');
st('nan-weights', file(js({ [W]: okEntry('F32', [2, 32], 0, 256) }), f32(Array.from({ length: 64 }, (_, i) => (i === 40 ? NaN : i / 64)))), 3, 'NaN/Inf weight(s), the first at row 1, column 8', W);
st('inf-weights', file(js({ [W]: okEntry('F32', [2, 32], 0, 256) }), f32(Array.from({ length: 64 }, (_, i) => (i === 3 ? -Infinity : i / 64)))), 3, 'NaN/Inf weight(s), the first at row 0, column 3', W);

// Directory-level cases.
function dir(name: string, make: (d: string) => void, exit: number, message: string, fileRel: string, tensor?: string) {
  const d = join(root, name);
  mkdirSync(d, { recursive: true });
  make(d);
  cases.push({ name, command: 'quantize', target: '.', exit, message, file: fileRel, ...(tensor ? { tensor } : {}) });
}
dir('symlink-loop', (d) => symlinkSync('model.safetensors', join(d, 'model.safetensors')), 3, 'ELOOP', 'model.safetensors');
dir('directory-as-weights-file', (d) => (mkdirSync(join(d, 'model.safetensors')), writeFileSync(join(d, 'model.safetensors', 'keep'), '')), 3, 'not a regular file', 'model.safetensors');
dir('no-weights', (d) => writeFileSync(join(d, 'config.json'), '{}'), 3, 'no model.safetensors or model.safetensors.index.json', '.');
dir('config-not-object', (d) => (writeFileSync(join(d, 'config.json'), '[]'), writeFileSync(join(d, 'model.safetensors'), file(js({ [W]: okEntry() }), 128))), 3, 'config.json is not a JSON object', 'config.json');
dir('config-invalid-json', (d) => (writeFileSync(join(d, 'config.json'), '{"a":'), writeFileSync(join(d, 'model.safetensors'), file(js({ [W]: okEntry() }), 128))), 3, 'not valid JSON', 'config.json');

const shard = (d: string, name: string, tensors: Record<string, unknown>, bytes: number) => writeFileSync(join(d, name), file(js(tensors), bytes));
const index = (d: string, v: unknown) => writeFileSync(join(d, 'model.safetensors.index.json'), typeof v === 'string' ? v : js(v));
const I = 'model.safetensors.index.json';
dir('index-escapes-with-dotdot', (d) => index(d, { weight_map: { [W]: '../outside.safetensors' } }), 3, "shard path '../outside.safetensors' leaves the model directory", I, W);
dir('index-absolute-path', (d) => index(d, { weight_map: { [W]: '/etc/passwd' } }), 3, "shard path '/etc/passwd' leaves the model directory", I, W);
dir('index-missing-shard', (d) => index(d, { weight_map: { [W]: 'model-00002-of-00002.safetensors' } }), 3, "shard 'model-00002-of-00002.safetensors' is missing", I, W);
dir('index-not-json', (d) => index(d, '{"weight_map": '), 3, 'not valid JSON', I);
dir('index-without-weight-map', (d) => index(d, { metadata: {} }), 3, 'has no weight_map object', I);
dir('index-empty-weight-map', (d) => index(d, { weight_map: {} }), 3, 'weight_map is empty', I);
dir('index-value-not-string', (d) => index(d, { weight_map: { [W]: 3 } }), 3, 'weight_map entry is not a file name', I, W);
dir('index-wrong-shard', (d) => {
  index(d, { weight_map: { 'a.weight': 's2.safetensors', 'b.weight': 's2.safetensors' } });
  shard(d, 's1.safetensors', { 'a.weight': okEntry() }, 128);
  shard(d, 's2.safetensors', { 'b.weight': okEntry() }, 128);
}, 3, 'listed in model.safetensors.index.json but missing from the shard', 's2.safetensors', 'a.weight');
dir('index-unlisted-tensor', (d) => {
  index(d, { weight_map: { 'a.weight': 's1.safetensors' } });
  shard(d, 's1.safetensors', { 'a.weight': okEntry('BF16', [2, 32], 0, 128), 'extra.weight': okEntry('BF16', [2, 32], 128, 256) }, 256);
}, 3, 'not listed for this shard', 's1.safetensors', 'extra.weight');
dir('index-tensor-in-two-shards', (d) => {
  index(d, { weight_map: { 'a.weight': 's1.safetensors', 'b.weight': 's2.safetensors' } });
  shard(d, 's1.safetensors', { 'a.weight': okEntry() }, 128);
  shard(d, 's2.safetensors', { 'a.weight': okEntry('BF16', [2, 32], 0, 128), 'b.weight': okEntry('BF16', [2, 32], 128, 256) }, 256);
}, 3, 'stored twice', 's2.safetensors', 'a.weight');

// GGUF outputs for `verify --against models/stories260k`: a valid header of two of its tensors,
// then damaged in one place each.
const Q = 'model.layers.0.self_attn.q_proj.weight', N = 'model.norm.weight';
function ggufBytes(mut: { ne0?: number; version?: number; nTensors?: bigint; name?: string; dims?: number[]; type?: number; offsets?: [number, number]; truncate?: number; kvType?: number; strLen?: bigint } = {}) {
  const kvs = [{ key: 'general.architecture', type: GgufValueType.STRING, value: 'llama' }, { key: 'general.alignment', type: GgufValueType.U32, value: 32 }];
  const { header, fileBytes } = encodeGgufHeader(kvs, [
    { name: N, ne: [64], type: 'F32', bytes: 256 },
    { name: Q, ne: [64, 64], type: 'Q4_0', bytes: 64 * 2 * 18 },
  ]);
  const out = new Uint8Array(fileBytes);
  out.set(header);
  const dv = new DataView(out.buffer);
  if (mut.version !== undefined) dv.setUint32(4, mut.version, true);
  if (mut.nTensors !== undefined) dv.setBigUint64(8, mut.nTensors, true);
  // Offsets of fields inside the header, found by searching for the encoded names.
  const find = (s: string) => Buffer.from(out).indexOf(Buffer.from(s));
  const q = find(Q) + Q.length; // after the Q tensor's name: n_dims u32, dims u64 x2, type u32, offset u64
  if (mut.dims) dv.setUint32(q, mut.dims.length, true);
  if (mut.ne0 !== undefined) dv.setBigUint64(q + 4, BigInt(mut.ne0), true);
  if (mut.type !== undefined) dv.setUint32(q + 4 + 16, mut.type, true);
  if (mut.offsets) dv.setBigUint64(q + 4 + 16 + 4, BigInt(mut.offsets[1]), true);
  if (mut.kvType !== undefined) dv.setUint32(find('general.architecture') + 'general.architecture'.length, mut.kvType, true);
  if (mut.strLen !== undefined) dv.setBigUint64(find('general.architecture') + 'general.architecture'.length + 4, mut.strLen, true);
  return mut.truncate !== undefined ? out.subarray(0, mut.truncate) : out;
}
function gguf(name: string, bytes: Uint8Array, message: string, tensor?: string) {
  const d = join(root, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'stories260k-Q4_0.gguf'), bytes);
  cases.push({ name, command: 'verify', target: '.', exit: 3, message, file: 'stories260k-Q4_0.gguf', ...(tensor ? { tensor } : {}) });
}
gguf('gguf-empty', new Uint8Array(0), 'header runs past the end of the file');
gguf('gguf-bad-magic', Uint8Array.from([0x47, 0x47, 0x4d, 0x4c, 3, 0, 0, 0, ...new Array(32).fill(0)]), 'not a GGUF file');
gguf('gguf-version-99', ggufBytes({ version: 99 }), 'unsupported GGUF version 99');
gguf('gguf-huge-tensor-count', ggufBytes({ nTensors: 2n ** 40n }), 'impossible');
gguf('gguf-string-past-end', ggufBytes({ strLen: 2n ** 20n }), 'runs past the end');
gguf('gguf-unknown-value-type', ggufBytes({ kvType: 77 }), 'unknown value type 77');
gguf('gguf-five-dims', ggufBytes({ dims: [1, 2, 3, 4, 5] }), '5 dimensions', Q);
gguf('gguf-unknown-ggml-type', ggufBytes({ type: 99 }), 'unknown ggml type 99', Q);
gguf('gguf-misaligned-offset', ggufBytes({ offsets: [0, 260] }), 'not aligned', Q);
gguf('gguf-overlapping-data', ggufBytes({ offsets: [0, 128] }), 'overlaps', Q);
gguf('gguf-data-past-end', ggufBytes({ offsets: [0, 1 << 20] }), 'runs past the end of the file', Q);
gguf('gguf-truncated-data', ggufBytes({ truncate: 600 }), 'runs past the end of the file', Q);
gguf('gguf-rows-not-whole-blocks', ggufBytes({ ne0: 48 }), 'row of 48 is not a whole number of Q4_0 blocks', Q);
gguf('gguf-type-larger-than-data', ggufBytes({ type: 30 }), 'runs past the end of the file', Q);

writeFileSync(join(root, 'cases.json'), JSON.stringify(cases, null, 2) + '\n');
writeFileSync(join(root, 'README.md'), `# Hostile inputs\n\nGenerated by \`npx tsx scripts/make-hostile-corpus.ts\`; do not edit by hand. ${cases.length} cases; \`cases.json\` says what each must produce. Exercised by test/hostile.test.ts.\n`);
console.log(`${root}: ${cases.length} cases`);
