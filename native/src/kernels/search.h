// Scale search ("--method search"): instead of deriving a group's scale from its largest value (RTN),
// try a small grid of scales around it and keep the one whose least-squares refit explains the group
// best, optionally weighting each column by an importance (how strongly the model amplifies that input
// channel). The idea is ggml's make_qx_quants; the weighting and the candidate grid are quantkit's.
//
// Everything here is shared by the scalar reference and the SIMD files, so it follows numeric.h's rules:
// static inline, compiler builtins only. The candidate scoring loop is the expensive part and has SIMD
// versions (simd_kernels.h); to match this reference bit for bit, its sums are defined in the order
// eight SIMD lanes produce them (Sum8 below), with fused multiply-adds, which every SIMD target has.
#pragma once
#include <cstdint>

#include "kernels.h"
#include "numeric.h"

namespace qk {

// Four candidate scales per group: "the largest |x| maps to a code end", and the same pushed one step
// (span/64 code units) outward, which clips the largest value a little and gives the rest finer
// steps; with one end (positive scales) two steps outward, one and one inward. Measured on both
// bundled models, these four do as well as sixteen (docs/quality.md).
constexpr int kCandidates = 4;

// llama.cpp's IQ4_NL code: 16 non-uniform levels (more resolution near zero, where most weights are).
static const float kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
// The same levels as bytes (they fit int8), for byte table lookups (NEON's tbl).
static const int8_t kIq4nlLevels8[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
static const float kIq4nlMids[15] = {-115.5f, -93.5f, -74, -57, -42, -28.5f, -16, -4.5f, 7, 19, 31.5f, 45.5f, 61, 79, 101};

// The IQ4_NL level index nearest t from one table lookup, for the x86 encoders' gathers: t > mid ⇔
// 2t > 2·mid ⇔ ceil(2t) > 2·mid (every 2·mid is an integer, and doubling a float is exact), so the
// index depends only on c = ceil(2t) clamped to [-232, 203] (beyond them every comparison has the same
// outcome). kIq4nlByCeil2t.index[c + 232] equals iq4nl_index(t) for every float t.
constexpr int kIq4nlLutLow = -232, kIq4nlLutHigh = 203;
struct Iq4nlLut {
  int32_t index[kIq4nlLutHigh - kIq4nlLutLow + 1];
  constexpr Iq4nlLut() : index() {
    const int twice_mids[15] = {-231, -187, -148, -114, -84, -57, -32, -9, 14, 38, 63, 91, 122, 158, 202};
    for (int c = kIq4nlLutLow; c <= kIq4nlLutHigh; ++c) {
      int k = 0;
      for (int m = 0; m < 15; ++m) k += c > twice_mids[m] ? 1 : 0;
      index[c - kIq4nlLutLow] = k;
    }
  }
};
static constexpr Iq4nlLut kIq4nlByCeil2t{};

// Round half to even, the result of nearbyint in the default rounding mode, without calling libm
// (baseline x86-64 has no rounding instruction, and nearbyintf saves and restores the FP environment):
// |v| + 2^23 lands where the spacing of floats is 1, so the addition rounds; larger values are integers
// already; NaN passes through.
static inline float round_even(float v) {
  const float a = __builtin_fabsf(v);
  if (!(a < 8388608.0f)) return v;
  return __builtin_copysignf((a + 8388608.0f) - 8388608.0f, v);
}

// A symmetric code: integers lo..hi (uniform), or the IQ4_NL table.
struct SymCode {
  bool table;
  float lo, hi;      // the code's smallest and largest value
  bool both_ends;    // try mapping the largest |x| to either end (the scale may then be negative)
  // The candidates' inverse scales times the group's largest-magnitude value m, for m > 0 ([0]) and
  // m < 0 ([1]): candidate k's inverse scale is cand[m < 0][k] / m (see candidate_inverses).
  float cand[2][kCandidates];
};

// Four candidate numerators: the code end the largest |x| maps to, and the same pushed one step
// (span/64 code units) outward; with one end (positive scales: the end has m's sign) two steps
// outward, one, none and one inward. Every value is exact (small integers plus multiples of 1/64).
static inline void fill_candidates(SymCode& c) {
  const float step = (c.hi - c.lo) / 64.0f;
  static const float kOutwardBoth[2] = {1.0f, 0.0f};
  static const float kOutwardOne[4] = {2.0f, 1.0f, 0.0f, -1.0f};
  for (int neg = 0; neg < 2; ++neg) {
    float ends[2] = {c.lo, c.hi};
    int n_ends = 2;
    if (!c.both_ends) { ends[0] = neg ? c.lo : c.hi; n_ends = 1; }
    const float* outward = n_ends == 2 ? kOutwardBoth : kOutwardOne;
    const int per = kCandidates / n_ends;
    for (int e = 0; e < n_ends; ++e) {
      const float dir = ends[e] > 0.0f ? step : -step;
      for (int k = 0; k < per; ++k) c.cand[neg][e * per + k] = ends[e] + outward[k] * dir;
    }
  }
}

static inline SymCode make_sym_code(bool table, float lo, float hi, bool both_ends) {
  SymCode c{table, lo, hi, both_ends, {}};
  fill_candidates(c);
  return c;
}

static inline SymCode sym_code_for(const QuantSpec& spec) {
  switch (spec.scheme) {
    case Scheme::GGML_IQ4_NL: return make_sym_code(true, -127.0f, 113.0f, true);
    case Scheme::GGML_Q4_0: return make_sym_code(false, -8.0f, 7.0f, true);
    case Scheme::GGML_Q8_0: return make_sym_code(false, -128.0f, 127.0f, true);
    default: {  // INT_SYM: compressed-tensors scales stay positive
      const float lo = -static_cast<float>(1 << (spec.bits - 1));
      return make_sym_code(false, lo, -lo - 1.0f, false);
    }
  }
}

// The code value nearest t (ties: the lower one for the table, even for the integers).
static inline int iq4nl_index(float t) {
  int k = 0;
  for (int m = 0; m < 15; ++m) k += t > kIq4nlMids[m] ? 1 : 0;
  return k;
}

static inline float code_value(const SymCode& c, float t) {
  if (!c.table) {
    const float r = round_even(t);
    return r < c.lo ? c.lo : (r > c.hi ? c.hi : r);
  }
  return kIq4nlValues[iq4nl_index(t)];
}

// Index of the nearest code value (0-based from lo).
static inline int code_index(const SymCode& c, float t) {
  return c.table ? iq4nl_index(t) : static_cast<int>(code_value(c, t) - c.lo);
}

// The first value of largest magnitude, with its sign (0 for an all-zero group).
static inline float first_abs_max(const float* x, int64_t g) {
  float m = 0.0f, amax = 0.0f;
  for (int64_t j = 0; j < g; ++j) {
    const float a = __builtin_fabsf(x[j]);
    if (a > amax) { amax = a; m = x[j]; }
  }
  return m;
}

// The inverse scales of the candidates for a group whose first largest-magnitude value is m (not 0).
static inline void candidate_inverses(const SymCode& c, float m, float ids[kCandidates]) {
  const float inv_m = 1.0f / m;
  const float* num = c.cand[m < 0.0f ? 1 : 0];
  for (int k = 0; k < kCandidates; ++k) ids[k] = num[k] * inv_m;
}

// Eight partial sums, as eight SIMD lanes hold them: element j goes to lane j % 8, each lane
// accumulates in element order with fused multiply-adds, and the lanes are added pairwise,
// ((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7)), the order horizontal adds (x86 hadd, NEON vpadd) give.
// Independent lanes keep the SIMD loop free of long dependency chains; the order is everyone's.
struct Sum8 {
  float s[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  void fma(int64_t j, float a, float b) { s[j & 7] = __builtin_fmaf(a, b, s[j & 7]); }
  void add(int64_t j, float v) { s[j & 7] += v; }
  float total() const { return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])); }
};

// A candidate's score: the weighted error its least-squares scale sumqx/sumq2 removes, sumqx^2/sumq2,
// in double (sumqx^2 is exact there); -1 for a candidate that cannot win (sumq2 not positive, or a
// sum that overflowed). Every SIMD file computes the same IEEE operations.
static inline double candidate_score(float sumqx, float sumq2) {
  const double s = static_cast<double>(sumqx) * static_cast<double>(sumqx) / static_cast<double>(sumq2);
  return ((sumq2 > 0.0f) & (s == s)) ? s : -1.0;
}

// The scale of the best candidate: the first with the highest score, or 0 when none can win.
static inline float best_scale(const float sumqx[kCandidates], const float sumq2[kCandidates]) {
  int best = -1;
  double top = -1.0;
  for (int k = 0; k < kCandidates; ++k) {
    const double s = candidate_score(sumqx[k], sumq2[k]);
    best = s > top ? k : best;
    top = s > top ? s : top;
  }
  return best < 0 ? 0.0f : sumqx[best] / sumq2[best];
}

// The reference search over one group: x[0..g), importance w (nullptr: all 1). Returns the unrounded
// scale (0 for an all-zero group).
static inline float search_sym_scale(const SymCode& c, const float* x, const float* w, int64_t g) {
  const float m = first_abs_max(x, g);
  if (m == 0.0f) return 0.0f;
  float ids[kCandidates];
  candidate_inverses(c, m, ids);
  float a[kCandidates], b[kCandidates];
  for (int k = 0; k < kCandidates; ++k) {
    Sum8 sqx, sq2;
    for (int64_t j = 0; j < g; ++j) {
      const float q = code_value(c, x[j] * ids[k]);
      const float wq = (w ? w[j] : 1.0f) * q;
      sqx.fma(j, wq, x[j]);
      sq2.fma(j, wq, q);
    }
    a[k] = sqx.total();
    b[k] = sq2.total();
  }
  return best_scale(a, b);
}

// Writes a ggml block (Q8_0, Q4_0, IQ4_NL) for scale d: the f16 scale, then each value's nearest code
// for the stored (rounded) scale. Returns false when the scale does not fit f16.
static inline bool encode_sym_block(const QuantSpec& spec, const SymCode& c, const float* x, float d, uint8_t* out) {
  const uint16_t dh = f32_to_f16(d);
  __builtin_memcpy(out, &dh, 2);
  const float ds = f16_to_f32(dh);
  if (!__builtin_isfinite(ds)) return false;
  const float id = ds != 0.0f ? 1.0f / ds : 0.0f;
  if (spec.scheme == Scheme::GGML_Q8_0) {
    for (int j = 0; j < 32; ++j) out[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(code_value(c, x[j] * id)));
    return true;
  }
  for (int j = 0; j < 16; ++j)
    out[2 + j] = static_cast<uint8_t>(code_index(c, x[j] * id) | (code_index(c, x[j + 16] * id) << 4));
  return true;
}

// compressed-tensors packing: value k of a row, stored as unsigned (q + 2^(bits-1)), LSB first.
static inline void put_code(uint8_t* row, int bits, int64_t k, uint32_t u) {
  if (bits == 8) { row[k] = static_cast<uint8_t>(u); return; }
  uint8_t& b = row[k >> 1];
  b = (k & 1) ? static_cast<uint8_t>((b & 0x0f) | (u << 4)) : static_cast<uint8_t>((b & 0xf0) | u);
}

// Writes an INT_SYM group for scale d (stored in the scale dtype first). False when the scale overflows.
static inline bool encode_sym_int_group(const QuantSpec& spec, const SymCode& c, const float* x, int64_t n, float d,
                                        uint8_t* packed_row, int64_t k0, uint8_t* scales, int64_t scale_index) {
  const float sq = store_scale(scales, spec.scale_dtype, scale_index, d);
  if (!__builtin_isfinite(sq)) return false;
  const float id = stored_scale_inverse(sq);
  const int32_t offset = 1 << (spec.bits - 1);
  for (int64_t j = 0; j < n; ++j)
    put_code(packed_row, spec.bits, k0 + j, static_cast<uint32_t>(static_cast<int32_t>(code_value(c, x[j] * id)) + offset));
  return true;
}

// Asymmetric search with a free minimum (ggml's Q4_1): x ~ d * l + m with l in 0..nmax. For each
// candidate scale the levels come from rounding, then (d, m) is the weighted least-squares fit; the
// candidate explaining the most weighted error wins. The sums are Sum8s, as the SIMD files form them
// (simd_kernels.h runs the same operations eight lanes at a time).
struct AsymFit {
  float d, m;
};

// Candidate i's inverse step (levels per unit of x) for a group spanning `range`.
static inline float asym_candidate_inverse(float nmax, int i, float range) {
  return (nmax + static_cast<float>(i) * (nmax / 64.0f)) / range;
}

// The least-squares (d, m) from one candidate's sums (sw = sum w, sx = sum w x, sl = sum w l,
// sll = sum w l^2, slx = sum w l x), and the weighted error it removes: for that fit the error is
// sum(w x^2) - d*slx - m*sx, so the largest d*slx + m*sx wins with no second pass over the group.
// False when the fit is degenerate or its step not positive.
static inline bool asym_solve(float sw, float sx, float sl, float sll, float slx, AsymFit* fit, double* explained) {
  const double SW = sw, SX = sx, SL = sl, SLL = sll, SLX = slx;
  const double det = SW * SLL - SL * SL;
  if (!(det > 0)) return false;
  const float d = static_cast<float>((SW * SLX - SL * SX) / det);
  const float m = static_cast<float>((SLL * SX - SL * SLX) / det);
  if (!(d > 0.0f)) return false;
  *fit = AsymFit{d, m};
  *explained = static_cast<double>(d) * SLX + static_cast<double>(m) * SX;
  return true;
}

// The smallest and largest value of a group (the first element's when all compare false, as NaN does).
static inline void group_range(const float* x, int64_t g, float* lo, float* hi) {
  float a = x[0], b = x[0];
  for (int64_t j = 1; j < g; ++j) { a = x[j] < a ? x[j] : a; b = x[j] > b ? x[j] : b; }
  *lo = a;
  *hi = b;
}

static inline AsymFit search_asym(const float* x, const float* w, int64_t g, float nmax) {
  float lo, hi;
  group_range(x, g, &lo, &hi);
  if (!(hi > lo)) return AsymFit{0.0f, lo};
  AsymFit best{(hi - lo) / nmax, lo};
  bool any = false;
  double best_explained = 0.0;
  Sum8 sw, sx;
  for (int64_t j = 0; j < g; ++j) {
    const float wj = w ? w[j] : 1.0f;
    sw.add(j, wj);
    sx.fma(j, wj, x[j]);
  }
  for (int i = -kCandidates / 2; i < kCandidates / 2; ++i) {
    const float is = asym_candidate_inverse(nmax, i, hi - lo);
    Sum8 sl, sll, slx;
    for (int64_t j = 0; j < g; ++j) {
      float l = round_even((x[j] - lo) * is);
      l = l > nmax ? nmax : (l < 0.0f ? 0.0f : l);
      const float wl = (w ? w[j] : 1.0f) * l;
      sl.add(j, wl);
      sll.fma(j, wl, l);
      slx.fma(j, wl, x[j]);
    }
    AsymFit f;
    double e;
    if (asym_solve(sw.total(), sx.total(), sl.total(), sll.total(), slx.total(), &f, &e) && (!any || e > best_explained)) {
      any = true;
      best_explained = e;
      best = f;
    }
  }
  return best;
}

// HQQ (Badri & Shaji, "Half-Quadratic Quantization of Large Machine Learning Models", 2023) for a Q4_1
// block: the scale stays RTN's (max - min) / 15 and the zero point z (x ~ s (l - z)) is fitted to
// minimise the lp norm of the error with p = 1/2, by half-quadratic splitting: an error variable e is
// shrunk towards the residual (e = sign(r) max(|r| - |r|^(p-1) / beta, 0): large errors are left large,
// so outliers stop pulling z), then z is the mean that fits the rest; beta grows 1% per iteration, 20
// iterations, the z with the smallest mean absolute error kept. p = 1/2 (HQQ's default is 0.7) makes
// |r|^(p-1) a square root, exact on every target; on the bundled models the two gave the same result.
static inline AsymFit hqq_q4_1(const float* x, int64_t g) {
  float lo, hi;
  group_range(x, g, &lo, &hi);
  if (!(hi > lo)) return AsymFit{0.0f, lo};
  const float s = (hi - lo) / 15.0f, inv = 1.0f / s;
  if (!(inv < __builtin_inff())) return AsymFit{s, lo};  // a range so small that 1/s overflows: RTN
  float z = -lo * inv, best_z = z, best_err = __builtin_inff(), beta = 10.0f;
  for (int it = 0; it < 20; ++it) {
    Sum8 err, zs;
    for (int64_t j = 0; j < g; ++j) {
      float l = round_even(x[j] * inv + z);
      l = l > 15.0f ? 15.0f : (l < 0.0f ? 0.0f : l);
      const float r = x[j] - (l - z) * s;  // the residual
      const float a = __builtin_fabsf(r);
      const float shrunk = a > 0.0f ? a - 1.0f / (beta * __builtin_sqrtf(a)) : 0.0f;
      const float e = __builtin_copysignf(shrunk > 0.0f ? shrunk : 0.0f, r);
      err.add(j, a);
      zs.add(j, l - (x[j] - e) * inv);
    }
    const float mean_err = err.total() / static_cast<float>(g);
    if (mean_err < best_err) { best_err = mean_err; best_z = z; }
    z = zs.total() / static_cast<float>(g);
    beta *= 1.01f;
  }
  return AsymFit{s, -best_z * s};
}

// compressed-tensors' asymmetric groups: x ~ s * (q - zp) with an integer zero point, so the fitted
// minimum must sit on the scale's grid; fitting (d, m) freely and rounding m afterwards loses what the
// fit gained. Each candidate scale fixes zp (zero stays exactly representable, as in RTN), assigns
// levels, then refits s with zp fixed by weighted least squares; the candidate whose refit removes the
// most weighted error wins (compared in double). Sums as in search_asym.
struct IntAsymFit {
  float s, zp;
};

// Candidate i's scale, zero point and inverse scale for a group with range [lo, hi] (lo <= 0 <= hi).
struct IntAsymCandidate {
  float sc, zp, isc;
};
// The zero point that keeps lo at qmin for scale sc. Clamps written so that NaN (a scale that
// underflowed to 0) becomes qmin.
static inline float int_asym_zero_point(float lo, float sc, float qmin, float qmax) {
  const float zp = round_even(qmin - lo / sc);
  return zp >= qmin ? (zp <= qmax ? zp : qmax) : qmin;
}

static inline IntAsymCandidate int_asym_candidate(float lo, float hi, float qmin, float qmax, int i) {
  const float levels = qmax - qmin;
  const float sc = (hi - lo) / (levels + static_cast<float>(i) * (levels / 64.0f));
  return IntAsymCandidate{sc, int_asym_zero_point(lo, sc, qmin, qmax), 1.0f / sc};
}

// Keeps the candidate with the larger a^2/b (a = sum w l x, b = sum w l^2), cross-multiplied in double.
static inline void int_asym_offer(float a_f, float b_f, float zp, double* best_a, double* best_b, bool* any, IntAsymFit* best) {
  const double a = a_f, b = b_f;
  if (!(b > 0.0) || !(a > 0.0)) return;
  if (!*any || a * a * *best_b > *best_a * *best_a * b) {
    *best_a = a;
    *best_b = b;
    *any = true;
    *best = IntAsymFit{static_cast<float>(a / b), zp};
  }
}

// The fit when no candidate qualifies: RTN's scale and zero point.
static inline IntAsymFit int_asym_default(float lo, float hi, float qmin, float qmax) {
  const float s = (hi - lo) / (qmax - qmin);
  return IntAsymFit{s, int_asym_zero_point(lo, s, qmin, qmax)};
}

static inline IntAsymFit search_asym_int(const float* x, const float* w, int64_t g, float qmin, float qmax) {
  float lo = 0.0f, hi = 0.0f;
  for (int64_t j = 0; j < g; ++j) { lo = x[j] < lo ? x[j] : lo; hi = x[j] > hi ? x[j] : hi; }
  if (!(hi > lo)) return IntAsymFit{0.0f, qmin};
  IntAsymFit best = int_asym_default(lo, hi, qmin, qmax);
  double best_a = 0.0, best_b = 0.0;
  bool any = false;
  for (int i = -kCandidates / 2; i < kCandidates / 2; ++i) {
    const IntAsymCandidate k = int_asym_candidate(lo, hi, qmin, qmax, i);
    Sum8 a, b;
    for (int64_t j = 0; j < g; ++j) {
      float q = round_even(x[j] * k.isc) + k.zp;
      q = q < qmin ? qmin : (q > qmax ? qmax : q);
      const float l = q - k.zp;
      const float wl = (w ? w[j] : 1.0f) * l;
      a.fma(j, wl, x[j]);
      b.fma(j, wl, l);
    }
    int_asym_offer(a.total(), b.total(), k.zp, &best_a, &best_b, &any, &best);
  }
  return best;
}

}  // namespace qk
