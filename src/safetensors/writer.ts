/**
 * Streaming safetensors writer. The header is computed up front from the tensor list (so the file size
 * is known exactly before any data is written), tensors are then appended in order, and the file is
 * renamed into place only when every byte has arrived.
 */
import { AtomicFile } from '../atomic-file.js';
import { QuantkitError } from '../errors.js';
import { type Dtype, dtypeSize, shapeElements } from './dtypes.js';

export interface TensorEntry {
  name: string;
  dtype: Dtype;
  shape: number[];
}

export interface EncodedHeader {
  /** The 8-byte length prefix plus the space-padded JSON header. */
  bytes: Uint8Array;
  /** Data-section offsets of each tensor, in entry order. */
  offsets: { name: string; begin: number; end: number }[];
  dataBytes: number;
}

export function tensorBytes(t: TensorEntry): number {
  const n = shapeElements(t.shape);
  if (n === undefined) throw new QuantkitError('ERR_PLAN', `shape ${JSON.stringify(t.shape)} is too large`, { tensor: t.name });
  return n * dtypeSize(t.dtype);
}

export function encodeHeader(entries: readonly TensorEntry[], metadata?: Record<string, string>): EncodedHeader {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const offsets: EncodedHeader['offsets'] = [];
  const seen = new Set<string>();
  let cursor = 0;
  for (const t of entries) {
    if (seen.has(t.name) || t.name === '__metadata__') throw new QuantkitError('ERR_PLAN', 'duplicate output tensor name', { tensor: t.name });
    seen.add(t.name);
    const end = cursor + tensorBytes(t);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [cursor, end] };
    offsets.push({ name: t.name, begin: cursor, end });
    cursor = end;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
  const padded = Math.ceil(json.length / 8) * 8;
  const bytes = new Uint8Array(8 + padded).fill(0x20, 8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(padded), true);
  bytes.set(json, 8);
  return { bytes, offsets, dataBytes: cursor };
}

/** The exact size of the file that SafetensorsWriter produces for these entries. */
export function predictSafetensorsSize(entries: readonly TensorEntry[], metadata?: Record<string, string>): number {
  const h = encodeHeader(entries, metadata);
  return h.bytes.length + h.dataBytes;
}

export class SafetensorsWriter {
  private next = 0;
  private written = 0;

  private constructor(
    private file: AtomicFile,
    private header: EncodedHeader,
  ) {}

  static async create(path: string, entries: readonly TensorEntry[], metadata?: Record<string, string>): Promise<SafetensorsWriter> {
    const header = encodeHeader(entries, metadata);
    const file = await AtomicFile.create(path, { direct: true });
    try {
      await file.write(header.bytes);
    } catch (e) {
      await file.abort();
      throw e;
    }
    return new SafetensorsWriter(file, header);
  }

  get path(): string {
    return this.file.path;
  }

  get expectedSize(): number {
    return this.header.bytes.length + this.header.dataBytes;
  }

  /** Appends (part of) the data of the next tensor; tensors must come in entry order. */
  async write(name: string, data: Uint8Array): Promise<void> {
    this.skipEmpty(name);
    const slot = this.header.offsets[this.next];
    if (!slot || slot.name !== name)
      throw new QuantkitError('ERR_PLAN', `written out of order (expected '${slot?.name ?? 'nothing'}')`, { file: this.path, tensor: name });
    const size = slot.end - slot.begin;
    if (this.written + data.length > size)
      throw new QuantkitError('ERR_PLAN', `got more than its ${size} planned bytes`, { file: this.path, tensor: name });
    await this.file.write(data);
    this.written += data.length;
    if (this.written === size) {
      this.next++;
      this.written = 0;
    }
  }

  /** Zero-size tensors have no bytes: callers need not write them. */
  private skipEmpty(except?: string): void {
    for (let s = this.header.offsets[this.next]; s && s.begin === s.end && s.name !== except; s = this.header.offsets[this.next]) this.next++;
  }

  async finish(): Promise<void> {
    this.skipEmpty();
    if (this.next !== this.header.offsets.length) {
      await this.file.abort();
      throw new QuantkitError('ERR_PLAN', `tensor '${this.header.offsets[this.next]!.name}' was never written`, { file: this.path });
    }
    await this.file.commit(this.expectedSize);
  }

  async abort(): Promise<void> {
    await this.file.abort();
  }
}
