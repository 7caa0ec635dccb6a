// llama.cpp's own quantizers for the GGUF block types it writes: the K-quants (Q2_K..Q6_K, 256-weight
// super-blocks), Q5_0/Q5_1, the importance-matrix ("imatrix") variants of Q4_0/Q4_1/Q5_0/Q5_1 and the
// IQ4_NL search, reproduced from the algorithms in ggml-quants.c (llama.cpp 80fb11a) so that the bytes
// are the ones llama-quantize writes. test/native/ggml-identity.test.ts compiles llama.cpp's own file and
// compares, type by type, with and without an importance matrix.
//
// Exactness: llama.cpp's reference quantizers run in single-precision float, one operation at a time, in
// source order, never fused (its ggml-base library is built without -mfma; these files with
// -ffp-contract=off); every product, sum, quotient and comparison below is written in the order its
// expression evaluates in C, including the implicit int -> float conversions, and the narrowing stores
// (to uint8_t / int8_t) that llama.cpp's arrays perform.
//
// This header is shared by the scalar reference (scalar.cc) and the SIMD files, which vectorize the
// per-sub-block searches across sub-blocks (simd_kquants.h) and call the per-super-block steps below
// directly, so it follows numeric.h's rules: static inline, compiler builtins only.
#pragma once
#include <cstdint>

#include "kernels.h"
#include "numeric.h"

namespace qk {

constexpr int kSuperBlock = 256;  // QK_K: weights per K-quant super-block
constexpr float kGroupEps = 1e-15f;  // below this largest magnitude a group counts as all zero

// Byte offsets inside each block (ggml-common.h's structs, little-endian f16 scales).
namespace blk {
constexpr int kQ5_0 = 22, kQ5_1 = 24, kQ2K = 84, kQ3K = 110, kQ4K = 144, kQ5K = 176, kQ6K = 210;
// Q2_K: scales[16] (low nibble scale, high nibble min), qs[64], d, dmin
constexpr int kQ2KScales = 0, kQ2KQs = 16, kQ2KD = 80, kQ2KDmin = 82;
// Q3_K: hmask[32], qs[64], scales[12] (6-bit, packed), d
constexpr int kQ3KHmask = 0, kQ3KQs = 32, kQ3KScales = 96, kQ3KD = 108;
// Q4_K / Q5_K: d, dmin, scales[12] (6-bit scales and mins, packed), [Q5_K: qh[32]], qs[128]
constexpr int kKD = 0, kKDmin = 2, kKScales = 4, kQ4KQs = 16, kQ5KQh = 16, kQ5KQs = 48;
// Q6_K: ql[128], qh[64], scales[16] (int8), d
constexpr int kQ6KQl = 0, kQ6KQh = 128, kQ6KScales = 192, kQ6KD = 208;
}  // namespace blk

// ---- numbers as llama.cpp forms them -----------------------------------------------------------

// llama.cpp's nearest_int: adding 1.5 * 2^23 leaves round-to-nearest-even of v in the low mantissa bits
// (exact for |v| < 2^22). Outside that range, and for NaN/Inf, the bits still give a definite value,
// which the reference uses as is; every SIMD twin computes the same bits.
static inline int32_t llama_round(float v) {
  const float t = v + 12582912.0f;
  return static_cast<int32_t>(f32_bits(t) & 0x007fffffu) - 0x00400000;
}

// f32 -> f16 as ggml's software conversion does it: round to nearest even, NaN becomes 0x7e00 (with the
// sign). f32_to_f16 agrees for every non-NaN value.
static inline uint16_t llama_half(float v) {
  const uint32_t u = f32_bits(v);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>(((u >> 16) & 0x8000u) | 0x7e00u);
  return f32_to_f16(v);
}

static inline float half_at(const uint8_t* p) {
  uint16_t h;
  __builtin_memcpy(&h, p, 2);
  return f16_to_f32(h);
}
static inline void put_half_at(uint8_t* p, float v) {
  const uint16_t h = llama_half(v);
  __builtin_memcpy(p, &h, 2);
}
// Stores v as f16 and returns the value a reader sees.
static inline float store_half_at(uint8_t* p, float v) {
  put_half_at(p, v);
  return half_at(p);
}

static inline int clamp_int(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// ---- the level searches -------------------------------------------------------------------------

// Levels 0..nmax with a free minimum, x ~ scale * L + min with min <= 0 (make_qkx2_quants, and
// make_qkx3_quants, which differs only where NaN would reach it). A grid of nstep + 1 inverse scales
// (nmax + rmin + rdelta * is) / (max - min) is tried after the plain one; each assigns levels by
// rounding, refits (scale, min) by weighted least squares, and replaces the best fit when its weighted
// error (|e| or e^2) is lower. The grid follows the current best minimum, so the candidates form a chain.
struct MinFitParams {
  int nmax;
  float rmin, rdelta;
  int nstep;
  bool mad;  // absolute error instead of squared
};
constexpr MinFitParams kQ2KFit{3, -0.5f, 0.1f, 15, true};
constexpr MinFitParams kQ4KFit{15, -1.0f, 0.1f, 20, false};
constexpr MinFitParams kQ5KFit{31, -0.5f, 0.1f, 15, false};
// With an importance matrix (Q2_K, Q4_K, Q5_K, Q4_1, Q5_1): a finer, longer grid.
static inline MinFitParams weighted_min_fit(int nmax) { return MinFitParams{nmax, -0.9f, 0.05f, 36, false}; }

static inline float min_fit_error(int n, const MinFitParams& p, const float* x, const float* w, const uint8_t* L, float scale, float min) {
  float err = 0.0f;
  for (int i = 0; i < n; ++i) {
    float diff = scale * static_cast<float>(L[i]) + min - x[i];
    diff = p.mad ? __builtin_fabsf(diff) : diff * diff;
    err += w[i] * diff;
  }
  return err;
}

// Returns the scale; *neg_min = -min (>= 0); L = the levels.
static inline float fit_with_min(int n, const MinFitParams& p, const float* x, const float* w, uint8_t* L, float* neg_min) {
  float min = x[0], max = x[0];
  float sum_w = w[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0.0f) min = 0.0f;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *neg_min = -min;
    return 0.0f;
  }
  const float fnmax = static_cast<float>(p.nmax);
  float iscale = fnmax / (max - min);
  float scale = 1.0f / iscale;
  for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(clamp_int(llama_round(iscale * (x[i] - min)), 0, p.nmax));
  float best = min_fit_error(n, p, x, w, L, scale, min);
  uint8_t trial[32];
  for (int is = 0; is <= p.nstep; ++is) {
    iscale = (p.rmin + p.rdelta * static_cast<float>(is) + fnmax) / (max - min);
    float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_int(llama_round(iscale * (x[i] - min)), 0, p.nmax);
      trial[i] = static_cast<uint8_t>(l);
      const float wl = w[i] * static_cast<float>(l);
      sum_l += wl;
      sum_l2 += wl * static_cast<float>(l);
      sum_xl += wl * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (!(D > 0.0f)) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
    if (this_min > 0.0f) {
      this_min = 0.0f;
      this_scale = sum_xl / sum_l2;
    }
    const float err = min_fit_error(n, p, x, w, trial, this_scale, this_min);
    if (err < best) {
      for (int i = 0; i < n; ++i) L[i] = trial[i];
      best = err;
      scale = this_scale;
      min = this_min;
    }
  }
  *neg_min = -min;
  return scale;
}

// The signed value of largest magnitude (the first one), as the symmetric searches take it.
static inline float signed_abs_max(int n, const float* x, float* amax_out) {
  float amax = 0.0f, max = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float ax = __builtin_fabsf(x[i]);
    if (ax > amax) { amax = ax; max = x[i]; }
  }
  *amax_out = amax;
  return max;
}

// Symmetric levels -nmax..nmax-1 stored as L + nmax (make_qx_quants with its weighted-rmse mode): the
// plain scale and 18 others (nmax + 0.1 is for is = -9..9), each kept when its least-squares fit
// explains more weighted energy (sum w x l)^2 / (sum w l^2) than the best so far. Weights qw, or x^2
// when qw is null.
static inline float fit_symmetric(int n, int nmax, const float* x, const float* qw, int8_t* L) {
  float amax;
  const float max = signed_abs_max(n, x, &amax);
  if (amax < kGroupEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  const float fnmax = static_cast<float>(nmax);
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0.0f, suml2 = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_int(llama_round(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = qw ? qw[i] : x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(fnmax + 0.1f * static_cast<float>(is)) / max;
    sumlx = suml2 = 0.0f;
    for (int i = 0; i < n; ++i) {
      const float l = static_cast<float>(clamp_int(llama_round(iscale * x[i]), -nmax, nmax - 1));
      const float w = qw ? qw[i] : x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(nmax + clamp_int(llama_round(iscale * x[i]), -nmax, nmax - 1));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Q3_K's search without an importance matrix (make_q3_quants with rmse): levels -nmax..nmax-1 from the
// plain scale, then up to five sweeps that move one level at a time to the value its neighbours' fit
// asks for, keeping each move that raises (sum w x l)^2 / (sum w l^2), w = x^2. L is stored + nmax.
static inline float fit_q3(int n, int nmax, const float* x, int8_t* L) {
  float amax;
  const float max = signed_abs_max(n, x, &amax);
  if (amax < kGroupEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  const float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0.0f, suml2 = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_int(llama_round(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  for (int sweep = 0; sweep < 5; ++sweep) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      const float li = static_cast<float>(L[i]);
      float slx = sumlx - w * x[i] * li;
      if (!(slx > 0.0f)) continue;
      float sl2 = suml2 - w * li * li;
      const int nl = clamp_int(llama_round(x[i] * sl2 / slx), -nmax, nmax - 1);
      if (nl == L[i]) continue;
      slx += w * x[i] * static_cast<float>(nl);
      sl2 += w * static_cast<float>(nl) * static_cast<float>(nl);
      if (sl2 > 0.0f && slx * slx * suml2 > sumlx * sumlx * sl2) {
        L[i] = static_cast<int8_t>(nl);
        sumlx = slx;
        suml2 = sl2;
        ++changed;
      }
    }
    if (!changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// Levels 0..nmax for non-negative values (make_qp_quants; with an importance matrix it quantizes a
// super-block's sub-block scales and minimums, weighted by each sub-block's total weight): the plain
// scale and eight others by weighted squared error, then the sweeps of fit_q3. L is uint8_t as in
// llama.cpp: a negative level wraps.
static inline float fit_positive(int n, int nmax, const float* x, const float* qw, uint8_t* L) {
  float max = 0.0f;
  for (int i = 0; i < n; ++i) max = max > x[i] ? max : x[i];
  if (max < kGroupEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  const float fnmax = static_cast<float>(nmax);
  float iscale = fnmax / max;
  for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(llama_round(iscale * x[i]));
  const float scale = 1.0f / iscale;
  float best_mse = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float diff = x[i] - scale * static_cast<float>(L[i]);
    best_mse += qw[i] * diff * diff;
  }
  for (int is = -4; is <= 4; ++is) {
    if (is == 0) continue;
    const float iscale_is = (0.1f * static_cast<float>(is) + fnmax) / max;
    const float scale_is = 1.0f / iscale_is;
    float mse = 0.0f;
    for (int i = 0; i < n; ++i) {
      const int l = llama_round(iscale_is * x[i]);
      const float diff = x[i] - scale_is * static_cast<float>(l < nmax ? l : nmax);
      mse += qw[i] * diff * diff;
    }
    if (mse < best_mse) {
      best_mse = mse;
      iscale = iscale_is;
    }
  }
  float sumlx = 0.0f, suml2 = 0.0f;
  for (int i = 0; i < n; ++i) {
    int l = llama_round(iscale * x[i]);
    l = l < nmax ? l : nmax;
    L[i] = static_cast<uint8_t>(l);  // the sums take l itself, before the narrowing
    sumlx += qw[i] * x[i] * static_cast<float>(l);
    suml2 += qw[i] * static_cast<float>(l) * static_cast<float>(l);
  }
  for (int sweep = 0; sweep < 5; ++sweep) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = qw[i];
      const float li = static_cast<float>(L[i]);
      float slx = sumlx - w * x[i] * li;
      float sl2 = suml2 - w * li * li;
      if (!(slx > 0.0f && sl2 > 0.0f)) continue;
      int nl = llama_round(x[i] * sl2 / slx);
      nl = nl < nmax ? nl : nmax;
      if (nl == L[i]) continue;
      slx += w * x[i] * static_cast<float>(nl);
      sl2 += w * static_cast<float>(nl) * static_cast<float>(nl);
      if (slx * slx * suml2 > sumlx * sumlx * sl2) {
        L[i] = static_cast<uint8_t>(nl);
        sumlx = slx;
        suml2 = sl2;
        ++changed;
      }
    }
    if (!changed) break;
  }
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// ---- per-super-block steps shared by every ISA --------------------------------------------------

// Sub-block scales of a super-block, as the requantization pass and the packers see them.
struct SuperScales {
  float d[16];   // per sub-block: its step (0: the sub-block keeps the search's levels)
  float dm[16];  // per sub-block (Q2_K, Q4_K, Q5_K): the amount added before dividing by d
  bool zero;     // Q6_K: the whole block is zeros
};

// The importance weights of a super-block with an importance matrix: qw * sqrt(sigma2 + x^2), where
// sigma2 = factor * mean(x^2) over the super-block; and each sub-block's total weight. Q2_K: factor 1;
// Q3_K, Q4_K, Q5_K: 2.
static inline void imatrix_weights(const float* x, const float* qw, float factor, int sub, float* w, float* sw) {
  float sum_x2 = 0.0f;
  for (int j = 0; j < kSuperBlock; ++j) sum_x2 += x[j] * x[j];
  const float sigma2 = factor * sum_x2 / static_cast<float>(kSuperBlock);
  for (int j = 0; j < kSuperBlock; ++j) w[j] = qw[j] * __builtin_sqrtf(sigma2 + x[j] * x[j]);
  for (int b = 0; b < kSuperBlock / sub; ++b) {
    float s = 0.0f;
    for (int l = 0; l < sub; ++l) s += w[b * sub + l];
    sw[b] = s;
  }
}

// Q2_K without an importance matrix: the weights of each sub-block's search are |x|.
static inline void q2_k_plain_weights(const float* x, float* w) {
  for (int j = 0; j < kSuperBlock; ++j) w[j] = __builtin_fabsf(x[j]);
}

// Q4_K / Q5_K without an importance matrix: each 32-weight sub-block weighs its values by
// sqrt(mean x^2) + |x|.
static inline void q45_k_plain_weights(const float* x, float* w) {
  for (int b = 0; b < 8; ++b) {
    const float* xb = x + 32 * b;
    float sum_x2 = 0.0f;
    for (int l = 0; l < 32; ++l) sum_x2 += xb[l] * xb[l];
    const float av_x = __builtin_sqrtf(sum_x2 / 32.0f);
    for (int l = 0; l < 32; ++l) w[32 * b + l] = av_x + __builtin_fabsf(xb[l]);
  }
}

// Q2_K's header: 4-bit scales and minimums of 16 sub-blocks, and the two f16 super-scales.
static inline void q2_k_header(const float* scales, const float* mins, const float* sw, uint8_t* out, SuperScales* ss) {
  uint8_t* sb = out + blk::kQ2KScales;
  if (sw) {
    uint8_t Ls[16], Lm[16];
    const float dm = fit_positive(16, 15, scales, sw, Ls);
    const float mm = fit_positive(16, 15, mins, sw, Lm);
    for (int j = 0; j < 16; ++j) sb[j] = static_cast<uint8_t>(Ls[j] | (Lm[j] << 4));
    put_half_at(out + blk::kQ2KD, dm);
    put_half_at(out + blk::kQ2KDmin, mm);
  } else {
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 16; ++j) {
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    if (max_scale > 0.0f) {
      const float iscale = 15.0f / max_scale;
      for (int j = 0; j < 16; ++j) sb[j] = static_cast<uint8_t>(llama_round(iscale * scales[j]));
      put_half_at(out + blk::kQ2KD, max_scale / 15.0f);
    } else {
      for (int j = 0; j < 16; ++j) sb[j] = 0;
      put_half_at(out + blk::kQ2KD, 0.0f);
    }
    if (max_min > 0.0f) {
      const float iscale = 15.0f / max_min;
      for (int j = 0; j < 16; ++j) sb[j] = static_cast<uint8_t>(sb[j] | (llama_round(iscale * mins[j]) << 4));
      put_half_at(out + blk::kQ2KDmin, max_min / 15.0f);
    } else {
      put_half_at(out + blk::kQ2KDmin, 0.0f);
    }
  }
  const float d = half_at(out + blk::kQ2KD), dmin = half_at(out + blk::kQ2KDmin);
  for (int j = 0; j < 16; ++j) {
    ss->d[j] = d * static_cast<float>(sb[j] & 0xf);
    ss->dm[j] = dmin * static_cast<float>(sb[j] >> 4);
  }
}

// Q3_K's 6-bit signed sub-block scales: low nibbles in bytes 0..7, the top two bits in bytes 8..11.
static inline void q3_k_put_scale(uint8_t* s12, int j, int l) {
  if (j < 8) s12[j] = static_cast<uint8_t>(l & 0xf);
  else s12[j - 8] = static_cast<uint8_t>(s12[j - 8] | ((l & 0xf) << 4));
  s12[j % 4 + 8] = static_cast<uint8_t>(s12[j % 4 + 8] | ((l >> 4) << (2 * (j / 4))));
}
static inline int q3_k_scale(const uint8_t* s12, int j) {
  const int low = j < 8 ? (s12[j] & 0xf) : (s12[j - 8] >> 4);
  return static_cast<int8_t>(low | (((s12[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
}

static inline void q3_k_header(const float* scales, const float* sw, uint8_t* out, SuperScales* ss) {
  uint8_t* s12 = out + blk::kQ3KScales;
  for (int j = 0; j < 12; ++j) s12[j] = 0;
  if (sw) {
    int8_t Ls[16];
    const float d = fit_symmetric(16, 32, scales, sw, Ls);
    for (int j = 0; j < 16; ++j) q3_k_put_scale(s12, j, Ls[j]);
    put_half_at(out + blk::kQ3KD, d);
  } else {
    float amax = 0.0f, max_scale = 0.0f;
    for (int j = 0; j < 16; ++j) {
      const float a = __builtin_fabsf(scales[j]);
      if (a > amax) { amax = a; max_scale = scales[j]; }
    }
    if (max_scale != 0.0f) {
      const float iscale = -32.0f / max_scale;
      for (int j = 0; j < 16; ++j) {
        const int8_t l = static_cast<int8_t>(llama_round(iscale * scales[j]));
        q3_k_put_scale(s12, j, clamp_int(l, -32, 31) + 32);
      }
      put_half_at(out + blk::kQ3KD, 1.0f / iscale);
    } else {
      put_half_at(out + blk::kQ3KD, 0.0f);
    }
  }
  const float d = half_at(out + blk::kQ3KD);
  for (int j = 0; j < 16; ++j) ss->d[j] = d * static_cast<float>(q3_k_scale(s12, j));
}

// Q4_K / Q5_K: 6-bit scale and minimum of sub-block j, the top two bits of 4..7 in the high bits of 0..7.
static inline void k4_put_scale_min(uint8_t* s12, int j, uint8_t ls, uint8_t lm) {
  if (j < 4) {
    s12[j] = ls;
    s12[j + 4] = lm;
  } else {
    s12[j + 4] = static_cast<uint8_t>((ls & 0xf) | ((lm & 0xf) << 4));
    s12[j - 4] = static_cast<uint8_t>(s12[j - 4] | ((ls >> 4) << 6));
    s12[j] = static_cast<uint8_t>(s12[j] | ((lm >> 4) << 6));
  }
}
static inline void k4_scale_min(const uint8_t* s12, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = s12[j] & 63;
    *m = s12[j + 4] & 63;
  } else {
    *sc = (s12[j + 4] & 0xf) | ((s12[j - 4] >> 6) << 4);
    *m = (s12[j + 4] >> 4) | ((s12[j] >> 6) << 4);
  }
}

// Q4_K and Q5_K share the header; `clamp_weighted`: Q5_K clamps the importance-matrix levels to 63,
// Q4_K stores them as they come.
static inline void q45_k_header(const float* scales, const float* mins, const float* sw, bool clamp_weighted, uint8_t* out, SuperScales* ss) {
  uint8_t* s12 = out + blk::kKScales;
  if (sw) {
    uint8_t Ls[8], Lm[8];
    const float d = fit_positive(8, 63, scales, sw, Ls);
    const float m = fit_positive(8, 63, mins, sw, Lm);
    for (int j = 0; j < 8; ++j) {
      const uint8_t ls = clamp_weighted && Ls[j] > 63 ? 63 : Ls[j];
      const uint8_t lm = clamp_weighted && Lm[j] > 63 ? 63 : Lm[j];
      k4_put_scale_min(s12, j, ls, lm);
    }
    put_half_at(out + blk::kKD, d);
    put_half_at(out + blk::kKDmin, m);
  } else {
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 8; ++j) {
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
    for (int j = 0; j < 8; ++j) {
      uint8_t ls = static_cast<uint8_t>(llama_round(inv_scale * scales[j]));
      uint8_t lm = static_cast<uint8_t>(llama_round(inv_min * mins[j]));
      ls = ls < 63 ? ls : 63;
      lm = lm < 63 ? lm : 63;
      k4_put_scale_min(s12, j, ls, lm);
    }
    put_half_at(out + blk::kKD, max_scale / 63.0f);
    put_half_at(out + blk::kKDmin, max_min / 63.0f);
  }
  const float d = half_at(out + blk::kKD), dmin = half_at(out + blk::kKDmin);
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    k4_scale_min(s12, j, &sc, &m);
    ss->d[j] = d * static_cast<float>(sc);
    ss->dm[j] = dmin * static_cast<float>(m);
  }
}

// Q6_K's header: int8 sub-block scales under one f16 super-scale; a super-block whose sub-block scales
// are all ~0 is written as zeros.
static inline void q6_k_header(const float* scales, uint8_t* out, SuperScales* ss) {
  float max_scale = 0.0f, max_abs = 0.0f;
  for (int j = 0; j < 16; ++j) {
    const float a = __builtin_fabsf(scales[j]);
    if (a > max_abs) { max_abs = a; max_scale = scales[j]; }
  }
  ss->zero = max_abs < kGroupEps;
  if (ss->zero) {
    __builtin_memset(out, 0, blk::kQ6K);
    put_half_at(out + blk::kQ6KD, 0.0f);
    return;
  }
  const float iscale = -128.0f / max_scale;
  put_half_at(out + blk::kQ6KD, 1.0f / iscale);
  int8_t* sb = reinterpret_cast<int8_t*>(out + blk::kQ6KScales);
  for (int j = 0; j < 16; ++j) {
    const int l = llama_round(iscale * scales[j]);
    sb[j] = static_cast<int8_t>(l < 127 ? l : 127);
  }
  const float d = half_at(out + blk::kQ6KD);
  for (int j = 0; j < 16; ++j) ss->d[j] = d * static_cast<float>(sb[j]);
}

// Second pass with the stored scales: every sub-block whose step is not 0 gets its levels again, now
// against what a reader will reconstruct. Asymmetric: L = clamp(round((x + dm) / d), 0, nmax).
static inline void requantize_with_min(const float* x, int sub, int nsub, const SuperScales& ss, int nmax, uint8_t* L) {
  for (int j = 0; j < nsub; ++j) {
    const float d = ss.d[j];
    if (d == 0.0f) continue;
    const float dm = ss.dm[j];
    for (int i = 0; i < sub; ++i) L[sub * j + i] = static_cast<uint8_t>(clamp_int(llama_round((x[sub * j + i] + dm) / d), 0, nmax));
  }
}
// Symmetric: L = clamp(round(x / d), lo, hi) - lo.
static inline void requantize_symmetric(const float* x, const SuperScales& ss, int lo, int hi, int8_t* L) {
  for (int j = 0; j < 16; ++j) {
    const float d = ss.d[j];
    if (d == 0.0f) continue;
    for (int i = 0; i < 16; ++i) L[16 * j + i] = static_cast<int8_t>(clamp_int(llama_round(x[16 * j + i] / d), lo, hi) - lo);
  }
}

// ---- packing the levels -------------------------------------------------------------------------

// Four 2-bit levels per byte: byte l of each 32-byte run holds levels l, l+32, l+64, l+96 of its 128.
static inline void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const uint8_t* q = L + 128 * h + l;
      qs[32 * h + l] = static_cast<uint8_t>(q[0] | (q[32] << 2) | (q[64] << 4) | (q[96] << 6));
    }
}

static inline void pack_q2_k(const uint8_t* L, uint8_t* out) { pack_2bit(L, out + blk::kQ2KQs); }

// Q3_K: levels 0..7; bit 2 of level 32h + m is bit h of hmask[m], the low two bits go as Q2_K's
// (written per output byte, so that the loops vectorize).
static inline void pack_q3_k(const int8_t* Ls, uint8_t* out) {
  uint8_t* hmask = out + blk::kQ3KHmask;
  for (int m = 0; m < 32; ++m) {
    int bits = 0;
    for (int h = 0; h < 8; ++h) bits |= ((Ls[32 * h + m] >> 2) & 1) << h;
    hmask[m] = static_cast<uint8_t>(bits);
  }
  uint8_t* qs = out + blk::kQ3KQs;
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const int8_t* q = Ls + 128 * h + l;
      qs[32 * h + l] = static_cast<uint8_t>((q[0] & 3) | ((q[32] & 3) << 2) | ((q[64] & 3) << 4) | ((q[96] & 3) << 6));
    }
}

// Q4_K: byte l of 32-byte run h holds level 64h + l (low nibble) and 64h + 32 + l (high nibble).
static inline void pack_q4_k(const uint8_t* L, uint8_t* out) {
  uint8_t* qs = out + blk::kQ4KQs;
  for (int h = 0; h < 4; ++h)
    for (int l = 0; l < 32; ++l) qs[32 * h + l] = static_cast<uint8_t>(L[64 * h + l] | (L[64 * h + 32 + l] << 4));
}

// Q5_K: the low nibbles as Q4_K; bit 4 of level 64h + l in bit 2h of qh[l], of 64h + 32 + l in bit 2h+1.
static inline void pack_q5_k(const uint8_t* L, uint8_t* out) {
  uint8_t* qh = out + blk::kQ5KQh;
  uint8_t* qs = out + blk::kQ5KQs;
  for (int l = 0; l < 32; ++l) qh[l] = 0;
  for (int h = 0; h < 4; ++h)
    for (int l = 0; l < 32; ++l) {
      const int a = L[64 * h + l], b = L[64 * h + 32 + l];
      qs[32 * h + l] = static_cast<uint8_t>((a & 0xf) | ((b & 0xf) << 4));
      qh[l] = static_cast<uint8_t>(qh[l] | ((a >> 4) << (2 * h)) | ((b >> 4) << (2 * h + 1)));
    }
}

// Q6_K: levels 0..63; per 128 levels, ql holds the low nibbles (byte l: levels l | l+64 << 4, byte 32+l:
// l+32 | l+96 << 4) and qh the top two bits of l, l+32, l+64, l+96.
static inline void pack_q6_k(const int8_t* L, uint8_t* out) {
  for (int h = 0; h < 2; ++h) {
    const int8_t* q = L + 128 * h;
    uint8_t* ql = out + blk::kQ6KQl + 64 * h;
    uint8_t* qh = out + blk::kQ6KQh + 32 * h;
    for (int l = 0; l < 32; ++l) {
      ql[l] = static_cast<uint8_t>((q[l] & 0xf) | ((q[l + 64] & 0xf) << 4));
      ql[l + 32] = static_cast<uint8_t>((q[l + 32] & 0xf) | ((q[l + 96] & 0xf) << 4));
      qh[l] = static_cast<uint8_t>((q[l] >> 4) | ((q[l + 32] >> 4) << 2) | ((q[l + 64] >> 4) << 4) | ((q[l + 96] >> 4) << 6));
    }
  }
}

// Q5_0 / Q5_1 (and Q4_0 / Q4_1 from a search): 32 levels, byte j holds j | j+16 << 4; for 5 bits, bit 4
// of level j goes to bit j of the little-endian qh word.
static inline void pack_q5_levels(const uint8_t* L, uint8_t* qh4, uint8_t* qs) {
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    qs[j] = static_cast<uint8_t>((L[j] & 0xf) | ((L[j + 16] & 0xf) << 4));
    qh |= static_cast<uint32_t>((L[j] >> 4) & 1) << j;
    qh |= static_cast<uint32_t>((L[j + 16] >> 4) & 1) << (j + 16);
  }
  __builtin_memcpy(qh4, &qh, 4);
}
static inline void pack_q4_levels(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = static_cast<uint8_t>((L[j] & 0xf) | ((L[j + 16] & 0xf) << 4));
}

// ---- super-block encoders (x: 256 floats; qw: the importance matrix's 256 columns, or nullptr) ----

static inline void encode_q2_k(const float* x, const float* qw, uint8_t* out) {
  float w[kSuperBlock], sw[16], scales[16], mins[16];
  uint8_t L[kSuperBlock];
  if (qw) imatrix_weights(x, qw, 1.0f, 16, w, sw);
  else q2_k_plain_weights(x, w);
  const MinFitParams p = qw ? weighted_min_fit(3) : kQ2KFit;
  for (int j = 0; j < 16; ++j) scales[j] = fit_with_min(16, p, x + 16 * j, w + 16 * j, L + 16 * j, &mins[j]);
  SuperScales ss;
  q2_k_header(scales, mins, qw ? sw : nullptr, out, &ss);
  requantize_with_min(x, 16, 16, ss, 3, L);
  pack_q2_k(L, out);
}

static inline void encode_q3_k(const float* x, const float* qw, uint8_t* out) {
  float w[kSuperBlock], sw[16], scales[16];
  int8_t L[kSuperBlock];
  if (qw) {
    imatrix_weights(x, qw, 2.0f, 16, w, sw);
    for (int j = 0; j < 16; ++j) scales[j] = fit_symmetric(16, 4, x + 16 * j, w + 16 * j, L + 16 * j);
  } else {
    for (int j = 0; j < 16; ++j) scales[j] = fit_q3(16, 4, x + 16 * j, L + 16 * j);
  }
  SuperScales ss;
  q3_k_header(scales, qw ? sw : nullptr, out, &ss);
  requantize_symmetric(x, ss, -4, 3, L);
  pack_q3_k(L, out);
}

static inline void encode_q45_k(const float* x, const float* qw, int nmax, uint8_t* out) {
  float w[kSuperBlock], sw[8], scales[8], mins[8];
  uint8_t L[kSuperBlock];
  if (qw) imatrix_weights(x, qw, 2.0f, 32, w, sw);
  else q45_k_plain_weights(x, w);
  const MinFitParams p = qw ? weighted_min_fit(nmax) : (nmax == 15 ? kQ4KFit : kQ5KFit);
  for (int j = 0; j < 8; ++j) scales[j] = fit_with_min(32, p, x + 32 * j, w + 32 * j, L + 32 * j, &mins[j]);
  SuperScales ss;
  q45_k_header(scales, mins, qw ? sw : nullptr, nmax == 31, out, &ss);
  requantize_with_min(x, 32, 8, ss, nmax, L);
  if (nmax == 15) pack_q4_k(L, out);
  else pack_q5_k(L, out);
}

static inline void encode_q6_k(const float* x, const float* qw, uint8_t* out) {
  float scales[16];
  int8_t L[kSuperBlock];
  for (int j = 0; j < 16; ++j) scales[j] = fit_symmetric(16, 32, x + 16 * j, qw ? qw + 16 * j : nullptr, L + 16 * j);
  SuperScales ss;
  q6_k_header(scales, out, &ss);
  if (ss.zero) return;
  requantize_symmetric(x, ss, -32, 31, L);
  pack_q6_k(L, out);
}

// ---- 32-weight blocks ----------------------------------------------------------------------------

// Q4_0 / Q5_0 without an importance matrix (half = 8 / 16): d = the first largest magnitude, signed,
// / -half; level = min(2 half - 1, (int8)(x / d + half + 0.5)).
static inline void encode_sym_plain(const float* x, int half, uint8_t* out) {
  float amax;
  const float max = signed_abs_max(32, x, &amax);
  const float d = max / -static_cast<float>(half);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_half_at(out, d);
  const float offset = static_cast<float>(half) + 0.5f;
  uint8_t L[32];
  for (int j = 0; j < 32; ++j) {
    const int q = static_cast<int8_t>(trunc_to_i32(x[j] * id + offset));
    L[j] = static_cast<uint8_t>(q < 2 * half - 1 ? q : 2 * half - 1);
  }
  if (half == 8) pack_q4_levels(L, out + 2);
  else pack_q5_levels(L, out + 2, out + 6);
}

// Q4_1 / Q5_1 without an importance matrix (nmax = 15 / 31): d = (max - min) / nmax, m = min, level =
// (x - min) / d + 0.5 truncated (Q4_1: to int8, then min(15, ...); Q5_1: to uint8).
static inline void encode_min_plain(const float* x, int nmax, uint8_t* out) {
  float min = __FLT_MAX__, max = -__FLT_MAX__;
  for (int j = 0; j < 32; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
  const float d = (max - min) / static_cast<float>(nmax);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_half_at(out, d);
  put_half_at(out + 2, min);
  uint8_t L[32];
  for (int j = 0; j < 32; ++j) {
    const int q = trunc_to_i32((x[j] - min) * id + 0.5f);
    L[j] = nmax == 15 ? static_cast<uint8_t>(static_cast<int8_t>(q) < 15 ? static_cast<int8_t>(q) : 15) : static_cast<uint8_t>(q);
  }
  if (nmax == 15) pack_q4_levels(L, out + 4);
  else pack_q5_levels(L, out + 4, out + 8);
}

// The legacy blocks with an importance matrix: weights qw * sqrt(sigma2 + x^2) with sigma2 = mean(x^2)
// over the whole row (row_sigma2), then the symmetric search (Q4_0, Q5_0) or the search with a minimum
// (Q4_1, Q5_1).
static inline float row_sigma2(const float* x, int64_t cols) {
  float sum_x2 = 0.0f;
  for (int64_t j = 0; j < cols; ++j) sum_x2 += x[j] * x[j];
  return sum_x2 / static_cast<float>(cols);
}

static inline void legacy_weights(const float* x, const float* qw, float sigma2, float* w) {
  for (int j = 0; j < 32; ++j) w[j] = qw[j] * __builtin_sqrtf(sigma2 + x[j] * x[j]);
}

// nmax 8 (Q4_0) or 16 (Q5_0)
static inline void encode_sym_weighted(const float* x, const float* w, int nmax, uint8_t* out) {
  int8_t L[32];
  put_half_at(out, fit_symmetric(32, nmax, x, w, L));
  const uint8_t* U = reinterpret_cast<const uint8_t*>(L);
  if (nmax == 8) pack_q4_levels(U, out + 2);
  else pack_q5_levels(U, out + 2, out + 6);
}

// nmax 15 (Q4_1) or 31 (Q5_1)
static inline void encode_min_weighted(const float* x, const float* w, int nmax, uint8_t* out) {
  uint8_t L[32];
  float neg_min;
  const float d = fit_with_min(32, weighted_min_fit(nmax), x, w, L, &neg_min);
  put_half_at(out, d);
  put_half_at(out + 2, -neg_min);
  if (nmax == 15) pack_q4_levels(L, out + 4);
  else pack_q5_levels(L, out + 4, out + 8);
}

// ---- IQ4_NL (llama.cpp's quantize_iq4_nl: a 15-scale search per 32-weight block) ---------------

static const int8_t kIq4nlLevels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// The index of the level nearest v (ties to the upper one; NaN: 15), by llama.cpp's bisection.
static inline int iq4nl_nearest(float v) {
  if (v <= static_cast<float>(kIq4nlLevels[0])) return 0;
  if (v >= static_cast<float>(kIq4nlLevels[15])) return 15;
  int lo = 0, hi = 15;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (v < static_cast<float>(kIq4nlLevels[mid])) hi = mid;
    else lo = mid;
  }
  return v - static_cast<float>(kIq4nlLevels[hi - 1]) < static_cast<float>(kIq4nlLevels[hi]) - v ? hi - 1 : hi;
}

// qw: the block's 32 importance values, or nullptr (weights x^2).
static inline void encode_iq4_nl_block(const float* x, const float* qw, uint8_t* out) {
  float sigma2 = 0.0f;
  for (int j = 0; j < 32; ++j) sigma2 += x[j] * x[j];
  sigma2 *= 2.0f / 32.0f;
  float w[32];
  for (int j = 0; j < 32; ++j) w[j] = qw ? qw[j] * __builtin_sqrtf(sigma2 + x[j] * x[j]) : x[j] * x[j];
  float amax;
  const float max = signed_abs_max(32, x, &amax);
  float d = 0.0f;
  if (!(amax < kGroupEps)) {
    const float v0 = static_cast<float>(kIq4nlLevels[0]);
    d = -max / v0;
    float id = 1.0f / d;
    float sumqx = 0.0f, sumq2 = 0.0f;
    for (int j = 0; j < 32; ++j) {
      const float q = static_cast<float>(kIq4nlLevels[iq4nl_nearest(id * x[j])]);
      sumqx += w[j] * q * x[j];
      sumq2 += w[j] * q * q;
    }
    d = sumq2 > 0.0f ? sumqx / sumq2 : 0.0f;
    float best = d * sumqx;
    for (int t = -7; t <= 7; ++t) {
      id = static_cast<float>(t + kIq4nlLevels[0]) / max;
      sumqx = sumq2 = 0.0f;
      for (int j = 0; j < 32; ++j) {
        const float q = static_cast<float>(kIq4nlLevels[iq4nl_nearest(id * x[j])]);
        sumqx += w[j] * q * x[j];
        sumq2 += w[j] * q * q;
      }
      if (sumq2 > 0.0f && sumqx * sumqx > best * sumq2) {
        d = sumqx / sumq2;
        best = d * sumqx;
      }
    }
  }
  put_half_at(out, d);
  // the levels for the unrounded scale
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  uint8_t L[32];
  for (int j = 0; j < 32; ++j) L[j] = static_cast<uint8_t>(iq4nl_nearest(id * x[j]));
  pack_q4_levels(L, out + 2);
}

// ---- dequantization (ggml's dequantize_row_*) ----------------------------------------------------

// 32 consecutive weights of a block (chunk cc of it: 0 for blocks of 32, 0..7 in a super-block): their
// levels q, and y = a[l / 16] * q[l], plus b[l / 16] when `offset` (x - y computed as x + (-y), which
// IEEE defines to be the same). The products and sums are ggml's, in ggml's order.
struct Chunk32 {
  int8_t q[32];
  float a[2], b[2];
  bool offset;
};

static inline void decode_chunk32(Scheme s, const uint8_t* blk, int cc, Chunk32* c) {
  c->offset = false;
  c->b[0] = c->b[1] = 0.0f;
  switch (s) {
    case Scheme::GGML_Q5_0: case Scheme::GGML_Q5_1: {
      const bool with_min = s == Scheme::GGML_Q5_1;
      uint32_t qh;
      __builtin_memcpy(&qh, blk + (with_min ? 4 : 2), 4);
      const uint8_t* qs = blk + (with_min ? 8 : 6);
      for (int l = 0; l < 32; ++l) {
        const int v = ((l < 16 ? qs[l] : qs[l - 16] >> 4) & 0xf) | static_cast<int>(((qh >> l) & 1) << 4);
        c->q[l] = static_cast<int8_t>(with_min ? v : v - 16);
      }
      c->a[0] = c->a[1] = half_at(blk);
      if (with_min) {
        c->offset = true;
        c->b[0] = c->b[1] = half_at(blk + 2);
      }
      return;
    }
    case Scheme::GGML_Q2_K: case Scheme::GGML_Q3_K: {
      // 2-bit levels: weight 32cc + l is bits 2(cc % 4) of qs[32(cc / 4) + l]
      const bool q3 = s == Scheme::GGML_Q3_K;
      const uint8_t* qs = blk + (q3 ? blk::kQ3KQs : blk::kQ2KQs) + 32 * (cc / 4);
      for (int l = 0; l < 32; ++l) {
        int v = (qs[l] >> (2 * (cc % 4))) & 3;
        if (q3) v -= ((blk[blk::kQ3KHmask + l] >> cc) & 1) ? 0 : 4;
        c->q[l] = static_cast<int8_t>(v);
      }
      for (int h = 0; h < 2; ++h) {
        const int j = 2 * cc + h;
        if (q3) {
          c->a[h] = half_at(blk + blk::kQ3KD) * static_cast<float>(q3_k_scale(blk + blk::kQ3KScales, j));
        } else {
          const uint8_t sc = blk[blk::kQ2KScales + j];
          c->a[h] = half_at(blk + blk::kQ2KD) * static_cast<float>(sc & 0xf);
          c->b[h] = -(half_at(blk + blk::kQ2KDmin) * static_cast<float>(sc >> 4));
        }
      }
      c->offset = !q3;
      return;
    }
    case Scheme::GGML_Q4_K: case Scheme::GGML_Q5_K: {
      // weight 64h + 32k + l is nibble k of qs[32h + l] (Q5_K: plus bit 2h + k of qh[l])
      const bool five = s == Scheme::GGML_Q5_K;
      const uint8_t* qs = blk + (five ? blk::kQ5KQs : blk::kQ4KQs) + 32 * (cc / 2);
      for (int l = 0; l < 32; ++l) {
        int v = (qs[l] >> (4 * (cc % 2))) & 0xf;
        if (five) v |= ((blk[blk::kQ5KQh + l] >> cc) & 1) << 4;
        c->q[l] = static_cast<int8_t>(v);
      }
      int sc, m;
      k4_scale_min(blk + blk::kKScales, cc, &sc, &m);
      c->a[0] = c->a[1] = half_at(blk + blk::kKD) * static_cast<float>(sc);
      c->b[0] = c->b[1] = -(half_at(blk + blk::kKDmin) * static_cast<float>(m));
      c->offset = true;
      return;
    }
    default: {  // Q6_K: weight 128h + 32k + l: low nibble from ql[64h + l + 32(k % 2)] (high half for k >= 2),
                // top two bits from qh[32h + l] >> 2k
      const int h = cc / 4, k = cc % 4;
      const uint8_t* ql = blk + blk::kQ6KQl + 64 * h + 32 * (k % 2);
      const uint8_t* qh = blk + blk::kQ6KQh + 32 * h;
      for (int l = 0; l < 32; ++l) {
        const int low = (ql[l] >> (4 * (k / 2))) & 0xf;
        c->q[l] = static_cast<int8_t>((low | (((qh[l] >> (2 * k)) & 3) << 4)) - 32);
      }
      const int8_t* sb = reinterpret_cast<const int8_t*>(blk + blk::kQ6KScales);
      const float d = half_at(blk + blk::kQ6KD);
      for (int j = 0; j < 2; ++j) c->a[j] = d * static_cast<float>(sb[2 * cc + j]);
      return;
    }
  }
}

// Weights per block and bytes per block of the ggml block types.
static inline int llama_block_weights(Scheme s) {
  switch (s) {
    case Scheme::GGML_Q2_K: case Scheme::GGML_Q3_K: case Scheme::GGML_Q4_K: case Scheme::GGML_Q5_K: case Scheme::GGML_Q6_K: return kSuperBlock;
    default: return 32;
  }
}
static inline int llama_block_bytes(Scheme s) {
  switch (s) {
    case Scheme::GGML_Q8_0: return 34;
    case Scheme::GGML_Q4_0: case Scheme::GGML_IQ4_NL: return 18;
    case Scheme::GGML_Q4_1: return 20;
    case Scheme::GGML_Q5_0: return blk::kQ5_0;
    case Scheme::GGML_Q5_1: return blk::kQ5_1;
    case Scheme::GGML_Q2_K: return blk::kQ2K;
    case Scheme::GGML_Q3_K: return blk::kQ3K;
    case Scheme::GGML_Q4_K: return blk::kQ4K;
    case Scheme::GGML_Q5_K: return blk::kQ5K;
    case Scheme::GGML_Q6_K: return blk::kQ6K;
    default: return 0;
  }
}

// Dequantizes one block of Q5_0, Q5_1 or a K-quant into llama_block_weights floats.
static inline void dequant_llama_block(Scheme s, const uint8_t* b, float* y) {
  Chunk32 c;
  for (int cc = 0; cc < llama_block_weights(s) / 32; ++cc) {
    decode_chunk32(s, b, cc, &c);
    for (int l = 0; l < 32; ++l) {
      const float v = c.a[l / 16] * static_cast<float>(c.q[l]);
      y[32 * cc + l] = c.offset ? v + c.b[l / 16] : v;
    }
  }
}

// The f16 fields of a block that hold scales (false when one of them is Inf or NaN).
static inline bool llama_block_scales_finite(Scheme s, const uint8_t* b) {
  auto ok = [&](int off) { return __builtin_isfinite(half_at(b + off)); };
  switch (s) {
    case Scheme::GGML_Q4_1: case Scheme::GGML_Q5_1: return ok(0) && ok(2);
    case Scheme::GGML_Q2_K: return ok(blk::kQ2KD) && ok(blk::kQ2KDmin);
    case Scheme::GGML_Q3_K: return ok(blk::kQ3KD);
    case Scheme::GGML_Q4_K: case Scheme::GGML_Q5_K: return ok(blk::kKD) && ok(blk::kKDmin);
    case Scheme::GGML_Q6_K: return ok(blk::kQ6KD);
    default: return ok(0);
  }
}

// The types only llama.cpp's quantizers write (no search, GPTQ or HQQ).
static inline bool is_llama_type(Scheme s) {
  return s == Scheme::GGML_Q5_0 || s == Scheme::GGML_Q5_1 || s == Scheme::GGML_Q2_K || s == Scheme::GGML_Q3_K ||
         s == Scheme::GGML_Q4_K || s == Scheme::GGML_Q5_K || s == Scheme::GGML_Q6_K;
}

static inline bool is_k_quant(Scheme s) {
  return s == Scheme::GGML_Q2_K || s == Scheme::GGML_Q3_K || s == Scheme::GGML_Q4_K || s == Scheme::GGML_Q5_K || s == Scheme::GGML_Q6_K;
}

// The spec a kernel runs: the imatrix method without weights, or on Q8_0 (which llama.cpp quantizes
// without looking at them), is rtn, as in llama.cpp.
static inline QuantSpec spec_to_run(const QuantSpec& s) {
  QuantSpec r = s;
  if (r.method == Method::IMATRIX && (!r.weights || r.scheme == Scheme::GGML_Q8_0)) {
    r.method = Method::RTN;
    r.weights = nullptr;
  }
  return r;
}

// True when a spec (after spec_to_run) runs one of llama.cpp's quantizers from this header: the Q5 and
// K-quant types, an importance matrix on Q4_0/Q4_1/IQ4_NL, and IQ4_NL's rtn (llama.cpp's
// quantize_iq4_nl without one).
static inline bool is_llama_quantizer(const QuantSpec& s) {
  if (is_llama_type(s.scheme)) return true;
  if (s.scheme == Scheme::GGML_IQ4_NL) return s.method == Method::RTN || s.method == Method::IMATRIX;
  return (s.scheme == Scheme::GGML_Q4_0 || s.scheme == Scheme::GGML_Q4_1) && s.method == Method::IMATRIX;
}

// One K-quant super-block (x: 256 floats, qw: its 256 importance values or nullptr).
static inline void encode_k_block(Scheme s, const float* x, const float* qw, uint8_t* out) {
  switch (s) {
    case Scheme::GGML_Q2_K: encode_q2_k(x, qw, out); break;
    case Scheme::GGML_Q3_K: encode_q3_k(x, qw, out); break;
    case Scheme::GGML_Q4_K: encode_q45_k(x, qw, 15, out); break;
    case Scheme::GGML_Q5_K: encode_q45_k(x, qw, 31, out); break;
    default: encode_q6_k(x, qw, out); break;
  }
}

// One row of cols floats through llama.cpp's quantizer for an is_llama_quantizer spec; qw = the
// importance matrix (one value per column) for the imatrix method, else nullptr.
static inline void encode_llama_row(Scheme s, const float* x, int64_t cols, const float* qw, uint8_t* out) {
  const int64_t bw = llama_block_weights(s), bytes = llama_block_bytes(s), blocks = cols / bw;
  if (is_k_quant(s)) {
    for (int64_t b = 0; b < blocks; ++b) encode_k_block(s, x + b * bw, qw ? qw + b * bw : nullptr, out + b * bytes);
    return;
  }
  if (s == Scheme::GGML_IQ4_NL) {
    for (int64_t b = 0; b < blocks; ++b) encode_iq4_nl_block(x + 32 * b, qw ? qw + 32 * b : nullptr, out + 18 * b);
    return;
  }
  if (!qw) {  // Q5_0 / Q5_1 without an importance matrix
    for (int64_t b = 0; b < blocks; ++b)
      s == Scheme::GGML_Q5_0 ? encode_sym_plain(x + 32 * b, 16, out + bytes * b) : encode_min_plain(x + 32 * b, 31, out + bytes * b);
    return;
  }
  const float sigma2 = row_sigma2(x, cols);
  const int nmax = s == Scheme::GGML_Q4_0 ? 8 : s == Scheme::GGML_Q5_0 ? 16 : s == Scheme::GGML_Q4_1 ? 15 : 31;
  const bool with_min = s == Scheme::GGML_Q4_1 || s == Scheme::GGML_Q5_1;
  float w[32];
  for (int64_t b = 0; b < blocks; ++b) {
    legacy_weights(x + 32 * b, qw + 32 * b, sigma2, w);
    if (with_min) encode_min_weighted(x + 32 * b, w, nmax, out + bytes * b);
    else encode_sym_weighted(x + 32 * b, w, nmax, out + bytes * b);
  }
}

// Row r of the source as floats into x; a block holding NaN/Inf is counted in st (its first element's
// flat index kept) and replaced by zeros: the output of such a tensor is discarded by the caller.
static inline void refuse_nonfinite(float* x, int64_t n, int64_t first_index, QuantStatus& status) {
  int64_t bad = 0;
  for (int64_t j = 0; j < n; ++j) {
    if (__builtin_isfinite(x[j])) continue;
    if (status.nonfinite == 0) status.first_nonfinite = first_index + j;
    status.nonfinite++;
    bad++;
  }
  if (bad)
    for (int64_t j = 0; j < n; ++j) x[j] = 0.0f;
}
static inline void load_row_checked(const void* src, DType st, int64_t cols, int64_t r, int64_t block, float* x, QuantStatus& status) {
  for (int64_t j = 0; j < cols; ++j) x[j] = load_as_f32(src, st, r * cols + j);
  for (int64_t b = 0; b < cols; b += block) refuse_nonfinite(x + b, block, r * cols + b, status);
}

// Counts the blocks of an encoded row whose f16 scales overflowed.
static inline void count_scale_overflow(Scheme s, const uint8_t* row, int64_t cols, int64_t r, QuantStatus& status) {
  const int64_t bytes = llama_block_bytes(s), blocks = cols / llama_block_weights(s);
  for (int64_t b = 0; b < blocks; ++b) {
    if (llama_block_scales_finite(s, row + b * bytes)) continue;
    if (status.scale_overflow == 0) status.first_overflow_row = r;
    status.scale_overflow++;
  }
}

}  // namespace qk
