// AVX2 + FMA + F16C kernels (8 float lanes). Compiled with -mavx2 -mfma -mf16c; only the dispatcher
// calls into this file, after checking the CPU.
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include "kernels.h"
#include "kquants.h"
#include "numeric.h"
#include "search.h"

namespace qk {
namespace {

#include "candidates_avx.h"

// One register of the K-quant searches' lanes (simd_kquants.h).
struct KNativeAvx2 {
  using F = __m256;
  using M = __m256;
  static constexpr int W = 8;
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  static F set1(float f) { return _mm256_set1_ps(f); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F sqrt(F a) { return _mm256_sqrt_ps(a); }
  static F abs(F a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static F neg(F a) { return _mm256_xor_ps(_mm256_set1_ps(-0.0f), a); }
  // minps/maxps return the second operand unless the first compares less/greater: C's ?: exactly
  static F min_c(F a, F b) { return _mm256_min_ps(a, b); }
  static F max_c(F a, F b) { return _mm256_max_ps(a, b); }
  static M lt(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static M gt(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static M eq(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
  static M ne(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_NEQ_UQ); }
  static M le(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
  static M m_and(M a, M b) { return _mm256_and_ps(a, b); }
  static M m_or(M a, M b) { return _mm256_or_ps(a, b); }
  static M m_andnot(M a, M b) { return _mm256_andnot_ps(b, a); }
  static M m_not(M a) { return _mm256_xor_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(-1))); }
  static M none() { return _mm256_setzero_ps(); }
  static bool any(M m) { return _mm256_movemask_ps(m) != 0; }
  static F select(M m, F a, F b) { return _mm256_blendv_ps(b, a, m); }
  static F round_small(F v) {
    const F magic = _mm256_set1_ps(12582912.0f);
    return _mm256_sub_ps(_mm256_add_ps(v, magic), magic);
  }
  static F round_even(F v) { return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static F round_exact(F v) {
    const __m256i bits = _mm256_castps_si256(_mm256_add_ps(v, _mm256_set1_ps(12582912.0f)));
    return _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x00400000)));
  }
  static void levels(F v, uint8_t* out) {
    const __m256i i = _mm256_cvttps_epi32(v);
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packus_epi16(w, w));
  }
};

#include "simd_kquants.h"

// The lanes' register operations (store, set1, add, sub, mul, abs, round_even) come from KNativeAvx2.
struct Avx2Ops : KNativeAvx2 {
  using F = __m256;
  using KL = Lanes<KNativeAvx2, 2>;
  using I = __m256i;
  static constexpr int N = 8;

  static F load(const void* src, DType t, int64_t i) {
    const uint8_t* p = static_cast<const uint8_t*>(src);
    switch (t) {
      case DType::F32: return _mm256_loadu_ps(reinterpret_cast<const float*>(p + 4 * i));
      case DType::F16: return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * i)));
      default: {
        const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * i)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
      }
    }
  }
  static uint16_t to_f16(float v) { return static_cast<uint16_t>(_cvtss_sh(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)); }
  static float from_f16(uint16_t h) { return _cvtsh_ss(h); }
  static F min(F a, F b) { return _mm256_min_ps(a, b); }
  static F max(F a, F b) { return _mm256_max_ps(a, b); }
  using L8 = Lanes8Avx;
  static constexpr bool kPairLanes = false;  // 256-bit registers hold one group's eight lanes
  // code_index for IQ4_NL: a gather from kIq4nlByCeil2t.index (search.h).
  static I iq4nl_index(F t) {
    F c = _mm256_round_ps(_mm256_add_ps(t, t), _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC);
    c = _mm256_min_ps(_mm256_max_ps(c, _mm256_set1_ps(static_cast<float>(kIq4nlLutLow))), _mm256_set1_ps(static_cast<float>(kIq4nlLutHigh)));  // NaN -> low end
    return _mm256_i32gather_epi32(kIq4nlByCeil2t.index, _mm256_sub_epi32(_mm256_cvtps_epi32(c), _mm256_set1_epi32(kIq4nlLutLow)), 4);
  }
  // kIq4nlValues[q] for codes 0..15 (IQ4_NL dequantization): the level among the lower and the upper
  // eight (permutevar reads the low three bits), chosen by bit 3 moved to the sign bit.
  static F iq4nl_value(I q) {
    const F lower = _mm256_permutevar8x32_ps(_mm256_loadu_ps(kIq4nlValues), q);
    const F upper = _mm256_permutevar8x32_ps(_mm256_loadu_ps(kIq4nlValues + 8), q);
    return _mm256_blendv_ps(lower, upper, _mm256_castsi256_ps(_mm256_slli_epi32(q, 28)));
  }
  // roundf: half away from zero. t = trunc(a); the remainder a - t is exact for |a| < 2^23 (larger
  // values are integers already, remainder 0).
  static F round_away(F a) {
    const F t = _mm256_round_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const F rem = abs(_mm256_sub_ps(a, t));
    const F step = _mm256_and_ps(_mm256_cmp_ps(rem, _mm256_set1_ps(0.5f), _CMP_GE_OQ),
                                 _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(a, _mm256_set1_ps(-0.0f))));
    return _mm256_add_ps(t, step);
  }
  static I cvtt(F a) { return _mm256_cvttps_epi32(a); }
  static F i2f(I a) { return _mm256_cvtepi32_ps(a); }
  static I iset1(int v) { return _mm256_set1_epi32(v); }
  static I iadd(I a, I b) { return _mm256_add_epi32(a, b); }
  static I isub(I a, I b) { return _mm256_sub_epi32(a, b); }
  static I abs_bits(F a) { return _mm256_and_si256(_mm256_castps_si256(a), _mm256_set1_epi32(0x7fffffff)); }
  static I imax(I a, I b) { return _mm256_max_epi32(a, b); }
  static int32_t hmax_i(I a) {
    __m128i m = _mm_max_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    m = _mm_max_epi32(m, _mm_shuffle_epi32(m, 0x4e));
    m = _mm_max_epi32(m, _mm_shuffle_epi32(m, 0xb1));
    return _mm_cvtsi128_si32(m);
  }
  static I imin(I a, I b) { return _mm256_min_epi32(a, b); }
  static I iand(I a, I b) { return _mm256_and_si256(a, b); }
  // bit 4 of each lane, lane k in bit k (Q5_0/Q5_1's fifth bits)
  static uint32_t bit4_mask(I a) { return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_slli_epi32(a, 27)))); }
  static uint32_t sign_mask(F a) { return static_cast<uint32_t>(_mm256_movemask_ps(a)); }
  static uint32_t mask_eq(F a, F b) { return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_EQ_OQ))); }
  static uint32_t mask_nonfinite(F a) {
    return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(abs(a), _mm256_set1_ps(__builtin_inff()), _CMP_NLT_UQ)));
  }
  static float hmax(F a) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
  }
  static float hmin(F a) {
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
  }

  // 32 int32 lanes -> their low bytes, in order.
  static __m256i bytes32(const I* q) {
    const __m256i lo8 = _mm256_set1_epi32(0xff);
    const __m256i a = _mm256_packus_epi32(_mm256_and_si256(q[0], lo8), _mm256_and_si256(q[1], lo8));
    const __m256i b = _mm256_packus_epi32(_mm256_and_si256(q[2], lo8), _mm256_and_si256(q[3], lo8));
    const __m256i c = _mm256_packus_epi16(a, b);
    return _mm256_permutevar8x32_epi32(c, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  }
  static void pack_bytes32(const I* q, uint8_t* out) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), bytes32(q)); }
  // ggml nibble order: byte j = q[j] | q[j+16] << 4 (values 0..15).
  static void pack_nibbles_halves(const I* q, uint8_t* out) {
    const __m256i b = bytes32(q);
    const __m128i r = _mm_or_si128(_mm256_castsi256_si128(b), _mm_slli_epi16(_mm256_extracti128_si256(b, 1), 4));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), r);
  }
  // compressed-tensors order: byte k = q[2k] | q[2k+1] << 4 (values 0..15).
  static void pack_nibbles_pairs(const I* q, uint8_t* out) {
    const __m256i w = _mm256_maddubs_epi16(bytes32(q), _mm256_set1_epi16(0x1001));  // lo*1 + hi*16
    const __m256i p = _mm256_packus_epi16(w, w);
    const __m256i o = _mm256_permute4x64_epi64(p, 0x08);  // qwords 0 and 2
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(o));
  }

  static void unpack_i8(const uint8_t* p, I* q) {
    for (int k = 0; k < 4; ++k) q[k] = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 8 * k)));
  }
  static void unpack_u8(const uint8_t* p, I* q) {
    for (int k = 0; k < 4; ++k) q[k] = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 8 * k)));
  }
  static void unpack_nibbles_halves(const uint8_t* p, I* q) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i m = _mm_set1_epi8(0x0f);
    const __m128i lo = _mm_and_si128(b, m), hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
    q[0] = _mm256_cvtepu8_epi32(lo);
    q[1] = _mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8));
    q[2] = _mm256_cvtepu8_epi32(hi);
    q[3] = _mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8));
  }
  static void unpack_nibbles_pairs(const uint8_t* p, I* q) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i m = _mm_set1_epi8(0x0f);
    const __m128i lo = _mm_and_si128(b, m), hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
    const __m128i e0 = _mm_unpacklo_epi8(lo, hi), e1 = _mm_unpackhi_epi8(lo, hi);
    q[0] = _mm256_cvtepu8_epi32(e0);
    q[1] = _mm256_cvtepu8_epi32(_mm_srli_si128(e0, 8));
    q[2] = _mm256_cvtepu8_epi32(e1);
    q[3] = _mm256_cvtepu8_epi32(_mm_srli_si128(e1, 8));
  }

  struct Acc {
    __m256d e2, x2, maxe;
  };
  static Acc acc_zero() { return Acc{_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()}; }
  static void acc_half(Acc& a, __m128 y, __m128 x) {
    const __m256d yd = _mm256_cvtps_pd(y), xd = _mm256_cvtps_pd(x);
    const __m256d e = _mm256_sub_pd(yd, xd);
    a.e2 = _mm256_add_pd(a.e2, _mm256_mul_pd(e, e));
    a.x2 = _mm256_add_pd(a.x2, _mm256_mul_pd(xd, xd));
    a.maxe = _mm256_max_pd(a.maxe, _mm256_andnot_pd(_mm256_set1_pd(-0.0), e));
  }
  static void acc_add(Acc& a, F y, F x) {
    acc_half(a, _mm256_castps256_ps128(y), _mm256_castps256_ps128(x));
    acc_half(a, _mm256_extractf128_ps(y, 1), _mm256_extractf128_ps(x, 1));
  }
  static void acc_finish(const Acc& a, ErrorStats& es) {
    double e2[4], x2[4], mx[4];
    _mm256_storeu_pd(e2, a.e2);
    _mm256_storeu_pd(x2, a.x2);
    _mm256_storeu_pd(mx, a.maxe);
    es.sum_sq_err += (e2[0] + e2[1]) + (e2[2] + e2[3]);
    es.sum_sq_ref += (x2[0] + x2[1]) + (x2[2] + x2[3]);
    for (double m : mx) if (m > es.max_abs_err) es.max_abs_err = m;
  }
};

#include "simd_kernels.h"

}  // namespace

const KernelTable* avx2_kernels() {
  static const KernelTable table = SimdKernels<Avx2Ops>::table("avx2");
  return &table;
}

}  // namespace qk
#endif
