// CRC-32 (IEEE 802.3, reflected, zlib's crc32) of the files quantkit writes: the checksums in the report
// and `--verify full`'s comparison. zlib's table loop ran at 3.9 GB/s on the main thread and took 9-12 %
// of a Q8_0 run's CPU; carry-less multiplication (x86 PCLMULQDQ) and ARMv8's CRC32 instructions do the
// same sum several times faster. The table loop here is the reference both are tested against.
#pragma once

#include <cstddef>
#include <cstdint>

namespace qk {

// The running CRC-32 of everything before, updated with n bytes at p, as zlib's crc32(crc, p, n): 0 for
// nothing yet, and crc32(crc32(0, a), b) == crc32(0, a || b).
using Crc32Fn = uint32_t (*)(uint32_t crc, const uint8_t* p, size_t n);

struct Crc32Impl {
  const char* name;
  Crc32Fn fn;
};

// The reference: eight bytes a step through eight 256-entry tables ("slicing by 8").
uint32_t crc32_table(uint32_t crc, const uint8_t* p, size_t n);

// Every implementation this build and CPU can run, the reference first; returns how many (at most max).
int crc32_available(Crc32Impl* out, int max);

// The fastest of them, picked once.
const Crc32Impl& crc32_best();

#if defined(__x86_64__) || defined(_M_X64)
uint32_t crc32_pclmul(uint32_t crc, const uint8_t* p, size_t n);  // needs PCLMULQDQ (and SSE2)
#endif
#if defined(__aarch64__)
uint32_t crc32_armv8(uint32_t crc, const uint8_t* p, size_t n);  // needs the CRC32 extension
#endif

}  // namespace qk
