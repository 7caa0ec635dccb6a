// The SIMD kernels, written once over a small vector-operations interface `O` that each ISA file
// (avx2.cc, avx512.cc, neon.cc) implements. Include this only inside an anonymous namespace of an
// ISA file: everything here then has internal linkage and is compiled with that file's flags alone.
//
// Exactness rules (the scalar reference in scalar.cc is the truth, and every table must match it bit
// for bit):
//  - every per-element operation is the same IEEE operation in the same order (multiply, then add;
//    no fused multiply-add: these files are built with -ffp-contract=off);
//  - reductions are max/min only, which are exact; where the scalar code picks "the first element that
//    reaches the extreme" (Q4_0's signed max, Q4_1's min/max of signed zeros), the lane is found the
//    same way;
//  - per-group scalar work (scale, its rounding to f16/bf16, the reciprocal) uses numeric.h, or the
//    ISA's own IEEE round-to-nearest-even half conversion (F16C, NEON), which gives the same bits;
//  - cases the fast path does not cover (a group size that is not a multiple of 32, a row holding
//    NaN/Inf, a scale that overflows or whose reciprocal does not exist) are handed to the scalar
//    reference for that row, so their results and status reports are the reference's by construction.
// Error sums are accumulated in double per lane, so their order differs from the scalar loop: they
// agree to the last few bits (tested: relative difference below 1e-12 for tensors of 10^6 elements).

template <class O>
struct SimdKernels {
  using F = typename O::F;
  using I = typename O::I;
  static constexpr int N = O::N;
  static constexpr int V = 32 / N;  // vectors per 32-element chunk

  struct Chunk {
    F v[V];
  };

  // 32 source values as floats; the dtype is fixed at compile time (loops are instantiated per dtype).
  template <DType T>
  static Chunk load32(const void* src, int64_t i) {
    Chunk c;
    for (int k = 0; k < V; ++k) c.v[k] = O::load(src, T, i + k * N);
    return c;
  }

  static bool finite_id(float id) { return __builtin_isfinite(id); }
  static bool f16_finite(uint16_t h) { return (h & 0x7c00u) != 0x7c00u; }

  static void merge(QuantStatus& into, const QuantStatus& s) {
    if (s.nonfinite && into.nonfinite == 0) into.first_nonfinite = s.first_nonfinite;
    into.nonfinite += s.nonfinite;
    if (s.scale_overflow && into.scale_overflow == 0) into.first_overflow_row = s.first_overflow_row;
    into.scale_overflow += s.scale_overflow;
  }

  // Bits of the largest |x| of a chunk, reduced as integers: for non-negative floats integer order is
  // float order, and NaN/±Inf have larger bits than every finite value, so the one reduction also
  // detects them (>= kInfBits).
  static constexpr int32_t kInfBits = 0x7f800000;
  static I abs_max_bits(const Chunk& c, I acc) {
    for (int k = 0; k < V; ++k) acc = O::imax(acc, O::abs_bits(c.v[k]));
    return acc;
  }
  static float from_bits(int32_t b) {
    float f;
    __builtin_memcpy(&f, &b, 4);
    return f;
  }

  // True when any element of the chunk is NaN or ±Inf.
  static bool nonfinite(const Chunk& c) {
    uint32_t m = 0;
    for (int k = 0; k < V; ++k) m |= O::mask_nonfinite(c.v[k]);
    return m != 0;
  }

  // Sign bit of the first element for which `mask_fn` holds (the chunk must have one). Reading the
  // sign from a mask keeps the value in registers (no store/reload of the chunk).
  template <class M>
  static bool first_lane_negative(const Chunk& c, M mask_fn) {
    for (int k = 0; k < V; ++k) {
      const uint32_t m = mask_fn(c.v[k]);
      if (m) return (O::sign_mask(c.v[k]) >> __builtin_ctz(m)) & 1u;
    }
    return false;
  }

  // ---- ggml blocks ------------------------------------------------------------------------------

  // Returns false when the block must go to the scalar reference (non-finite input or reciprocal,
  // or a scale that overflows f16).
  static bool q8_0_block(const Chunk& c, uint8_t* out) {
    const int32_t bits = O::hmax_i(abs_max_bits(c, O::iset1(0)));
    if (bits >= kInfBits) return false;  // NaN/Inf: the reference reports it
    const float amax = from_bits(bits);
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    if (!finite_id(id)) return false;
    const uint16_t dh = O::to_f16(d);
    if (!f16_finite(dh)) return false;
    __builtin_memcpy(out, &dh, 2);
    const F vid = O::set1(id);
    I q[V];
    for (int k = 0; k < V; ++k) q[k] = O::cvtt(O::round_away(O::mul(c.v[k], vid)));
    O::pack_bytes32(q, out + 2);
    return true;
  }

  // Q4_0 / Q5_0 (HALF = 8 / 16): d = the first largest magnitude, signed, / -HALF, level =
  // min(2 HALF - 1, trunc(x / d + HALF + 0.5)).
  template <int HALF>
  static bool sym_block(const Chunk& c, uint8_t* out) {
    float max;  // the reference's first element of largest magnitude, with its sign
    if (!group_abs_max(&c, 1, &max)) return false;
    const float d = max / -static_cast<float>(HALF);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    if (!finite_id(id)) return false;
    const uint16_t dh = O::to_f16(d);
    if (!f16_finite(dh)) return false;
    __builtin_memcpy(out, &dh, 2);
    const F vid = O::set1(id), offset = O::set1(static_cast<float>(HALF) + 0.5f);
    const I top = O::iset1(2 * HALF - 1);
    I q[V];
    for (int k = 0; k < V; ++k) q[k] = O::imin(O::cvtt(O::add(O::mul(c.v[k], vid), offset)), top);
    if (HALF == 8) O::pack_nibbles_halves(q, out + 2);
    else put_q5_levels(q, out + 2, out + 6);
    return true;
  }

  // The reference's min/max start at ±FLT_MAX and move on strict comparisons: the result is the
  // first element equal to the extreme, which matters only for the sign of a zero.
  static float first_equal(const Chunk& c, float value) {
    if (value != 0.0f) return value;
    const F z = O::set1(0.0f);
    return first_lane_negative(c, [&](F v) { return O::mask_eq(v, z); }) ? -0.0f : 0.0f;
  }

  // Q4_1 / Q5_1 (NMAX = 15 / 31): d = (max - min) / NMAX, m = min, level = trunc((x - min) / d + 0.5)
  // (Q4_1 also min(15, ...)).
  template <int NMAX>
  static bool min_block(const Chunk& c, uint8_t* out) {
    if (nonfinite(c)) return false;
    F lo = c.v[0], hi = c.v[0];
    for (int k = 1; k < V; ++k) { lo = O::min(lo, c.v[k]); hi = O::max(hi, c.v[k]); }
    const float min = first_equal(c, O::hmin(lo));
    const float max = first_equal(c, O::hmax(hi));
    const float d = (max - min) / static_cast<float>(NMAX);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    if (!finite_id(id)) return false;
    const uint16_t dh = O::to_f16(d), mh = O::to_f16(min);
    if (!f16_finite(dh) || !f16_finite(mh)) return false;
    __builtin_memcpy(out, &dh, 2);
    __builtin_memcpy(out + 2, &mh, 2);
    const F vid = O::set1(id), vmin = O::set1(min), half = O::set1(0.5f);
    I q[V];
    for (int k = 0; k < V; ++k) {
      q[k] = O::cvtt(O::add(O::mul(O::sub(c.v[k], vmin), vid), half));
      if (NMAX == 15) q[k] = O::imin(q[k], O::iset1(15));
    }
    if (NMAX == 15) O::pack_nibbles_halves(q, out + 4);
    else put_q5_levels(q, out + 4, out + 8);
    return true;
  }

  // The fifth bits of 32 levels (0..31) in a 32-bit word before their nibbles (Q5_0, Q5_1).
  static void put_q5_levels(I* q, uint8_t* qh_at, uint8_t* qs_at) {
    uint32_t qh = 0;
    const I low = O::iset1(15);
    for (int k = 0; k < V; ++k) {
      qh |= O::bit4_mask(q[k]) << (k * N);
      q[k] = O::iand(q[k], low);
    }
    __builtin_memcpy(qh_at, &qh, 4);
    O::pack_nibbles_halves(q, qs_at);
  }

  // ---- compressed-tensors groups (group size a multiple of 32) ----------------------------------

  // Bits and symmetry are template parameters: the per-chunk choices (packing, zero point) then cost
  // nothing in the loops.
  template <DType ST, int BITS, bool ASYM>
  static bool int_group(const QuantSpec& spec, const void* src, int64_t base, int64_t g,
                        uint8_t* packed_at, uint8_t* scales, int64_t scale_index, int8_t* zero) {
    constexpr int bits = BITS;
    const float qmin = -static_cast<float>(1 << (bits - 1));
    const float qmax = static_cast<float>((1 << (bits - 1)) - 1);
    const float levels = static_cast<float>((1 << bits) - 1);
    float s, lo = 0.0f;
    // The first chunk stays in registers: for groups of 32 (the common case) nothing is loaded twice.
    const Chunk first = load32<ST>(src, base);
    if (!ASYM) {
      I a = abs_max_bits(first, O::iset1(0));
      for (int64_t j = 32; j < g; j += 32) a = abs_max_bits(load32<ST>(src, base + j), a);
      const int32_t bits = O::hmax_i(a);
      if (bits >= kInfBits) return false;
      s = from_bits(bits) / (levels * 0.5f);
    } else {
      if (nonfinite(first)) return false;
      F mn = first.v[0], mx = first.v[0];
      for (int k = 1; k < V; ++k) { mn = O::min(mn, first.v[k]); mx = O::max(mx, first.v[k]); }
      for (int64_t j = 32; j < g; j += 32) {
        const Chunk c = load32<ST>(src, base + j);
        if (nonfinite(c)) return false;
        for (int k = 0; k < V; ++k) { mn = O::min(mn, c.v[k]); mx = O::max(mx, c.v[k]); }
      }
      const float m = O::hmin(mn), M = O::hmax(mx);
      lo = m < 0.0f ? m : 0.0f;  // as the reference: starts at +0, moves only on a smaller value
      const float hi = M > 0.0f ? M : 0.0f;
      s = (hi - lo) / levels;
    }
    const float sq = store_scale(scales, spec.scale_dtype, scale_index, s);
    if (!__builtin_isfinite(sq)) return false;
    const float id = stored_scale_inverse(sq);
    float zp = 0.0f;
    if (ASYM) {
      zp = __builtin_nearbyintf(qmin - lo * id);
      zp = zp < qmin ? qmin : (zp > qmax ? qmax : zp);
      *zero = static_cast<int8_t>(zp);
    }
    const F vid = O::set1(id), vzp = O::set1(zp), vmin = O::set1(qmin), vmax = O::set1(qmax);
    const I offset = O::iset1(1 << (bits - 1));
    for (int64_t j = 0; j < g; j += 32) {
      const Chunk c = j == 0 ? first : load32<ST>(src, base + j);
      I q[V];
      for (int k = 0; k < V; ++k) {
        F r = O::round_even(O::mul(c.v[k], vid));
        if (ASYM) r = O::add(r, vzp);  // + 0 would change nothing for symmetric groups
        q[k] = O::iadd(O::cvtt(O::min(vmax, O::max(vmin, r))), offset);
      }
      if (BITS == 8) O::pack_bytes32(q, packed_at + j);
      else O::pack_nibbles_pairs(q, packed_at + j / 2);
    }
    return true;
  }

  // Quantizes one row; false when it must be redone by the scalar reference.
  template <DType ST>
  static bool quantize_row(const QuantSpec& spec, const void* src, int64_t cols, int64_t r, QuantParts out) {
    const int64_t g = spec.group;
    const int64_t groups = cols / g;
    const int64_t data_row = data_bytes_per_row(spec, cols);
    uint8_t* row_out = out.data + r * data_row;
    // A group with NaN/Inf makes the whole row go to the reference, which reports it.
    switch (spec.scheme) {
      case Scheme::GGML_Q8_0:
        for (int64_t b = 0; b < groups; ++b)
          if (!q8_0_block(load32<ST>(src, r * cols + b * 32), row_out + b * 34)) return false;
        return true;
      case Scheme::GGML_Q4_0:
        for (int64_t b = 0; b < groups; ++b)
          if (!sym_block<8>(load32<ST>(src, r * cols + b * 32), row_out + b * 18)) return false;
        return true;
      case Scheme::GGML_Q4_1:
        for (int64_t b = 0; b < groups; ++b)
          if (!min_block<15>(load32<ST>(src, r * cols + b * 32), row_out + b * 20)) return false;
        return true;
      case Scheme::GGML_Q5_0:
        for (int64_t b = 0; b < groups; ++b)
          if (!sym_block<16>(load32<ST>(src, r * cols + b * 32), row_out + b * blk::kQ5_0)) return false;
        return true;
      case Scheme::GGML_Q5_1:
        for (int64_t b = 0; b < groups; ++b)
          if (!min_block<31>(load32<ST>(src, r * cols + b * 32), row_out + b * blk::kQ5_1)) return false;
        return true;
      default: {
        const bool asym = spec.scheme == Scheme::INT_ASYM;
        if (spec.bits == 8) return asym ? int_row<ST, 8, true>(spec, src, cols, r, out) : int_row<ST, 8, false>(spec, src, cols, r, out);
        return asym ? int_row<ST, 4, true>(spec, src, cols, r, out) : int_row<ST, 4, false>(spec, src, cols, r, out);
      }
    }
  }

  template <DType ST, int BITS, bool ASYM>
  static bool int_row(const QuantSpec& spec, const void* src, int64_t cols, int64_t r, QuantParts out) {
    const int64_t g = spec.group;
    const int64_t groups = cols / g;
    uint8_t* row_out = out.data + r * data_bytes_per_row(spec, cols);
    for (int64_t gi = 0; gi < groups; ++gi) {
      int8_t unused = 0;
      int8_t* zero = out.zeros ? out.zeros + r * groups + gi : &unused;
      const int64_t packed_offset = BITS == 8 ? gi * g : gi * g / 2;
      if (!int_group<ST, BITS, ASYM>(spec, src, r * cols + gi * g, g, row_out + packed_offset, out.scales, r * groups + gi, zero))
        return false;
    }
    return true;
  }

  static QuantStatus quantize_rows(const QuantSpec& requested, const void* src, DType st, int64_t cols,
                                   int64_t row_begin, int64_t row_end, QuantParts out) {
    const KernelTable& ref = scalar_kernels();
    const QuantSpec spec = spec_to_run(requested);
    // llama.cpp's quantizers that search (Q5_0/Q5_1 without an importance matrix are block code below)
    if (is_llama_quantizer(spec) && is_k_quant(spec.scheme))
      return with_dtype(st, [&](auto t) { return k_quant_rows<decltype(t)::value>(spec, src, cols, row_begin, row_end, out); });
    if (is_llama_quantizer(spec) && (spec.scheme == Scheme::GGML_IQ4_NL || spec.method == Method::IMATRIX))
      return with_dtype(st, [&](auto t) { return block32_rows<decltype(t)::value>(spec, src, cols, row_begin, row_end, out); });
    if (spec.group % 32 != 0 || spec.method == Method::HQQ) return ref.quantize_rows(spec, src, st, cols, row_begin, row_end, out);
    if (spec.method != Method::RTN) return search_rows(spec, src, st, cols, row_begin, row_end, out);  // GPTQ without its factor: the search
    QuantStatus status;
    auto rows = [&](auto row_fn) {
      for (int64_t r = row_begin; r < row_end; ++r)
        if (!row_fn(r)) merge(status, ref.quantize_rows(spec, src, st, cols, r, r + 1, out));
    };
    switch (st) {
      case DType::F32: rows([&](int64_t r) { return quantize_row<DType::F32>(spec, src, cols, r, out); }); break;
      case DType::F16: rows([&](int64_t r) { return quantize_row<DType::F16>(spec, src, cols, r, out); }); break;
      case DType::BF16: rows([&](int64_t r) { return quantize_row<DType::BF16>(spec, src, cols, r, out); }); break;
    }
    return status;
  }

  // ---- llama.cpp's quantizers that search: through the lanes of simd_kquants.h -----------------

  template <DType T>
  struct Dt {
    static constexpr DType value = T;
  };
  // fn(Dt<source dtype>{}): the row loops are compiled per source dtype.
  template <class Fn>
  static auto with_dtype(DType st, Fn fn) {
    switch (st) {
      case DType::F32: return fn(Dt<DType::F32>{});
      case DType::F16: return fn(Dt<DType::F16>{});
      default: return fn(Dt<DType::BF16>{});
    }
  }

  using KQ = KQuantLanes<typename O::KL>;

  // Row r of the source as floats into x; a block of `block` values holding NaN/Inf is counted and
  // zeroed, as kquants.h's load_row_checked does.
  template <DType ST>
  static void load_row(const void* src, int64_t cols, int64_t r, int64_t block, float* x, QuantStatus& status) {
    for (int64_t b = 0; b < cols; b += block) {
      bool bad = false;
      for (int64_t c = b; c < b + block; c += 32) {
        const Chunk ch = load32<ST>(src, r * cols + c);
        bad |= nonfinite(ch);
        for (int k = 0; k < V; ++k) O::store(x + c + k * N, ch.v[k]);
      }
      if (bad) refuse_nonfinite(x + b, block, r * cols + b, status);
    }
  }

  // The rows go through in pieces of about 64K weights, converted to f32 first; within a piece the
  // super-blocks of consecutive rows fill the lanes together.
  template <DType ST>
  static QuantStatus k_quant_rows(const QuantSpec& spec, const void* src, int64_t cols, int64_t row_begin, int64_t row_end,
                                  QuantParts out) {
    QuantStatus status;
    const Scheme s = spec.scheme;
    const int64_t per_row = cols / kSuperBlock, data_row = per_row * llama_block_bytes(s);
    const int64_t piece = cols >= 65536 ? 1 : 65536 / cols;
    float* xf = new float[static_cast<size_t>(piece * cols)];
    for (int64_t r0 = row_begin; r0 < row_end; r0 += piece) {
      const int64_t r1 = r0 + piece < row_end ? r0 + piece : row_end;
      for (int64_t r = r0; r < r1; ++r) load_row<ST>(src, cols, r, kSuperBlock, xf + (r - r0) * cols, status);
      KQ::encode_k_blocks(s, xf, (r1 - r0) * per_row, per_row, spec.weights, out.data + r0 * data_row);
      for (int64_t r = r0; r < r1; ++r) count_scale_overflow(s, out.data + r * data_row, cols, r, status);
    }
    delete[] xf;
    return status;
  }

  // llama.cpp's quantizers for blocks of 32 that search: IQ4_NL (rtn, imatrix) and Q4_0/Q4_1/Q5_0/Q5_1
  // with an importance matrix (whose weights take the row's mean square, a sequential sum as in the
  // reference), blocks through the lanes.
  template <DType ST>
  static QuantStatus block32_rows(const QuantSpec& spec, const void* src, int64_t cols, int64_t row_begin, int64_t row_end,
                                  QuantParts out) {
    QuantStatus status;
    const Scheme s = spec.scheme;
    const int64_t data_row = cols / 32 * llama_block_bytes(s);
    float* x = new float[static_cast<size_t>(2 * cols)];
    float* w = x + cols;
    for (int64_t r = row_begin; r < row_end; ++r) {
      load_row<ST>(src, cols, r, 32, x, status);
      uint8_t* row_out = out.data + r * data_row;
      if (s == Scheme::GGML_IQ4_NL) {
        KQ::encode_iq4nl_blocks(x, spec.weights, cols / 32, row_out);
      } else {
        const float sigma2 = row_sigma2(x, cols);
        for (int64_t c = 0; c < cols; c += 32) legacy_weights(x + c, spec.weights + c, sigma2, w + c);
        KQ::encode_weighted_blocks(s, x, w, cols / 32, row_out);
      }
      count_scale_overflow(s, row_out, cols, r, status);
    }
    delete[] x;
    return status;
  }

  // ---- dequantization ---------------------------------------------------------------------------
  // Scheme, bits and source dtype are template parameters here too: the verify pass runs these loops
  // over every quantized weight, and per-chunk switches were a large part of their cost.

  template <Scheme S, int BITS>
  struct Kind {};

  // Calls fn(Kind<S, BITS>{}) for the spec's scheme and bit width.
  template <class Fn>
  static auto with_kind(const QuantSpec& spec, Fn fn) {
    switch (spec.scheme) {
      case Scheme::GGML_Q8_0: return fn(Kind<Scheme::GGML_Q8_0, 8>{});
      case Scheme::GGML_Q4_0: return fn(Kind<Scheme::GGML_Q4_0, 4>{});
      case Scheme::GGML_Q4_1: return fn(Kind<Scheme::GGML_Q4_1, 4>{});
      case Scheme::GGML_IQ4_NL: return fn(Kind<Scheme::GGML_IQ4_NL, 4>{});
      case Scheme::INT_SYM: return spec.bits == 8 ? fn(Kind<Scheme::INT_SYM, 8>{}) : fn(Kind<Scheme::INT_SYM, 4>{});
      default: return spec.bits == 8 ? fn(Kind<Scheme::INT_ASYM, 8>{}) : fn(Kind<Scheme::INT_ASYM, 4>{});
    }
  }

  // The 32 values of chunk `ci` (elements ci*32 .. ci*32+31) of row r.
  template <Scheme S, int BITS>
  static Chunk dequant_chunk(const QuantSpec& spec, const ConstQuantParts& in, int64_t cols, int64_t data_row,
                             int64_t r, int64_t ci) {
    const uint8_t* row_in = in.data + r * data_row;
    Chunk c;
    I q[V];
    if constexpr (S == Scheme::GGML_Q5_0 || S == Scheme::GGML_Q5_1 || S == Scheme::GGML_Q2_K || S == Scheme::GGML_Q3_K ||
                  S == Scheme::GGML_Q4_K || S == Scheme::GGML_Q5_K || S == Scheme::GGML_Q6_K) {
      (void)spec;
      (void)cols;
      return llama_chunk<S>(row_in, ci);
    } else if constexpr (S == Scheme::GGML_Q8_0) {
      const uint8_t* b = row_in + ci * 34;
      uint16_t dh;
      __builtin_memcpy(&dh, b, 2);
      const F d = O::set1(O::from_f16(dh));
      O::unpack_i8(b + 2, q);
      for (int k = 0; k < V; ++k) c.v[k] = O::mul(O::i2f(q[k]), d);
    } else if constexpr (S == Scheme::GGML_Q4_0) {
      const uint8_t* b = row_in + ci * 18;
      uint16_t dh;
      __builtin_memcpy(&dh, b, 2);
      const F d = O::set1(O::from_f16(dh));
      O::unpack_nibbles_halves(b + 2, q);
      const I eight = O::iset1(8);
      for (int k = 0; k < V; ++k) c.v[k] = O::mul(O::i2f(O::isub(q[k], eight)), d);
    } else if constexpr (S == Scheme::GGML_IQ4_NL) {
      const uint8_t* b = row_in + ci * 18;
      uint16_t dh;
      __builtin_memcpy(&dh, b, 2);
      const F d = O::set1(O::from_f16(dh));
      O::unpack_nibbles_halves(b + 2, q);
      for (int k = 0; k < V; ++k) c.v[k] = O::mul(O::iq4nl_value(q[k]), d);
    } else if constexpr (S == Scheme::GGML_Q4_1) {
      const uint8_t* b = row_in + ci * 20;
      uint16_t dh, mh;
      __builtin_memcpy(&dh, b, 2);
      __builtin_memcpy(&mh, b + 2, 2);
      const F d = O::set1(O::from_f16(dh)), m = O::set1(O::from_f16(mh));
      O::unpack_nibbles_halves(b + 4, q);
      for (int k = 0; k < V; ++k) c.v[k] = O::add(O::mul(O::i2f(q[k]), d), m);
    } else {
      const int64_t groups = cols / spec.group;
      const int64_t gi = ci * 32 / spec.group;
      const F s = O::set1(load_scale(in.scales, spec.scale_dtype, r * groups + gi));
      const int32_t zp = S == Scheme::INT_ASYM ? in.zeros[r * groups + gi] : 0;
      if constexpr (BITS == 8) O::unpack_u8(row_in + ci * 32, q);
      else O::unpack_nibbles_pairs(row_in + ci * 16, q);
      const I sub = O::iset1((1 << (BITS - 1)) + zp);
      for (int k = 0; k < V; ++k) c.v[k] = O::mul(O::i2f(O::isub(q[k], sub)), s);
    }
    return c;
  }

  // 32 weights of a Q5_0/Q5_1/K-quant row (kquants.h's decode_chunk32): y = a * q (+ b), a and b per 16.
  template <Scheme S>
  static Chunk llama_chunk(const uint8_t* row_in, int64_t ci) {
    constexpr int bw = S == Scheme::GGML_Q5_0 || S == Scheme::GGML_Q5_1 ? 32 : kSuperBlock;
    Chunk32 d;
    decode_chunk32(S, row_in + ci * 32 / bw * llama_block_bytes(S), static_cast<int>(ci * 32 % bw / 32), &d);
    I q[V];
    O::unpack_i8(reinterpret_cast<const uint8_t*>(d.q), q);
    Chunk c;
    for (int k = 0; k < V; ++k) {
      const int h = k * N / 16;
      c.v[k] = O::mul(O::set1(d.a[h]), O::i2f(q[k]));
      if (d.offset) c.v[k] = O::add(c.v[k], O::set1(d.b[h]));
    }
    return c;
  }

  template <Scheme S>
  static void llama_dequantize_rows(ConstQuantParts in, int64_t cols, int64_t row_begin, int64_t row_end, float* out) {
    const int64_t data_row = cols / (S == Scheme::GGML_Q5_0 || S == Scheme::GGML_Q5_1 ? 32 : kSuperBlock) * llama_block_bytes(S);
    for (int64_t r = row_begin; r < row_end; ++r)
      for (int64_t ci = 0; ci < cols / 32; ++ci) {
        const Chunk c = llama_chunk<S>(in.data + r * data_row, ci);
        for (int k = 0; k < V; ++k) O::store(out + r * cols + ci * 32 + k * N, c.v[k]);
      }
  }

  static void dequantize_rows(const QuantSpec& spec, ConstQuantParts in, int64_t cols, int64_t row_begin,
                              int64_t row_end, float* out) {
    if (is_llama_type(spec.scheme)) {
      switch (spec.scheme) {
        case Scheme::GGML_Q5_0: return llama_dequantize_rows<Scheme::GGML_Q5_0>(in, cols, row_begin, row_end, out);
        case Scheme::GGML_Q5_1: return llama_dequantize_rows<Scheme::GGML_Q5_1>(in, cols, row_begin, row_end, out);
        case Scheme::GGML_Q2_K: return llama_dequantize_rows<Scheme::GGML_Q2_K>(in, cols, row_begin, row_end, out);
        case Scheme::GGML_Q3_K: return llama_dequantize_rows<Scheme::GGML_Q3_K>(in, cols, row_begin, row_end, out);
        case Scheme::GGML_Q4_K: return llama_dequantize_rows<Scheme::GGML_Q4_K>(in, cols, row_begin, row_end, out);
        case Scheme::GGML_Q5_K: return llama_dequantize_rows<Scheme::GGML_Q5_K>(in, cols, row_begin, row_end, out);
        default: return llama_dequantize_rows<Scheme::GGML_Q6_K>(in, cols, row_begin, row_end, out);
      }
    }
    if (spec.group % 32 != 0) return scalar_kernels().dequantize_rows(spec, in, cols, row_begin, row_end, out);
    const int64_t data_row = data_bytes_per_row(spec, cols);
    with_kind(spec, [&](auto kind) {
      dequantize_rows_of(kind, spec, in, cols, data_row, row_begin, row_end, out);
      return 0;
    });
  }

  template <Scheme S, int BITS>
  static void dequantize_rows_of(Kind<S, BITS>, const QuantSpec& spec, const ConstQuantParts& in, int64_t cols,
                                 int64_t data_row, int64_t row_begin, int64_t row_end, float* out) {
    for (int64_t r = row_begin; r < row_end; ++r)
      for (int64_t ci = 0; ci < cols / 32; ++ci) {
        const Chunk c = dequant_chunk<S, BITS>(spec, in, cols, data_row, r, ci);
        for (int k = 0; k < V; ++k) O::store(out + r * cols + ci * 32 + k * N, c.v[k]);
      }
  }

  static ErrorStats error_rows(const QuantSpec& spec, const void* src, DType st, ConstQuantParts in,
                               int64_t cols, int64_t row_begin, int64_t row_end) {
    if (spec.group % 32 != 0) return scalar_kernels().error_rows(spec, src, st, in, cols, row_begin, row_end);
    if (is_llama_type(spec.scheme)) {
      auto by_dtype = [&](auto kind) {
        switch (st) {
          case DType::F32: return error_rows_of<DType::F32>(kind, spec, src, in, cols, row_begin, row_end);
          case DType::F16: return error_rows_of<DType::F16>(kind, spec, src, in, cols, row_begin, row_end);
          default: return error_rows_of<DType::BF16>(kind, spec, src, in, cols, row_begin, row_end);
        }
      };
      switch (spec.scheme) {
        case Scheme::GGML_Q5_0: return by_dtype(Kind<Scheme::GGML_Q5_0, 5>{});
        case Scheme::GGML_Q5_1: return by_dtype(Kind<Scheme::GGML_Q5_1, 5>{});
        case Scheme::GGML_Q2_K: return by_dtype(Kind<Scheme::GGML_Q2_K, 2>{});
        case Scheme::GGML_Q3_K: return by_dtype(Kind<Scheme::GGML_Q3_K, 3>{});
        case Scheme::GGML_Q4_K: return by_dtype(Kind<Scheme::GGML_Q4_K, 4>{});
        case Scheme::GGML_Q5_K: return by_dtype(Kind<Scheme::GGML_Q5_K, 5>{});
        default: return by_dtype(Kind<Scheme::GGML_Q6_K, 6>{});
      }
    }
    return with_kind(spec, [&](auto kind) {
      switch (st) {
        case DType::F32: return error_rows_of<DType::F32>(kind, spec, src, in, cols, row_begin, row_end);
        case DType::F16: return error_rows_of<DType::F16>(kind, spec, src, in, cols, row_begin, row_end);
        default: return error_rows_of<DType::BF16>(kind, spec, src, in, cols, row_begin, row_end);
      }
    });
  }

  template <DType ST, Scheme S, int BITS>
  static ErrorStats error_rows_of(Kind<S, BITS>, const QuantSpec& spec, const void* src, const ConstQuantParts& in,
                                  int64_t cols, int64_t row_begin, int64_t row_end) {
    const int64_t data_row = data_bytes_per_row(spec, cols);
    typename O::Acc acc = O::acc_zero();
    ErrorStats es;
    for (int64_t r = row_begin; r < row_end; ++r)
      for (int64_t ci = 0; ci < cols / 32; ++ci) {
        const Chunk y = dequant_chunk<S, BITS>(spec, in, cols, data_row, r, ci);
        const Chunk x = load32<ST>(src, r * cols + ci * 32);
        uint32_t bad = 0;
        for (int k = 0; k < V; ++k) bad |= O::mask_nonfinite(y.v[k]) | O::mask_nonfinite(x.v[k]);
        if (!bad) {
          for (int k = 0; k < V; ++k) O::acc_add(acc, y.v[k], x.v[k]);
          es.count += 32;
          continue;
        }
        float ys[32], xs[32];
        for (int k = 0; k < V; ++k) { O::store(ys + k * N, y.v[k]); O::store(xs + k * N, x.v[k]); }
        for (int j = 0; j < 32; ++j) {
          if (!__builtin_isfinite(xs[j]) || !__builtin_isfinite(ys[j])) { es.nonfinite++; continue; }
          const double e = static_cast<double>(ys[j]) - static_cast<double>(xs[j]);
          es.sum_sq_err += e * e;
          es.sum_sq_ref += static_cast<double>(xs[j]) * static_cast<double>(xs[j]);
          const double ae = __builtin_fabs(e);
          if (ae > es.max_abs_err) es.max_abs_err = ae;
          es.count++;
        }
      }
    O::acc_finish(acc, es);
    return es;
  }

  // ---- scale search -----------------------------------------------------------------------------
  // Each group's work is one long dependency chain (largest value, its reciprocal, candidate sums,
  // scores, winner, stored scale, codes), so a row goes through in passes, each over all its groups:
  // within a pass the groups are independent and the CPU overlaps them.
  struct RowScratch {
    float* xf;    // the row in f32
    float* m;     // per group: its first largest-magnitude value
    float* ids;   // the candidates' inverse scales: candidate k of group gi at ids[k * groups + gi]
    float* sums;  // per group: candidate_sums
    float* d;     // per group: the searched scale
    float* inv;   // per group (ggml blocks): 1 / the stored f16 scale, 0 for 0
    uint16_t* half;  // per group (ggml blocks): the stored f16 scale
    int64_t* order;  // 2 x groups: group indices by clamp pattern (row_candidate_sums)
    static int64_t floats(int64_t cols, int64_t groups) { return cols + groups * (5 + 3 * kCandidates); }
    RowScratch(float* p, int64_t* o, int64_t cols, int64_t groups)
        : xf(p), m(p + cols), ids(m + groups), sums(ids + groups * kCandidates), d(sums + groups * 2 * kCandidates),
          inv(d + groups), half(reinterpret_cast<uint16_t*>(inv + groups)), order(o) {}
  };
  // search_sym_scale (search.h) with element j in lane j % 8 (O::L8) and the four candidates' sums in
  // separate vectors: each lane runs the reference's fused multiply-adds in element order, and the
  // lanes are totalled in Sum8's order, so the sums (and the scale best_scale picks from them) are the
  // reference's bit for bit. Unweighted groups skip the multiply by one (w * q == q exactly).
  // Writes sumqx to sums[0..4) and sumq2 to sums[4..8). g is a multiple of 32. Candidate k clamps
  // to lo only if bit k of LO is set, to hi only if bit k of HI is (clamp_masks: the others are no-ops).
  template <bool TABLE, bool WEIGHTED, unsigned LO, unsigned HI>
  static inline __attribute__((always_inline)) void candidate_sums(const SymCode& c, const float* x, const float* w, int64_t g, const float* ids,
                                                                    int64_t ids_stride, float* sums) {
    using L = typename O::L8;
    using LV = typename L::V;
    static_assert(kCandidates == 4, "L8::totals adds four vectors at once");
    const LV lo = L::set1(c.lo), hi = L::set1(c.hi);
    LV id[kCandidates], sqx[kCandidates], sq2[kCandidates];
    for (int k = 0; k < kCandidates; ++k) {
      id[k] = L::set1(ids[k * ids_stride]);
      sqx[k] = sq2[k] = L::set1(0.0f);
    }
    for (int64_t j = 0; j < g; j += 8) {
      const LV xj = L::load(x + j);
      const LV wj = WEIGHTED ? L::load(w + j) : lo;  // (not read when unweighted)
      for (int k = 0; k < kCandidates; ++k) {
        const LV t = L::mul(xj, id[k]);
        LV q;
        if (TABLE) {
          q = L::iq4nl(t);
        } else {
          q = L::round_even(t);
          if ((LO >> k) & 1u) q = L::max(lo, q);
          if ((HI >> k) & 1u) q = L::min(hi, q);
        }
        const LV wq = WEIGHTED ? L::mul(wj, q) : q;
        sqx[k] = L::fma(wq, xj, sqx[k]);
        sq2[k] = L::fma(wq, q, sq2[k]);
      }
    }
    L::totals(sqx, sums);
    L::totals(sq2, sums + kCandidates);
  }

  // candidate_inverses (search.h) for every group of a row, eight groups at a time (the same IEEE
  // divide and multiplies). Groups with m == 0 get values that are never read.
  static void row_candidate_inverses(const SymCode& c, int64_t groups, const RowScratch& rs) {
    using L = typename O::L8;
    using LV = typename L::V;
    int64_t gi = 0;
    for (; gi + 8 <= groups; gi += 8) {
      const LV m = L::load(rs.m + gi);
      const LV inv = L::div(L::set1(1.0f), m);
      for (int k = 0; k < kCandidates; ++k)
        L::store(rs.ids + k * groups + gi, L::mul(L::by_sign(m, L::set1(c.cand[0][k]), L::set1(c.cand[1][k])), inv));
    }
    for (; gi < groups; ++gi) {
      if (rs.m[gi] == 0.0f) continue;
      float ids[kCandidates];
      candidate_inverses(c, rs.m[gi], ids);
      for (int k = 0; k < kCandidates; ++k) rs.ids[k * groups + gi] = ids[k];
    }
  }

  // encode_sym_block's scale handling for every block of a row, eight at a time: the f16 rounding and
  // the inverse of the stored value (the same IEEE conversions and divide).
  static void row_block_scales(int64_t groups, const RowScratch& rs) {
    using L = typename O::L8;
    int64_t gi = 0;
    for (; gi + 8 <= groups; gi += 8) L::store(rs.inv + gi, L::inverse_or_zero(L::f16_round(L::load(rs.d + gi), rs.half + gi)));
    for (; gi < groups; ++gi) {
      rs.half[gi] = O::to_f16(rs.d[gi]);
      const float ds = O::from_f16(rs.half[gi]);
      rs.inv[gi] = ds != 0.0f ? 1.0f / ds : 0.0f;
    }
  }

  // encode_sym_int_group's scale handling for every group of a row, eight at a time: the scale stored
  // in its dtype (same rounding), rs.d replaced by the stored value, rs.inv its finite inverse or 0.
  static void row_int_scales(DType st, int64_t groups, const RowScratch& rs, uint8_t* scales) {
    using L = typename O::L8;
    using LV = typename L::V;
    int64_t gi = 0;
    for (; gi + 8 <= groups; gi += 8) {
      LV sq = L::load(rs.d + gi);
      switch (st) {
        case DType::F32: L::store(reinterpret_cast<float*>(scales) + gi, sq); break;
        case DType::F16: sq = L::f16_round(sq, reinterpret_cast<uint16_t*>(scales) + gi); break;
        case DType::BF16: sq = L::bf16_round(sq, reinterpret_cast<uint16_t*>(scales) + gi); break;
      }
      L::store(rs.d + gi, sq);
      L::store(rs.inv + gi, L::inverse_finite_or_zero(sq));
    }
    for (; gi < groups; ++gi) {
      const float sq = store_scale(scales, st, gi, rs.d[gi]);
      rs.d[gi] = sq;
      rs.inv[gi] = stored_scale_inverse(sq);
    }
  }

  // Which clamps candidate k of a code can skip. With |x| <= |m| and three roundings on the way
  // (1/m, num*inv_m, x*id), |t| <= |num| (1 + 2^-24)^3 < |num| (1 + 2e-7); when that stays below
  // hi + 1/2, round(t) <= hi, and below -lo + 1/2, round(t) >= lo. The test below allows 1e-6 (the
  // product computing it rounds too); every code's numerators are at least 0.3% from a threshold.
  // Q4_0's candidates need two clamps of eight, for example. Only for |m| >= kSmallestUnclamped (a
  // huge 1/m could overflow, and inf must be clamped).
  struct ClampMasks {
    unsigned lo, hi;
  };
  static ClampMasks clamp_masks(const SymCode& c, int neg) {
    ClampMasks mk{0, 0};
    for (int k = 0; k < kCandidates; ++k) {
      const float reach = __builtin_fabsf(c.cand[neg][k]) * (1.0f + 1e-6f);
      if (!(reach < -c.lo + 0.5f)) mk.lo |= 1u << k;
      if (!(reach < c.hi + 0.5f)) mk.hi |= 1u << k;
    }
    return mk;
  }
  static constexpr float kSmallestUnclamped = 1e-30f;  // |m| below this: every clamp

  // candidate_sums for two groups a and b at once (O::Pair: a's eight lanes and b's side by side in
  // one register, each lane doing what an O::L8 lane does, so the sums are candidate_sums' bit for bit).
  template <bool TABLE, bool WEIGHTED, unsigned LO, unsigned HI>
  static inline __attribute__((always_inline)) void candidate_sums_pair(const SymCode& c, const float* xa, const float* xb, const float* wa,
                                                                         const float* wb, int64_t g, const float* ida, const float* idb,
                                                                         int64_t ids_stride, float* sums_a, float* sums_b) {
    using P = typename O::Pair;
    using PV = typename P::V;
    static_assert(kCandidates == 4, "Pair::totals2 adds four vectors at once");
    const PV lo = P::set1(c.lo), hi = P::set1(c.hi);
    PV id[kCandidates], sqx[kCandidates], sq2[kCandidates];
    for (int k = 0; k < kCandidates; ++k) {
      id[k] = P::set2(ida[k * ids_stride], idb[k * ids_stride]);
      sqx[k] = sq2[k] = P::set1(0.0f);
    }
    for (int64_t j = 0; j < g; j += 8) {
      const PV xj = P::load2(xa + j, xb + j);
      const PV wj = WEIGHTED ? P::load2(wa + j, wb + j) : lo;  // (not read when unweighted)
      for (int k = 0; k < kCandidates; ++k) {
        const PV t = P::mul(xj, id[k]);
        PV q;
        if (TABLE) {
          q = P::iq4nl(t);
        } else {
          q = P::round_even(t);
          if ((LO >> k) & 1u) q = P::max(lo, q);
          if ((HI >> k) & 1u) q = P::min(hi, q);
        }
        const PV wq = WEIGHTED ? P::mul(wj, q) : q;
        sqx[k] = P::fma(wq, xj, sqx[k]);
        sq2[k] = P::fma(wq, q, sq2[k]);
      }
    }
    float qa[2 * kCandidates], qb[2 * kCandidates];
    P::totals2(sqx, qa, qb);
    P::totals2(sq2, qa + kCandidates, qb + kCandidates);
    for (int k = 0; k < 2 * kCandidates; ++k) {
      sums_a[k] = qa[k];
      sums_b[k] = qb[k];
    }
  }

  // candidate_sums for the groups order[0..n) of a row (two at a time where O has Pair lanes).
  template <bool TABLE, bool WEIGHTED, unsigned LO, unsigned HI>
  static void sums_run(const SymCode& c, int64_t g, int64_t groups, const float* w, const RowScratch& rs, const int64_t* list,
                       int64_t n) {
    int64_t i = 0;
    if constexpr (O::kPairLanes) {
      for (; i + 2 <= n; i += 2) {
        const int64_t a = list[i], b = list[i + 1];
        candidate_sums_pair<TABLE, WEIGHTED, LO, HI>(c, rs.xf + a * g, rs.xf + b * g, WEIGHTED ? w + a * g : nullptr, WEIGHTED ? w + b * g : nullptr, g,
                                                     rs.ids + a, rs.ids + b, groups, rs.sums + a * 2 * kCandidates, rs.sums + b * 2 * kCandidates);
      }
    }
    for (; i < n; ++i) {
      const int64_t gi = list[i];
      candidate_sums<TABLE, WEIGHTED, LO, HI>(c, rs.xf + gi * g, WEIGHTED ? w + gi * g : nullptr, g, rs.ids + gi, groups,
                                              rs.sums + gi * 2 * kCandidates);
    }
  }
  using SumsFn = void (*)(const SymCode&, int64_t, int64_t, const float*, const RowScratch&, const int64_t*, int64_t);
  // The instantiation for a clamp pattern: the patterns of the codes quantkit writes (Q4_0, Q8_0,
  // int4/int8 for either sign of m); anything else clamps everywhere.
  template <bool WEIGHTED>
  static SumsFn sums_fn(const SymCode& c, ClampMasks mk) {
    if (c.table) return sums_run<true, WEIGHTED, 0xf, 0xf>;
    switch (mk.lo << 4 | mk.hi) {
      case 0x03: return sums_run<false, WEIGHTED, 0x0, 0x3>;  // Q4_0
      case 0x57: return sums_run<false, WEIGHTED, 0x5, 0x7>;  // Q8_0
      case 0x00: return sums_run<false, WEIGHTED, 0x0, 0x0>;  // int4, m > 0
      case 0x0f: return sums_run<false, WEIGHTED, 0x0, 0xf>;  // int4, m < 0
      case 0x33: return sums_run<false, WEIGHTED, 0x3, 0x3>;  // int8, m > 0
      case 0x37: return sums_run<false, WEIGHTED, 0x3, 0x7>;  // int8, m < 0
      default: return sums_run<false, WEIGHTED, 0xf, 0xf>;
    }
  }

  // The candidates' sums for every group of a row with a nonzero largest value. Groups are listed by
  // clamp pattern (m > 0, m < 0 when that differs, tiny m), so each list calls one instantiation.
  static void row_candidate_sums(const SymCode& c, int64_t g, int64_t groups, const float* w, const RowScratch& rs) {
    const ClampMasks all{0xf, 0xf};
    const SumsFn pos = w ? sums_fn<true>(c, clamp_masks(c, 0)) : sums_fn<false>(c, clamp_masks(c, 0));
    const SumsFn neg = w ? sums_fn<true>(c, clamp_masks(c, 1)) : sums_fn<false>(c, clamp_masks(c, 1));
    const bool split = pos != neg;
    int64_t *a = rs.order, *b = rs.order + groups;
    int64_t na = 0, nb = 0, tiny = 0;
    for (int64_t gi = 0; gi < groups; ++gi) {  // branch-free appends
      const float m = rs.m[gi];
      const bool normal = __builtin_fabsf(m) >= kSmallestUnclamped, to_b = normal & split & (m < 0.0f);
      a[na] = gi;
      b[nb] = gi;
      na += normal & !to_b;
      nb += to_b;
      tiny += (m != 0.0f) & !normal;
    }
    pos(c, g, groups, w, rs, a, na);
    if (nb) neg(c, g, groups, w, rs, b, nb);
    if (tiny) {
      int64_t n = 0;
      for (int64_t gi = 0; gi < groups; ++gi)
        if (rs.m[gi] != 0.0f && !(__builtin_fabsf(rs.m[gi]) >= kSmallestUnclamped)) a[n++] = gi;
      (w ? sums_fn<true>(c, all) : sums_fn<false>(c, all))(c, g, groups, w, rs, a, n);
    }
  }

  // first_abs_max (search.h) over a group held in chunks: the largest magnitude from one integer
  // reduction of the magnitudes' bits (ordered as the magnitudes are), then the sign of its first
  // occurrence from compare masks. False when the group holds NaN/Inf (their bits are above every
  // finite value's), which sends the row to the reference.
  static bool group_abs_max(const Chunk* xs, int64_t chunks, float* out) {
    I a = O::iset1(0);
    F lo = xs[0].v[0], hi = lo;
    for (int64_t ci = 0; ci < chunks; ++ci) {
      a = abs_max_bits(xs[ci], a);
      for (int k = 0; k < V; ++k) { lo = O::min(lo, xs[ci].v[k]); hi = O::max(hi, xs[ci].v[k]); }
    }
    if (O::hmax_i(a) >= kInfBits) return false;
    const float mx = O::hmax(hi), mn = O::hmin(lo);
    if (mx > -mn) *out = mx;
    else if (-mn > mx) *out = mn;
    else *out = group_signed_max(xs, chunks, mx);  // a tie, or all zeros (0)
    return true;
  }

  // The sign of the first element of magnitude amax, from the chunk's 32-bit equality and sign masks
  // (no data-dependent branch per vector).
  static float group_signed_max(const Chunk* xs, int64_t chunks, float amax) {
    static_assert(N * V == 32, "a chunk's masks fill 32 bits");
    if (amax == 0.0f) return 0.0f;
    const F va = O::set1(amax);
    for (int64_t ci = 0; ci < chunks; ++ci) {
      uint32_t eq = 0, neg = 0;
      for (int k = 0; k < V; ++k) {
        eq |= O::mask_eq(O::abs(xs[ci].v[k]), va) << (k * N);
        neg |= O::sign_mask(xs[ci].v[k]) << (k * N);
      }
      if (eq) return ((neg >> __builtin_ctz(eq)) & 1u) ? -amax : amax;
    }
    return amax;
  }

  // Code indices (0-based from c.lo) of 32 values for inverse scale id, as code_index does.
  template <bool TABLE>
  static void code_indices(const SymCode& c, const Chunk& x, F vid, I* q) {
    for (int k = 0; k < V; ++k) {
      const F t = O::mul(x.v[k], vid);
      if (TABLE) {
        q[k] = O::iq4nl_index(t);
      } else {
        q[k] = O::cvtt(O::sub(O::min(O::set1(c.hi), O::max(O::set1(c.lo), O::round_even(t))), O::set1(c.lo)));
      }
    }
  }

  // encode_sym_block / encode_sym_int_group (search.h), vectorized.
  // The block's stored f16 scale dh and the inverse of its value (row_block_scales) come in.
  template <bool TABLE>
  static bool encode_block(const QuantSpec& spec, const SymCode& c, const Chunk& x, uint16_t dh, float inv, uint8_t* out) {
    __builtin_memcpy(out, &dh, 2);
    if (!f16_finite(dh)) return false;
    const F vid = O::set1(inv);
    I q[V];
    code_indices<TABLE>(c, x, vid, q);
    if (spec.scheme == Scheme::GGML_Q8_0) {
      const I lo = O::iset1(static_cast<int>(c.lo));
      for (int k = 0; k < V; ++k) q[k] = O::iadd(q[k], lo);  // back to signed values
      O::pack_bytes32(q, out + 2);
    } else {
      O::pack_nibbles_halves(q, out + 2);
    }
    return true;
  }

  // The group's stored scale sq and the inverse used for its codes (row_int_scales) come in.
  static bool encode_int_group(const QuantSpec& spec, const SymCode& c, const Chunk* xs, int64_t chunks, float sq, float inv,
                               uint8_t* packed_at) {
    if (!__builtin_isfinite(sq)) return false;
    const F vid = O::set1(inv);
    // index from lo = value + 2^(bits-1): exactly the stored unsigned code
    for (int64_t ci = 0; ci < chunks; ++ci) {
      I q[V];
      code_indices<false>(c, xs[ci], vid, q);
      if (spec.bits == 8) O::pack_bytes32(q, packed_at + ci * 32);
      else O::pack_nibbles_pairs(q, packed_at + ci * 16);
    }
    return true;
  }

  // A searched row of a symmetric code. A row with NaN/Inf, or a scale that overflows, goes to the
  // scalar reference, which reports it.
  template <DType ST>
  static bool search_row(const QuantSpec& spec, const void* src, int64_t cols, int64_t r, QuantParts out,
                         const RowScratch& rs, Chunk* xs) {
    const int64_t g = spec.group, groups = cols / g, chunks = g / 32;
    const int64_t data_row = data_bytes_per_row(spec, cols), block_bytes = data_row / groups;
    uint8_t* row_out = out.data + r * data_row;
    const bool ggml = spec.scheme != Scheme::INT_SYM;
    const SymCode c = sym_code_for(spec);
    for (int64_t gi = 0; gi < groups; ++gi) {
      for (int64_t ci = 0; ci < chunks; ++ci) {
        xs[ci] = load32<ST>(src, r * cols + gi * g + ci * 32);
        for (int k = 0; k < V; ++k) O::store(rs.xf + gi * g + ci * 32 + k * N, xs[ci].v[k]);
      }
      if (!group_abs_max(xs, chunks, &rs.m[gi])) return false;
    }
    row_candidate_inverses(c, groups, rs);
    row_candidate_sums(c, g, groups, spec.weights, rs);
    for (int64_t gi = 0; gi < groups; ++gi) {
      const float* sums = rs.sums + gi * 2 * kCandidates;
      rs.d[gi] = rs.m[gi] != 0.0f ? O::L8::best_scale(sums, sums + kCandidates) : 0.0f;
    }
    if (ggml) {
      row_block_scales(groups, rs);
    } else {
      row_int_scales(spec.scale_dtype, groups, rs, out.scales + r * groups * dtype_size(spec.scale_dtype));
      __builtin_memset(row_out, 0, static_cast<size_t>(data_row));
    }
    for (int64_t gi = 0; gi < groups; ++gi) {
      for (int64_t ci = 0; ci < chunks; ++ci) xs[ci] = load32<DType::F32>(rs.xf, gi * g + ci * 32);
      if (ggml) {
        uint8_t* blk = row_out + gi * block_bytes;
        const bool ok = c.table ? encode_block<true>(spec, c, xs[0], rs.half[gi], rs.inv[gi], blk)
                                : encode_block<false>(spec, c, xs[0], rs.half[gi], rs.inv[gi], blk);
        if (!ok) return false;
      } else if (!encode_int_group(spec, c, xs, chunks, rs.d[gi], rs.inv[gi], row_out + (spec.bits == 8 ? gi * g : gi * g / 2))) {
        return false;
      }
    }
    return true;
  }

  // ---- asymmetric search (search_asym, search_asym_int in search.h), eight lanes as Sum8 --------

  // sum w and sum w x of a group, as search_asym's Sum8s total them.
  template <bool WEIGHTED>
  static void weight_sums(const float* x, const float* w, int64_t g, float* sw, float* sx) {
    using L = typename O::L8;
    using LV = typename L::V;
    LV a = L::set1(0.0f), b = a;
    for (int64_t j = 0; j < g; j += 8) {
      const LV wj = WEIGHTED ? L::load(w + j) : L::set1(1.0f);
      a = L::add(a, wj);
      b = L::fma(wj, L::load(x + j), b);
    }
    const LV four[4] = {a, b, a, b};
    float t[4];
    L::totals(four, t);
    *sw = t[0];
    *sx = t[1];
  }

  template <bool WEIGHTED>
  static AsymFit asym_fit(const float* x, const float* w, int64_t g, float lo, float hi, float nmax) {
    using L = typename O::L8;
    using LV = typename L::V;
    AsymFit best{(hi - lo) / nmax, lo};
    if (!(hi > lo)) return AsymFit{0.0f, lo};
    float sw, sx;
    weight_sums<WEIGHTED>(x, w, g, &sw, &sx);
    bool any = false;
    double best_explained = 0.0;
    const LV vlo = L::set1(lo), zero = L::set1(0.0f), top = L::set1(nmax);
    for (int i = -kCandidates / 2; i < kCandidates / 2; ++i) {
      const LV is = L::set1(asym_candidate_inverse(nmax, i, hi - lo));
      LV sl = zero, sll = zero, slx = zero;
      for (int64_t j = 0; j < g; j += 8) {
        const LV xj = L::load(x + j);
        const LV l = L::min(top, L::max(zero, L::round_even(L::mul(L::sub(xj, vlo), is))));
        const LV wl = WEIGHTED ? L::mul(L::load(w + j), l) : l;
        sl = L::add(sl, wl);
        sll = L::fma(wl, l, sll);
        slx = L::fma(wl, xj, slx);
      }
      const LV four[4] = {sl, sll, slx, zero};
      float t[4];
      L::totals(four, t);
      AsymFit f;
      double e;
      if (asym_solve(sw, sx, t[0], t[1], t[2], &f, &e) && (!any || e > best_explained)) {
        any = true;
        best_explained = e;
        best = f;
      }
    }
    return best;
  }

  template <bool WEIGHTED>
  static IntAsymFit int_asym_fit(const float* x, const float* w, int64_t g, float lo, float hi, float qmin, float qmax) {
    using L = typename O::L8;
    using LV = typename L::V;
    if (!(hi > lo)) return IntAsymFit{0.0f, qmin};
    IntAsymFit best = int_asym_default(lo, hi, qmin, qmax);
    double best_a = 0.0, best_b = 0.0;
    bool any = false;
    const LV zero = L::set1(0.0f), vmin = L::set1(qmin), vmax = L::set1(qmax);
    for (int i = -kCandidates / 2; i < kCandidates / 2; ++i) {
      const IntAsymCandidate k = int_asym_candidate(lo, hi, qmin, qmax, i);
      const LV isc = L::set1(k.isc), zp = L::set1(k.zp);
      LV a = zero, b = zero;
      for (int64_t j = 0; j < g; j += 8) {
        const LV xj = L::load(x + j);
        const LV q = L::min(vmax, L::max(vmin, L::add(L::round_even(L::mul(xj, isc)), zp)));
        const LV l = L::sub(q, zp);
        const LV wl = WEIGHTED ? L::mul(L::load(w + j), l) : l;
        a = L::fma(wl, xj, a);
        b = L::fma(wl, l, b);
      }
      const LV four[4] = {a, b, a, b};
      float t[4];
      L::totals(four, t);
      int_asym_offer(t[0], t[1], k.zp, &best_a, &best_b, &any, &best);
    }
    return best;
  }

  // A searched Q4_1 row (searched_q4_1_block for each block). False sends the row to the reference
  // (NaN/Inf input, or a scale or minimum that overflows f16).
  template <DType ST>
  static bool asym_block_row(const void* src, const float* weights, int64_t cols, int64_t r, uint8_t* row_out, float* xf) {
    for (int64_t b = 0; b < cols / 32; ++b) {
      const Chunk c = load32<ST>(src, r * cols + b * 32);
      if (nonfinite(c)) return false;
      F lo = c.v[0], hi = c.v[0];
      for (int k = 0; k < V; ++k) {
        O::store(xf + k * N, c.v[k]);
        lo = O::min(lo, c.v[k]);
        hi = O::max(hi, c.v[k]);
      }
      const float min = first_equal(c, O::hmin(lo)), max = O::hmax(hi);  // only the minimum is stored
      const float* w = weights ? weights + b * 32 : nullptr;
      const AsymFit f = w ? asym_fit<true>(xf, w, 32, min, max, 15.0f) : asym_fit<false>(xf, w, 32, min, max, 15.0f);
      uint8_t* out = row_out + b * 20;
      const uint16_t dh = O::to_f16(f.d), mh = O::to_f16(f.m);
      if (!f16_finite(dh) || !f16_finite(mh)) return false;
      __builtin_memcpy(out, &dh, 2);
      __builtin_memcpy(out + 2, &mh, 2);
      const float d = O::from_f16(dh);
      const F vid = O::set1(d != 0.0f ? 1.0f / d : 0.0f), vm = O::set1(O::from_f16(mh)), zero = O::set1(0.0f), top = O::set1(15.0f);
      I q[V];
      for (int k = 0; k < V; ++k) q[k] = O::cvtt(O::min(top, O::max(zero, O::round_even(O::mul(O::sub(c.v[k], vm), vid)))));
      O::pack_nibbles_halves(q, out + 4);
    }
    return true;
  }

  // A searched compressed-tensors asymmetric row (searched_int_group for each group); false as above.
  template <DType ST>
  static bool int_asym_row(const QuantSpec& spec, const void* src, int64_t cols, int64_t r, QuantParts out, Chunk* xs, float* xf) {
    const int64_t g = spec.group, groups = cols / g, chunks = g / 32;
    const float qmin = -static_cast<float>(1 << (spec.bits - 1)), qmax = -qmin - 1.0f;
    const int64_t data_row = data_bytes_per_row(spec, cols);
    uint8_t* row_out = out.data + r * data_row;
    __builtin_memset(row_out, 0, static_cast<size_t>(data_row));
    for (int64_t gi = 0; gi < groups; ++gi) {
      F lo = O::set1(0.0f), hi = lo;
      for (int64_t ci = 0; ci < chunks; ++ci) {
        xs[ci] = load32<ST>(src, r * cols + gi * g + ci * 32);
        if (nonfinite(xs[ci])) return false;
        for (int k = 0; k < V; ++k) {
          O::store(xf + ci * 32 + k * N, xs[ci].v[k]);
          lo = O::min(lo, xs[ci].v[k]);
          hi = O::max(hi, xs[ci].v[k]);
        }
      }
      // the reference starts both at +0 and moves on strict comparisons: -0 never replaces +0
      const float mn = O::hmin(lo), mx = O::hmax(hi);
      const float vlo = mn < 0.0f ? mn : 0.0f, vhi = mx > 0.0f ? mx : 0.0f;
      const float* w = spec.weights ? spec.weights + gi * g : nullptr;
      const IntAsymFit f = w ? int_asym_fit<true>(xf, w, g, vlo, vhi, qmin, qmax) : int_asym_fit<false>(xf, w, g, vlo, vhi, qmin, qmax);
      const float sq = store_scale(out.scales, spec.scale_dtype, r * groups + gi, f.s);
      if (!__builtin_isfinite(sq)) return false;
      const float id = stored_scale_inverse(sq);
      if (out.zeros) out.zeros[r * groups + gi] = static_cast<int8_t>(f.zp);
      const F vid = O::set1(id), zp = O::set1(f.zp), vmin = O::set1(qmin), vmax = O::set1(qmax);
      uint8_t* packed_at = row_out + (spec.bits == 8 ? gi * g : gi * g / 2);
      for (int64_t ci = 0; ci < chunks; ++ci) {
        I q[V];  // the stored unsigned code: q - qmin
        for (int k = 0; k < V; ++k)
          q[k] = O::cvtt(O::sub(O::min(vmax, O::max(vmin, O::add(O::round_even(O::mul(xs[ci].v[k], vid)), zp))), vmin));
        if (spec.bits == 8) O::pack_bytes32(q, packed_at + ci * 32);
        else O::pack_nibbles_pairs(q, packed_at + ci * 16);
      }
    }
    return true;
  }

  // One searched row of any scheme; false sends it to the reference.
  template <DType ST>
  static bool searched_row(const QuantSpec& spec, const void* src, int64_t cols, int64_t r, QuantParts out, const RowScratch& rs,
                           Chunk* xs) {
    switch (spec.scheme) {
      case Scheme::GGML_Q4_1: return asym_block_row<ST>(src, spec.weights, cols, r, out.data + r * data_bytes_per_row(spec, cols), rs.xf);
      case Scheme::INT_ASYM: return int_asym_row<ST>(spec, src, cols, r, out, xs, rs.xf);
      default: return search_row<ST>(spec, src, cols, r, out, rs, xs);
    }
  }

  static QuantStatus search_rows(const QuantSpec& spec, const void* src, DType st, int64_t cols,
                                 int64_t row_begin, int64_t row_end, QuantParts out) {
    const KernelTable& ref = scalar_kernels();
    const int64_t groups = cols / spec.group;
    float* scratch = new float[static_cast<size_t>(RowScratch::floats(cols, groups))];
    int64_t* order = new int64_t[static_cast<size_t>(2 * groups)];
    Chunk* xs = new Chunk[static_cast<size_t>(spec.group / 32)];
    const RowScratch rs(scratch, order, cols, groups);
    QuantStatus status;
    for (int64_t r = row_begin; r < row_end; ++r) {
      bool ok = false;
      switch (st) {
        case DType::F32: ok = searched_row<DType::F32>(spec, src, cols, r, out, rs, xs); break;
        case DType::F16: ok = searched_row<DType::F16>(spec, src, cols, r, out, rs, xs); break;
        case DType::BF16: ok = searched_row<DType::BF16>(spec, src, cols, r, out, rs, xs); break;
      }
      if (!ok) merge(status, ref.quantize_rows(spec, src, st, cols, r, r + 1, out));
    }
    delete[] scratch;
    delete[] order;
    delete[] xs;
    return status;
  }

  static KernelTable table(const char* isa) { return KernelTable{isa, quantize_rows, dequantize_rows, error_rows}; }
};
