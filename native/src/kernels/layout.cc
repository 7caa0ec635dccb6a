// Sizes and consistency rules of each scheme's storage layout (shared by every ISA and the binding).
#include "kernels.h"

namespace qk {

int64_t dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }

static bool is_ggml(Scheme s) {
  return s == Scheme::GGML_Q8_0 || s == Scheme::GGML_Q4_0 || s == Scheme::GGML_Q4_1 || s == Scheme::GGML_IQ4_NL;
}

static int64_t ggml_block_bytes(Scheme s) {
  switch (s) {
    case Scheme::GGML_Q8_0: return 34;
    case Scheme::GGML_Q4_0: return 18;
    case Scheme::GGML_Q4_1: return 20;
    case Scheme::GGML_IQ4_NL: return 18;
    default: return 0;
  }
}

const char* check_spec(const QuantSpec& spec, int64_t cols) {
  if (cols <= 0) return "row length must be positive";
  if (spec.method != Method::RTN && spec.method != Method::SEARCH && spec.method != Method::GPTQ && spec.method != Method::HQQ)
    return "unknown method";
  if (spec.method == Method::HQQ && spec.scheme != Scheme::GGML_Q4_1)
    return "HQQ fits a fractional minimum, which only Q4_1 blocks store (compressed-tensors zero points are integers)";
  if (spec.method == Method::GPTQ && (spec.scheme == Scheme::GGML_Q4_1 || spec.scheme == Scheme::INT_ASYM))
    return "GPTQ covers the symmetric schemes (q8_0, q4_0, iq4_nl, int_sym)";
  if (is_ggml(spec.scheme)) {
    if (spec.group != 32) return "ggml block types use groups of 32";
    if (cols % 32 != 0) return "ggml block types need a row length that is a multiple of 32";
    if (spec.scale_dtype != DType::F16) return "ggml block types store f16 scales";
    const int want_bits = spec.scheme == Scheme::GGML_Q8_0 ? 8 : 4;
    if (spec.bits != want_bits) return "bits do not match the ggml block type";
    if (spec.scheme == Scheme::GGML_IQ4_NL && spec.method == Method::RTN) return "IQ4_NL blocks are made by the scale search (or GPTQ) only";
    return nullptr;
  }
  if (spec.scheme != Scheme::INT_SYM && spec.scheme != Scheme::INT_ASYM) return "unknown scheme";
  if (spec.bits != 4 && spec.bits != 8) return "bits must be 4 or 8";
  if (spec.group <= 0) return "group size must be positive";
  if (cols % spec.group != 0) return "group size must divide the row length";
  return nullptr;
}

int64_t data_bytes_per_row(const QuantSpec& spec, int64_t cols) {
  if (check_spec(spec, cols)) return 0;
  if (is_ggml(spec.scheme)) return cols / 32 * ggml_block_bytes(spec.scheme);
  const int64_t per_word = 32 / spec.bits;
  return (cols + per_word - 1) / per_word * 4;
}

int64_t scale_bytes_per_row(const QuantSpec& spec, int64_t cols) {
  if (check_spec(spec, cols) || is_ggml(spec.scheme)) return 0;
  return cols / spec.group * dtype_size(spec.scale_dtype);
}

int64_t zero_bytes_per_row(const QuantSpec& spec, int64_t cols) {
  if (check_spec(spec, cols) || spec.scheme != Scheme::INT_ASYM) return 0;
  return cols / spec.group;
}

}  // namespace qk
