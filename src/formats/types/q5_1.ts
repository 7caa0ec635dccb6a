/** Q5_1: blocks of 32 5-bit codes with an f16 scale and an f16 minimum; 24 bytes, 6 bits per weight. */
import { ggmlBlockType } from './encoding.js';

export const Q5_1 = ggmlBlockType({
  name: 'Q5_1', ggufId: 7, blockWeights: 32, blockBytes: 24, bits: 5, scheme: 'q5_1', methods: ['rtn', 'imatrix'],
  summary: '32-weight blocks: f16 scale and minimum + 32 5-bit codes; 6 bits/weight',
});
