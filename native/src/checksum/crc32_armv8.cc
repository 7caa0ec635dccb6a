// CRC-32 by ARMv8's CRC32 instructions (compiled with -march=armv8-a+crc; run only where the CPU reports
// the extension): CRC32X/CRC32B update zlib's inverted running state with 8 bytes / 1 byte.
#include <arm_acle.h>

#include <cstring>

#include "crc32.h"

namespace qk {

uint32_t crc32_armv8(uint32_t crc, const uint8_t* p, size_t n) {
  uint32_t s = ~crc;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    s = __crc32d(s, w);
  }
  for (; n > 0; ++p, --n) s = __crc32b(s, *p);
  return ~s;
}

}  // namespace qk
