/**
 * Q4_K: 256-weight super-blocks of 8 sub-blocks of 32 4-bit codes, 6-bit sub-block scales and minimums,
 * f16 super-scale and super-minimum; 144 bytes, 4.5 bits per weight. Falls back to Q5_0.
 */
import { ggmlBlockType } from './encoding.js';

export const Q4_K = ggmlBlockType({
  name: 'Q4_K', ggufId: 12, blockWeights: 256, blockBytes: 144, bits: 4, scheme: 'q4_k', methods: ['rtn', 'imatrix'], fallback: 'Q5_0',
  summary: '256-weight super-blocks: 4-bit codes, 6-bit sub-block scales and minimums; 4.5 bits/weight',
});
