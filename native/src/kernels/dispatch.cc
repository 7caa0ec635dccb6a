// Picks the kernel table once, from the CPU's features or from QUANTKIT_ISA.
#include <cstdlib>
#include <cstring>

#include "kernels.h"

namespace qk {

int available_isas(const KernelTable** out, int max) {
  int n = 0;
  if (n < max) out[n++] = &scalar_kernels();
  // SIMD tables (avx2.cc, avx512.cc, neon.cc) register here as they are added; each is included
  // only when this CPU reports the features it was compiled for.
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
  return tables[n - 1];  // best last
}

}  // namespace qk
