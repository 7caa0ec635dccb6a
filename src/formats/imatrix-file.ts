/**
 * llama.cpp's importance-matrix files, read and written as the bundled llama.cpp does
 * (tools/imatrix/imatrix.cpp writes them, common/imatrix-loader.cpp and tools/quantize/quantize.cpp
 * read them):
 *  - GGUF (what llama-imatrix writes by default): `general.type` = "imatrix", `imatrix.datasets`
 *    (strings), `imatrix.chunk_count` and `imatrix.chunk_size` (u32), and per weight tensor `<name>.in_sum2`
 *    (F32 [cols, matrices]: the sum over tokens of each input column's square) and `<name>.counts`
 *    (F32 [1, matrices]: tokens seen), tensors sorted by name;
 *  - the legacy `.dat` of older llama.cpp: int32 entry count, then per entry int32 name length, the name,
 *    int32 ncall, int32 nval, nval f32 (mean square times ncall), then optionally int32 chunk count and
 *    the dataset name.
 * Names are GGUF tensor names (`blk.0.attn_q.weight`). `imatrixValues` turns a file into the per-column
 * weights llama-quantize hands its quantizers, with llama-quantize's float arithmetic, so the same file
 * gives the same bytes.
 */
import { open, readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../atomic-file.js';
import { QuantkitError, ioError } from '../errors.js';
import { GGUF_MAGIC, GgufReader, GgufValueType, encodeGgufHeader, type GgufKV } from './gguf-container.js';

/** One weight tensor's statistics: `sums` [matrices x cols] (experts are matrices; dense tensors have 1). */
export interface ImatrixEntry {
  sums: Float32Array;
  /** Tokens seen per matrix (GGUF); the legacy file's ncall, once. */
  counts: number[];
}

export interface ImatrixFile {
  path: string;
  /** 'gguf' (sums are raw sums of squares) or 'legacy' (sums are mean squares times ncall). */
  format: 'gguf' | 'legacy';
  entries: Map<string, ImatrixEntry>;
  datasets: string[];
  chunkCount: number;
  /** Tokens per chunk (0 in legacy files). */
  chunkSize: number;
}

const SUMS = '.in_sum2';
const COUNTS = '.counts';

/** Reads a GGUF or legacy imatrix file (ERR_GGUF naming the file, and the tensor where one is at fault). */
export async function readImatrixFile(path: string): Promise<ImatrixFile> {
  const head = new Uint8Array(4);
  const fh = await open(path, 'r').catch((e: unknown) => {
    throw ioError('ERR_IO', path, e, 'cannot read the importance matrix');
  });
  try {
    await fh.read(head, 0, 4, 0);
  } finally {
    await fh.close();
  }
  const magic = new DataView(head.buffer).getUint32(0, true);
  return magic === GGUF_MAGIC ? readGguf(path) : readLegacy(path);
}

async function readGguf(path: string): Promise<ImatrixFile> {
  const bad = (m: string, tensor?: string) => new QuantkitError('ERR_GGUF', `importance matrix: ${m}`, tensor ? { file: path, tensor } : { file: path });
  const r = await GgufReader.open(path);
  try {
    const kv = r.file.kvs;
    const datasets = kv.get('imatrix.datasets');
    const chunkCount = kv.get('imatrix.chunk_count');
    const chunkSize = kv.get('imatrix.chunk_size');
    // llama-quantize refuses a GGUF imatrix without this metadata ("missing imatrix metadata").
    if (!datasets || !chunkCount || !chunkSize) throw bad('no imatrix.datasets, imatrix.chunk_count and imatrix.chunk_size metadata: not a llama-imatrix file');
    const sums = new Map<string, Float32Array>();
    const counts = new Map<string, Float32Array>();
    for (const t of r.file.tensors) {
      const suffix = t.name.endsWith(SUMS) ? SUMS : t.name.endsWith(COUNTS) ? COUNTS : null;
      if (!suffix) continue;
      if (t.type !== 'F32') throw bad(`${t.type}: sums and counts must be F32`, t.name);
      const bytes = await r.read(t);
      const values = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
      (suffix === SUMS ? sums : counts).set(t.name.slice(0, -suffix.length), values);
    }
    if (sums.size === 0) throw bad('no <tensor>.in_sum2 entries');
    const entries = new Map<string, ImatrixEntry>();
    for (const name of new Set([...sums.keys(), ...counts.keys()])) {
      const s = sums.get(name), c = counts.get(name);
      if (!s || !c) throw bad(`${s ? SUMS : COUNTS} without ${s ? COUNTS : SUMS}`, name);
      if (s.length % c.length !== 0) throw bad(`${s.length} sums do not split into ${c.length} matrices`, name);
      entries.set(name, { sums: s, counts: Array.from(c, (x) => Math.round(x)) });
    }
    return {
      path,
      format: 'gguf',
      entries,
      datasets: Array.isArray(datasets.value) ? datasets.value.map(String) : [],
      chunkCount: Number(chunkCount.value),
      chunkSize: Number(chunkSize.value),
    };
  } finally {
    await r.close();
  }
}

async function readLegacy(path: string): Promise<ImatrixFile> {
  const buf = await readFile(path).catch((e: unknown) => {
    throw ioError('ERR_IO', path, e, 'cannot read the importance matrix');
  });
  const bad = (m: string) => new QuantkitError('ERR_GGUF', `importance matrix (legacy .dat): ${m}`, { file: path });
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let at = 0;
  const i32 = (what: string) => {
    if (at + 4 > buf.length) throw bad(`file ends inside ${what} at byte ${at}`);
    const v = dv.getInt32(at, true);
    at += 4;
    return v;
  };
  const str = (len: number, what: string) => {
    if (len < 0 || at + len > buf.length) throw bad(`${what} of ${len} bytes runs past the end at byte ${at}`);
    const s = new TextDecoder().decode(buf.subarray(at, at + len));
    at += len;
    return s;
  };
  const n = i32('the entry count');
  if (n < 1) throw bad('no entries (neither a GGUF nor a legacy imatrix file)');
  const entries = new Map<string, ImatrixEntry>();
  for (let i = 0; i < n; i++) {
    const name = str(i32('a name length'), 'a name');
    const ncall = i32(`${name}'s ncall`);
    const nval = i32(`${name}'s value count`);
    if (nval < 1 || at + nval * 4 > buf.length) throw bad(`${name}: ${nval} values do not fit the file`);
    const sums = new Float32Array(nval);
    for (let j = 0; j < nval; j++) sums[j] = dv.getFloat32(at + 4 * j, true);
    at += nval * 4;
    entries.set(name, { sums, counts: [ncall] });
  }
  let chunkCount = 0;
  const datasets: string[] = [];
  if (at + 4 <= buf.length) {
    chunkCount = i32('the chunk count');
    if (at + 4 <= buf.length) {
      const len = i32('the dataset name length');
      if (len > 0) datasets.push(str(len, 'the dataset name'));
    }
  }
  return { path, format: 'legacy', entries, datasets, chunkCount, chunkSize: 0 };
}

/**
 * The per-column weights llama-quantize gives the quantizer of each tensor: GGUF sums divided by the
 * matrix's count (1 where a matrix saw no token), legacy sums divided by ncall; f32 arithmetic as there.
 */
export function imatrixValues(f: ImatrixFile): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, e] of f.entries) {
    const v = new Float32Array(e.sums.length);
    if (f.format === 'gguf') {
      const cols = e.sums.length / e.counts.length;
      e.counts.forEach((c, m) => {
        const count = Math.fround(c);
        for (let i = m * cols; i < (m + 1) * cols; i++) v[i] = count > 0 ? e.sums[i]! / count : 1;
      });
    } else {
      const ncall = e.counts[0] ?? 0;
      for (let i = 0; i < v.length; i++) v[i] = ncall > 0 ? e.sums[i]! / Math.fround(ncall) : e.sums[i]!;
    }
    out.set(name, v);
  }
  return out;
}

/** Writes a GGUF imatrix file as llama-imatrix does (entries sorted by name, in_sum2 then counts). */
export async function writeImatrixFile(path: string, f: Omit<ImatrixFile, 'path' | 'format'>): Promise<void> {
  const kvs: GgufKV[] = [
    { key: 'general.type', type: GgufValueType.STRING, value: 'imatrix' },
    { key: 'imatrix.datasets', type: GgufValueType.ARRAY, elemType: GgufValueType.STRING, value: f.datasets },
    { key: 'imatrix.chunk_count', type: GgufValueType.U32, value: f.chunkCount },
    { key: 'imatrix.chunk_size', type: GgufValueType.U32, value: f.chunkSize },
  ];
  const names = [...f.entries.keys()].sort();
  const tensors: { name: string; ne: number[]; type: 'F32'; bytes: number; data: Float32Array }[] = [];
  for (const name of names) {
    const e = f.entries.get(name)!;
    const nmat = e.counts.length;
    tensors.push({ name: name + SUMS, ne: [e.sums.length / nmat, nmat], type: 'F32', bytes: e.sums.length * 4, data: e.sums });
    tensors.push({ name: name + COUNTS, ne: [1, nmat], type: 'F32', bytes: nmat * 4, data: Float32Array.from(e.counts) });
  }
  const { header, infos, fileBytes } = encodeGgufHeader(kvs, tensors);
  const out = new Uint8Array(fileBytes);
  out.set(header);
  tensors.forEach((t, i) => out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.bytes), header.length + infos[i]!.offset));
  await writeFileAtomic(path, out);
}
