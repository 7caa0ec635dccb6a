/**
 * compressed-tensors pack-quantized, asymmetric: int4 or int8 codes over [min(x,0), max(x,0)], a scale
 * per group and one integer zero point per group, the zero points packed along the rows into I32 words.
 */
import type { PackedIntEncoding } from './encoding.js';

export const INT_ASYM: PackedIntEncoding = {
  name: 'int_asym', family: 'compressed-tensors', scheme: 'int_asym', methods: ['rtn', 'search'], bitWidths: [4, 8], zeroPoints: true,
  summary: 'compressed-tensors pack-quantized, asymmetric: int4/int8 in I32 words, a scale and a zero point per group',
};
