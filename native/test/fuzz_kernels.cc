// libFuzzer harness over the kernel entry points the binding calls: check_spec and the layout sizes
// on raw values, then (when the spec is accepted) quantize / dequantize / error on every kernel table,
// differentially against the scalar reference. Any out-of-bounds access (AddressSanitizer), undefined
// behaviour (UBSan) or a table that disagrees with the reference is a crash, which libFuzzer reports.
// Build and run: scripts/fuzz-kernels.sh [seconds]
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../src/gptq/gptq.h"
#include "../src/kernels/kernels.h"

using namespace qk;

namespace {

struct Reader {
  const uint8_t* p;
  size_t n;
  uint8_t u8() { return n ? (n--, *p++) : 0; }
  uint16_t u16() { return static_cast<uint16_t>(u8() | (u8() << 8)); }
};

void require(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader r{data, size};
  QuantSpec spec{};
  spec.scheme = static_cast<Scheme>(r.u8() % 14);  // 13 is not a scheme: check_spec must refuse it
  spec.method = static_cast<Method>(r.u8() % 6);  // 5 is not a method
  const bool weighted = r.u8() % 2 == 1;
  // mostly the width the scheme wants (ggml's types each have one), sometimes any
  static const int kWidth[13] = {8, 4, 4, 4, 4, 4, 5, 5, 2, 3, 4, 5, 6};
  const uint8_t b = r.u8();
  spec.bits = b % 8 == 0 ? b % 9 : (static_cast<int>(spec.scheme) < 13 ? kWidth[static_cast<int>(spec.scheme)] : 4);
  if (spec.scheme == Scheme::INT_SYM || spec.scheme == Scheme::INT_ASYM) spec.bits = b % 3 == 0 ? 8 : 4;
  const DType src_type = static_cast<DType>(r.u8() % 3);
  spec.scale_dtype = static_cast<DType>(r.u8() % 3);
  const int64_t rows = 1 + r.u8() % 6;
  const bool k_quant = spec.scheme >= Scheme::GGML_Q2_K && spec.scheme <= Scheme::GGML_Q6_K;
  const uint16_t c = r.u16();
  // includes 0 and negatives; K-quant rows are mostly whole super-blocks
  const int64_t cols = k_quant && c % 4 != 0 ? 256 * (1 + c % 3) : static_cast<int64_t>(c % 700) - 2;
  const uint8_t g = r.u8();
  spec.group = g < 64 ? 32 : g < 128 ? 64 : g < 160 ? 128 : g < 200 ? (cols > 0 ? cols : 1) : g < 230 ? 256 : (g - 229);
  if (k_quant && g % 2 == 0) spec.group = 256;
  // The layout functions must answer any spec without misbehaving.
  const char* why = check_spec(spec, cols);
  const int64_t db = data_bytes_per_row(spec, cols), sb = scale_bytes_per_row(spec, cols), zb = zero_bytes_per_row(spec, cols);
  if (why) {
    require(db == 0 && sb == 0 && zb == 0);
    return 0;
  }
  require(db > 0 && sb >= 0 && zb >= 0 && cols > 0 && cols % spec.group == 0);

  // Source values: the remaining bytes, cycled, as raw elements of the source dtype (NaN, Inf,
  // subnormals and all).
  // Column importance as the binding admits it: finite and non-negative (zeros included).
  std::vector<float> weights(static_cast<size_t>(cols));
  // (a byte of 255 gives 1e30, so that weighted sums overflow)
  for (int64_t j = 0; j < cols; ++j) {
    const uint8_t v = r.u8();
    weights[static_cast<size_t>(j)] = v == 255 ? 1e30f : static_cast<float>(v % 64) / 8.0f;
  }
  if (weighted && (spec.method == Method::SEARCH || spec.method == Method::GPTQ || spec.method == Method::IMATRIX)) spec.weights = weights.data();
  const size_t esize = src_type == DType::F32 ? 4 : 2;
  std::vector<uint8_t> src(static_cast<size_t>(rows * cols) * esize);
  for (size_t i = 0; i < src.size(); ++i) src[i] = r.n ? r.p[i % r.n] : static_cast<uint8_t>(i * 37);

  const KernelTable* tables[8];
  const int n = available_isas(tables, 8);
  const KernelTable& ref = scalar_kernels();
  std::vector<uint8_t> d0(static_cast<size_t>(rows * db)), s0(static_cast<size_t>(rows * sb));
  std::vector<int8_t> z0(static_cast<size_t>(rows * zb));
  const QuantStatus st0 = ref.quantize_rows(spec, src.data(), src_type, cols, 0, rows, QuantParts{d0.data(), s0.data(), z0.data()});
  std::vector<float> y0(static_cast<size_t>(rows * cols));
  ref.dequantize_rows(spec, ConstQuantParts{d0.data(), s0.data(), z0.data()}, cols, 0, rows, y0.data());
  const ErrorStats e0 = ref.error_rows(spec, src.data(), src_type, ConstQuantParts{d0.data(), s0.data(), z0.data()}, cols, 0, rows);
  require(e0.count + e0.nonfinite == rows * cols);
  for (int t = 0; t < n; ++t) {
    if (tables[t] == &ref) continue;
    std::vector<uint8_t> d(d0.size()), s(s0.size());
    std::vector<int8_t> z(z0.size());
    const QuantStatus st = tables[t]->quantize_rows(spec, src.data(), src_type, cols, 0, rows, QuantParts{d.data(), s.data(), z.data()});
    require(st.nonfinite == st0.nonfinite && st.first_nonfinite == st0.first_nonfinite);
    require(st.scale_overflow == st0.scale_overflow && st.first_overflow_row == st0.first_overflow_row);
    if (st0.nonfinite) continue;  // the output of a rejected tensor is not used
    require(d == d0 && s == s0 && z == z0);
    std::vector<float> y(y0.size());
    tables[t]->dequantize_rows(spec, ConstQuantParts{d0.data(), s0.data(), z0.data()}, cols, 0, rows, y.data());
    require(std::memcmp(y.data(), y0.data(), y.size() * 4) == 0);
    const ErrorStats e = tables[t]->error_rows(spec, src.data(), src_type, ConstQuantParts{d0.data(), s0.data(), z0.data()}, cols, 0, rows);
    require(e.count == e0.count && e.nonfinite == e0.nonfinite && (e.max_abs_err == e0.max_abs_err || (std::isnan(e.max_abs_err) && std::isnan(e0.max_abs_err))));
    const double tol = 1e-12 * std::fmax(std::fabs(e0.sum_sq_err), 1e-300);
    require(std::fabs(e.sum_sq_err - e0.sum_sq_err) <= tol || (std::isinf(e.sum_sq_err) && std::isinf(e0.sum_sq_err)));
  }

  // GPTQ (small rows only: the factor is cubic). An identity Hessian must give the search's bytes; any
  // other (indefinite, huge, subnormal entries) must fail cleanly in the factor or quantize something.
  if (spec.method == Method::GPTQ && cols <= 96) {
    const bool identity = r.u8() % 2 == 0;
    std::vector<float> H(static_cast<size_t>(cols * cols), 0.0f);
    for (int64_t i = 0; i < cols; ++i) H[static_cast<size_t>(i * cols + i)] = 1.0f;
    if (!identity)
      for (size_t i = 0; i < H.size(); ++i) {
        uint32_t u = static_cast<uint32_t>(r.u8()) << 24 | static_cast<uint32_t>(r.u8()) << 16 | static_cast<uint32_t>(r.u8()) << 8 | r.u8();
        float v;
        std::memcpy(&v, &u, 4);
        if (r.n) H[i] = v;  // raw bits: NaN, Inf, subnormals, negatives
      }
    std::vector<double> U(H.size());
    if (gptq_factor(H.data(), cols, 0.1, U.data(), 1) != nullptr) {
      require(!identity);
      return 0;
    }
    std::vector<uint8_t> d(d0.size()), s(s0.size());
    std::vector<int8_t> z(z0.size());
    const QuantStatus st = gptq_quantize_rows(spec, src.data(), src_type, cols, U.data(), 0, rows, QuantParts{d.data(), s.data(), z.data()});
    require(st.nonfinite == st0.nonfinite && st.first_nonfinite == st0.first_nonfinite);
    if (identity && !st0.nonfinite) require(st.scale_overflow == st0.scale_overflow && d == d0 && s == s0);
  }
  return 0;
}
