// Plain C++ kernel API: raw pointers and lengths, no Node types.
// The scalar implementation (scalar.cc) is the reference; every other ISA must match it bit for bit.
#pragma once
#include <cstddef>
#include <cstdint>

namespace qk {

enum class DType : int32_t { F32 = 0, F16 = 1, BF16 = 2 };

// Quantization schemes. The GGML_* ones reproduce ggml's reference quantizers exactly (block of 32,
// fp16 scales). INT_* are the compressed-tensors "pack-quantized" schemes: any group size that divides
// the row (or the whole row), scales in F16/BF16/F32, values packed LSB-first into 32-bit words.
enum class Scheme : int32_t {
  GGML_Q8_0 = 0,  // d = absmax/127, q = roundf(x/d)              (block: f16 d, i8 qs[32])
  GGML_Q4_0 = 1,  // d = signed max / -8, q = min(15, (i8)(x/d + 8.5))  (block: f16 d, u8 qs[16])
  GGML_Q4_1 = 2,  // d = (max-min)/15, m = min, q = min(15, (i8)((x-m)/d + 0.5))  (f16 d, f16 m, qs[16])
  INT_SYM = 3,    // s = absmax / ((2^b - 1)/2), q = clamp(rne(x/s), -2^(b-1), 2^(b-1)-1)
  INT_ASYM = 4,   // range [min(min,0), max(max,0)], s = range/(2^b-1), zp = clamp(rne(qmin - lo/s))
  GGML_IQ4_NL = 5,  // llama.cpp's non-linear 4-bit code (block: f16 d, u8 qs[16]; x = d * kIq4nlValues[q])
  // llama.cpp's own quantizers (kquants.h), byte for byte: Q5_0/Q5_1 (blocks of 32: 22 / 24 bytes) and
  // the K-quants (super-blocks of 256 weights: 84 / 110 / 144 / 176 / 210 bytes).
  GGML_Q5_0 = 6,
  GGML_Q5_1 = 7,
  GGML_Q2_K = 8,
  GGML_Q3_K = 9,
  GGML_Q4_K = 10,
  GGML_Q5_K = 11,
  GGML_Q6_K = 12,
};

// How a group's scale is chosen. RTN: from the largest value (the rules above, ggml's references
// exactly). SEARCH: a grid of candidate scales with a least-squares refit, weighted by the optional
// per-column importance (search.h). Both write the same layouts, so every reader loads either.
// GPTQ: the search's scales with error feedback across columns (gptq/gptq.h); the binding sends it to
// gptq_quantize_rows with its factor. The KernelTable treats it as SEARCH (GPTQ with an identity Hessian).
// HQQ: Q4_1 only, RTN's scale with the minimum fitted by half-quadratic splitting (search.h, hqq_q4_1);
// every ISA runs the scalar reference (it loses to the search, docs/quality.md).
// For IQ4_NL and the types of kquants.h, RTN is llama.cpp's quantizer without an importance matrix.
// IMATRIX: llama.cpp's quantizer with its importance matrix (`weights`: one value per column), on every
// ggml type (Q8_0 ignores it, as llama.cpp does); without weights it is RTN, as in llama.cpp.
enum class Method : int32_t { RTN = 0, SEARCH = 1, GPTQ = 2, HQQ = 3, IMATRIX = 4 };

struct QuantSpec {
  Scheme scheme;
  int32_t bits;        // 4 or 8; the ggml types' own width (Q5_*: 5, Q2_K..Q6_K: 2..6)
  int64_t group;       // elements per group (32 for GGML_*, 256 for the K-quants), divides cols
  DType scale_dtype;   // F16 for GGML_*; F16/BF16/F32 for INT_*
  Method method = Method::RTN;
  // SEARCH and IMATRIX: one non-negative importance per column (length = cols), or nullptr (SEARCH: all 1).
  const float* weights = nullptr;
};

// Buffers that hold one quantized tensor of `rows` x `cols`.
//  GGML_*: data = rows * (cols/group) blocks; scales/zeros unused.
//  INT_*:  data = rows * ceil(cols*bits/32) * 4 bytes (the packed int32 words, little-endian);
//          scales = rows * (cols/group) scale values of scale_dtype;
//          zeros  = rows * (cols/group) signed int8 zero points (INT_ASYM only; packed later by the writer).
struct QuantParts {
  uint8_t* data;
  uint8_t* scales;
  int8_t* zeros;
};
struct ConstQuantParts {
  const uint8_t* data;
  const uint8_t* scales;
  const int8_t* zeros;
};

// Layout sizes in bytes (0 when the spec does not apply to `cols`).
int64_t data_bytes_per_row(const QuantSpec& spec, int64_t cols);
int64_t scale_bytes_per_row(const QuantSpec& spec, int64_t cols);
int64_t zero_bytes_per_row(const QuantSpec& spec, int64_t cols);
// nullptr when the spec is consistent with `cols`, else a static message saying why not.
const char* check_spec(const QuantSpec& spec, int64_t cols);
int64_t dtype_size(DType t);

// Result of quantizing a range of rows: the first problem found, if any.
struct QuantStatus {
  int64_t nonfinite = 0;        // NaN/Inf inputs seen (the output is then meaningless)
  int64_t first_nonfinite = -1; // flat element index of the first one
  int64_t scale_overflow = 0;   // groups whose scale does not fit the scale dtype (Inf after rounding)
  int64_t first_overflow_row = -1;
};

// Σe², Σx², max|e|, count and NaN/Inf count, in double, for a round trip x -> q -> x̂.
struct ErrorStats {
  double sum_sq_err = 0;
  double sum_sq_ref = 0;
  double max_abs_err = 0;
  int64_t count = 0;
  int64_t nonfinite = 0;
};

// One implementation of every kernel for one instruction set. Row ranges let callers split work
// across threads; every function is pure over its rows.
struct KernelTable {
  const char* isa;
  QuantStatus (*quantize_rows)(const QuantSpec&, const void* src, DType src_type, int64_t cols,
                               int64_t row_begin, int64_t row_end, QuantParts out);
  void (*dequantize_rows)(const QuantSpec&, ConstQuantParts in, int64_t cols, int64_t row_begin,
                          int64_t row_end, float* out);
  ErrorStats (*error_rows)(const QuantSpec&, const void* src, DType src_type, ConstQuantParts in,
                           int64_t cols, int64_t row_begin, int64_t row_end);
};

const KernelTable& scalar_kernels();

// Run-time dispatch: the best table for this CPU, unless QUANTKIT_ISA names another one.
// Returns nullptr with `error` set when QUANTKIT_ISA asks for something this CPU or build lacks.
const KernelTable* select_kernels(const char** error);
// Every ISA compiled into this build that this CPU can run (scalar first).
int available_isas(const KernelTable** out, int max);

}  // namespace qk
