// CRC-32 by carry-less multiplication (compiled with -mpclmul; SSE2 otherwise): the data is folded 64
// bytes a step in four 128-bit lanes, then into one lane 16 bytes a step; the last lane and the tail
// (under 16 bytes) go through the table reference, whose state they leave as the whole input would.
//
// Folding a lane forward by D bits multiplies it by x^D modulo the polynomial: its two 64-bit halves are
// each multiplied by a 33-bit constant (x^(D+32) and x^(D-32) mod P, bit-reversed and shifted left by
// one, as carry-less products of reversed operands come out one bit short), and the two 96-bit products
// xored into the lane D bits on.
#include <immintrin.h>

#include "crc32.h"

namespace qk {
namespace {

inline __m128i fold(__m128i lane, __m128i k, __m128i onto) {
  return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(lane, k, 0x00), _mm_clmulepi64_si128(lane, k, 0x11)), onto);
}

inline __m128i load(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }

}  // namespace

uint32_t crc32_pclmul(uint32_t crc, const uint8_t* p, size_t n) {
  if (n < 64) return crc32_table(crc, p, n);
  // By 512 bits: low half x^544 mod P, high half x^480 mod P.
  const __m128i by512 = _mm_set_epi64x(0x1c6e41596LL, 0x154442bd4LL);
  // By 128 bits: low half x^160 mod P, high half x^96 mod P.
  const __m128i by128 = _mm_set_epi64x(0x0ccaa009eLL, 0x1751997d0LL);
  // The running state (zlib's crc, inverted) goes into the first four bytes: CRC is linear in them.
  __m128i x0 = _mm_xor_si128(load(p), _mm_cvtsi32_si128(static_cast<int>(~crc)));
  __m128i x1 = load(p + 16), x2 = load(p + 32), x3 = load(p + 48);
  p += 64;
  n -= 64;
  for (; n >= 64; p += 64, n -= 64) {
    x0 = fold(x0, by512, load(p));
    x1 = fold(x1, by512, load(p + 16));
    x2 = fold(x2, by512, load(p + 32));
    x3 = fold(x3, by512, load(p + 48));
  }
  __m128i x = fold(fold(fold(x0, by128, x1), by128, x2), by128, x3);
  for (; n >= 16; p += 16, n -= 16) x = fold(x, by128, load(p));
  // The lane is now a 16-byte message whose CRC from a zero state (zlib's crc 0xffffffff, inverted
  // inside) is that of everything folded so far; the tail follows it.
  alignas(16) uint8_t last[16];
  _mm_store_si128(reinterpret_cast<__m128i*>(last), x);
  return crc32_table(crc32_table(0xffffffffu, last, 16), p, n);
}

}  // namespace qk
