// The scalar reference kernels: the truth every SIMD implementation is tested against.
// Built with -ffp-contract=off so that a*b+c is never fused: ggml's reference quantizers round after
// the multiply, and fusing would change results in the last bit.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels.h"
#include "kquants.h"
#include "numeric.h"
#include "search.h"

namespace qk {
namespace {

constexpr int kBlock = 32;

bool group_is_finite(const float* x, int64_t n, int64_t* bad) {
  for (int64_t j = 0; j < n; ++j) {
    if (!std::isfinite(x[j])) { *bad = j; return false; }
  }
  return true;
}

// --- ggml blocks --------------------------------------------------------------------------------

void q8_0_block(const float* x, uint8_t* out) {
  float amax = 0.0f;
  for (int j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const uint16_t dh = f32_to_f16(d);
  std::memcpy(out, &dh, 2);
  for (int j = 0; j < kBlock; ++j) {
    out[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(round_away_to_i32(x[j] * id)));
  }
}

// ggml blocks with a searched scale: Q8_0, Q4_0 and IQ4_NL (symmetric codes), Q4_1 (scale and min).
void searched_sym_block(const QuantSpec& spec, const float* x, const float* w, uint8_t* out) {
  const SymCode c = sym_code_for(spec);
  encode_sym_block(spec, c, x, search_sym_scale(c, x, w, kBlock), out);  // the caller checks the scale
}

// A Q4_1 block for a fitted (step, minimum): searched (search_asym) or HQQ's (hqq_q4_1).
void fitted_q4_1_block(const float* x, AsymFit f, uint8_t* out) {
  const uint16_t dh = f32_to_f16(f.d), mh = f32_to_f16(f.m);
  std::memcpy(out, &dh, 2);
  std::memcpy(out + 2, &mh, 2);
  const float d = f16_to_f32(dh), m = f16_to_f32(mh);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int j = 0; j < kBlock / 2; ++j) {
    float l0 = std::nearbyint((x[j] - m) * id), l1 = std::nearbyint((x[j + kBlock / 2] - m) * id);
    l0 = std::min(15.0f, std::max(0.0f, l0));
    l1 = std::min(15.0f, std::max(0.0f, l1));
    out[4 + j] = static_cast<uint8_t>(static_cast<int>(l0) | (static_cast<int>(l1) << 4));
  }
}

void searched_q4_1_block(const float* x, const float* w, uint8_t* out) { fitted_q4_1_block(x, search_asym(x, w, kBlock, 15.0f), out); }

void dequant_ggml_block(Scheme s, const uint8_t* in, float* y) {
  uint16_t dh;
  std::memcpy(&dh, in, 2);
  const float d = f16_to_f32(dh);
  if (s == Scheme::GGML_Q8_0) {
    for (int j = 0; j < kBlock; ++j) y[j] = static_cast<float>(static_cast<int8_t>(in[2 + j])) * d;
  } else if (s == Scheme::GGML_IQ4_NL) {
    for (int j = 0; j < kBlock / 2; ++j) {
      y[j] = kIq4nlValues[in[2 + j] & 0xf] * d;
      y[j + kBlock / 2] = kIq4nlValues[in[2 + j] >> 4] * d;
    }
  } else if (s == Scheme::GGML_Q4_0) {
    for (int j = 0; j < kBlock / 2; ++j) {
      y[j] = static_cast<float>((in[2 + j] & 0xf) - 8) * d;
      y[j + kBlock / 2] = static_cast<float>((in[2 + j] >> 4) - 8) * d;
    }
  } else {
    uint16_t mh;
    std::memcpy(&mh, in + 2, 2);
    const float m = f16_to_f32(mh);
    for (int j = 0; j < kBlock / 2; ++j) {
      y[j] = static_cast<float>(in[4 + j] & 0xf) * d + m;
      y[j + kBlock / 2] = static_cast<float>(in[4 + j] >> 4) * d + m;
    }
  }
}

// --- compressed-tensors integer groups ----------------------------------------------------------

inline void put_packed(uint8_t* row, int bits, int64_t k, uint32_t u) {
  if (bits == 8) { row[k] = static_cast<uint8_t>(u); return; }
  uint8_t& b = row[k >> 1];
  b = (k & 1) ? static_cast<uint8_t>((b & 0x0f) | (u << 4)) : static_cast<uint8_t>((b & 0xf0) | u);
}

inline int32_t get_packed(const uint8_t* row, int bits, int64_t k) {
  if (bits == 8) return row[k];
  return (row[k >> 1] >> ((k & 1) * 4)) & 0xf;
}

// A compressed-tensors group with a searched scale (and zero point); false when the scale overflows.
bool searched_int_group(const QuantSpec& spec, const float* x, const float* w, int64_t n, uint8_t* packed_row,
                        int64_t k0, uint8_t* scales, int64_t scale_index, int8_t* zero) {
  const int bits = spec.bits;
  const float qmin = -static_cast<float>(1 << (bits - 1));
  const float qmax = static_cast<float>((1 << (bits - 1)) - 1);
  const uint32_t offset = 1u << (bits - 1);
  if (spec.scheme == Scheme::INT_SYM) {
    const SymCode c = sym_code_for(spec);
    return encode_sym_int_group(spec, c, x, n, search_sym_scale(c, x, w, n), packed_row, k0, scales, scale_index);
  }
  const IntAsymFit f = search_asym_int(x, w, n, qmin, qmax);
  const float sq = store_scale(scales, spec.scale_dtype, scale_index, f.s);
  if (!std::isfinite(sq)) return false;
  const float id = stored_scale_inverse(sq);
  const float zp = f.zp;
  *zero = static_cast<int8_t>(zp);
  for (int64_t j = 0; j < n; ++j) {
    const float q = std::min(qmax, std::max(qmin, std::nearbyint(x[j] * id) + zp));
    put_packed(packed_row, bits, k0 + j, static_cast<uint32_t>(static_cast<int32_t>(q) + static_cast<int32_t>(offset)));
  }
  return true;
}

// Quantizes one group; returns false when its scale overflows the scale dtype.
bool int_group(const QuantSpec& spec, const float* x, int64_t n, uint8_t* packed_row, int64_t k0,
               uint8_t* scales, int64_t scale_index, int8_t* zero) {
  const int bits = spec.bits;
  const float qmin = -static_cast<float>(1 << (bits - 1));
  const float qmax = static_cast<float>((1 << (bits - 1)) - 1);
  const float levels = static_cast<float>((1 << bits) - 1);
  float s, zp = 0.0f;
  float lo = 0.0f, hi = 0.0f;
  if (spec.scheme == Scheme::INT_SYM) {
    float amax = 0.0f;
    for (int64_t j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j]));
    s = amax / (levels * 0.5f);
  } else {
    for (int64_t j = 0; j < n; ++j) { lo = std::min(lo, x[j]); hi = std::max(hi, x[j]); }
    s = (hi - lo) / levels;
  }
  const float sq = store_scale(scales, spec.scale_dtype, scale_index, s);
  if (!std::isfinite(sq)) return false;
  const float id = stored_scale_inverse(sq);
  if (spec.scheme == Scheme::INT_ASYM) {
    zp = std::min(qmax, std::max(qmin, std::nearbyint(qmin - lo * id)));
    *zero = static_cast<int8_t>(zp);
  }
  const uint32_t offset = 1u << (bits - 1);
  for (int64_t j = 0; j < n; ++j) {
    const float q = std::min(qmax, std::max(qmin, std::nearbyint(x[j] * id) + zp));
    put_packed(packed_row, bits, k0 + j, static_cast<uint32_t>(static_cast<int32_t>(q) + static_cast<int32_t>(offset)));
  }
  return true;
}

// --- row drivers --------------------------------------------------------------------------------

// llama.cpp's quantizers (kquants.h), a whole row at a time: Q4_0/Q5_0 and friends with an importance
// matrix take the mean square of the row.
QuantStatus llama_rows(const QuantSpec& spec, const void* src, DType src_type, int64_t cols, int64_t row_begin,
                       int64_t row_end, QuantParts out) {
  QuantStatus st;
  const int64_t data_row = data_bytes_per_row(spec, cols);
  std::vector<float> x(static_cast<size_t>(cols));
  for (int64_t r = row_begin; r < row_end; ++r) {
    uint8_t* row_out = out.data + r * data_row;
    load_row_checked(src, src_type, cols, r, spec.group, x.data(), st);
    encode_llama_row(spec.scheme, x.data(), cols, spec.weights, row_out);
    count_scale_overflow(spec.scheme, row_out, cols, r, st);
  }
  return st;
}

QuantStatus quantize_rows(const QuantSpec& requested, const void* src, DType src_type, int64_t cols,
                          int64_t row_begin, int64_t row_end, QuantParts out) {
  const QuantSpec spec = spec_to_run(requested);
  if (is_llama_quantizer(spec)) return llama_rows(spec, src, src_type, cols, row_begin, row_end, out);
  QuantStatus st;
  const int64_t g = spec.group;
  const int64_t groups = cols / g;
  const int64_t data_row = data_bytes_per_row(spec, cols);
  std::vector<float> x(static_cast<size_t>(g));
  const bool ggml = spec.scheme == Scheme::GGML_Q8_0 || spec.scheme == Scheme::GGML_Q4_0 ||
                    spec.scheme == Scheme::GGML_Q4_1 || spec.scheme == Scheme::GGML_IQ4_NL;
  const bool search = spec.method == Method::SEARCH || spec.method == Method::GPTQ;  // GPTQ without its factor is the search
  const int64_t block_bytes = ggml ? data_row / groups : 0;
  for (int64_t r = row_begin; r < row_end; ++r) {
    uint8_t* row_out = out.data + r * data_row;
    if (!ggml) std::memset(row_out, 0, static_cast<size_t>(data_row));
    for (int64_t gi = 0; gi < groups; ++gi) {
      const int64_t base = r * cols + gi * g;
      for (int64_t j = 0; j < g; ++j) x[j] = load_as_f32(src, src_type, base + j);
      int64_t bad;
      if (!group_is_finite(x.data(), g, &bad)) {
        if (st.nonfinite == 0) st.first_nonfinite = base + bad;
        for (int64_t j = 0; j < g; ++j) st.nonfinite += std::isfinite(x[j]) ? 0 : 1;
        std::fill(x.begin(), x.end(), 0.0f);  // keep going with defined values; caller discards
      }
      bool ok = true;
      const float* w = spec.weights ? spec.weights + gi * g : nullptr;
      if (ggml) {
        uint8_t* blk = row_out + gi * block_bytes;
        if (spec.method == Method::HQQ) fitted_q4_1_block(x.data(), hqq_q4_1(x.data(), kBlock), blk);
        else if (search && spec.scheme == Scheme::GGML_Q4_1) searched_q4_1_block(x.data(), w, blk);
        else if (search) searched_sym_block(spec, x.data(), w, blk);
        else if (spec.scheme == Scheme::GGML_Q8_0) q8_0_block(x.data(), blk);
        else if (spec.scheme == Scheme::GGML_Q4_0) encode_sym_plain(x.data(), 8, blk);
        else encode_min_plain(x.data(), 15, blk);
        uint16_t dh;
        std::memcpy(&dh, blk, 2);
        ok = std::isfinite(f16_to_f32(dh));
        if (ok && spec.scheme == Scheme::GGML_Q4_1) {
          std::memcpy(&dh, blk + 2, 2);
          ok = std::isfinite(f16_to_f32(dh));
        }
      } else {
        int8_t* zero = out.zeros ? out.zeros + r * groups + gi : nullptr;
        int8_t unused = 0;
        ok = search ? searched_int_group(spec, x.data(), w, g, row_out, gi * g, out.scales, r * groups + gi, zero ? zero : &unused)
                    : int_group(spec, x.data(), g, row_out, gi * g, out.scales, r * groups + gi, zero ? zero : &unused);
      }
      if (!ok) {
        if (st.scale_overflow == 0) st.first_overflow_row = r;
        st.scale_overflow++;
      }
    }
  }
  return st;
}

void dequantize_group(const QuantSpec& spec, ConstQuantParts in, int64_t cols, int64_t r, int64_t gi,
                      float* y) {
  const int64_t g = spec.group;
  const int64_t data_row = data_bytes_per_row(spec, cols);
  const uint8_t* row_in = in.data + r * data_row;
  if (spec.scheme == Scheme::GGML_Q8_0 || spec.scheme == Scheme::GGML_Q4_0 ||
      spec.scheme == Scheme::GGML_Q4_1 || spec.scheme == Scheme::GGML_IQ4_NL) {
    dequant_ggml_block(spec.scheme, row_in + gi * (data_row / (cols / g)), y);
    return;
  }
  if (spec.scheme != Scheme::INT_SYM && spec.scheme != Scheme::INT_ASYM) {
    dequant_llama_block(spec.scheme, row_in + gi * llama_block_bytes(spec.scheme), y);
    return;
  }
  const int64_t groups = cols / g;
  const float s = load_scale(in.scales, spec.scale_dtype, r * groups + gi);
  const int32_t offset = 1 << (spec.bits - 1);
  const int32_t zp = spec.scheme == Scheme::INT_ASYM ? in.zeros[r * groups + gi] : 0;
  for (int64_t j = 0; j < g; ++j) {
    const int32_t q = get_packed(row_in, spec.bits, gi * g + j) - offset;
    y[j] = static_cast<float>(q - zp) * s;
  }
}

void dequantize_rows(const QuantSpec& spec, ConstQuantParts in, int64_t cols, int64_t row_begin,
                     int64_t row_end, float* out) {
  const int64_t groups = cols / spec.group;
  for (int64_t r = row_begin; r < row_end; ++r)
    for (int64_t gi = 0; gi < groups; ++gi)
      dequantize_group(spec, in, cols, r, gi, out + r * cols + gi * spec.group);
}

ErrorStats error_rows(const QuantSpec& spec, const void* src, DType src_type, ConstQuantParts in,
                      int64_t cols, int64_t row_begin, int64_t row_end) {
  ErrorStats es;
  const int64_t g = spec.group;
  const int64_t groups = cols / g;
  std::vector<float> y(static_cast<size_t>(g));
  for (int64_t r = row_begin; r < row_end; ++r) {
    for (int64_t gi = 0; gi < groups; ++gi) {
      dequantize_group(spec, in, cols, r, gi, y.data());
      for (int64_t j = 0; j < g; ++j) {
        const float x = load_as_f32(src, src_type, r * cols + gi * g + j);
        if (!std::isfinite(x) || !std::isfinite(y[j])) { es.nonfinite++; continue; }
        const double e = static_cast<double>(y[j]) - static_cast<double>(x);
        es.sum_sq_err += e * e;
        es.sum_sq_ref += static_cast<double>(x) * static_cast<double>(x);
        es.max_abs_err = std::max(es.max_abs_err, std::fabs(e));
        es.count++;
      }
    }
  }
  return es;
}

}  // namespace

const KernelTable& scalar_kernels() {
  static const KernelTable table{"scalar", quantize_rows, dequantize_rows, error_rows};
  return table;
}

}  // namespace qk
