// Scalar number conversions shared by the kernels. Every function has internal linkage (static inline)
// and uses compiler builtins only (no std:: inline functions or templates), so that a copy compiled
// inside an ISA-specific file (with -mavx2 etc.) can never be picked by the linker for code that runs
// on a CPU without that ISA: COMDAT copies of std:: templates would be merged across files.
#pragma once
#include <cstdint>

#include "kernels.h"

namespace qk {

static inline uint32_t f32_bits(float f) { uint32_t u; __builtin_memcpy(&u, &f, 4); return u; }
static inline float bits_f32(uint32_t u) { float f; __builtin_memcpy(&f, &u, 4); return f; }

static inline float bf16_to_f32(uint16_t h) { return bits_f32(static_cast<uint32_t>(h) << 16); }

// Round to nearest even; NaN stays NaN (quiet). Same rule as ggml's and PyTorch's conversion.
static inline uint16_t f32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

static inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  if (exp == 0) {
    if (man == 0) return bits_f32(sign);
    // subnormal: value = man * 2^-24
    float v = static_cast<float>(man) * 5.9604644775390625e-08f;
    return sign ? -v : v;
  }
  if (exp == 31) return bits_f32(sign | 0x7f800000u | (man << 13));
  return bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

// IEEE round-to-nearest-even f32 -> f16, the result of F16C's vcvtps2ph with rounding mode 0,
// which is what ggml uses for block scales on x86.
static inline uint16_t f32_to_f16(float f) {
  const uint32_t u = f32_bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));  // NaN
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: Inf
  if (abs < 0x38800000u) {
    // result is subnormal (or zero) in f16: value / 2^-24, rounded to nearest even
    if (abs < 0x33000000u) return sign;  // < 2^-25: rounds to zero (2^-25 exactly is a tie to 0)
    const uint32_t exp = abs >> 23;
    const uint32_t man = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - exp;  // 14..24
    uint32_t half = man >> shift;
    const uint32_t rem = man & ((1u << shift) - 1u);
    const uint32_t mid = 1u << (shift - 1u);
    if (rem > mid || (rem == mid && (half & 1u))) half++;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t r = abs - 0x38000000u;  // rebias exponent (127 -> 15)
  r += 0xfffu + ((r >> 13) & 1u);
  return static_cast<uint16_t>(sign | (r >> 13));
}

static inline float load_as_f32(const void* src, DType t, int64_t i) {
  switch (t) {
    case DType::F32: { float v; __builtin_memcpy(&v, static_cast<const uint8_t*>(src) + 4 * i, 4); return v; }
    case DType::F16: { uint16_t h; __builtin_memcpy(&h, static_cast<const uint8_t*>(src) + 2 * i, 2); return f16_to_f32(h); }
    case DType::BF16: { uint16_t h; __builtin_memcpy(&h, static_cast<const uint8_t*>(src) + 2 * i, 2); return bf16_to_f32(h); }
  }
  return 0.0f;
}

// Stores a scale in `t` at index i and returns the value a reader will see.
static inline float store_scale(uint8_t* base, DType t, int64_t i, float v) {
  switch (t) {
    case DType::F32: __builtin_memcpy(base + 4 * i, &v, 4); return v;
    case DType::F16: { uint16_t h = f32_to_f16(v); __builtin_memcpy(base + 2 * i, &h, 2); return f16_to_f32(h); }
    case DType::BF16: { uint16_t h = f32_to_bf16(v); __builtin_memcpy(base + 2 * i, &h, 2); return bf16_to_f32(h); }
  }
  return 0.0f;
}

// The inverse used to quantize against a stored integer-group scale: 0 for a zero scale, and for a
// subnormal one whose inverse overflows (the group is ~0 and reconstructs as 0). The SIMD twin for
// eight scales at once is L8::inverse_finite_or_zero.
static inline float stored_scale_inverse(float sq) {
  const float id = sq != 0.0f ? 1.0f / sq : 0.0f;
  return __builtin_isfinite(id) ? id : 0.0f;
}

static inline float load_scale(const uint8_t* base, DType t, int64_t i) { return load_as_f32(base, t, i); }

// float -> int32 by truncation with x86 semantics (cvttss2si): NaN and out-of-range give INT32_MIN.
// C leaves these cases undefined; ggml's reference relies on the x86 result, so we spell it out.
static inline int32_t trunc_to_i32(float v) {
  if (!(v > -2147483904.0f && v < 2147483648.0f)) return INT32_MIN;
  return static_cast<int32_t>(v);
}

// roundf semantics (half away from zero), then the same x86 conversion rule.
static inline int32_t round_away_to_i32(float v) { return trunc_to_i32(__builtin_roundf(v)); }

}  // namespace qk
