// Picks the kernel table once: the best one this CPU runs, unless QUANTKIT_ISA names another.
// Compiled with baseline flags; the ISA files are entered only through the tables they return.
#include <cstdlib>
#include <cstring>

#include "kernels.h"

namespace qk {

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
const KernelTable* avx2_kernels();
const KernelTable* avx512_kernels();
#endif
#if defined(__aarch64__)
const KernelTable* neon_kernels();
#endif

#if defined(__x86_64__) || defined(_M_X64)
// F16C through cpuid directly: not every compiler's __builtin_cpu_supports knows "f16c" (clang 14).
static bool has_f16c() {
  unsigned a, b, c, d;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
}
#endif

int available_isas(const KernelTable** out, int max) {
  int n = 0;
  auto add = [&](const KernelTable* t) {
    if (n < max) out[n++] = t;
  };
  add(&scalar_kernels());
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  // __builtin_cpu_supports returns a non-zero mask, not 1.
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c()) add(avx2_kernels());
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") && has_f16c())
    add(avx512_kernels());
#endif
#if defined(__aarch64__)
  add(neon_kernels());
#endif
  return n;
}

const KernelTable* select_kernels(const char** error) {
  const KernelTable* tables[8];
  const int n = available_isas(tables, 8);
  const char* forced = std::getenv("QUANTKIT_ISA");
  if (forced && *forced) {
    for (int i = 0; i < n; ++i)
      if (std::strcmp(tables[i]->isa, forced) == 0) return tables[i];
    *error = "QUANTKIT_ISA names an instruction set that this CPU or this build does not provide";
    return nullptr;
  }
  // Best last: AVX-512 (F/BW/VL) where the CPU has it, else AVX2, else the reference. Every table has
  // matched the scalar reference bit for bit in native/test/kernel_test on hardware that runs it (the
  // AVX-512 one on an AMD Zen 5); the vitest suite re-runs that harness on every available table.
  return tables[n - 1];
}

}  // namespace qk
