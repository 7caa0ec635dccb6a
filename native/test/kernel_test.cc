// Compares every SIMD kernel table this CPU can run with the scalar reference, bit for bit:
// quantized bytes, scales, zero points, status reports and dequantized floats must be identical;
// error sums may differ only in rounding (different summation order), bounded below.
// Built natively by scripts/build-kernel-test.sh, and for aarch64 to run under qemu-user.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../src/checksum/crc32.h"
#include "../src/kernels/kernels.h"

using namespace qk;

namespace {

int g_failures = 0;
long g_cases = 0;
double g_worst_sum_rel = 0;

#define CHECK(cond, ...)                                  \
  do {                                                    \
    if (!(cond)) {                                        \
      if (g_failures++ < 20) {                            \
        std::fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
        std::fprintf(stderr, __VA_ARGS__);                \
        std::fprintf(stderr, "\n");                       \
      }                                                   \
    }                                                     \
  } while (0)

uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// Round-to-nearest-even f32 -> f16 via the F32->F64->scaling route (independent of numeric.h).
uint16_t to_f16(float f) {
  if (std::isnan(f)) return 0x7e00;
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  double a = std::fabs(static_cast<double>(f));
  if (a >= 65520.0) return sign | 0x7c00;
  if (a < std::ldexp(1.0, -14)) return sign | static_cast<uint16_t>(std::nearbyint(a * std::ldexp(1.0, 24)));
  int e;
  std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
  e -= 1;
  double m = a / std::ldexp(1.0, e) - 1.0;
  int mant = static_cast<int>(std::nearbyint(m * 1024));
  if (mant == 1024) { mant = 0; e++; }
  if (e > 15) return sign | 0x7c00;
  return sign | static_cast<uint16_t>(((e + 15) << 10) | mant);
}

std::vector<uint8_t> encode(const std::vector<float>& x, DType t) {
  std::vector<uint8_t> out(x.size() * (t == DType::F32 ? 4 : 2));
  for (size_t i = 0; i < x.size(); ++i) {
    if (t == DType::F32) std::memcpy(&out[4 * i], &x[i], 4);
    else {
      const uint16_t h = t == DType::BF16 ? to_bf16(x[i]) : to_f16(x[i]);
      std::memcpy(&out[2 * i], &h, 2);
    }
  }
  return out;
}

enum class Pattern { Gauss, Ties, SignedZeros, Subnormal, Constant, Outlier, Tiny, Huge, NonFinite, Mixed, ZeroBlocks, FlatBlocks, HugeBlocks };
const Pattern kPatterns[] = {Pattern::Gauss, Pattern::Ties, Pattern::SignedZeros, Pattern::Subnormal, Pattern::Constant,
                             Pattern::Outlier, Pattern::Tiny, Pattern::Huge, Pattern::NonFinite, Pattern::Mixed};
// For llama.cpp's quantizers also: whole zero blocks (empty sub-blocks, Q6_K's zero super-blocks),
// constant 16-runs (flat sub-blocks), and blocks of magnitudes 1e4..1e9 (f16 scales near and past overflow).
const Pattern kLlamaPatterns[] = {Pattern::Gauss, Pattern::Ties, Pattern::SignedZeros, Pattern::Subnormal, Pattern::Constant,
                                  Pattern::Outlier, Pattern::Tiny, Pattern::Huge, Pattern::NonFinite, Pattern::Mixed,
                                  Pattern::ZeroBlocks, Pattern::FlatBlocks, Pattern::HugeBlocks};

std::vector<float> make(Pattern p, int64_t rows, int64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> gauss(0.0f, 0.02f);
  std::uniform_int_distribution<int> small(-16, 16), pick(0, 9);
  std::vector<float> x(static_cast<size_t>(rows * cols));
  float block_value = 0.0f;
  for (size_t i = 0; i < x.size(); ++i) {
    if (i % 16 == 0) block_value = (p == Pattern::HugeBlocks ? std::pow(10.0f, 4.0f + static_cast<float>(rng() % 6)) : 1.0f) *
                                   static_cast<float>(small(rng)) * 0.125f;
    switch (p) {
      case Pattern::ZeroBlocks: x[i] = (i / 256 + i / 32) % 3 == 1 ? gauss(rng) : 0.0f; break;
      case Pattern::FlatBlocks: x[i] = (i / 64) % 2 ? block_value : gauss(rng); break;
      case Pattern::HugeBlocks: x[i] = block_value * (1.0f + gauss(rng)); break;
      case Pattern::Gauss: x[i] = gauss(rng); break;
      case Pattern::Ties: x[i] = static_cast<float>(small(rng)) * 0.5f; break;  // many exact .5 after scaling
      case Pattern::SignedZeros: x[i] = (rng() & 1) ? -0.0f : 0.0f; if (pick(rng) == 0) x[i] = gauss(rng); break;
      case Pattern::Subnormal: x[i] = static_cast<float>(small(rng)) * 1e-40f; break;
      case Pattern::Constant: x[i] = (i / 7) % 2 ? 0.375f : -2.5f; break;
      case Pattern::Outlier: x[i] = (i % 37 == 3) ? 500.0f * ((rng() & 1) ? 1 : -1) : gauss(rng); break;
      case Pattern::Tiny: x[i] = gauss(rng) * 1e-6f; break;
      case Pattern::Huge: x[i] = gauss(rng) * 1e7f; break;  // f16 scales overflow
      case Pattern::NonFinite: x[i] = (i % 53 == 11) ? (i % 2 ? NAN : -INFINITY) : gauss(rng); break;
      case Pattern::Mixed: {
        const int k = pick(rng);
        x[i] = k < 5 ? gauss(rng) : k < 7 ? static_cast<float>(small(rng)) * 0.25f : k < 8 ? -0.0f : k < 9 ? 1e-39f : 3.0f;
      }
    }
  }
  return x;
}

struct Buffers {
  std::vector<uint8_t> data, scales;
  std::vector<int8_t> zeros;
  int off;
  QuantParts parts() {
    return QuantParts{data.data() + off, scales.empty() ? nullptr : scales.data() + off, zeros.empty() ? nullptr : zeros.data() + off};
  }
  ConstQuantParts cparts() {
    return ConstQuantParts{data.data() + off, scales.empty() ? nullptr : scales.data() + off, zeros.empty() ? nullptr : zeros.data() + off};
  }
};

Buffers alloc(const QuantSpec& s, int64_t rows, int64_t cols, int off) {
  Buffers b;
  b.off = off;
  b.data.assign(static_cast<size_t>(rows * data_bytes_per_row(s, cols) + off), 0xAB);
  const int64_t sb = scale_bytes_per_row(s, cols), zb = zero_bytes_per_row(s, cols);
  if (sb) b.scales.assign(static_cast<size_t>(rows * sb + off), 0xCD);
  if (zb) b.zeros.assign(static_cast<size_t>(rows * zb + off), 0x11);
  return b;
}

const char* scheme_name(Scheme s) {
  switch (s) {
    case Scheme::GGML_Q8_0: return "q8_0";
    case Scheme::GGML_Q4_0: return "q4_0";
    case Scheme::GGML_Q4_1: return "q4_1";
    case Scheme::GGML_IQ4_NL: return "iq4_nl";
    case Scheme::GGML_Q5_0: return "q5_0";
    case Scheme::GGML_Q5_1: return "q5_1";
    case Scheme::GGML_Q2_K: return "q2_k";
    case Scheme::GGML_Q3_K: return "q3_k";
    case Scheme::GGML_Q4_K: return "q4_k";
    case Scheme::GGML_Q5_K: return "q5_k";
    case Scheme::GGML_Q6_K: return "q6_k";
    case Scheme::INT_SYM: return "int_sym";
    default: return "int_asym";
  }
}

void compare(const KernelTable& ref, const KernelTable& t, QuantSpec spec, int64_t rows, int64_t cols, DType dt,
             Pattern pat, std::mt19937& rng, bool weighted = false) {
  g_cases++;
  const std::vector<float> x = make(pat, rows, cols, rng);
  // Importance weights for the search and the imatrix: positive, with some zeros and a wide range
  // (now and then wide enough for the weighted sums to overflow).
  std::vector<float> w(static_cast<size_t>(cols));
  const int w_range = rng() % 8 == 0 ? 200 : 9;
  for (float& v : w) v = (rng() % 8 == 0) ? 0.0f : std::ldexp(static_cast<float>(rng() % 1000 + 1) / 1000.0f, static_cast<int>(rng() % w_range) - 4);
  if (weighted) spec.weights = w.data();
  const int off = static_cast<int>(rng() % 4);  // unaligned on purpose
  std::vector<uint8_t> raw = encode(x, dt);
  std::vector<uint8_t> src(raw.size() + off);
  std::memcpy(src.data() + off, raw.data(), raw.size());
  Buffers a = alloc(spec, rows, cols, off), b = alloc(spec, rows, cols, (off + 1) % 4);
  const QuantStatus sa = ref.quantize_rows(spec, src.data() + off, dt, cols, 0, rows, a.parts());
  // The SIMD table quantizes in two row ranges, as threads do.
  const int64_t split = rows > 1 ? static_cast<int64_t>(rng() % rows) : 0;
  QuantStatus sb = t.quantize_rows(spec, src.data() + off, dt, cols, 0, split, b.parts());
  const QuantStatus sb2 = t.quantize_rows(spec, src.data() + off, dt, cols, split, rows, b.parts());
  if (sb.nonfinite == 0) sb.first_nonfinite = sb2.first_nonfinite;
  sb.nonfinite += sb2.nonfinite;
  if (sb.scale_overflow == 0) sb.first_overflow_row = sb2.first_overflow_row;
  sb.scale_overflow += sb2.scale_overflow;
  static const char* const kMethods[] = {"", " search", " gptq", " hqq", " imatrix"};
  const std::string what = std::string(t.isa) + " " + scheme_name(spec.scheme) + kMethods[static_cast<int>(spec.method)] + (weighted ? "(weighted)" : "") + " bits=" + std::to_string(spec.bits) +
                           " g=" + std::to_string(spec.group) + " rows=" + std::to_string(rows) + " cols=" + std::to_string(cols) +
                           " dtype=" + std::to_string(static_cast<int>(dt)) + " scale=" + std::to_string(static_cast<int>(spec.scale_dtype)) +
                           " pattern=" + std::to_string(static_cast<int>(pat));
  CHECK(sa.nonfinite == sb.nonfinite && sa.first_nonfinite == sb.first_nonfinite, "%s: nonfinite %lld/%lld vs %lld/%lld", what.c_str(),
        (long long)sa.nonfinite, (long long)sa.first_nonfinite, (long long)sb.nonfinite, (long long)sb.first_nonfinite);
  CHECK(sa.scale_overflow == sb.scale_overflow && sa.first_overflow_row == sb.first_overflow_row, "%s: overflow", what.c_str());
  const size_t nd = static_cast<size_t>(rows * data_bytes_per_row(spec, cols));
  size_t first = nd;
  for (size_t i = 0; i < nd; ++i)
    if (a.data[a.off + i] != b.data[b.off + i]) { first = i; break; }
  CHECK(first == nd, "%s: data differs at byte %zu (%02x vs %02x)", what.c_str(), first, first < nd ? a.data[a.off + first] : 0,
        first < nd ? b.data[b.off + first] : 0);
  const size_t ns = static_cast<size_t>(rows * scale_bytes_per_row(spec, cols));
  CHECK(ns == 0 || std::memcmp(a.scales.data() + a.off, b.scales.data() + b.off, ns) == 0, "%s: scales differ", what.c_str());
  const size_t nz = static_cast<size_t>(rows * zero_bytes_per_row(spec, cols));
  CHECK(nz == 0 || std::memcmp(a.zeros.data() + a.off, b.zeros.data() + b.off, nz) == 0, "%s: zero points differ", what.c_str());
  if (sa.nonfinite) return;  // the output of a rejected tensor is not used

  std::vector<float> da(static_cast<size_t>(rows * cols) + 1), db(static_cast<size_t>(rows * cols) + 1);
  ref.dequantize_rows(spec, a.cparts(), cols, 0, rows, da.data());
  t.dequantize_rows(spec, a.cparts(), cols, 0, rows, db.data() + 1);  // unaligned output too
  CHECK(std::memcmp(da.data(), db.data() + 1, static_cast<size_t>(rows * cols) * 4) == 0, "%s: dequantized values differ", what.c_str());

  const ErrorStats ea = ref.error_rows(spec, src.data() + off, dt, a.cparts(), cols, 0, rows);
  const ErrorStats eb = t.error_rows(spec, src.data() + off, dt, a.cparts(), cols, 0, rows);
  CHECK(ea.count == eb.count && ea.nonfinite == eb.nonfinite && ea.max_abs_err == eb.max_abs_err, "%s: error counts/max differ", what.c_str());
  auto rel = [](double p, double q) { return p == q ? 0.0 : std::fabs(p - q) / std::fmax(std::fabs(p), std::fabs(q)); };
  const double r = std::fmax(rel(ea.sum_sq_err, eb.sum_sq_err), rel(ea.sum_sq_ref, eb.sum_sq_ref));
  if (r > g_worst_sum_rel) g_worst_sum_rel = r;
  CHECK(r <= 1e-12, "%s: error sums differ by %.3g relative", what.c_str(), r);
}

}  // namespace

// CRC-32: the standard check value, then every implementation against the table reference on every
// length up to 1100 at every alignment 0..7 from a random running crc, on large buffers, and split in two.
static void check_crc32(std::mt19937& rng) {
  const uint8_t check[] = {'1', '2', '3', '4', '5', '6', '7', '8', '9'};
  if (crc32_table(0, check, 9) != 0xCBF43926u) {
    std::fprintf(stderr, "crc32: the table reference gives %08x for \"123456789\", not cbf43926\n", crc32_table(0, check, 9));
    ++g_failures;
  }
  std::vector<uint8_t> buf((1 << 20) + 64);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  Crc32Impl impls[4];
  const int n = crc32_available(impls, 4);
  for (int i = 1; i < n; ++i) {
    long cases = 0;
    int bad = 0;
    auto same = [&](uint32_t crc, const uint8_t* p, size_t len) {
      ++cases;
      const uint32_t want = crc32_table(crc, p, len), got = impls[i].fn(crc, p, len);
      if (got != want && bad++ < 5) std::fprintf(stderr, "crc32 %s: %zu bytes at +%zu from %08x gives %08x, the table %08x\n", impls[i].name, len, static_cast<size_t>(p - buf.data()), crc, got, want);
    };
    for (size_t len = 0; len <= 1100; ++len)
      for (size_t at = 0; at < 8; ++at) same(static_cast<uint32_t>(rng()), buf.data() + at, len);
    for (size_t len : {size_t{1} << 20, (size_t{1} << 20) + 63, size_t{65537}}) {
      same(0, buf.data(), len);
      same(0xffffffffu, buf.data() + 1, len);
    }
    for (int k = 0; k < 200; ++k) {  // split at a random point: the running crc carries over
      const size_t len = 1 + rng() % 5000, cut = rng() % (len + 1);
      ++cases;
      const uint32_t whole = crc32_table(0, buf.data(), len);
      const uint32_t parts = impls[i].fn(impls[i].fn(0, buf.data(), cut), buf.data() + cut, len - cut);
      if (parts != whole && bad++ < 5) std::fprintf(stderr, "crc32 %s: split %zu + %zu gives %08x, whole %08x\n", impls[i].name, cut, len - cut, parts, whole);
    }
    g_failures += bad;
    std::printf("kernel_test: crc32 %s %s table on %ld cases\n", impls[i].name, bad ? "DOES NOT MATCH" : "matches", cases);
  }
  std::printf("kernel_test: crc32 available:");
  for (int i = 0; i < n; ++i) std::printf(" %s", impls[i].name);
  std::printf("\n");
}

int main() {
  const KernelTable* tables[8];
  const int n = available_isas(tables, 8);
  const KernelTable& ref = scalar_kernels();
  std::mt19937 rng(20261128);
  const DType dtypes[] = {DType::F32, DType::F16, DType::BF16};
  const DType scale_types[] = {DType::F16, DType::BF16, DType::F32};
  for (int ti = 0; ti < n; ++ti) {
    const KernelTable& t = *tables[ti];
    if (&t == &ref) continue;
    const long before = g_cases;
    const int failures_before = g_failures;
    // ggml blocks: rows of 32..320, every pattern and dtype.
    for (Scheme s : {Scheme::GGML_Q8_0, Scheme::GGML_Q4_0, Scheme::GGML_Q4_1})
      for (int64_t cols = 32; cols <= 320; cols += 32)
        for (DType dt : dtypes)
          for (Pattern p : kPatterns)
            compare(ref, t, QuantSpec{s, s == Scheme::GGML_Q8_0 ? 8 : 4, 32, DType::F16}, 1 + static_cast<int64_t>(rng() % 5), cols, dt, p, rng);
    // compressed-tensors groups: every row length 1..300 with every group size that divides it
    // (32, 64, 128, the planner's fallback divisor, and the whole row).
    for (int64_t cols = 1; cols <= 300; ++cols)
      for (int64_t want : {32L, 64L, 128L, -1L}) {
        int64_t g = want < 0 ? cols : want;
        if (cols % g) { int64_t d = g; while (d < cols && cols % d) ++d; g = d < cols ? d : cols; }
        for (Scheme s : {Scheme::INT_SYM, Scheme::INT_ASYM})
          for (int bits : {4, 8}) {
            const QuantSpec spec{s, bits, g, scale_types[rng() % 3]};
            compare(ref, t, spec, 1 + static_cast<int64_t>(rng() % 4), cols, dtypes[rng() % 3], kPatterns[rng() % 10], rng);
          }
      }
    // The scale search (every scheme, weighted and not): ggml blocks over every pattern and dtype,
    // compressed-tensors groups of 32..128 and fallbacks.
    for (Scheme s : {Scheme::GGML_Q8_0, Scheme::GGML_Q4_0, Scheme::GGML_Q4_1, Scheme::GGML_IQ4_NL})
      for (int64_t cols : {32L, 64L, 160L, 256L})
        for (DType dt : dtypes)
          for (Pattern p : kPatterns)
            for (bool weighted : {false, true}) {
              QuantSpec spec{s, s == Scheme::GGML_Q8_0 ? 8 : 4, 32, DType::F16};
              spec.method = Method::SEARCH;
              compare(ref, t, spec, 1 + static_cast<int64_t>(rng() % 4), cols, dt, p, rng, weighted);
            }
    for (int64_t cols : {32L, 64L, 96L, 128L, 172L, 256L, 300L})
      for (int64_t want : {32L, 64L, 128L, -1L}) {
        int64_t g = want < 0 ? cols : want;
        if (cols % g) { int64_t d = g; while (d < cols && cols % d) ++d; g = d < cols ? d : cols; }
        for (Scheme s : {Scheme::INT_SYM, Scheme::INT_ASYM})
          for (int bits : {4, 8})
            for (bool weighted : {false, true}) {
              QuantSpec spec{s, bits, g, scale_types[rng() % 3]};
              spec.method = Method::SEARCH;
              compare(ref, t, spec, 1 + static_cast<int64_t>(rng() % 4), cols, dtypes[rng() % 3], kPatterns[rng() % 10], rng, weighted);
            }
      }
    // llama.cpp's quantizers (kquants.h): every type with and without an importance matrix, every row
    // length in steps of a block (256..4096 for the K-quants, 32..1024 for blocks of 32) with a random
    // pattern and dtype, and every pattern and dtype on two lengths.
    struct LlamaKind {
      Scheme s;
      int bits;
      Method m;
    };
    const LlamaKind llama_kinds[] = {
        {Scheme::GGML_Q2_K, 2, Method::RTN}, {Scheme::GGML_Q2_K, 2, Method::IMATRIX}, {Scheme::GGML_Q3_K, 3, Method::RTN},
        {Scheme::GGML_Q3_K, 3, Method::IMATRIX}, {Scheme::GGML_Q4_K, 4, Method::RTN}, {Scheme::GGML_Q4_K, 4, Method::IMATRIX},
        {Scheme::GGML_Q5_K, 5, Method::RTN}, {Scheme::GGML_Q5_K, 5, Method::IMATRIX}, {Scheme::GGML_Q6_K, 6, Method::RTN},
        {Scheme::GGML_Q6_K, 6, Method::IMATRIX}, {Scheme::GGML_Q5_0, 5, Method::RTN}, {Scheme::GGML_Q5_0, 5, Method::IMATRIX},
        {Scheme::GGML_Q5_1, 5, Method::RTN}, {Scheme::GGML_Q5_1, 5, Method::IMATRIX}, {Scheme::GGML_IQ4_NL, 4, Method::RTN},
        {Scheme::GGML_IQ4_NL, 4, Method::IMATRIX}, {Scheme::GGML_Q4_0, 4, Method::IMATRIX}, {Scheme::GGML_Q4_1, 4, Method::IMATRIX},
        {Scheme::GGML_Q8_0, 8, Method::IMATRIX}};
    for (const LlamaKind& k : llama_kinds) {
      const int64_t block = k.s == Scheme::GGML_Q2_K || k.s == Scheme::GGML_Q3_K || k.s == Scheme::GGML_Q4_K || k.s == Scheme::GGML_Q5_K ||
                                    k.s == Scheme::GGML_Q6_K ? 256 : 32;
      QuantSpec spec{k.s, k.bits, block, DType::F16};
      spec.method = k.m;
      const bool weighted = k.m == Method::IMATRIX;
      const int64_t longest = block == 256 ? 4096 : 1024;
      for (int64_t cols = block; cols <= longest; cols += block)
        compare(ref, t, spec, 1 + static_cast<int64_t>(rng() % 3), cols, dtypes[rng() % 3], kLlamaPatterns[rng() % 13], rng, weighted);
      for (int64_t cols : {block, 3 * block})
        for (DType dt : dtypes)
          for (Pattern p : kLlamaPatterns) compare(ref, t, spec, 1 + static_cast<int64_t>(rng() % 3), cols, dt, p, rng, weighted);
    }
    // Larger, realistic tensors for the fast paths.
    for (Scheme s : {Scheme::INT_SYM, Scheme::INT_ASYM, Scheme::GGML_Q4_0, Scheme::GGML_Q8_0})
      for (DType st : scale_types)
        for (Pattern p : {Pattern::Gauss, Pattern::Outlier, Pattern::Mixed}) {
          const bool ggml = s == Scheme::GGML_Q4_0 || s == Scheme::GGML_Q8_0;
          if (ggml && st != DType::F16) continue;
          compare(ref, t, QuantSpec{s, s == Scheme::GGML_Q8_0 ? 8 : 4, ggml ? 32 : 128, st}, 64, 1024, DType::BF16, p, rng);
        }
    for (Scheme s : {Scheme::GGML_Q4_K, Scheme::GGML_Q6_K})
      for (Pattern p : {Pattern::Gauss, Pattern::Outlier}) {
        QuantSpec spec{s, s == Scheme::GGML_Q4_K ? 4 : 6, 256, DType::F16};
        compare(ref, t, spec, 16, 4096, DType::BF16, p, rng);
        spec.method = Method::IMATRIX;
        compare(ref, t, spec, 16, 4096, DType::BF16, p, rng, true);
      }
    std::printf("kernel_test: %s %s scalar on %ld cases (worst error-sum difference %.2e relative)\n", t.isa,
                g_failures == failures_before ? "matches" : "DOES NOT MATCH", g_cases - before, g_worst_sum_rel);
  }
  check_crc32(rng);
  if (n == 1) std::printf("kernel_test: only the scalar table is available on this CPU\n");
  std::printf("kernel_test: available:");
  for (int i = 0; i < n; ++i) std::printf(" %s", tables[i]->isa);
  std::printf("\n");
  if (g_failures) std::fprintf(stderr, "kernel_test: %d failures\n", g_failures);
  return g_failures ? 1 : 0;
}
