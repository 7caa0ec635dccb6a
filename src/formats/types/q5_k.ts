/**
 * Q5_K: Q4_K's layout with a fifth bit per weight in a 32-byte high-bit plane; 176 bytes, 5.5 bits per
 * weight. Falls back to Q5_1.
 */
import { ggmlBlockType } from './encoding.js';

export const Q5_K = ggmlBlockType({
  name: 'Q5_K', ggufId: 13, blockWeights: 256, blockBytes: 176, bits: 5, scheme: 'q5_k', methods: ['rtn', 'imatrix'], fallback: 'Q5_1',
  summary: '256-weight super-blocks: 5-bit codes, 6-bit sub-block scales and minimums; 5.5 bits/weight',
});
