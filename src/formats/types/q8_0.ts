/** Q8_0: blocks of 32 int8 codes with one f16 scale (absmax / 127); 34 bytes, 8.5 bits per weight. */
import { ggmlBlockType } from './encoding.js';

export const Q8_0 = ggmlBlockType({
  name: 'Q8_0', ggufId: 8, blockWeights: 32, blockBytes: 34, bits: 8, scheme: 'q8_0', methods: ['rtn', 'search', 'gptq'],
  summary: '32-weight blocks: f16 scale + 32 int8; 8.5 bits/weight',
});
