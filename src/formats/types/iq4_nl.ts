/**
 * IQ4_NL: blocks of 32 4-bit indices into llama.cpp's 16-value non-linear table, one f16 scale; 18 bytes,
 * 4.5 bits per weight (Q4_0's size). Its own method is the scale search (llama.cpp's quantizer searches
 * too); GPTQ adds error feedback, and 'rtn' names llama.cpp's own IQ4_NL quantizer.
 */
import { ggmlBlockType } from './encoding.js';

export const IQ4_NL = ggmlBlockType({
  name: 'IQ4_NL', ggufId: 20, blockWeights: 32, blockBytes: 18, bits: 4, scheme: 'iq4_nl', methods: ['search', 'gptq', 'rtn', 'imatrix'],
  summary: '32-weight blocks: f16 scale + 32 4-bit indices into a non-linear table; 4.5 bits/weight',
});
