// The table-driven reference and the run-time choice (compiled with baseline flags).
#include "crc32.h"

#include <array>
#include <cstring>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#endif

namespace qk {
namespace {

constexpr uint32_t kPolyReflected = 0xEDB88320u;  // x^32 + x^26 + ... + 1, bit-reversed

struct Tables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  constexpr Tables() {
    for (uint32_t n = 0; n < 256; ++n) {
      uint32_t c = n;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPolyReflected : c >> 1;
      t[0][n] = c;
    }
    // t[k][n]: the byte n followed by k zero bytes.
    for (int k = 1; k < 8; ++k)
      for (uint32_t n = 0; n < 256; ++n) t[k][n] = (t[k - 1][n] >> 8) ^ t[0][t[k - 1][n] & 0xff];
  }
};
constexpr Tables kTables;

}  // namespace

uint32_t crc32_table(uint32_t crc, const uint8_t* p, size_t n) {
  const auto& t = kTables.t;
  uint32_t s = ~crc;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    w ^= s;
    s = t[7][w & 0xff] ^ t[6][(w >> 8) & 0xff] ^ t[5][(w >> 16) & 0xff] ^ t[4][(w >> 24) & 0xff] ^
        t[3][(w >> 32) & 0xff] ^ t[2][(w >> 40) & 0xff] ^ t[1][(w >> 48) & 0xff] ^ t[0][w >> 56];
  }
#endif
  for (; n > 0; ++p, --n) s = (s >> 8) ^ t[0][(s ^ *p) & 0xff];
  return ~s;
}

int crc32_available(Crc32Impl* out, int max) {
  int n = 0;
  auto add = [&](const char* name, Crc32Fn fn) {
    if (n < max) out[n++] = Crc32Impl{name, fn};
  };
  add("table", crc32_table);
#if defined(__x86_64__) || defined(_M_X64)
  unsigned a, b, c, d;
  if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_PCLMUL)) add("pclmul", crc32_pclmul);
#endif
#if defined(__aarch64__) && defined(__linux__)
  if (getauxval(AT_HWCAP) & HWCAP_CRC32) add("armv8-crc", crc32_armv8);
#elif defined(__aarch64__) && defined(__APPLE__)
  add("armv8-crc", crc32_armv8);  // every Apple arm64 CPU has the CRC32 extension
#endif
  return n;
}

const Crc32Impl& crc32_best() {
  static const Crc32Impl best = [] {
    Crc32Impl all[4];
    const int n = crc32_available(all, 4);
    return all[n - 1];
  }();
  return best;
}

}  // namespace qk
