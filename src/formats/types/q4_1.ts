/** Q4_1: blocks of 32 4-bit codes with an f16 scale and an f16 minimum; 20 bytes, 5 bits per weight. */
import { ggmlBlockType } from './encoding.js';

export const Q4_1 = ggmlBlockType({
  name: 'Q4_1', ggufId: 3, blockWeights: 32, blockBytes: 20, bits: 4, scheme: 'q4_1', methods: ['rtn', 'search', 'hqq', 'imatrix'],
  summary: '32-weight blocks: f16 scale and minimum + 32 4-bit codes; 5 bits/weight',
});
