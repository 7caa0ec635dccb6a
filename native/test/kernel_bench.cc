// Single-thread kernel throughput of every available table, without Node in the way:
// GB/s of bf16 input for each scheme, and memcpy on the same buffer size for reference.
#include <algorithm>
#include <chrono>
#include <functional>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "../src/kernels/kernels.h"

using namespace qk;

static double seconds_of(const std::function<void()>& f) {
  double best = 1e9;
  for (int i = 0; i < 5; ++i) {
    const auto t = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count());
  }
  return best;
}

int main(int argc, char** argv) {
  const int64_t cols = 4096;
  const int64_t rows = argc > 1 ? std::atoll(argv[1]) : 4096;  // 128 rows (1 MiB) stays in cache
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
  const KernelTable* tables[8];
  const int n = available_isas(tables, 8);
  const QuantSpec specs[] = {{Scheme::GGML_Q4_0, 4, 32, DType::F16}, {Scheme::GGML_Q8_0, 8, 32, DType::F16},
                             {Scheme::INT_SYM, 4, 32, DType::BF16}, {Scheme::INT_SYM, 8, 32, DType::BF16},
                             {Scheme::INT_ASYM, 4, 128, DType::BF16}};
  const char* names[] = {"q4_0", "q8_0", "int4 g32 sym", "int8 g32 sym", "int4 g128 asym"};
  for (int t = 0; t < n; ++t) {
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
}
