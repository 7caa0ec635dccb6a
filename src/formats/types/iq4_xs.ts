/**
 * IQ4_XS: 256-weight super-blocks of 8 sub-blocks of 32 indices into IQ4_NL's table, 6-bit sub-block
 * scales, an f16 super-scale; 136 bytes, 4.25 bits per weight. Falls back to IQ4_NL. quantkit prices it
 * (plan, estimate); the addon has no kernel for it, so quantize refuses it up front.
 */
import { ggmlBlockType } from './encoding.js';

export const IQ4_XS = ggmlBlockType({
  name: 'IQ4_XS', ggufId: 23, blockWeights: 256, blockBytes: 136, bits: 4, scheme: 'iq4_xs', fallback: 'IQ4_NL',
  summary: '256-weight super-blocks: non-linear 4-bit indices, 6-bit sub-block scales; 4.25 bits/weight',
});
