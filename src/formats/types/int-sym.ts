/**
 * compressed-tensors pack-quantized, symmetric: int4 or int8 codes + 2^(bits-1) packed least-significant
 * first into I32 words along the row, one scale (absmax / ((2^bits - 1) / 2)) per group in the model's
 * dtype; groups of any size that divides the row.
 */
import type { PackedIntEncoding } from './encoding.js';

export const INT_SYM: PackedIntEncoding = {
  name: 'int_sym', family: 'compressed-tensors', scheme: 'int_sym', methods: ['rtn', 'search', 'gptq'], bitWidths: [4, 8], zeroPoints: false,
  summary: 'compressed-tensors pack-quantized, symmetric: int4/int8 in I32 words, a scale per group',
};
