/**
 * What a weight encoding declares: the shape of one row of the format registry (index.ts lists them).
 * A ggml type declares what ggml's `type_traits` row declares (ggml/src/ggml.c: name, weights per
 * block, bytes per block, quantized or not) plus what quantkit needs around it: its GGUF type id, the
 * addon's kernel scheme, the methods those kernels take, llama.cpp's fallback for rows that are not whole
 * blocks. A compressed-tensors encoding declares its packed parts for a shape. Modules here hold data and
 * small pure functions only: the planner, the writers, `verify`, the reports and `estimate` ask the
 * registry, and the addon does the quantizing and dequantizing through the declared scheme.
 */
import type { KernelMethod, KernelScheme, KernelSpec } from '../../native.js';
import type { Dtype, FloatDtype } from '../../safetensors/dtypes.js';

/** Every encoding: its name in plans and reports, the files that hold it, and the kernels that make it. */
export interface WeightEncoding {
  /** ggml's type name (`Q4_K`) or compressed-tensors' scheme (`int_sym`). */
  readonly name: string;
  /** Which container family stores it. */
  readonly family: 'ggml' | 'compressed-tensors';
  /** One line for people: layout and size. */
  readonly summary: string;
  /**
   * The addon's scheme: quantize, dequantize and error statistics go through `addon()` with it. Null for
   * element types (F32, F16, ...), which are stored as they are.
   */
  readonly scheme: KernelScheme | null;
  /**
   * Kernel methods the scheme takes. The first is the type's own: a reader names it to dequantize (the
   * stored layout is the same whichever method chose the values) and labels leave it out.
   */
  readonly methods: readonly KernelMethod[];
}

/** A ggml tensor type: one row of ggml's type_traits, and more. */
export interface GgmlType extends WeightEncoding {
  readonly family: 'ggml';
  /** ggml's `enum ggml_type` value: the type id in GGUF tensor infos. */
  readonly ggufId: number;
  /** Weights per block (ggml's blck_size; 1 for element types). */
  readonly blockWeights: number;
  /** Bytes per block (ggml's type_size). */
  readonly blockBytes: number;
  /** ggml's is_quantized. */
  readonly quantized: boolean;
  /** Code width the kernels take as KernelSpec.bits (quantized types), or the element width. */
  readonly bits: number;
  /**
   * llama.cpp's tensor_type_fallback (src/llama-quant.cpp): the type a tensor gets instead when its rows
   * are not whole blocks of this one. Null for 32-weight types, which fall back to F16 directly.
   */
  readonly fallback: string | null;
  /** The safetensors dtype an element type stores, bit for bit. */
  readonly dtype: Dtype | null;
}

/** Declares a quantized ggml block type (the modules beside this one: one call each). */
export function ggmlBlockType<const N extends string>(t: {
  name: N;
  ggufId: number;
  blockWeights: number;
  blockBytes: number;
  bits: number;
  scheme: KernelScheme;
  methods?: readonly KernelMethod[];
  fallback?: string;
  summary: string;
}): GgmlType & { name: N } {
  return { family: 'ggml', quantized: true, dtype: null, fallback: null, methods: ['rtn'], ...t };
}

/** Declares a ggml element type (stored as they are: F32, F16, BF16, the integers). */
export function ggmlElementType<const N extends string>(name: N, ggufId: number, dtype: Dtype, summary: string): GgmlType & { name: N } {
  const bytes = { F32: 4, F16: 2, BF16: 2, F64: 8, I8: 1, I16: 2, I32: 4, I64: 8 }[dtype as string];
  if (!bytes) throw new Error(`no ggml element type for ${dtype}`);
  return { name, family: 'ggml', ggufId, blockWeights: 1, blockBytes: bytes, quantized: false, bits: bytes * 8, scheme: null, methods: [], fallback: null, dtype, summary };
}

/** Stored bits per weight of a ggml type (block overhead included): 4.5 for Q4_0, 4.5 for Q4_K. */
export const ggmlBitsPerWeight = (t: GgmlType) => (t.blockBytes * 8) / t.blockWeights;

/** Do rows of `cols` weights hold whole blocks of `t`? */
export const ggmlFits = (t: GgmlType, cols: number) => cols % t.blockWeights === 0;

/** Bytes of a tensor of `t` with GGUF dims `ne` (innermost first); undefined when ne[0] is not whole blocks. */
export function ggmlTensorBytes(t: GgmlType, ne: readonly number[]): number | undefined {
  if (!ggmlFits(t, ne[0]!)) return undefined;
  return (ne.reduce((a, b) => a * b, 1) / t.blockWeights) * t.blockBytes;
}

/** The kernel spec of a quantized ggml type (its block, f16 scales), with `method` when not 'rtn'. */
export function ggmlSpec(t: GgmlType, method: KernelMethod = 'rtn'): KernelSpec {
  if (!t.scheme) throw new Error(`${t.name} is stored as it is: it has no kernel spec`);
  return { scheme: t.scheme, bits: t.bits, group: t.blockWeights, scaleDtype: 'F16', ...(method !== 'rtn' ? { method } : {}) };
}

/**
 * How plans and reports name a ggml tensor: the type, and the method when it is not the type's own
 * (`Q4_0 search`, `Q4_1 hqq`; IQ4_NL, whose own method is the search, by its name alone).
 */
export function ggmlLabel(t: GgmlType, method: KernelMethod = 'rtn'): string {
  return method === 'rtn' || method === t.methods[0] ? t.name : `${t.name} ${method}`;
}

/** A stored part of a compressed-tensors weight, named by its suffix (`X.weight` + `_packed`). */
export interface PackedPart {
  suffix: '_packed' | '_scale' | '_zero_point';
  dtype: Dtype;
  shape: number[];
}

/** compressed-tensors' integer encodings: ints packed into I32 words, a scale per group. */
export interface PackedIntEncoding extends WeightEncoding {
  readonly family: 'compressed-tensors';
  readonly scheme: 'int_sym' | 'int_asym';
  /** Code widths compressed-tensors loaders read. */
  readonly bitWidths: readonly number[];
  /** Asymmetric: one integer zero point per group, packed along the rows. */
  readonly zeroPoints: boolean;
}

/** The stored parts of a rows x cols matrix (`spec`: bits, group, scale dtype). */
export function packedParts(e: PackedIntEncoding, spec: KernelSpec, rows: number, cols: number): PackedPart[] {
  const perWord = 32 / spec.bits;
  const parts: PackedPart[] = [
    { suffix: '_packed', dtype: 'I32', shape: [rows, Math.ceil(cols / perWord)] },
    { suffix: '_scale', dtype: spec.scaleDtype as FloatDtype, shape: [rows, cols / spec.group] },
  ];
  if (e.zeroPoints) parts.push({ suffix: '_zero_point', dtype: 'I32', shape: [Math.ceil(rows / perWord), cols / spec.group] });
  return parts;
}

/** Smallest divisor of `cols` that is >= `group` (so bits per weight never grow), or the row itself. */
export function packedGroup(cols: number, group: number): number {
  if (cols % group === 0) return group;
  for (let d = group; d < cols; d++) if (cols % d === 0) return d;
  return cols;
}

/** `int4 g32 sym`, `int8 row asym search`. */
export function packedLabel(e: PackedIntEncoding, spec: KernelSpec, cols: number): string {
  return `int${spec.bits} ${spec.group === cols ? 'row' : `g${spec.group}`} ${e.zeroPoints ? 'asym' : 'sym'}${spec.method && spec.method !== 'rtn' ? ` ${spec.method}` : ''}`;
}
