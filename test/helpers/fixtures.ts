/** Builders for hand-made (often malformed) safetensors files. */
import { writeFileSync } from 'node:fs';

/** A safetensors file from a raw header string (no validation) and data bytes. */
export function rawSafetensors(header: string | Uint8Array, data: Uint8Array | number = 0, lengthOverride?: bigint): Uint8Array {
  const h = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}

export function writeRaw(path: string, header: unknown, data: Uint8Array | number = 0): string {
  writeFileSync(path, rawSafetensors(typeof header === 'string' ? header : JSON.stringify(header), data));
  return path;
}

/** A well-formed header object for tensors laid out back to back. */
export function headerFor(tensors: { name: string; dtype: string; shape: number[]; bytes: number }[], metadata?: Record<string, string>) {
  const h: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  let o = 0;
  for (const t of tensors) {
    h[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [o, o + t.bytes] };
    o += t.bytes;
  }
  return { header: h, dataBytes: o };
}
