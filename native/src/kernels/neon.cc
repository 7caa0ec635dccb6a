// NEON kernels for aarch64 (4 float lanes; Advanced SIMD is part of the base aarch64 ISA, and fp16
// conversion is too). Tested under qemu-user against the scalar reference (test/native).
#if defined(__aarch64__)
#include <arm_neon.h>

#include "kernels.h"
#include "kquants.h"
#include "numeric.h"
#include "search.h"

namespace qk {
namespace {

// One register of the K-quant searches' lanes (simd_kquants.h). NEON's vminq/vmaxq are IEEE min/max
// (NaN-propagating, -0 < +0), so C's a < b ? a : b is a compare and a select.
struct KNativeNeon {
  using F = float32x4_t;
  using M = uint32x4_t;
  static constexpr int W = 4;
  static F load(const float* p) { return vld1q_f32(p); }
  static void store(float* p, F v) { vst1q_f32(p, v); }
  static F set1(float f) { return vdupq_n_f32(f); }
  static F add(F a, F b) { return vaddq_f32(a, b); }
  static F sub(F a, F b) { return vsubq_f32(a, b); }
  static F mul(F a, F b) { return vmulq_f32(a, b); }
  static F div(F a, F b) { return vdivq_f32(a, b); }
  static F sqrt(F a) { return vsqrtq_f32(a); }
  static F abs(F a) { return vabsq_f32(a); }
  static F neg(F a) { return vnegq_f32(a); }
  static F min_c(F a, F b) { return vbslq_f32(vcltq_f32(a, b), a, b); }
  static F max_c(F a, F b) { return vbslq_f32(vcgtq_f32(a, b), a, b); }
  static M lt(F a, F b) { return vcltq_f32(a, b); }
  static M gt(F a, F b) { return vcgtq_f32(a, b); }
  static M eq(F a, F b) { return vceqq_f32(a, b); }
  static M ne(F a, F b) { return vmvnq_u32(vceqq_f32(a, b)); }
  static M le(F a, F b) { return vcleq_f32(a, b); }
  static M m_and(M a, M b) { return vandq_u32(a, b); }
  static M m_or(M a, M b) { return vorrq_u32(a, b); }
  static M m_andnot(M a, M b) { return vbicq_u32(a, b); }
  static M m_not(M a) { return vmvnq_u32(a); }
  static M none() { return vdupq_n_u32(0); }
  static bool any(M m) { return vmaxvq_u32(m) != 0; }
  static F select(M m, F a, F b) { return vbslq_f32(m, a, b); }
  static F round_small(F v) {
    const F magic = vdupq_n_f32(12582912.0f);
    return vsubq_f32(vaddq_f32(v, magic), magic);
  }
  static F round_even(F v) { return vrndnq_f32(v); }
  static F round_exact(F v) {
    const uint32x4_t bits = vreinterpretq_u32_f32(vaddq_f32(v, vdupq_n_f32(12582912.0f)));
    return vcvtq_f32_s32(vsubq_s32(vreinterpretq_s32_u32(vandq_u32(bits, vdupq_n_u32(0x007fffffu))), vdupq_n_s32(0x00400000)));
  }
  static void levels(F v, uint8_t* out) {
    const uint16x4_t h = vmovn_u32(vreinterpretq_u32_s32(vcvtq_s32_f32(v)));
    const uint8x8_t b = vmovn_u16(vcombine_u16(h, h));
    vst1_lane_u32(reinterpret_cast<uint32_t*>(out), vreinterpret_u32_u8(b), 0);
  }
};

#include "simd_kquants.h"

// The lanes' register operations (store, set1, add, sub, mul, abs, round_even) come from KNativeNeon.
struct NeonOps : KNativeNeon {
  using KL = Lanes<KNativeNeon, 4>;
  using F = float32x4_t;
  using I = int32x4_t;
  static constexpr int N = 4;

  static F load(const void* src, DType t, int64_t i) {
    const uint8_t* p = static_cast<const uint8_t*>(src);
    switch (t) {
      case DType::F32: return vld1q_f32(reinterpret_cast<const float*>(p + 4 * i));
      case DType::F16: return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(reinterpret_cast<const uint16_t*>(p + 2 * i))));
      default: return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(reinterpret_cast<const uint16_t*>(p + 2 * i)), 16));
    }
  }
  static uint16_t to_f16(float v) { return vget_lane_u16(vreinterpret_u16_f16(vcvt_f16_f32(vdupq_n_f32(v))), 0); }
  static float from_f16(uint16_t h) { return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0); }
  static F min(F a, F b) { return vminq_f32(a, b); }
  static F max(F a, F b) { return vmaxq_f32(a, b); }
  // The scale search's 8-lane vectors (search.h's Sum8): element j of a group in lane j % 8, lanes
  // 0-3 in `a` and 4-7 in `b`.
  static constexpr bool kPairLanes = false;  // two 128-bit registers hold one group's eight lanes
  struct L8 {
    struct V {
      float32x4_t a, b;
    };
    static V load(const float* p) { return V{vld1q_f32(p), vld1q_f32(p + 4)}; }
    static V set1(float v) { return V{vdupq_n_f32(v), vdupq_n_f32(v)}; }
    static void store(float* p, V v) { vst1q_f32(p, v.a); vst1q_f32(p + 4, v.b); }
    static V add(V x, V y) { return V{vaddq_f32(x.a, y.a), vaddq_f32(x.b, y.b)}; }
    static V sub(V x, V y) { return V{vsubq_f32(x.a, y.a), vsubq_f32(x.b, y.b)}; }
    static V mul(V x, V y) { return V{vmulq_f32(x.a, y.a), vmulq_f32(x.b, y.b)}; }
    static V div(V x, V y) { return V{vdivq_f32(x.a, y.a), vdivq_f32(x.b, y.b)}; }
    static float32x4_t f16_round4(float32x4_t v, uint16_t* h) {
      const float16x4_t b = vcvt_f16_f32(v);
      vst1_u16(h, vreinterpret_u16_f16(b));
      return vcvt_f32_f16(b);
    }
    static V f16_round(V v, uint16_t* h) { return V{f16_round4(v.a, h), f16_round4(v.b, h + 4)}; }
    static uint32x4_t bf16_bits4(float32x4_t v) {
      const uint32x4_t u = vreinterpretq_u32_f32(v);
      const uint32x4_t nan = vcgtq_u32(vandq_u32(u, vdupq_n_u32(0x7fffffffu)), vdupq_n_u32(0x7f800000u));
      const uint32x4_t rounded = vaddq_u32(u, vaddq_u32(vdupq_n_u32(0x7fffu), vandq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(1u))));
      return vshrq_n_u32(vbslq_u32(nan, vorrq_u32(u, vdupq_n_u32(0x400000u)), rounded), 16);
    }
    static V bf16_round(V v, uint16_t* h) {
      const uint32x4_t a = bf16_bits4(v.a), b = bf16_bits4(v.b);
      vst1_u16(h, vmovn_u32(a));
      vst1_u16(h + 4, vmovn_u32(b));
      return V{vreinterpretq_f32_u32(vshlq_n_u32(a, 16)), vreinterpretq_f32_u32(vshlq_n_u32(b, 16))};
    }
    static float32x4_t inverse_finite_or_zero4(float32x4_t v) {
      const float32x4_t inv = vdivq_f32(vdupq_n_f32(1.0f), v);
      const uint32x4_t ok = vandq_u32(vmvnq_u32(vceqq_f32(v, vdupq_n_f32(0.0f))), vcltq_f32(vabsq_f32(inv), vdupq_n_f32(__builtin_inff())));
      return vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(inv), ok));
    }
    static V inverse_finite_or_zero(V v) { return V{inverse_finite_or_zero4(v.a), inverse_finite_or_zero4(v.b)}; }
    static float32x4_t inverse_or_zero4(float32x4_t v) {
      return vbslq_f32(vceqq_f32(v, vdupq_n_f32(0.0f)), vdupq_n_f32(0.0f), vdivq_f32(vdupq_n_f32(1.0f), v));
    }
    static V inverse_or_zero(V v) { return V{inverse_or_zero4(v.a), inverse_or_zero4(v.b)}; }
    static float32x4_t by_sign4(float32x4_t m, float32x4_t pos, float32x4_t neg) { return vbslq_f32(vcltq_f32(m, vdupq_n_f32(0.0f)), neg, pos); }
    static V by_sign(V m, V pos, V neg) { return V{by_sign4(m.a, pos.a, neg.a), by_sign4(m.b, pos.b, neg.b)}; }
    static V fma(V x, V y, V acc) { return V{vfmaq_f32(acc.a, x.a, y.a), vfmaq_f32(acc.b, x.b, y.b)}; }
    static V min(V x, V y) { return V{vminq_f32(x.a, y.a), vminq_f32(x.b, y.b)}; }
    static V max(V x, V y) { return V{vmaxq_f32(x.a, y.a), vmaxq_f32(x.b, y.b)}; }
    static V round_even(V x) { return V{vrndnq_f32(x.a), vrndnq_f32(x.b)}; }
    // Sum8::total of four vectors: pairwise adds give ((l0+l1)+(l2+l3)) from `a` and ((l4+l5)+(l6+l7))
    // from `b` for each input; adding the two finishes.
    static void totals(const V v[4], float out[4]) {
      const float32x4_t lo = vpaddq_f32(vpaddq_f32(v[0].a, v[1].a), vpaddq_f32(v[2].a, v[3].a));
      const float32x4_t hi = vpaddq_f32(vpaddq_f32(v[0].b, v[1].b), vpaddq_f32(v[2].b, v[3].b));
      vst1q_f32(out, vaddq_f32(lo, hi));
    }
    static float best_scale(const float qx[4], const float q2[4]) { return qk::best_scale(qx, q2); }
    // The IQ4_NL value nearest t: lo plus the step at every midpoint below t (exact: integers).
    static float32x4_t iq4nl4(float32x4_t t) {
      float32x4_t q = vdupq_n_f32(kIq4nlValues[0]);
      for (int s = 0; s < 15; ++s) q = add_if_gt(q, t, vdupq_n_f32(kIq4nlMids[s]), vdupq_n_f32(kIq4nlValues[s + 1] - kIq4nlValues[s]));
      return q;
    }
    static V iq4nl(V t) { return V{iq4nl4(t.a), iq4nl4(t.b)}; }
  };
  static F add_if_gt(F acc, F t, F mid, F step) {
    return vaddq_f32(acc, vreinterpretq_f32_u32(vandq_u32(vcgtq_f32(t, mid), vreinterpretq_u32_f32(step))));
  }
  // code_index for IQ4_NL: one per midpoint below t.
  static I iq4nl_index(F t) {
    F n = vdupq_n_f32(0.0f);
    for (int s = 0; s < 15; ++s) n = add_if_gt(n, t, vdupq_n_f32(kIq4nlMids[s]), vdupq_n_f32(1.0f));
    return vcvtq_s32_f32(n);
  }
  // kIq4nlValues[q] for codes 0..15 (IQ4_NL dequantization): the levels are integers in -127..113,
  // so a byte table lookup, widened to int32 and converted (exact).
  static F iq4nl_value(I q) {
    const uint8x16_t idx = vreinterpretq_u8_s32(q);  // each lane's low byte is its code, the others 0
    const int8x16_t b = vqtbl1q_s8(vld1q_s8(kIq4nlLevels8), idx);
    // lane k's value sits in byte 4k; bytes 4k+1..4k+3 looked up entry 0 (-127): shift them out
    return vcvtq_f32_s32(vshrq_n_s32(vshlq_n_s32(vreinterpretq_s32_s8(b), 24), 24));
  }
  static F round_away(F a) { return vrndaq_f32(a); }
  static I cvtt(F a) { return vcvtq_s32_f32(a); }  // inputs are finite and in range here
  static F i2f(I a) { return vcvtq_f32_s32(a); }
  static I iset1(int v) { return vdupq_n_s32(v); }
  static I iadd(I a, I b) { return vaddq_s32(a, b); }
  static I isub(I a, I b) { return vsubq_s32(a, b); }
  static I abs_bits(F a) { return vreinterpretq_s32_u32(vandq_u32(vreinterpretq_u32_f32(a), vdupq_n_u32(0x7fffffff))); }
  static I imax(I a, I b) { return vmaxq_s32(a, b); }
  static int32_t hmax_i(I a) {
    return vmaxvq_s32(a);
  }
  static I imin(I a, I b) { return vminq_s32(a, b); }
  static uint32_t bits(uint32x4_t m) {
    const uint32x4_t w = {1, 2, 4, 8};
    return vaddvq_u32(vandq_u32(m, w));
  }
  static I iand(I a, I b) { return vandq_s32(a, b); }
  // bit 4 of each lane, lane k in bit k (Q5_0/Q5_1's fifth bits)
  static uint32_t bit4_mask(I a) { return bits(vtstq_s32(a, vdupq_n_s32(16))); }
  static uint32_t sign_mask(F a) { return bits(vcltq_s32(vreinterpretq_s32_f32(a), vdupq_n_s32(0))); }
  static uint32_t mask_eq(F a, F b) { return bits(vceqq_f32(a, b)); }
  static uint32_t mask_nonfinite(F a) { return bits(vmvnq_u32(vcltq_f32(vabsq_f32(a), vdupq_n_f32(__builtin_inff())))); }
  static float hmax(F a) { return vmaxvq_f32(a); }
  static float hmin(F a) { return vminvq_f32(a); }

  // 8 vectors of 4 int32 -> 32 low bytes in order.
  static uint8x16x2_t bytes32(const I* q) {
    uint8x16x2_t r;
    for (int h = 0; h < 2; ++h) {
      const uint16x8_t a = vcombine_u16(vmovn_u32(vreinterpretq_u32_s32(q[4 * h])), vmovn_u32(vreinterpretq_u32_s32(q[4 * h + 1])));
      const uint16x8_t b = vcombine_u16(vmovn_u32(vreinterpretq_u32_s32(q[4 * h + 2])), vmovn_u32(vreinterpretq_u32_s32(q[4 * h + 3])));
      r.val[h] = vcombine_u8(vmovn_u16(a), vmovn_u16(b));
    }
    return r;
  }
  static void pack_bytes32(const I* q, uint8_t* out) {
    const uint8x16x2_t b = bytes32(q);
    vst1q_u8(out, b.val[0]);
    vst1q_u8(out + 16, b.val[1]);
  }
  static void pack_nibbles_halves(const I* q, uint8_t* out) {
    const uint8x16x2_t b = bytes32(q);
    vst1q_u8(out, vorrq_u8(b.val[0], vshlq_n_u8(b.val[1], 4)));
  }
  static void pack_nibbles_pairs(const I* q, uint8_t* out) {
    const uint8x16x2_t b = bytes32(q);
    const uint8x16_t even = vuzp1q_u8(b.val[0], b.val[1]), odd = vuzp2q_u8(b.val[0], b.val[1]);
    vst1q_u8(out, vorrq_u8(even, vshlq_n_u8(odd, 4)));
  }
  static void widen(uint8x16_t lo, uint8x16_t hi, I* q) {
    const uint16x8_t w[4] = {vmovl_u8(vget_low_u8(lo)), vmovl_u8(vget_high_u8(lo)), vmovl_u8(vget_low_u8(hi)), vmovl_u8(vget_high_u8(hi))};
    for (int k = 0; k < 4; ++k) {
      q[2 * k] = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(w[k])));
      q[2 * k + 1] = vreinterpretq_s32_u32(vmovl_u16(vget_high_u16(w[k])));
    }
  }
  static void unpack_u8(const uint8_t* p, I* q) { widen(vld1q_u8(p), vld1q_u8(p + 16), q); }
  static void unpack_i8(const uint8_t* p, I* q) {
    for (int h = 0; h < 2; ++h) {
      const int8x16_t b = vld1q_s8(reinterpret_cast<const int8_t*>(p + 16 * h));
      const int16x8_t w0 = vmovl_s8(vget_low_s8(b)), w1 = vmovl_s8(vget_high_s8(b));
      q[4 * h] = vmovl_s16(vget_low_s16(w0));
      q[4 * h + 1] = vmovl_s16(vget_high_s16(w0));
      q[4 * h + 2] = vmovl_s16(vget_low_s16(w1));
      q[4 * h + 3] = vmovl_s16(vget_high_s16(w1));
    }
  }
  static void unpack_nibbles_halves(const uint8_t* p, I* q) {
    const uint8x16_t b = vld1q_u8(p);
    widen(vandq_u8(b, vdupq_n_u8(0x0f)), vshrq_n_u8(b, 4), q);
  }
  static void unpack_nibbles_pairs(const uint8_t* p, I* q) {
    const uint8x16_t b = vld1q_u8(p);
    const uint8x16_t lo = vandq_u8(b, vdupq_n_u8(0x0f)), hi = vshrq_n_u8(b, 4);
    widen(vzip1q_u8(lo, hi), vzip2q_u8(lo, hi), q);
  }

  struct Acc {
    float64x2_t e2, x2, maxe;
  };
  static Acc acc_zero() { return Acc{vdupq_n_f64(0), vdupq_n_f64(0), vdupq_n_f64(0)}; }
  static void acc_half(Acc& a, float64x2_t yd, float64x2_t xd) {
    const float64x2_t e = vsubq_f64(yd, xd);
    a.e2 = vaddq_f64(a.e2, vmulq_f64(e, e));
    a.x2 = vaddq_f64(a.x2, vmulq_f64(xd, xd));
    a.maxe = vmaxq_f64(a.maxe, vabsq_f64(e));
  }
  static void acc_add(Acc& a, F y, F x) {
    acc_half(a, vcvt_f64_f32(vget_low_f32(y)), vcvt_f64_f32(vget_low_f32(x)));
    acc_half(a, vcvt_high_f64_f32(y), vcvt_high_f64_f32(x));
  }
  static void acc_finish(const Acc& a, ErrorStats& es) {
    es.sum_sq_err += vgetq_lane_f64(a.e2, 0) + vgetq_lane_f64(a.e2, 1);
    es.sum_sq_ref += vgetq_lane_f64(a.x2, 0) + vgetq_lane_f64(a.x2, 1);
    const double m = vmaxvq_f64(a.maxe);
    if (m > es.max_abs_err) es.max_abs_err = m;
  }
};

#include "simd_kernels.h"

}  // namespace

const KernelTable* neon_kernels() {
  static const KernelTable table = SimdKernels<NeonOps>::table("neon");
  return &table;
}

}  // namespace qk
#endif
