/**
 * Parsing and validation of a safetensors header, with the checks of the reference Rust crate:
 * header length, UTF-8 JSON object, known dtypes, overflow-checked byte sizes matching data_offsets,
 * tensors contiguous from offset 0 with no hole or overlap, data ending exactly at the end of the file,
 * `__metadata__` as a string→string map. quantkit also rejects duplicate tensor names.
 */
import { QuantkitError } from '../errors.js';
import { type Dtype, dtypeSize, isDtype, shapeElements } from './dtypes.js';
import { type JsonValue, JsonSyntaxError, isJsonObject, parseStrictJson } from './strict-json.js';

export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** Byte offsets relative to the start of the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** Length of the JSON header (the u64 at the start of the file). */
  headerLength: number;
  /** Absolute file offset of the data section: 8 + headerLength. */
  dataStart: number;
  /** Tensors in data order. */
  tensors: TensorInfo[];
  byName: Map<string, TensorInfo>;
  metadata: Record<string, string> | null;
}

function headerError(file: string, detail: string, tensor?: string): QuantkitError {
  return new QuantkitError('ERR_SAFETENSORS_HEADER', detail, tensor !== undefined ? { file, tensor } : { file });
}

/** Validates the 8-byte length prefix against the file size; returns the header length. */
export function checkHeaderLength(prefix: Uint8Array, fileSize: number, file: string): number {
  if (fileSize < 8 || prefix.length < 8) throw headerError(file, `file is ${fileSize} bytes, too short for a safetensors header`);
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) throw headerError(file, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (8n + n > BigInt(fileSize)) throw headerError(file, `header length ${n} runs past the end of the ${fileSize}-byte file`);
  return Number(n);
}

function nonNegativeInt(v: JsonValue | undefined): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export function parseHeader(json: Uint8Array, fileSize: number, file: string): SafetensorsHeader {
  const headerLength = json.length;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(json);
  } catch {
    throw headerError(file, 'header is not valid UTF-8');
  }
  let root: JsonValue;
  try {
    root = parseStrictJson(text);
  } catch (e) {
    if (e instanceof JsonSyntaxError) throw headerError(file, `header is not valid JSON: ${e.message}`);
    throw e;
  }
  if (!isJsonObject(root)) throw headerError(file, 'header JSON is not an object');

  let metadata: Record<string, string> | null = null;
  const tensors: TensorInfo[] = [];
  for (const [name, entry] of Object.entries(root)) {
    if (name === '__metadata__') {
      if (!isJsonObject(entry)) throw headerError(file, '__metadata__ is not an object');
      metadata = {};
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') throw headerError(file, `__metadata__ value for '${k}' is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    if (!isJsonObject(entry)) throw headerError(file, 'entry is not an object', name);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (typeof dtype !== 'string' || !isDtype(dtype)) throw headerError(file, `unknown dtype ${JSON.stringify(dtype)}`, name);
    if (!Array.isArray(shape) || !shape.every(nonNegativeInt))
      throw headerError(file, `shape ${JSON.stringify(shape)} is not a list of non-negative integers`, name);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !nonNegativeInt(offsets[0]) || !nonNegativeInt(offsets[1]))
      throw headerError(file, `data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`, name);
    const [begin, end] = offsets as [number, number];
    if (end < begin) throw headerError(file, `data_offsets [${begin}, ${end}] end before they begin`, name);
    const elements = shapeElements(shape as number[]);
    const bytes = elements === undefined ? undefined : elements * dtypeSize(dtype);
    if (bytes === undefined || !Number.isSafeInteger(bytes))
      throw headerError(file, `shape ${JSON.stringify(shape)} overflows the byte size`, name);
    if (bytes !== end - begin)
      throw headerError(file, `shape ${JSON.stringify(shape)} of ${dtype} needs ${bytes} bytes but data_offsets span ${end - begin}`, name);
    tensors.push({ name, dtype, shape: shape as number[], begin, end });
  }

  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const t of tensors) {
    if (t.begin < cursor) throw headerError(file, `data_offsets [${t.begin}, ${t.end}] overlap the previous tensor (ends at ${cursor})`, t.name);
    if (t.begin > cursor) throw headerError(file, `data_offsets [${t.begin}, ${t.end}] leave a hole after offset ${cursor}`, t.name);
    cursor = t.end;
  }
  const dataStart = 8 + headerLength;
  const dataBytes = fileSize - dataStart;
  if (cursor !== dataBytes) {
    const detail = cursor < dataBytes
      ? `tensor data ends at ${cursor} but the file has ${dataBytes} data bytes (trailing bytes)`
      : `tensor data needs ${cursor} bytes but the file has only ${dataBytes} (truncated)`;
    throw headerError(file, detail);
  }
  return { headerLength, dataStart, tensors, byName: new Map(tensors.map((t) => [t.name, t])), metadata };
}
