/**
 * Q3_K: 256-weight super-blocks of 16 sub-blocks of 16 3-bit codes (2 low bits + a high-bit mask),
 * 6-bit sub-block scales, an f16 super-scale; 110 bytes, 3.4375 bits per weight. Falls back to Q4_0.
 */
import { ggmlBlockType } from './encoding.js';

export const Q3_K = ggmlBlockType({
  name: 'Q3_K', ggufId: 11, blockWeights: 256, blockBytes: 110, bits: 3, scheme: 'q3_k', methods: ['rtn', 'imatrix'], fallback: 'Q4_0',
  summary: '256-weight super-blocks: 3-bit codes, 6-bit sub-block scales; 3.4375 bits/weight',
});
