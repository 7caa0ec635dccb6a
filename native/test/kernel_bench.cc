// Single-thread kernel throughput of every available table, without Node in the way:
// GB/s of bf16 input for each scheme, and memcpy on the same buffer size for reference.
// llama.cpp's types are also timed against llama.cpp's own quantizers (ggml-quants.c from the bundled
// source, linked in by scripts/build-kernel-test.sh when scripts/build-ggml-reference.sh can build it).
#include <algorithm>
#include <chrono>
#include <ctime>
#include <functional>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "../src/checksum/crc32.h"
#include "../src/kernels/kernels.h"

using namespace qk;

#ifdef QUANTKIT_BENCH_LLAMA
extern "C" size_t ggml_reference_quantize(int type, const float* x, void* out, int64_t rows, int64_t cols, const float* imatrix);
#endif

static double seconds_of(const std::function<void()>& f) {
  double best = 1e9;
  for (int i = 0; i < 5; ++i) {
    const auto t = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count());
  }
  return best;
}

// Thread CPU time (best of 3): the rate of one core, whatever else the machine runs meanwhile.
static double cpu_seconds_of(const std::function<void()>& f) {
  double best = 1e9;
  for (int i = 0; i < 3; ++i) {
    timespec a, b;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    f();
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    best = std::min(best, static_cast<double>(b.tv_sec - a.tv_sec) + 1e-9 * static_cast<double>(b.tv_nsec - a.tv_nsec));
  }
  return best;
}

int main(int argc, char** argv) {
  const int64_t cols = 4096;
  const int64_t rows = argc > 1 ? std::atoll(argv[1]) : 4096;  // 128 rows (1 MiB) stays in cache
  // `kernel_bench ROWS search`: only the scale search, only the SIMD tables (for profiling it)
  const bool search_only = argc > 2 && std::strcmp(argv[2], "search") == 0;
  std::vector<uint16_t> src(static_cast<size_t>(rows * cols));
  std::mt19937 rng(1);
  std::normal_distribution<float> g(0.0f, 0.02f);
  for (auto& v : src) {
    float f = g(rng);
    uint32_t u;
    std::memcpy(&u, &f, 4);
    v = static_cast<uint16_t>(u >> 16);
  }
  const double bytes = static_cast<double>(src.size() * 2);
  std::vector<uint8_t> dst(src.size() * 2);
  const double copy = seconds_of([&] { std::memcpy(dst.data(), src.data(), src.size() * 2); });
  std::printf("memcpy %.2f GB/s (bytes copied per second)\n", bytes / copy / 1e9);
  {
    // CRC-32 of the output files (src/crc32.ts), each implementation this CPU runs, on the same bytes.
    Crc32Impl impls[4];
    const int ni = crc32_available(impls, 4);
    std::printf("crc32");
    uint32_t sum = 0;
    for (int i = 0; i < ni; ++i) {
      const double sec = seconds_of([&] { sum ^= impls[i].fn(0, reinterpret_cast<const uint8_t*>(src.data()), src.size() * 2); });
      std::printf(" | %s %.2f GB/s", impls[i].name, bytes / sec / 1e9);
    }
    std::printf("%s\n", sum == 0x5a5a5a5a ? " " : "");  // keeps the calls from being optimised away
  }
  const KernelTable* tables[8];
  int n = available_isas(tables, 8);
  if (search_only) {
    std::copy(tables + 1, tables + n, tables);  // tables[0] is the scalar reference
    --n;
  }
  const QuantSpec specs[] = {{Scheme::GGML_Q4_0, 4, 32, DType::F16}, {Scheme::GGML_Q8_0, 8, 32, DType::F16},
                             {Scheme::INT_SYM, 4, 32, DType::BF16}, {Scheme::INT_SYM, 8, 32, DType::BF16},
                             {Scheme::INT_ASYM, 4, 128, DType::BF16}};
  const char* names[] = {"q4_0", "q8_0", "int4 g32 sym", "int8 g32 sym", "int4 g128 asym"};
  for (int t = 0; t < (search_only ? 0 : n); ++t) {
    for (int s = 0; s < 5; ++s) {
      const QuantSpec& sp = specs[s];
      std::vector<uint8_t> data(static_cast<size_t>(rows * data_bytes_per_row(sp, cols)));
      std::vector<uint8_t> scales(static_cast<size_t>(rows * scale_bytes_per_row(sp, cols) + 1));
      std::vector<int8_t> zeros(static_cast<size_t>(rows * zero_bytes_per_row(sp, cols) + 1));
      const double sec = seconds_of([&] {
        tables[t]->quantize_rows(sp, src.data(), DType::BF16, cols, 0, rows, QuantParts{data.data(), scales.data(), zeros.data()});
      });
      std::printf("%-7s %-15s %6.2f GB/s  (%.2f x memcpy)\n", tables[t]->isa, names[s], bytes / sec / 1e9, copy / sec);
    }
  }

  // The error measurement every quantize run does after the kernel (dequantize, compare with the bf16
  // source, sum in double): per core, thread CPU time, on what the kernel above wrote.
  if (!search_only) {
    const QuantSpec especs[] = {{Scheme::GGML_Q8_0, 8, 32, DType::F16}, {Scheme::GGML_Q4_0, 4, 32, DType::F16},
                                {Scheme::GGML_IQ4_NL, 4, 32, DType::F16}, {Scheme::INT_ASYM, 4, 128, DType::BF16}};
    const char* enames[] = {"q8_0", "q4_0", "iq4_nl", "int4 g128 asym"};
    std::printf("\nerror measurement (error_rows), per core (thread CPU time), GB/s of bf16 input:\n");
    for (int s = 0; s < 4; ++s) {
      const QuantSpec& sp = especs[s];
      std::vector<uint8_t> data(static_cast<size_t>(rows * data_bytes_per_row(sp, cols)));
      std::vector<uint8_t> scales(static_cast<size_t>(rows * scale_bytes_per_row(sp, cols) + 1));
      std::vector<int8_t> zeros(static_cast<size_t>(rows * zero_bytes_per_row(sp, cols) + 1));
      tables[0]->quantize_rows(sp, src.data(), DType::BF16, cols, 0, rows, QuantParts{data.data(), scales.data(), zeros.data()});
      std::printf("errors %-15s", enames[s]);
      for (int t = 0; t < n; ++t) {
        double sum = 0;
        const double sec = cpu_seconds_of([&] {
          sum += tables[t]->error_rows(sp, src.data(), DType::BF16, ConstQuantParts{data.data(), scales.data(), zeros.data()}, cols, 0, rows).sum_sq_err;
        });
        std::printf(" | %s %.3f", tables[t]->isa, bytes / sec / 1e9);
        if (sum < 0) std::printf("!");  // keeps the call from being optimised away
      }
      std::printf("\n");
    }
  }

  // The scale search (--method search / iq4nl), weighted by a column importance as the CLI runs it on
  // Llama-style models, and unweighted (tensors without an estimate): per core, thread CPU time.
  {
    const int64_t srows = std::max<int64_t>(16, rows / 8);
    const double sbytes = static_cast<double>(srows * cols * 2);
    std::vector<float> importance(static_cast<size_t>(cols));
    std::lognormal_distribution<float> spread(0.0f, 1.0f);
    for (float& v : importance) v = spread(rng);
    const QuantSpec sspecs[] = {{Scheme::GGML_Q4_0, 4, 32, DType::F16}, {Scheme::GGML_IQ4_NL, 4, 32, DType::F16},
                                {Scheme::INT_SYM, 4, 32, DType::BF16}};
    const char* snames[] = {"q4_0", "iq4_nl", "int4 g32 sym"};
    std::printf("\nscale search, %lld x %lld bf16 = %.1f MB, per core (thread CPU time), GB/s of bf16 input:\n",
                static_cast<long long>(srows), static_cast<long long>(cols), sbytes / 1e6);
    for (int s = 0; s < 3; ++s)
      for (bool weighted : {true, false}) {
        QuantSpec sp = sspecs[s];
        sp.method = Method::SEARCH;
        sp.weights = weighted ? importance.data() : nullptr;
        std::vector<uint8_t> data(static_cast<size_t>(srows * data_bytes_per_row(sp, cols)));
        std::vector<uint8_t> scales(static_cast<size_t>(srows * scale_bytes_per_row(sp, cols) + 1));
        std::printf("search %-13s %-10s", snames[s], weighted ? "weighted" : "unweighted");
        for (int t = 0; t < n; ++t) {
          const double sec = cpu_seconds_of([&] {
            tables[t]->quantize_rows(sp, src.data(), DType::BF16, cols, 0, srows, QuantParts{data.data(), scales.data(), nullptr});
          });
          std::printf(" | %s %.3f", tables[t]->isa, sbytes / sec / 1e9);
        }
        std::printf("\n");
      }
  }

  if (search_only) return 0;

  // llama.cpp's quantizers: the first rows / 16 rows (at least 16), per core, side by side.
  const int64_t krows = std::max<int64_t>(16, rows / 16);
  const double kbytes = static_cast<double>(krows * cols * 2);
  std::vector<float> imatrix(static_cast<size_t>(cols));
  std::lognormal_distribution<float> act(0.0f, 2.0f);
  for (float& v : imatrix) v = act(rng);
  struct LlamaType {
    Scheme s;
    int bits, group, ggml;
    const char* name;
  };
  const LlamaType types[] = {{Scheme::GGML_Q2_K, 2, 256, 10, "q2_k"}, {Scheme::GGML_Q3_K, 3, 256, 11, "q3_k"},
                             {Scheme::GGML_Q4_K, 4, 256, 12, "q4_k"}, {Scheme::GGML_Q5_K, 5, 256, 13, "q5_k"},
                             {Scheme::GGML_Q6_K, 6, 256, 14, "q6_k"}, {Scheme::GGML_Q5_0, 5, 32, 6, "q5_0"},
                             {Scheme::GGML_Q5_1, 5, 32, 7, "q5_1"}, {Scheme::GGML_IQ4_NL, 4, 32, 20, "iq4_nl"}};
  std::printf("\nllama.cpp's types, %lld x %lld bf16 = %.1f MB, per core (thread CPU time), GB/s of bf16 input:\n",
              static_cast<long long>(krows), static_cast<long long>(cols), kbytes / 1e6);
  for (const LlamaType& ty : types)
    for (bool weighted : {false, true}) {
      QuantSpec sp{ty.s, ty.bits, ty.group, DType::F16};
      sp.method = weighted ? Method::IMATRIX : Method::RTN;
      sp.weights = weighted ? imatrix.data() : nullptr;
      std::vector<uint8_t> data(static_cast<size_t>(krows * data_bytes_per_row(sp, cols)));
      std::printf("%-6s %-7s", ty.name, weighted ? "imatrix" : "rtn");
      double llama = 0;
#ifdef QUANTKIT_BENCH_LLAMA
      // as llama-quantize does it: the bf16 tensor to f32, then quantize_<type>
      std::vector<float> f32(static_cast<size_t>(krows * cols));
      const double sec = cpu_seconds_of([&] {
        for (size_t i = 0; i < f32.size(); ++i) {
          const uint32_t u = static_cast<uint32_t>(src[i]) << 16;
          std::memcpy(&f32[i], &u, 4);
        }
        ggml_reference_quantize(ty.ggml, f32.data(), data.data(), krows, cols, weighted ? imatrix.data() : nullptr);
      });
      llama = kbytes / sec / 1e9;
      std::printf("  llama.cpp %.4f", llama);
#endif
      for (int t = 0; t < n; ++t) {
        const double sec = cpu_seconds_of([&] {
          tables[t]->quantize_rows(sp, src.data(), DType::BF16, cols, 0, krows, QuantParts{data.data(), nullptr, nullptr});
        });
        const double rate = kbytes / sec / 1e9;
        if (llama > 0) std::printf(" | %s %.4f (%.1fx)", tables[t]->isa, rate, rate / llama);
        else std::printf(" | %s %.4f", tables[t]->isa, rate);
      }
      std::printf("\n");
    }
}
