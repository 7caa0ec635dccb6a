// The scale search's 8-lane vectors (search.h's Sum8) for the x86 files: element j of a group in lane
// j % 8 of a 256-bit vector. AVX2 and AVX-512 both use these 256-bit operations, so the lanes are the
// reference's on both. Include inside an ISA file's anonymous namespace only.
#pragma once
#include <immintrin.h>

struct Lanes8Avx {
  using V = __m256;
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V set1(float v) { return _mm256_set1_ps(v); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  // Each lane rounded to f16 (nearest even, as O::to_f16), the bits to h[0..8), the value returned.
  static V f16_round(V v, uint16_t* h) {
    const __m128i b = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(h), b);
    return _mm256_cvtph_ps(b);
  }
  // Each lane rounded to bf16 as f32_to_bf16 (numeric.h) does it (nearest even; NaN stays NaN, quiet),
  // the bits to h[0..8), the value returned.
  static V bf16_round(V v, uint16_t* h) {
    const __m256i u = _mm256_castps_si256(v);
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)), _mm256_set1_epi32(0x7f800000));
    const __m256i rounded = _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1))));
    const __m256i r = _mm256_srli_epi32(_mm256_blendv_epi8(rounded, _mm256_or_si256(u, _mm256_set1_epi32(0x400000)), nan), 16);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(h), _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(r, 16));
  }
  // 1 / v where that is finite and v != 0, else 0
  static V inverse_finite_or_zero(V v) {
    const V inv = _mm256_div_ps(_mm256_set1_ps(1.0f), v);
    const V ok = _mm256_and_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_NEQ_UQ),
                               _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), inv), _mm256_set1_ps(__builtin_inff()), _CMP_LT_OQ));
    return _mm256_and_ps(inv, ok);
  }
  // 1 / v, and 0 where v == 0
  static V inverse_or_zero(V v) {
    const V z = _mm256_setzero_ps();
    return _mm256_blendv_ps(_mm256_div_ps(_mm256_set1_ps(1.0f), v), z, _mm256_cmp_ps(v, z, _CMP_EQ_OQ));
  }
  // neg where m < 0, else pos
  static V by_sign(V m, V pos, V neg) { return _mm256_blendv_ps(pos, neg, _mm256_cmp_ps(m, _mm256_setzero_ps(), _CMP_LT_OQ)); }
  static V fma(V a, V b, V acc) { return _mm256_fmadd_ps(a, b, acc); }
  static V min(V a, V b) { return _mm256_min_ps(a, b); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V round_even(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // Sum8::total of four vectors at once: two rounds of hadd give ((l0+l1)+(l2+l3)) in the low half
  // and ((l4+l5)+(l6+l7)) in the high half for each input; adding the halves finishes.
  static void totals(const V v[4], float out[4]) {
    const V s = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1)));
  }
  // best_scale (search.h) with the four scores computed side by side in double: the same IEEE
  // operations, then the first lane holding the maximum.
  static float best_scale(const float qx[4], const float q2[4]) {
    const __m256d a = _mm256_cvtps_pd(_mm_loadu_ps(qx)), b = _mm256_cvtps_pd(_mm_loadu_ps(q2));
    const __m256d s = _mm256_div_pd(_mm256_mul_pd(a, a), b);
    const __m256d ok = _mm256_and_pd(_mm256_cmp_pd(b, _mm256_setzero_pd(), _CMP_GT_OQ), _mm256_cmp_pd(s, s, _CMP_ORD_Q));
    const __m256d score = _mm256_blendv_pd(_mm256_set1_pd(-1.0), s, ok);
    __m256d top = _mm256_max_pd(score, _mm256_permute2f128_pd(score, score, 1));
    top = _mm256_max_pd(top, _mm256_permute_pd(top, 5));
    if (_mm256_cvtsd_f64(top) < 0.0) return 0.0f;
    const int k = __builtin_ctz(static_cast<unsigned>(_mm256_movemask_pd(_mm256_cmp_pd(score, top, _CMP_EQ_OQ))));
    return qx[k] / q2[k];
  }
  // The IQ4_NL value nearest each lane's t (iq4nl_index: the number of midpoints below t), by a
  // four-step binary search over the sorted midpoints; NaN compares false throughout and lands on the
  // lowest level, as in the reference. Cheaper than a gather on the CPUs measured (docs/benchmarks.md).
  static V iq4nl(V t) {
    using qk::kIq4nlMids;
    using qk::kIq4nlValues;
    const __m256 top = _mm256_cmp_ps(t, _mm256_set1_ps(kIq4nlMids[7]), _CMP_GT_OQ);  // index >= 8
    const __m256 mid4 = _mm256_blendv_ps(_mm256_set1_ps(kIq4nlMids[3]), _mm256_set1_ps(kIq4nlMids[11]), top);
    __m256i i = _mm256_or_si256(_mm256_and_si256(_mm256_castps_si256(top), _mm256_set1_epi32(8)),
                                _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(t, mid4, _CMP_GT_OQ)), _mm256_set1_epi32(4)));
    // index >= i + 2 when t > mids[i + 1] (i = 0, 4, 8, 12), then index >= i + 1 when t > mids[i] (i even)
    const __m256 mids2 = _mm256_setr_ps(kIq4nlMids[1], kIq4nlMids[5], kIq4nlMids[9], kIq4nlMids[13], 0, 0, 0, 0);
    const __m256 mid2 = _mm256_permutevar8x32_ps(mids2, _mm256_srli_epi32(i, 2));
    i = _mm256_or_si256(i, _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(t, mid2, _CMP_GT_OQ)), _mm256_set1_epi32(2)));
    const __m256 mids1 = _mm256_setr_ps(kIq4nlMids[0], kIq4nlMids[2], kIq4nlMids[4], kIq4nlMids[6], kIq4nlMids[8],
                                        kIq4nlMids[10], kIq4nlMids[12], kIq4nlMids[14]);
    const __m256 mid1 = _mm256_permutevar8x32_ps(mids1, _mm256_srli_epi32(i, 1));
    i = _mm256_or_si256(i, _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(t, mid1, _CMP_GT_OQ)), _mm256_set1_epi32(1)));
    // permutevar reads the low three bits: the level among the lower or the upper eight
    const __m256 lower = _mm256_permutevar8x32_ps(_mm256_loadu_ps(kIq4nlValues), i);
    const __m256 upper = _mm256_permutevar8x32_ps(_mm256_loadu_ps(kIq4nlValues + 8), i);
    return _mm256_blendv_ps(lower, upper, top);
  }
};
