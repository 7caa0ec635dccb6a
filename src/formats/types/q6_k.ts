/**
 * Q6_K: 256-weight super-blocks of 16 sub-blocks of 16 6-bit codes (4 low bits + 2 high bits), 8-bit
 * sub-block scales, an f16 super-scale; 210 bytes, 6.5625 bits per weight. Falls back to Q8_0.
 */
import { ggmlBlockType } from './encoding.js';

export const Q6_K = ggmlBlockType({
  name: 'Q6_K', ggufId: 14, blockWeights: 256, blockBytes: 210, bits: 6, scheme: 'q6_k', methods: ['rtn', 'imatrix'], fallback: 'Q8_0',
  summary: '256-weight super-blocks: 6-bit codes, 8-bit sub-block scales; 6.5625 bits/weight',
});
