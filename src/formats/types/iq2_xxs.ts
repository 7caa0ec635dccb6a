/**
 * IQ2_XXS: 256-weight super-blocks of 2-bit lattice codes (E8 grid indices with signs and 4-bit scales
 * packed in 16-bit words), an f16 super-scale; 66 bytes, 2.0625 bits per weight. Falls back to IQ4_NL.
 * llama.cpp makes it only with an importance matrix; quantkit prices it (plan, estimate) and has no
 * kernel for it, so quantize refuses it up front.
 */
import { ggmlBlockType } from './encoding.js';

export const IQ2_XXS = ggmlBlockType({
  name: 'IQ2_XXS', ggufId: 16, blockWeights: 256, blockBytes: 66, bits: 2, scheme: 'iq2_xxs', fallback: 'IQ4_NL',
  summary: '256-weight super-blocks: 2-bit E8-lattice codes; 2.0625 bits/weight (needs an importance matrix)',
});
