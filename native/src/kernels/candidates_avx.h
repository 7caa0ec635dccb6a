// The scale search's vectors (search.h) for the x86 files: four candidates for two elements in one
// 256-bit vector (lanes 0-3: element j, lanes 4-7: element j+1). AVX2 and AVX-512 both use these
// 256-bit operations. Include inside an ISA file's anonymous namespace only.
#pragma once
#include <immintrin.h>

struct CandidatesAvx {
  using V = __m256;
  // The four candidates twice: [c0..c3, c0..c3].
  static V candidates(const float* c) { return _mm256_broadcast_ps(reinterpret_cast<const __m128*>(c)); }
  // [p[0] x4, p[1] x4].
  static V pair(const float* p) {
    const __m128 two = _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(p)));
    return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(two), _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1));
  }
  // lane k + lane k+4 for k < 4: the even elements' sum plus the odd elements'.
  static void fold(V v, float out[4]) { _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1))); }
  static V set1(float v) { return _mm256_set1_ps(v); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V min(V a, V b) { return _mm256_min_ps(a, b); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V round_even(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // The IQ4_NL value nearest each lane's t: one gather from kIq4nlByCeil2t (search.h).
  static V iq4nl(V t) {
    V c = _mm256_round_ps(_mm256_add_ps(t, t), _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC);
    // max/min return their second operand for NaN: a NaN t (0 * inf) lands on the low end, as the
    // reference's comparisons (all false) put it; nothing outside the table is ever gathered.
    c = _mm256_min_ps(_mm256_max_ps(c, _mm256_set1_ps(static_cast<float>(qk::kIq4nlLutLow))), _mm256_set1_ps(static_cast<float>(qk::kIq4nlLutHigh)));
    const __m256i idx = _mm256_sub_epi32(_mm256_cvtps_epi32(c), _mm256_set1_epi32(qk::kIq4nlLutLow));
    return _mm256_i32gather_ps(qk::kIq4nlByCeil2t.v, idx, 4);
  }
  // acc + (t > mid ? step : 0)
  static V add_if_gt(V acc, V t, V mid, V step) { return _mm256_add_ps(acc, _mm256_and_ps(_mm256_cmp_ps(t, mid, _CMP_GT_OQ), step)); }
};
