/** Q5_0: blocks of 32 5-bit codes (low nibbles + a 32-bit word of high bits) with one f16 scale; 22 bytes, 5.5 bits per weight. */
import { ggmlBlockType } from './encoding.js';

export const Q5_0 = ggmlBlockType({
  name: 'Q5_0', ggufId: 6, blockWeights: 32, blockBytes: 22, bits: 5, scheme: 'q5_0', methods: ['rtn', 'imatrix'],
  summary: '32-weight blocks: f16 scale + 32 5-bit codes; 5.5 bits/weight',
});
