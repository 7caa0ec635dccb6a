/**
 * The GGUF v3 container: encoding of metadata and tensor infos, and a validating reader.
 * All little-endian; dims innermost first; tensor data aligned to `general.alignment` (default 32).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { QuantkitError, ioError } from '../errors.js';
import { readExactly } from '../safetensors/reader.js';
import { type GgmlTypeName, ggmlTensorBytes, ggmlType, ggmlTypeById } from './types/index.js';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_NAME is 64 bytes including the terminating NUL. */
export const GGUF_MAX_NAME_BYTES = 63;

export enum GgufValueType {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
}

export type GgufScalar = number | bigint | boolean | string;
export interface GgufKV {
  key: string;
  type: GgufValueType;
  value: GgufScalar | GgufScalar[];
  /** Element type when type is ARRAY. */
  elemType?: GgufValueType;
}

export interface GgufTensorInfo {
  name: string;
  /** Dims innermost first. */
  ne: number[];
  /** The ggml type (format registry name). */
  type: GgmlTypeName;
  /** Offset relative to the start of the data section. */
  offset: number;
  bytes: number;
}

export const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;

class ByteWriter {
  private buf = new Uint8Array(4096);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private ensure(n: number) {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number) { this.ensure(1); this.view.setUint8(this.length, v); this.length += 1; }
  u32(v: number) { this.ensure(4); this.view.setUint32(this.length, v, true); this.length += 4; }
  u64(v: number | bigint) { this.ensure(8); this.view.setBigUint64(this.length, BigInt(v), true); this.length += 8; }
  scalar(t: GgufValueType, v: GgufScalar) {
    this.ensure(8);
    const dv = this.view, at = this.length;
    switch (t) {
      case GgufValueType.U8: dv.setUint8(at, Number(v)); this.length += 1; return;
      case GgufValueType.I8: dv.setInt8(at, Number(v)); this.length += 1; return;
      case GgufValueType.U16: dv.setUint16(at, Number(v), true); this.length += 2; return;
      case GgufValueType.I16: dv.setInt16(at, Number(v), true); this.length += 2; return;
      case GgufValueType.U32: dv.setUint32(at, Number(v), true); this.length += 4; return;
      case GgufValueType.I32: dv.setInt32(at, Number(v), true); this.length += 4; return;
      case GgufValueType.F32: dv.setFloat32(at, Number(v), true); this.length += 4; return;
      case GgufValueType.BOOL: dv.setUint8(at, v ? 1 : 0); this.length += 1; return;
      case GgufValueType.U64: dv.setBigUint64(at, BigInt(v), true); this.length += 8; return;
      case GgufValueType.I64: dv.setBigInt64(at, BigInt(v), true); this.length += 8; return;
      case GgufValueType.F64: dv.setFloat64(at, Number(v), true); this.length += 8; return;
      case GgufValueType.STRING: this.string(String(v)); return;
      default: throw new Error(`cannot encode GGUF value type ${t}`);
    }
  }
  string(s: string) {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  bytes(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

/**
 * Encodes everything before the tensor data: header, metadata, tensor infos, and the padding up to
 * the data section. Tensor offsets are assigned here (aligned), so sizes are known before writing.
 */
export function encodeGgufHeader(kvs: GgufKV[], tensors: { name: string; ne: number[]; type: GgmlTypeName; bytes: number }[], alignment = GGUF_DEFAULT_ALIGNMENT): { header: Uint8Array; infos: GgufTensorInfo[]; fileBytes: number } {
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(3);
  w.u64(tensors.length);
  w.u64(kvs.length);
  for (const kv of kvs) {
    w.string(kv.key);
    w.u32(kv.type);
    if (kv.type === GgufValueType.ARRAY) {
      const values = kv.value as GgufScalar[];
      w.u32(kv.elemType!);
      w.u64(values.length);
      for (const v of values) w.scalar(kv.elemType!, v);
    } else w.scalar(kv.type, kv.value as GgufScalar);
  }
  const infos: GgufTensorInfo[] = [];
  let offset = 0;
  for (const t of tensors) {
    if (new TextEncoder().encode(t.name).length > GGUF_MAX_NAME_BYTES)
      throw new QuantkitError('ERR_PLAN', `name is longer than GGUF's ${GGUF_MAX_NAME_BYTES} bytes`, { tensor: t.name });
    w.string(t.name);
    w.u32(t.ne.length);
    for (const d of t.ne) w.u64(d);
    w.u32(ggmlType(t.type).ggufId);
    w.u64(offset);
    infos.push({ ...t, offset });
    offset = alignUp(offset + t.bytes, alignment);
  }
  const body = w.bytes();
  const header = new Uint8Array(alignUp(body.length, alignment));
  header.set(body);
  return { header, infos, fileBytes: header.length + offset };
}

// ---- reading ------------------------------------------------------------------------------------

class NeedMore extends Error {}

class ByteReader {
  pos = 0;
  private view: DataView;
  constructor(private buf: Uint8Array, private complete: boolean, private file: string) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  private need(n: number) {
    if (this.pos + n > this.buf.length) {
      if (this.complete) throw new QuantkitError('ERR_GGUF', `header runs past the end of the file at byte ${this.pos}`, { file: this.file });
      throw new NeedMore();
    }
  }
  u32() { this.need(4); const v = this.view.getUint32(this.pos, true); this.pos += 4; return v; }
  u64(): number {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new QuantkitError('ERR_GGUF', `value ${v} at byte ${this.pos - 8} is too large`, { file: this.file });
    return Number(v);
  }
  string(): string {
    const n = this.u64();
    if (n > 1 << 30) throw new QuantkitError('ERR_GGUF', `string of ${n} bytes at byte ${this.pos - 8}`, { file: this.file });
    this.need(n);
    try {
      const s = new TextDecoder('utf-8', { fatal: true }).decode(this.buf.subarray(this.pos, this.pos + n));
      this.pos += n;
      return s;
    } catch {
      throw new QuantkitError('ERR_GGUF', `string at byte ${this.pos} is not valid UTF-8`, { file: this.file });
    }
  }
  scalar(t: GgufValueType): GgufScalar {
    const size: Partial<Record<GgufValueType, number>> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
    if (t === GgufValueType.STRING) return this.string();
    const n = size[t];
    if (n === undefined) throw new QuantkitError('ERR_GGUF', `unknown value type ${t} at byte ${this.pos}`, { file: this.file });
    this.need(n);
    const dv = this.view, at = this.pos;
    this.pos += n;
    switch (t) {
      case GgufValueType.U8: return dv.getUint8(at);
      case GgufValueType.I8: return dv.getInt8(at);
      case GgufValueType.U16: return dv.getUint16(at, true);
      case GgufValueType.I16: return dv.getInt16(at, true);
      case GgufValueType.U32: return dv.getUint32(at, true);
      case GgufValueType.I32: return dv.getInt32(at, true);
      case GgufValueType.F32: return dv.getFloat32(at, true);
      case GgufValueType.BOOL: return dv.getUint8(at) !== 0;
      case GgufValueType.U64: return dv.getBigUint64(at, true);
      case GgufValueType.I64: return dv.getBigInt64(at, true);
      default: return dv.getFloat64(at, true);
    }
  }
}

export interface GgufFile {
  path: string;
  version: number;
  kvs: Map<string, GgufKV>;
  tensors: GgufTensorInfo[];
  alignment: number;
  dataStart: number;
  fileSize: number;
}

function parseGguf(buf: Uint8Array, complete: boolean, fileSize: number, file: string): GgufFile {
  const r = new ByteReader(buf, complete, file);
  const bad = (m: string, tensor?: string) => new QuantkitError('ERR_GGUF', m, tensor !== undefined ? { file, tensor } : { file });
  if (r.u32() !== GGUF_MAGIC) throw bad('not a GGUF file (bad magic)');
  const version = r.u32();
  if (version !== 2 && version !== 3) throw bad(`unsupported GGUF version ${version}`);
  const nTensors = r.u64();
  const nKv = r.u64();
  // Each KV and tensor info takes at least 8 + 4 bytes: counts beyond that cannot be real.
  if (nTensors > fileSize / 12 || nKv > fileSize / 12) throw bad(`tensor count ${nTensors} or metadata count ${nKv} is impossible for a ${fileSize}-byte file`);
  const kvs = new Map<string, GgufKV>();
  for (let i = 0; i < nKv; i++) {
    const key = r.string();
    const type = r.u32() as GgufValueType;
    let kv: GgufKV;
    if (type === GgufValueType.ARRAY) {
      const elemType = r.u32() as GgufValueType;
      if (elemType === GgufValueType.ARRAY) throw bad(`nested arrays in key '${key}'`);
      const n = r.u64();
      if (n > fileSize) throw bad(`array of ${n} elements in key '${key}'`);
      const values: GgufScalar[] = [];
      for (let j = 0; j < n; j++) values.push(r.scalar(elemType));
      kv = { key, type, elemType, value: values };
    } else kv = { key, type, value: r.scalar(type) };
    if (kvs.has(key)) throw bad(`duplicate metadata key '${key}'`);
    kvs.set(key, kv);
  }
  const alignKv = kvs.get('general.alignment');
  const alignment = alignKv ? Number(alignKv.value) : GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0 || alignment % 8 !== 0 || alignment > 1 << 20) throw bad(`general.alignment ${alignment} is not a positive multiple of 8`);
  const tensors: GgufTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const name = r.string();
    if (names.has(name)) throw bad('duplicate tensor name', name);
    names.add(name);
    const nd = r.u32();
    if (nd < 1 || nd > 4) throw bad(`${nd} dimensions (GGUF allows 1 to 4)`, name);
    const ne: number[] = [];
    for (let d = 0; d < nd; d++) ne.push(r.u64());
    const typeId = r.u32();
    const type = ggmlTypeById(typeId);
    if (!type) throw bad(`unknown ggml type ${typeId}`, name);
    const offset = r.u64();
    if (ne.some((d) => d <= 0) || ne.reduce((a, b) => a * b, 1) > Number.MAX_SAFE_INTEGER) throw bad(`dims ${JSON.stringify(ne)} are not valid`, name);
    const bytes = ggmlTensorBytes(type, ne);
    if (bytes === undefined) throw bad(`row of ${ne[0]} is not a whole number of ${type.name} blocks`, name);
    if (offset % alignment !== 0) throw bad(`data offset ${offset} is not aligned to ${alignment}`, name);
    tensors.push({ name, ne, type: type.name as GgmlTypeName, offset, bytes });
  }
  const dataStart = alignUp(r.pos, alignment);
  const sorted = [...tensors].sort((a, b) => a.offset - b.offset);
  let cursor = 0;
  for (const t of sorted) {
    if (t.offset < cursor) throw bad(`data at offset ${t.offset} overlaps the previous tensor`, t.name);
    cursor = t.offset + t.bytes;
    if (dataStart + cursor > fileSize) throw bad(`data [${t.offset}, ${cursor}) runs past the end of the file`, t.name);
  }
  return { path: file, version, kvs, tensors, alignment, dataStart, fileSize };
}

export class GgufReader {
  private constructor(readonly file: GgufFile, private fh: FileHandle) {}

  static async open(path: string): Promise<GgufReader> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      throw ioError('ERR_GGUF', path, e);
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new QuantkitError('ERR_GGUF', 'not a regular file', { file: path });
      // Parse from a prefix, doubling it until the whole header fits.
      for (let n = Math.min(st.size, 1 << 20); ; n = Math.min(st.size, n * 2)) {
        const buf = new Uint8Array(n);
        await readExactly(fh, buf, 0, path);
        try {
          return new GgufReader(parseGguf(buf, n === st.size, st.size, path), fh);
        } catch (e) {
          if (!(e instanceof NeedMore)) throw e;
        }
      }
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /** Reads one tensor's data (into `target` when given; it must be exactly the tensor's size). */
  async read(t: GgufTensorInfo, target?: Uint8Array): Promise<Uint8Array> {
    const buf = target ?? new Uint8Array(t.bytes);
    if (buf.length !== t.bytes) throw new RangeError(`target holds ${buf.length} bytes, tensor ${t.name} has ${t.bytes}`);
    await readExactly(this.fh, buf, this.file.dataStart + t.offset, this.file.path);
    return buf;
  }

  async readRange(t: GgufTensorInfo, offset: number, target: Uint8Array): Promise<Uint8Array> {
    if (offset < 0 || offset + target.length > t.bytes) throw new RangeError(`range [${offset}, ${offset + target.length}) is outside tensor ${t.name}`);
    await readExactly(this.fh, target, this.file.dataStart + t.offset + offset, this.file.path);
    return target;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
