/**
 * NaN and Inf in tensors kept unquantized. Quantized tensors are checked by the kernels (a NaN has no
 * scale); a kept tensor is copied, so the check is here, one rule for every output format: refuse with the
 * file, tensor and first bad index, unless the user asked to copy such values (`--allow-non-finite`), in
 * which case the report lists them.
 */
import type { CheckpointTensor } from './checkpoint.js';
import { QuantkitError } from './errors.js';
import type { Dtype } from './safetensors/dtypes.js';

export interface NonFiniteValues {
  /** How many elements are NaN or ±Inf. */
  count: number;
  /** Flat index of the first one (row-major), or -1 when there is none. */
  first: number;
}

/**
 * The exponent field of each float dtype: a value is NaN or Inf exactly when the field is all ones.
 * `carry` is the field's lowest bit, so `(bits & mask) + carry` reaches the bit above the field only then.
 */
const EXPONENT: Partial<Record<Dtype, { width: 1 | 2 | 4; mask: number; carry: number }>> = {
  F32: { width: 4, mask: 0x7f800000, carry: 0x00800000 },
  F16: { width: 2, mask: 0x7c00, carry: 0x0400 },
  BF16: { width: 2, mask: 0x7f80, carry: 0x0080 },
  F8_E5M2: { width: 1, mask: 0x7c, carry: 0x04 },
};

/** Counts the NaN/Inf elements of little-endian float data; other dtypes have none. */
export function findNonFinite(bytes: Uint8Array, dtype: Dtype): NonFiniteValues {
  if (dtype === 'F64') {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return scan(bytes.length >> 3, (i) => !Number.isFinite(dv.getFloat64(i * 8, true)));
  }
  // E4M3 has no infinity; its only NaN encodings are S.1111.111.
  if (dtype === 'F8_E4M3') return scan(bytes.length, (i) => (bytes[i]! & 0x7f) === 0x7f);
  const f = EXPONENT[dtype];
  if (!f) return { count: 0, first: -1 };
  const n = Math.floor(bytes.length / f.width);
  const { mask, carry } = f;
  // Typed views need aligned data; the reader's buffers are, a copy covers any that is not.
  const data = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  if (!anyExponentAllOnes(data, f.width, mask, carry)) return { count: 0, first: -1 };
  const v = f.width === 4 ? new Uint32Array(data.buffer, data.byteOffset, n) : f.width === 2 ? new Uint16Array(data.buffer, data.byteOffset, n) : data;
  return scan(n, (i) => (v[i]! & mask) === mask);
}

/**
 * The fast test: whole 32-bit words at a time (one to four elements), each exponent field plus its
 * carry landing in the bit above the field only when the field is all ones (fields never carry into
 * each other), OR-ed together: three operations per word, no branch.
 */
function anyExponentAllOnes(data: Uint8Array, width: 1 | 2 | 4, mask: number, carry: number): boolean {
  const words = new Uint32Array(data.buffer, data.byteOffset, data.length >> 2);
  const per = 4 / width;
  let m = 0, c = 0, top = 0;
  for (let k = 0; k < per; k++) {
    m |= mask << (k * 8 * width);
    c |= carry << (k * 8 * width);
    top |= ((mask + carry) & ~mask) << (k * 8 * width);
  }
  let acc = 0;
  for (let i = 0; i < words.length; i++) acc |= (words[i]! & m) + c;
  if ((acc & top) !== 0) return true;
  // The tail that does not fill a word.
  for (let i = words.length * 4; i + width <= data.length; i += width) {
    const v = width === 2 ? data[i]! | (data[i + 1]! << 8) : data[i]!; // a 4-byte float always fills a word
    if ((v & mask) === mask) return true;
  }
  return false;
}

function scan(n: number, bad: (i: number) => boolean): NonFiniteValues {
  let count = 0;
  let first = -1;
  for (let i = 0; i < n; i++) {
    if (!bad(i)) continue;
    if (count++ === 0) first = i;
  }
  return { count, first };
}

/** A flat row-major index as one index per dimension. */
export function unravel(flat: number, shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    const n = shape[d]!;
    out[d] = n > 0 ? flat % n : 0;
    flat = n > 0 ? Math.floor(flat / n) : 0;
  }
  return out;
}

/** A kept tensor copied with NaN/Inf values because `--allow-non-finite` said so (the report lists it). */
export interface NonFiniteCopy {
  tensor: string;
  file: string;
  count: number;
  first_index: number[];
}

/** The rule for one run: refuse (the default) or copy and record. */
export class NonFiniteCheck {
  readonly copied: NonFiniteCopy[] = [];

  constructor(private readonly allow: boolean) {}

  /** Checks a kept tensor's source bytes; throws ERR_NONFINITE unless the run allows copying them. */
  check(bytes: Uint8Array, t: CheckpointTensor): void {
    const { count, first } = findNonFinite(bytes, t.dtype);
    if (count === 0) return;
    const at = unravel(first, t.shape);
    if (this.allow) {
      this.copied.push({ tensor: t.name, file: t.file, count, first_index: at });
      return;
    }
    throw new QuantkitError('ERR_NONFINITE', `${count} NaN/Inf value(s) in a tensor kept unquantized, the first at index [${at.join(', ')}] (element ${first}): refusing to copy it (--allow-non-finite copies such values as they are)`, { file: t.file, tensor: t.name });
  }

  /** The report's record: present only when values were copied. */
  reportField(): { non_finite?: NonFiniteCopy[] } {
    return this.copied.length ? { non_finite: this.copied } : {};
  }
}
