/** The dtypes of the safetensors format and their element sizes in bytes. */
export const DTYPE_SIZES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
} as const;

export type Dtype = keyof typeof DTYPE_SIZES;

/** Floating dtypes the quantization kernels read directly. */
export type FloatDtype = 'F32' | 'F16' | 'BF16';

export function isDtype(s: string): s is Dtype {
  return Object.prototype.hasOwnProperty.call(DTYPE_SIZES, s);
}

export function isKernelFloat(d: Dtype): d is FloatDtype {
  return d === 'F32' || d === 'F16' || d === 'BF16';
}

export function dtypeSize(d: Dtype): number {
  return DTYPE_SIZES[d];
}

/** Product of a shape, or undefined when it exceeds Number.MAX_SAFE_INTEGER. */
export function shapeElements(shape: readonly number[]): number | undefined {
  let n = 1n;
  for (const d of shape) n *= BigInt(d);
  return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : undefined;
}
