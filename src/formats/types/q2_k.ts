/**
 * Q2_K: 256-weight super-blocks of 16 sub-blocks of 16 2-bit codes; a 4-bit scale and a 4-bit minimum per
 * sub-block, f16 super-scale and super-minimum; 84 bytes, 2.625 bits per weight. Rows that are not
 * whole super-blocks fall back to Q4_0 (llama.cpp's tensor_type_fallback).
 */
import { ggmlBlockType } from './encoding.js';

export const Q2_K = ggmlBlockType({
  name: 'Q2_K', ggufId: 10, blockWeights: 256, blockBytes: 84, bits: 2, scheme: 'q2_k', methods: ['rtn', 'imatrix'], fallback: 'Q4_0',
  summary: '256-weight super-blocks: 2-bit codes, 4-bit sub-block scales and minimums; 2.625 bits/weight',
});
