/** Q4_0: blocks of 32 4-bit codes (offset 8) with one f16 scale (-max / 8); 18 bytes, 4.5 bits per weight. */
import { ggmlBlockType } from './encoding.js';

export const Q4_0 = ggmlBlockType({
  name: 'Q4_0', ggufId: 2, blockWeights: 32, blockBytes: 18, bits: 4, scheme: 'q4_0', methods: ['rtn', 'search', 'gptq', 'imatrix'],
  summary: '32-weight blocks: f16 scale + 32 4-bit codes; 4.5 bits/weight',
});
