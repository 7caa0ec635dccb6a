// Sizes and consistency rules of each scheme's storage layout (shared by every ISA and the binding).
#include "kernels.h"
#include "kquants.h"

namespace qk {

int64_t dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }

static bool is_ggml(Scheme s) { return s != Scheme::INT_SYM && s != Scheme::INT_ASYM; }

// The bits each ggml type stores per weight (its nominal width).
static int ggml_bits(Scheme s) {
  switch (s) {
    case Scheme::GGML_Q8_0: return 8;
    case Scheme::GGML_Q5_0: case Scheme::GGML_Q5_1: case Scheme::GGML_Q5_K: return 5;
    case Scheme::GGML_Q2_K: return 2;
    case Scheme::GGML_Q3_K: return 3;
    case Scheme::GGML_Q6_K: return 6;
    default: return 4;
  }
}

const char* check_spec(const QuantSpec& spec, int64_t cols) {
  if (cols <= 0) return "row length must be positive";
  if (static_cast<int32_t>(spec.method) < 0 || static_cast<int32_t>(spec.method) > static_cast<int32_t>(Method::IMATRIX))
    return "unknown method";
  if (static_cast<int32_t>(spec.scheme) < 0 || static_cast<int32_t>(spec.scheme) > static_cast<int32_t>(Scheme::GGML_Q6_K))
    return "unknown scheme";
  if (spec.method == Method::HQQ && spec.scheme != Scheme::GGML_Q4_1)
    return "HQQ fits a fractional minimum, which only Q4_1 blocks store (compressed-tensors zero points are integers)";
  if (spec.method == Method::GPTQ && spec.scheme == Scheme::GGML_Q4_1)
    return "GPTQ covers q8_0, q4_0, iq4_nl, int_sym and int_asym (not q4_1)";
  if (is_ggml(spec.scheme)) {
    const int64_t block = llama_block_weights(spec.scheme);
    if (spec.group != block) return block == 32 ? "ggml block types use groups of 32" : "K-quant types use super-blocks (groups) of 256";
    if (cols % block != 0)
      return block == 32 ? "ggml block types need a row length that is a multiple of 32" : "K-quant types need a row length that is a multiple of 256";
    if (spec.scale_dtype != DType::F16) return "ggml block types store f16 scales";
    if (spec.bits != ggml_bits(spec.scheme)) return "bits do not match the ggml block type";
    const bool legacy = spec.scheme == Scheme::GGML_Q8_0 || spec.scheme == Scheme::GGML_Q4_0 || spec.scheme == Scheme::GGML_Q4_1 ||
                        spec.scheme == Scheme::GGML_IQ4_NL;
    if (!legacy && spec.method != Method::RTN && spec.method != Method::IMATRIX)
      return "Q5_0, Q5_1 and the K-quants are made by llama.cpp's quantizer: method rtn or imatrix";
    return nullptr;
  }
  if (spec.method == Method::IMATRIX) return "the imatrix method is llama.cpp's quantizer, for ggml block types";
  if (spec.bits != 4 && spec.bits != 8) return "bits must be 4 or 8";
  if (spec.group <= 0) return "group size must be positive";
  if (cols % spec.group != 0) return "group size must divide the row length";
  return nullptr;
}

int64_t data_bytes_per_row(const QuantSpec& spec, int64_t cols) {
  if (check_spec(spec, cols)) return 0;
  if (is_ggml(spec.scheme)) return cols / spec.group * llama_block_bytes(spec.scheme);
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
