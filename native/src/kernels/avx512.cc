// AVX-512 (F + BW + VL) kernels, 16 float lanes. Compiled with -mavx512f -mavx512bw -mavx512vl
// (plus AVX2/FMA/F16C); only the dispatcher calls into this file, after checking the CPU.
#if defined(__x86_64__) || defined(_M_X64)
// GCC 12 warns falsely (-Wuninitialized, like -Wmaybe-uninitialized in CMakeLists.txt) inside its own
// AVX-512 intrinsic headers, whose _mm512_undefined_ps() placeholders it sees in the min/max/andnot
// builtins of the K-quant loops.
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include "kernels.h"
#include "kquants.h"
#include "numeric.h"
#include "search.h"

namespace qk {
namespace {

#include "candidates_avx.h"

// iq4nl_index (search.h) for 16 lanes: the number of midpoints below t, by a binary search over the
// sorted midpoints with masked compares and one-register permutes (no gather). p is the midpoint the
// next step compares: mids[7]; mids[3] or mids[11]; then mids[b + 1] and mids[b] for the lower end b
// found so far. NaN compares false throughout and lands on index 0, as in the reference.
static inline __m512i iq4nl_index16(__m512 t) {
  const __m512 mids = _mm512_maskz_loadu_ps(0x7fff, kIq4nlMids);  // 15 midpoints, lane 15 unused
  const __m512i one = _mm512_set1_epi32(1);
  const __mmask16 m8 = _mm512_cmp_ps_mask(t, _mm512_set1_ps(kIq4nlMids[7]), _CMP_GT_OQ);
  const __mmask16 m4 =
      _mm512_cmp_ps_mask(t, _mm512_mask_blend_ps(m8, _mm512_set1_ps(kIq4nlMids[3]), _mm512_set1_ps(kIq4nlMids[11])), _CMP_GT_OQ);
  __m512i p = _mm512_mask_blend_epi32(m8, one, _mm512_set1_epi32(9));  // b + 1, b = 0 or 8
  p = _mm512_mask_add_epi32(p, m4, p, _mm512_set1_epi32(4));
  const __mmask16 m2 = _mm512_cmp_ps_mask(t, _mm512_permutexvar_ps(p, mids), _CMP_GT_OQ);
  p = _mm512_sub_epi32(p, one);  // b
  p = _mm512_mask_add_epi32(p, m2, p, _mm512_set1_epi32(2));
  const __mmask16 m1 = _mm512_cmp_ps_mask(t, _mm512_permutexvar_ps(p, mids), _CMP_GT_OQ);
  return _mm512_mask_add_epi32(p, m1, p, one);
}

// The scale search's sums for two groups at once: group A's eight lanes (search.h's Sum8: element j
// in lane j % 8) in lanes 0..7, group B's in lanes 8..15. Every lane runs the operations of a
// Lanes8Avx lane, so each half is the reference's; the totals split the halves and add each in
// Sum8's order.
struct PairLanes16 {
  using V = __m512;
  static V load2(const float* a, const float* b) {
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(_mm256_loadu_ps(a))), _mm256_castps_pd(_mm256_loadu_ps(b)), 1));
  }
  static V set2(float a, float b) { return _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(a), _mm512_set1_ps(b)); }
  static V set1(float v) { return _mm512_set1_ps(v); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V fma(V a, V b, V acc) { return _mm512_fmadd_ps(a, b, acc); }
  static V min(V a, V b) { return _mm512_min_ps(a, b); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V round_even(V a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V iq4nl(V t) { return _mm512_permutexvar_ps(iq4nl_index16(t), _mm512_loadu_ps(kIq4nlValues)); }
  static void totals2(const V v[4], float a[4], float b[4]) {
    __m256 lo[4], hi[4];
    for (int k = 0; k < 4; ++k) {
      lo[k] = _mm512_castps512_ps256(v[k]);
      hi[k] = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v[k]), 1));
    }
    Lanes8Avx::totals(lo, a);
    Lanes8Avx::totals(hi, b);
  }
};

// One register of the K-quant searches' lanes (simd_kquants.h).
struct KNativeAvx512 {
  using F = __m512;
  using M = __mmask16;
  static constexpr int W = 16;
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static F set1(float f) { return _mm512_set1_ps(f); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  static F sqrt(F a) { return _mm512_sqrt_ps(a); }
  static F abs(F a) { return _mm512_castsi512_ps(_mm512_andnot_si512(_mm512_set1_epi32(INT32_MIN), _mm512_castps_si512(a))); }
  static F neg(F a) { return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_set1_epi32(INT32_MIN), _mm512_castps_si512(a))); }
  // vminps/vmaxps return the second operand unless the first compares less/greater: C's ?: exactly
  static F min_c(F a, F b) { return _mm512_min_ps(a, b); }
  static F max_c(F a, F b) { return _mm512_max_ps(a, b); }
  static M lt(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static M gt(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static M eq(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
  static M ne(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_NEQ_UQ); }
  static M le(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_LE_OQ); }
  static M m_and(M a, M b) { return static_cast<M>(a & b); }
  static M m_or(M a, M b) { return static_cast<M>(a | b); }
  static M m_andnot(M a, M b) { return static_cast<M>(a & ~b); }
  static M m_not(M a) { return static_cast<M>(~a); }
  static M none() { return 0; }
  static bool any(M m) { return m != 0; }
  static F select(M m, F a, F b) { return _mm512_mask_blend_ps(m, b, a); }
  static F round_small(F v) {
    const F magic = _mm512_set1_ps(12582912.0f);
    return _mm512_sub_ps(_mm512_add_ps(v, magic), magic);
  }
  static F round_even(F v) { return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static F round_exact(F v) {
    const __m512i bits = _mm512_castps_si512(_mm512_add_ps(v, _mm512_set1_ps(12582912.0f)));
    return _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_and_si512(bits, _mm512_set1_epi32(0x007fffff)), _mm512_set1_epi32(0x00400000)));
  }
  // vpmovdb keeps each lane's low byte: the levels are 0..255
  static void levels(F v, uint8_t* out) { _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(v))); }
};

#include "simd_kquants.h"

// The lanes' register operations (store, set1, add, sub, mul, abs, round_even) come from KNativeAvx512.
struct Avx512Ops : KNativeAvx512 {
  using KL = Lanes<KNativeAvx512, 4>;
  using F = __m512;
  using I = __m512i;
  static constexpr int N = 16;

  static F load(const void* src, DType t, int64_t i) {
    const uint8_t* p = static_cast<const uint8_t*>(src);
    switch (t) {
      case DType::F32: return _mm512_loadu_ps(p + 4 * i);
      case DType::F16: return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2 * i)));
      default: {
        const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2 * i)));
        return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
      }
    }
  }
  static uint16_t to_f16(float v) { return static_cast<uint16_t>(_cvtss_sh(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)); }
  static float from_f16(uint16_t h) { return _cvtsh_ss(h); }
  static F min(F a, F b) { return _mm512_min_ps(a, b); }
  static F max(F a, F b) { return _mm512_max_ps(a, b); }
  using L8 = Lanes8Avx;
  using Pair = PairLanes16;  // the search's candidate sums two groups at a time (simd_kernels.h)
  static constexpr bool kPairLanes = true;
  // code_index for IQ4_NL: a binary search over the midpoints (cheaper here than the table gather)
  static I iq4nl_index(F t) { return iq4nl_index16(t); }
  // kIq4nlValues[q] for codes 0..15 (IQ4_NL dequantization): one permute over the 16 levels.
  static F iq4nl_value(I q) { return _mm512_permutexvar_ps(q, _mm512_loadu_ps(kIq4nlValues)); }
  static F round_away(F a) {
    const F t = _mm512_roundscale_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __mmask16 up = _mm512_cmp_ps_mask(abs(_mm512_sub_ps(a, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    const F one = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(_mm512_set1_ps(1.0f)),
                                                      _mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(INT32_MIN))));
    return _mm512_mask_add_ps(t, up, t, one);
  }
  static I cvtt(F a) { return _mm512_cvttps_epi32(a); }
  static F i2f(I a) { return _mm512_cvtepi32_ps(a); }
  static I iset1(int v) { return _mm512_set1_epi32(v); }
  static I iadd(I a, I b) { return _mm512_add_epi32(a, b); }
  static I isub(I a, I b) { return _mm512_sub_epi32(a, b); }
  static I abs_bits(F a) { return _mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7fffffff)); }
  static I imax(I a, I b) { return _mm512_max_epi32(a, b); }
  static int32_t hmax_i(I a) {
    return _mm512_reduce_max_epi32(a);
  }
  static I imin(I a, I b) { return _mm512_min_epi32(a, b); }
  static I iand(I a, I b) { return _mm512_and_si512(a, b); }
  // bit 4 of each lane, lane k in bit k (Q5_0/Q5_1's fifth bits)
  static uint32_t bit4_mask(I a) { return _mm512_test_epi32_mask(a, _mm512_set1_epi32(16)); }
  static uint32_t sign_mask(F a) { return _mm512_test_epi32_mask(_mm512_castps_si512(a), _mm512_set1_epi32(INT32_MIN)); }
  static uint32_t mask_eq(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
  static uint32_t mask_nonfinite(F a) { return _mm512_cmp_ps_mask(abs(a), _mm512_set1_ps(__builtin_inff()), _CMP_NLT_UQ); }
  // Max/min reductions are exact in any order (no NaN reaches them), so the library's are fine.
  static float hmax(F a) { return _mm512_reduce_max_ps(a); }
  static float hmin(F a) { return _mm512_reduce_min_ps(a); }
  // vpmovdb truncates each lane to its low byte, which is exactly the scalar conversion.
  static void pack_bytes32(const I* q, uint8_t* out) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_cvtepi32_epi8(q[0]));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16), _mm512_cvtepi32_epi8(q[1]));
  }
  static void pack_nibbles_halves(const I* q, uint8_t* out) {
    const __m128i r = _mm_or_si128(_mm512_cvtepi32_epi8(q[0]), _mm_slli_epi16(_mm512_cvtepi32_epi8(q[1]), 4));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), r);
  }
  static void pack_nibbles_pairs(const I* q, uint8_t* out) {
    // Lanes 2m and 2m+1 share a 64-bit lane: (lo + hi·2^32) >> 28 puts hi << 4 in the low byte.
    for (int k = 0; k < 2; ++k) {
      const __m512i w = _mm512_or_si512(q[k], _mm512_srli_epi64(q[k], 28));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(out + 8 * k), _mm512_cvtepi64_epi8(w));
    }
  }
  static void unpack_i8(const uint8_t* p, I* q) {
    q[0] = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    q[1] = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)));
  }
  static void unpack_u8(const uint8_t* p, I* q) {
    q[0] = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    q[1] = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)));
  }
  static void unpack_nibbles_halves(const uint8_t* p, I* q) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i m = _mm_set1_epi8(0x0f);
    q[0] = _mm512_cvtepu8_epi32(_mm_and_si128(b, m));
    q[1] = _mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(b, 4), m));
  }
  static void unpack_nibbles_pairs(const uint8_t* p, I* q) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i m = _mm_set1_epi8(0x0f);
    const __m128i lo = _mm_and_si128(b, m), hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
    q[0] = _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi));
    q[1] = _mm512_cvtepu8_epi32(_mm_unpackhi_epi8(lo, hi));
  }

  struct Acc {
    __m512d e2, x2, maxe;
  };
  static Acc acc_zero() { return Acc{_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd()}; }
  static void acc_half(Acc& a, __m256 y, __m256 x) {
    const __m512d yd = _mm512_cvtps_pd(y), xd = _mm512_cvtps_pd(x);
    const __m512d e = _mm512_sub_pd(yd, xd);
    a.e2 = _mm512_add_pd(a.e2, _mm512_mul_pd(e, e));
    a.x2 = _mm512_add_pd(a.x2, _mm512_mul_pd(xd, xd));
    a.maxe = _mm512_max_pd(a.maxe, _mm512_castsi512_pd(_mm512_and_si512(_mm512_castpd_si512(e), _mm512_set1_epi64(0x7fffffffffffffffLL))));
  }
  static void acc_add(Acc& a, F y, F x) {
    acc_half(a, _mm512_castps512_ps256(y), _mm512_castps512_ps256(x));
    acc_half(a, _mm256_castsi256_ps(_mm512_extracti64x4_epi64(_mm512_castps_si512(y), 1)),
             _mm256_castsi256_ps(_mm512_extracti64x4_epi64(_mm512_castps_si512(x), 1)));
  }
  static void acc_finish(const Acc& a, ErrorStats& es) {
    double e2[8], x2[8], mx[8];
    _mm512_storeu_pd(e2, a.e2);
    _mm512_storeu_pd(x2, a.x2);
    _mm512_storeu_pd(mx, a.maxe);
    es.sum_sq_err += ((e2[0] + e2[1]) + (e2[2] + e2[3])) + ((e2[4] + e2[5]) + (e2[6] + e2[7]));
    es.sum_sq_ref += ((x2[0] + x2[1]) + (x2[2] + x2[3])) + ((x2[4] + x2[5]) + (x2[6] + x2[7]));
    for (double m : mx) if (m > es.max_abs_err) es.max_abs_err = m;
  }
};

#include "simd_kernels.h"

}  // namespace

const KernelTable* avx512_kernels() {
  static const KernelTable table = SimdKernels<Avx512Ops>::table("avx512");
  return &table;
}

}  // namespace qk
#endif
