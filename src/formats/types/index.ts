/**
 * The format registry: every weight encoding quantkit plans, writes, reads back or prices, one module
 * each beside this file. The planner, the GGUF and safetensors writers, `verify`'s readers, the reports
 * and `estimate` find types here (by name, GGUF id, kernel scheme or dtype) instead of keeping tables
 * of their own. Adding an encoding: its module, one line in the list below, and its kernels in the addon.
 */
import type { KernelScheme } from '../../native.js';
import type { Dtype } from '../../safetensors/dtypes.js';
import type { GgmlType, PackedIntEncoding, WeightEncoding } from './encoding.js';
import { BF16, F16, F32, F64, I16, I32, I64, I8 } from './plain.js';
import { IQ2_XXS } from './iq2_xxs.js';
import { IQ4_NL } from './iq4_nl.js';
import { IQ4_XS } from './iq4_xs.js';
import { INT_ASYM } from './int-asym.js';
import { INT_SYM } from './int-sym.js';
import { Q2_K } from './q2_k.js';
import { Q3_K } from './q3_k.js';
import { Q4_0 } from './q4_0.js';
import { Q4_1 } from './q4_1.js';
import { Q4_K } from './q4_k.js';
import { Q5_0 } from './q5_0.js';
import { Q5_1 } from './q5_1.js';
import { Q5_K } from './q5_k.js';
import { Q6_K } from './q6_k.js';
import { Q8_0 } from './q8_0.js';

export * from './encoding.js';

/** ggml's types, in ggml.h's order. */
const GGML_LIST = [F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ2_XXS, IQ4_NL, IQ4_XS, I8, I16, I32, I64, F64, BF16] as const;
/** compressed-tensors' encodings. */
export const PACKED_INT_ENCODINGS: readonly PackedIntEncoding[] = [INT_SYM, INT_ASYM];

export type GgmlTypeName = (typeof GGML_LIST)[number]['name'];
export const GGML_TYPE_NAMES = GGML_LIST.map((t) => t.name) as GgmlTypeName[];
/** Every encoding in the registry. */
export const WEIGHT_ENCODINGS: readonly WeightEncoding[] = [...GGML_LIST, ...PACKED_INT_ENCODINGS];

const byName = new Map<string, GgmlType>(GGML_LIST.map((t) => [t.name, t]));
const byId = new Map<number, GgmlType>(GGML_LIST.map((t) => [t.ggufId, t]));
const byScheme = new Map<KernelScheme, WeightEncoding>(WEIGHT_ENCODINGS.filter((e) => e.scheme).map((e) => [e.scheme!, e]));
const byDtype = new Map<Dtype, GgmlType>(GGML_LIST.filter((t) => t.dtype).map((t) => [t.dtype!, t]));

// A registry that contradicts itself fails at load, not in the middle of a run.
for (const t of GGML_LIST) {
  if (t.fallback !== null && !byName.has(t.fallback)) throw new Error(`format registry: ${t.name} falls back to unknown type ${t.fallback}`);
  if (t.fallback !== null && byName.get(t.fallback)!.blockWeights >= t.blockWeights) throw new Error(`format registry: ${t.name}'s fallback ${t.fallback} has blocks no smaller`);
}
if (byId.size !== GGML_LIST.length || byScheme.size !== WEIGHT_ENCODINGS.filter((e) => e.scheme).length) throw new Error('format registry: two encodings share an id or a scheme');

/** The ggml type of this name (`Q4_K`). */
export function ggmlType(name: GgmlTypeName): GgmlType;
export function ggmlType(name: string): GgmlType | undefined;
export function ggmlType(name: string): GgmlType | undefined {
  return byName.get(name);
}

/** The ggml type a GGUF tensor info names by id; undefined for ids quantkit does not know. */
export function ggmlTypeById(id: number): GgmlType | undefined {
  return byId.get(id);
}

/** The ggml element type storing `dtype` as it is (F32, BF16, I32, ...). */
export function ggmlTypeOfDtype(dtype: Dtype): GgmlType | undefined {
  return byDtype.get(dtype);
}

/** The encoding whose kernels a spec names. */
export function encodingOfScheme(scheme: KernelScheme): WeightEncoding {
  const e = byScheme.get(scheme);
  if (!e) throw new Error(`format registry: no encoding has kernel scheme ${scheme}`);
  return e;
}

/** The ggml type whose kernels a spec names (GGUF writers and readers). */
export function ggmlTypeOfScheme(scheme: KernelScheme): GgmlType {
  const e = encodingOfScheme(scheme);
  if (e.family !== 'ggml') throw new Error(`format registry: ${scheme} is not a ggml type`);
  return e as GgmlType;
}

/** The compressed-tensors encoding whose kernels a spec names (int_sym, int_asym). */
export function packedIntEncoding(scheme: KernelScheme): PackedIntEncoding {
  const e = encodingOfScheme(scheme);
  if (e.family !== 'compressed-tensors') throw new Error(`format registry: ${scheme} is not a compressed-tensors encoding`);
  return e as PackedIntEncoding;
}
