// llama.cpp's K-quant searches (kquants.h) vectorized ACROSS sub-blocks: each SIMD lane runs one
// sub-block's whole search, performing the reference's float operations in the reference's order, so
// its bytes are the reference's bit for bit. The 8 or 16 sub-blocks of a super-block (and those of the
// next super-blocks) fill the lanes; the per-super-block steps (the header with its scale rounding, the
// packing) are kquants.h's own functions. Include only inside an ISA file's anonymous namespace, after
// its native vector operations `NV` (one register of W floats, F, and its lane flags, M):
//   load/store/set1, add/sub/mul/div/sqrt/abs/neg, min_c(a, b) = a < b ? a : b and max_c(a, b) =
//   a > b ? a : b (C's comparisons, not IEEE min/max), lt/le/gt/eq/ne (C's comparisons: false for NaN
//   except ne), m_and/m_or/m_not/m_andnot(a, b) = a & ~b, none, any, select(m, a, b) = m ? a : b,
//   round_small(v) = (v + 1.5 * 2^23) - 1.5 * 2^23 (llama_round for |v| < 4194303, and +0 for a zero),
//   round_even(v) = the same up to the sign of a zero (one instruction), round_exact(v) =
//   float(llama_round(v)) for every v (NaN and Inf included), levels(v, uint8_t*) = the W
//   integer-valued floats as bytes.
//
// Exactness: every arithmetic step is one IEEE operation (these files are built with
// -ffp-contract=off); llama_round becomes round_small/round_even only where the argument is proven to
// stay below 2^22 in magnitude: the searches check a bound per lane and candidate (see
// `rounding_safe`) and hand a batch that fails it (absurd ranges, subnormal spans) to the scalar
// reference.
#pragma once

// U native vectors side by side: every dependency chain of a search has U twins in flight.
template <class NV, int UN>
struct Lanes {
  using F = typename NV::F;
  using FM = typename NV::M;
  static constexpr int NATIVE = NV::W, U = UN, LANES = NV::W * UN;
  struct V { F v[UN]; };
  struct M { FM m[UN]; };
  template <class Fn> static V each(Fn f) {
    V r;
    for (int k = 0; k < U; ++k) r.v[k] = f(k);
    return r;
  }
  template <class Fn> static M each_mask(Fn f) {
    M r;
    for (int k = 0; k < U; ++k) r.m[k] = f(k);
    return r;
  }
  static V load(const float* p) { return each([&](int k) { return NV::load(p + k * NATIVE); }); }
  static void store(float* p, V x) { for (int k = 0; k < U; ++k) NV::store(p + k * NATIVE, x.v[k]); }
  static V set1(float f) { return each([&](int) { return NV::set1(f); }); }
  static V per_native(const float* vals) { return each([&](int k) { return NV::set1(vals[k]); }); }
  static V add(V x, V y) { return each([&](int k) { return NV::add(x.v[k], y.v[k]); }); }
  static V sub(V x, V y) { return each([&](int k) { return NV::sub(x.v[k], y.v[k]); }); }
  static V mul(V x, V y) { return each([&](int k) { return NV::mul(x.v[k], y.v[k]); }); }
  static V div(V x, V y) { return each([&](int k) { return NV::div(x.v[k], y.v[k]); }); }
  static V sqrt(V x) { return each([&](int k) { return NV::sqrt(x.v[k]); }); }
  static V abs(V x) { return each([&](int k) { return NV::abs(x.v[k]); }); }
  static V neg(V x) { return each([&](int k) { return NV::neg(x.v[k]); }); }
  static V min_c(V x, V y) { return each([&](int k) { return NV::min_c(x.v[k], y.v[k]); }); }
  static V max_c(V x, V y) { return each([&](int k) { return NV::max_c(x.v[k], y.v[k]); }); }
  static V round_small(V x) { return each([&](int k) { return NV::round_small(x.v[k]); }); }
  static V round_even(V x) { return each([&](int k) { return NV::round_even(x.v[k]); }); }
  static V round_exact(V x) { return each([&](int k) { return NV::round_exact(x.v[k]); }); }
  static M lt(V x, V y) { return each_mask([&](int k) { return NV::lt(x.v[k], y.v[k]); }); }
  static M gt(V x, V y) { return each_mask([&](int k) { return NV::gt(x.v[k], y.v[k]); }); }
  static M eq(V x, V y) { return each_mask([&](int k) { return NV::eq(x.v[k], y.v[k]); }); }
  static M ne(V x, V y) { return each_mask([&](int k) { return NV::ne(x.v[k], y.v[k]); }); }
  static M le(V x, V y) { return each_mask([&](int k) { return NV::le(x.v[k], y.v[k]); }); }
  static M m_and(M x, M y) { return each_mask([&](int k) { return NV::m_and(x.m[k], y.m[k]); }); }
  static M m_or(M x, M y) { return each_mask([&](int k) { return NV::m_or(x.m[k], y.m[k]); }); }
  static M m_andnot(M x, M y) { return each_mask([&](int k) { return NV::m_andnot(x.m[k], y.m[k]); }); }
  static M m_not(M x) { return each_mask([&](int k) { return NV::m_not(x.m[k]); }); }
  static M none() { return each_mask([&](int) { return NV::none(); }); }
  static bool any(M x) {
    FM a = x.m[0];
    for (int k = 1; k < U; ++k) a = NV::m_or(a, x.m[k]);
    return NV::any(a);
  }
  static V select(M m, V x, V y) { return each([&](int k) { return NV::select(m.m[k], x.v[k], y.v[k]); }); }
  static void levels(V x, uint8_t* out) { for (int k = 0; k < U; ++k) NV::levels(x.v[k], out + k * NATIVE); }
};

template <class O>
struct KQuantLanes {
  using V = typename O::V;
  using M = typename O::M;
  static constexpr int LANES = O::LANES;
  static constexpr int kMaxSub = 32;  // elements per sub-block: 16 or 32

  // A batch of up to LANES sub-blocks, transposed: element i of lane l at [i * LANES + l].
  struct Batch {
    alignas(64) float x[kMaxSub * LANES];
    alignas(64) float w[kMaxSub * LANES];
  };

  // What a search leaves per lane: the scale, -min (searches with a minimum) and how to redo its
  // levels (L = clamp(llama_round(iscale * (x - min)), ...), with min = 0 for the symmetric ones), for
  // the sub-blocks whose stored step rounds to 0 and keep the search's levels.
  struct Fit {
    alignas(64) float scale[LANES];
    alignas(64) float neg_min[LANES];
    alignas(64) float iscale[LANES];
    alignas(64) float min[LANES];
    alignas(64) float empty[LANES];  // 1: the search stopped early (flat or ~zero sub-block): levels 0
  };

  static V vmax(V a, V b) { return O::max_c(a, b); }

  // |iscale * (x - m)| < 4194303 for every x in [lo, hi]: both ends bound it (rounding is monotonic).
  __attribute__((always_inline)) static M rounding_safe(V iscale, V lo, V hi, V m) {
    const V lim = O::set1(4194303.0f);
    const V a = O::abs(O::mul(iscale, O::sub(hi, m))), b = O::abs(O::mul(iscale, O::sub(lo, m)));
    return O::m_and(O::lt(a, lim), O::lt(b, lim));
  }

  // ---- fit_with_min (make_qkx2_quants / make_qkx3_quants) -----------------------------------------
  // Levels are clamped to [0, nmax] with max_c(level, +0), which turns a -0 from round_even into +0.
  // False when a lane's rounding argument could leave the exact range (the caller uses the scalar path).
  template <int N>
  static bool fit_with_min(const Batch& b, const MinFitParams& p, Fit& out) {
    const float* X = b.x;
    const float* W = b.w;
    const V zero = O::set1(0.0f);
    V mn = O::load(X), mx = mn, sw = O::load(W), sx = O::mul(sw, mn);
    for (int i = 1; i < N; ++i) {
      const V xi = O::load(X + i * LANES), wi = O::load(W + i * LANES);
      mn = O::min_c(xi, mn);
      mx = O::max_c(xi, mx);
      sw = O::add(sw, wi);
      sx = O::add(sx, O::mul(wi, xi));
    }
    const V lo = mn;  // the smallest x, before the minimum is clamped to <= 0
    mn = O::select(O::gt(mn, zero), zero, mn);
    const M flat = O::eq(mx, mn);
    const float fnmax = static_cast<float>(p.nmax);
    const V vnmax = O::set1(fnmax);
    V iscale = O::div(vnmax, O::sub(mx, mn));
    V scale = O::div(O::set1(1.0f), iscale);
    M bad = O::m_not(O::m_or(flat, rounding_safe(iscale, lo, mx, mn)));
    V best = zero;
    for (int i = 0; i < N; ++i) {
      const V xi = O::load(X + i * LANES);
      const V l = O::min_c(vnmax, vmax(O::round_even(O::mul(iscale, O::sub(xi, mn))), zero));
      V diff = O::sub(O::add(O::mul(scale, l), mn), xi);
      diff = p.mad ? O::abs(diff) : O::mul(diff, diff);
      best = O::add(best, O::mul(O::load(W + i * LANES), diff));
    }
    V rec_iscale = iscale, rec_min = mn, m = mn;
    alignas(64) float Lt[kMaxSub * LANES];
    for (int is = 0; is <= p.nstep; ++is) {
      const V t = O::div(O::set1(p.rmin + p.rdelta * static_cast<float>(is) + fnmax), O::sub(mx, m));
      bad = O::m_or(bad, O::m_andnot(O::m_not(flat), rounding_safe(t, lo, mx, m)));
      V sl = zero, sl2 = zero, sxl = zero;
      for (int i = 0; i < N; ++i) {
        const V xi = O::load(X + i * LANES);
        const V l = O::min_c(vnmax, vmax(O::round_even(O::mul(t, O::sub(xi, m))), zero));
        O::store(Lt + i * LANES, l);
        const V wl = O::mul(O::load(W + i * LANES), l);
        sl = O::add(sl, wl);
        sl2 = O::add(sl2, O::mul(wl, l));
        sxl = O::add(sxl, O::mul(wl, xi));
      }
      const V D = O::sub(O::mul(sw, sl2), O::mul(sl, sl));
      const M ok = O::m_andnot(O::gt(D, zero), flat);
      if (!O::any(ok)) continue;
      V ts = O::div(O::sub(O::mul(sw, sxl), O::mul(sx, sl)), D);
      V tm = O::div(O::sub(O::mul(sl2, sx), O::mul(sl, sxl)), D);
      const M pos = O::gt(tm, zero);
      tm = O::select(pos, zero, tm);
      ts = O::select(pos, O::div(sxl, sl2), ts);
      V err = zero;
      for (int i = 0; i < N; ++i) {
        V diff = O::sub(O::add(O::mul(ts, O::load(Lt + i * LANES)), tm), O::load(X + i * LANES));
        diff = p.mad ? O::abs(diff) : O::mul(diff, diff);
        err = O::add(err, O::mul(O::load(W + i * LANES), diff));
      }
      const M win = O::m_and(ok, O::lt(err, best));
      best = O::select(win, err, best);
      scale = O::select(win, ts, scale);
      rec_iscale = O::select(win, t, rec_iscale);
      rec_min = O::select(win, m, rec_min);
      m = O::select(win, tm, m);
    }
    O::store(out.scale, O::select(flat, zero, scale));
    O::store(out.neg_min, O::neg(O::select(flat, mn, m)));
    O::store(out.iscale, rec_iscale);
    O::store(out.min, rec_min);
    O::store(out.empty, O::select(flat, O::set1(1.0f), zero));
    return !O::any(bad);
  }

  // signed_abs_max (kquants.h) in every lane: the first value of largest magnitude, with its sign.
  template <int N>
  static V lanes_abs_max(const float* X, V* amax_out) {
    V amax = O::set1(0.0f), max = amax;
    for (int i = 0; i < N; ++i) {
      const V xi = O::load(X + i * LANES);
      const V ax = O::abs(xi);
      const M up = O::gt(ax, amax);
      amax = O::select(up, ax, amax);
      max = O::select(up, xi, max);
    }
    *amax_out = amax;
    return max;
  }

  // ---- fit_symmetric (make_qx_quants, weighted rmse) ---------------------------------------------
  // b.w holds the weights (the importance values, or x^2). Always exact: |iscale * x| <= nmax + 1.
  template <int N>
  static void fit_symmetric(const Batch& b, int nmax, Fit& out) {
    const float* X = b.x;
    const float* W = b.w;
    const V zero = O::set1(0.0f);
    V amax;
    const V max = lanes_abs_max<N>(X, &amax);
    alignas(64) float WX[kMaxSub * LANES];
    for (int i = 0; i < N; ++i) O::store(WX + i * LANES, O::mul(O::load(W + i * LANES), O::load(X + i * LANES)));
    const M tiny = O::lt(amax, O::set1(kGroupEps));
    const V lo = O::set1(static_cast<float>(-nmax)), hi = O::set1(static_cast<float>(nmax - 1));
    // sums for one inverse scale: sum w x l and sum w l^2
    auto sums = [&](V iscale, V& slx, V& sl2) {
      slx = zero;
      sl2 = zero;
      for (int i = 0; i < N; ++i) {
        const V l = O::min_c(hi, vmax(O::round_small(O::mul(iscale, O::load(X + i * LANES))), lo));
        slx = O::add(slx, O::mul(O::load(WX + i * LANES), l));
        sl2 = O::add(sl2, O::mul(O::mul(O::load(W + i * LANES), l), l));
      }
    };
    V rec = O::div(lo, max);
    V slx, sl2;
    sums(rec, slx, sl2);
    V scale = O::select(O::ne(sl2, zero), O::div(slx, sl2), zero);
    V best = O::mul(scale, slx);
    // the other 18 inverse scales, two per pass (twice the sums in flight); accepted in order
    static const int kSteps[18] = {-9, -8, -7, -6, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    const float fnmax = static_cast<float>(nmax);
    for (int k = 0; k < 18; k += 2) {
      const V t0 = O::div(O::neg(O::set1(fnmax + 0.1f * static_cast<float>(kSteps[k]))), max);
      const V t1 = O::div(O::neg(O::set1(fnmax + 0.1f * static_cast<float>(kSteps[k + 1]))), max);
      V a0 = zero, b0 = zero, a1 = zero, b1 = zero;
      for (int i = 0; i < N; ++i) {
        const V xi = O::load(X + i * LANES), wi = O::load(W + i * LANES), wxi = O::load(WX + i * LANES);
        const V l0 = O::min_c(hi, vmax(O::round_small(O::mul(t0, xi)), lo));
        const V l1 = O::min_c(hi, vmax(O::round_small(O::mul(t1, xi)), lo));
        a0 = O::add(a0, O::mul(wxi, l0));
        b0 = O::add(b0, O::mul(O::mul(wi, l0), l0));
        a1 = O::add(a1, O::mul(wxi, l1));
        b1 = O::add(b1, O::mul(O::mul(wi, l1), l1));
      }
      const M take0 = O::m_and(O::gt(b0, zero), O::gt(O::mul(a0, a0), O::mul(best, b0)));
      scale = O::select(take0, O::div(a0, b0), scale);
      best = O::select(take0, O::mul(scale, a0), best);
      rec = O::select(take0, t0, rec);
      const M take1 = O::m_and(O::gt(b1, zero), O::gt(O::mul(a1, a1), O::mul(best, b1)));
      scale = O::select(take1, O::div(a1, b1), scale);
      best = O::select(take1, O::mul(scale, a1), best);
      rec = O::select(take1, t1, rec);
    }
    O::store(out.scale, O::select(tiny, zero, scale));
    O::store(out.iscale, rec);
    O::store(out.min, zero);
    O::store(out.neg_min, zero);
    O::store(out.empty, O::select(tiny, O::set1(1.0f), zero));
  }

  // ---- fit_q3 (make_q3_quants with rmse): levels kept in the lanes; L (+ nmax) to Lout -------------
  template <int N>
  static void fit_q3(const Batch& b, int nmax, Fit& out, float* Lout) {
    const float* X = b.x;
    const V zero = O::set1(0.0f);
    V amax;
    const V max = lanes_abs_max<N>(X, &amax);
    const M tiny = O::lt(amax, O::set1(kGroupEps));
    const V lo = O::set1(static_cast<float>(-nmax)), hi = O::set1(static_cast<float>(nmax - 1));
    const V iscale = O::div(lo, max);
    V sumlx = zero, suml2 = zero;
    for (int i = 0; i < N; ++i) {
      const V xi = O::load(X + i * LANES);
      const V l = O::min_c(hi, vmax(O::round_small(O::mul(iscale, xi)), lo));
      O::store(Lout + i * LANES, l);
      const V w = O::mul(xi, xi);
      sumlx = O::add(sumlx, O::mul(O::mul(w, xi), l));
      suml2 = O::add(suml2, O::mul(O::mul(w, l), l));
    }
    M active = O::m_not(tiny);
    for (int sweep = 0; sweep < 5 && O::any(active); ++sweep) {
      M changed = O::none();
      for (int i = 0; i < N; ++i) {
        const V xi = O::load(X + i * LANES), li = O::load(Lout + i * LANES);
        const V w = O::mul(xi, xi), wx = O::mul(w, xi);
        const V slx = O::sub(sumlx, O::mul(wx, li));
        const V sl2 = O::sub(suml2, O::mul(O::mul(w, li), li));
        const V nl = O::min_c(hi, vmax(O::round_exact(O::div(O::mul(xi, sl2), slx)), lo));
        const V slx1 = O::add(slx, O::mul(wx, nl));
        const V sl21 = O::add(sl2, O::mul(O::mul(w, nl), nl));
        const M better = O::m_and(O::gt(sl21, zero), O::gt(O::mul(O::mul(slx1, slx1), suml2), O::mul(O::mul(sumlx, sumlx), sl21)));
        const M take = O::m_and(O::m_and(active, O::gt(slx, zero)), O::m_and(O::ne(nl, li), better));
        O::store(Lout + i * LANES, O::select(take, nl, li));
        sumlx = O::select(take, slx1, sumlx);
        suml2 = O::select(take, sl21, suml2);
        changed = O::m_or(changed, take);
      }
      active = O::m_and(active, changed);
    }
    const V vnmax = O::set1(static_cast<float>(nmax));
    for (int i = 0; i < N; ++i) O::store(Lout + i * LANES, O::select(tiny, zero, O::add(O::load(Lout + i * LANES), vnmax)));
    O::store(out.scale, O::select(O::m_or(tiny, O::m_not(O::gt(suml2, zero))), zero, O::div(sumlx, suml2)));
    O::store(out.empty, O::select(tiny, O::set1(1.0f), zero));
  }

  // ---- requantization against the stored steps ---------------------------------------------------
  // The levels of a super-block's 256 weights (sub-blocks of N): asymmetric (with_min) L = clamp(
  // round((x + dm) / d), lo, hi); symmetric clamp(round(x / d), lo, hi) - lo. Sub-blocks whose step is 0
  // get meaningless levels here: the caller replaces them with the search's.
  template <int N>
  static void requantize(const float* x, const SuperScales& ss, bool with_min, float lo, float hi, uint8_t* L) {
    static_assert(N % O::NATIVE == 0, "a native vector stays inside one sub-block");
    const V vlo = O::set1(lo), vhi = O::set1(hi);
    for (int c = 0; c < kSuperBlock; c += LANES) {
      float d[O::U], dm[O::U];
      for (int k = 0; k < O::U; ++k) {
        const int j = (c + k * O::NATIVE) / N;
        d[k] = ss.d[j];
        dm[k] = ss.dm[j];
      }
      const V xi = O::load(x + c);
      const V q = O::round_exact(O::div(with_min ? O::add(xi, O::per_native(dm)) : xi, O::per_native(d)));
      O::levels(with_min ? O::min_c(vhi, vmax(q, vlo)) : O::sub(O::min_c(vhi, vmax(q, vlo)), vlo), L + c);
    }
  }

  // ---- super-block batches -------------------------------------------------------------------------
  // Up to LANES / subs super-blocks at once (xs: 256 floats each, qws: their 256 importance values or
  // nullptr, outs: their blocks); a batch the lanes cannot do exactly goes to kquants.h's encoder.

  static constexpr int kMaxBatch = LANES / 8;

  // Element i of lane l's N values (lane[l], the first `used` lanes; zeros after) to dst[i * LANES + l].
  template <int N>
  static void to_lanes(const float* const* lane, int used, float* dst) {
    for (int l = 0; l < LANES; ++l)
      for (int i = 0; i < N; ++i) dst[i * LANES + l] = l < used ? lane[l][i] : 0.0f;
  }

  // Sub-block j (size N) of super-block s goes to lane s * (256 / N) + j.
  template <int N>
  static void transpose(const float* const* src, int n, float* dst) {
    constexpr int subs = kSuperBlock / N;
    const float* lane[LANES];
    for (int s = 0; s < n; ++s)
      for (int j = 0; j < subs; ++j) lane[s * subs + j] = src[s] + N * j;
    to_lanes<N>(lane, n * subs, dst);
  }

  // The importance weights qw * sqrt(sigma2 + x^2) (sigma2 = factor * mean x^2 of the super-block, a
  // sequential sum as in the reference) into b.w, and each lane's total weight into sw.
  template <int N>
  static void imatrix_lanes(Batch& b, const float* const* xs, const float* const* qws, int n, float factor, float* sw) {
    constexpr int subs = kSuperBlock / N;
    float sum[kMaxBatch] = {};
    for (int j = 0; j < kSuperBlock; ++j)
      for (int s = 0; s < n; ++s) sum[s] += xs[s][j] * xs[s][j];
    alignas(64) float sigma2[LANES];
    for (int l = 0; l < LANES; ++l) sigma2[l] = l / subs < n ? factor * sum[l / subs] / static_cast<float>(kSuperBlock) : 0.0f;
    transpose<N>(qws, n, b.w);
    const V sg = O::load(sigma2);
    V total = O::set1(0.0f);
    for (int i = 0; i < N; ++i) {
      const V xi = O::load(b.x + i * LANES);
      const V wi = O::mul(O::load(b.w + i * LANES), O::sqrt(O::add(sg, O::mul(xi, xi))));
      O::store(b.w + i * LANES, wi);
      total = O::add(total, wi);
    }
    O::store(sw, total);
  }

  // Levels for the sub-blocks whose step rounded to 0: the search's own (empty lanes: 0).
  template <int N>
  static void keep_searched_levels(const float* x, const SuperScales& ss, const Fit& f, int lane0, bool with_min, int lo, int hi, uint8_t* L) {
    for (int j = 0; j < kSuperBlock / N; ++j) {
      if (ss.d[j] != 0.0f) continue;
      const int lane = lane0 + j;
      for (int i = 0; i < N; ++i) {
        int l = 0;
        if (f.empty[lane] == 0.0f) {
          const float v = with_min ? f.iscale[lane] * (x[N * j + i] - f.min[lane]) : f.iscale[lane] * x[N * j + i];
          l = clamp_int(llama_round(v), lo, hi) - (with_min ? 0 : lo);
        }
        L[N * j + i] = static_cast<uint8_t>(l);
      }
    }
  }

  // Q2_K, Q4_K, Q5_K: the search with a minimum.
  template <int N>
  static void batch_with_min(Scheme s, const float* const* xs, const float* const* qws, uint8_t* const* outs, int n) {
    constexpr int subs = kSuperBlock / N;
    const bool weighted = qws[0] != nullptr;
    const int nmax = s == Scheme::GGML_Q2_K ? 3 : s == Scheme::GGML_Q4_K ? 15 : 31;
    Batch b;
    alignas(64) float sw[LANES];
    transpose<N>(xs, n, b.x);
    if (weighted) {
      imatrix_lanes<N>(b, xs, qws, n, s == Scheme::GGML_Q2_K ? 1.0f : 2.0f, sw);
    } else if (s == Scheme::GGML_Q2_K) {
      for (int i = 0; i < N * LANES; i += LANES) O::store(b.w + i, O::abs(O::load(b.x + i)));
    } else {  // sqrt(mean x^2) + |x| per sub-block
      V sum = O::set1(0.0f);
      for (int i = 0; i < N; ++i) {
        const V xi = O::load(b.x + i * LANES);
        sum = O::add(sum, O::mul(xi, xi));
      }
      const V av = O::sqrt(O::div(sum, O::set1(static_cast<float>(N))));
      for (int i = 0; i < N * LANES; i += LANES) O::store(b.w + i, O::add(av, O::abs(O::load(b.x + i))));
    }
    const MinFitParams p = weighted ? weighted_min_fit(nmax) : s == Scheme::GGML_Q2_K ? kQ2KFit : s == Scheme::GGML_Q4_K ? kQ4KFit : kQ5KFit;
    Fit f;
    if (!fit_with_min<N>(b, p, f)) {
      for (int k = 0; k < n; ++k) encode_k_block(s, xs[k], qws[k], outs[k]);
      return;
    }
    for (int k = 0; k < n; ++k) {
      const int lane0 = k * subs;
      SuperScales ss{};
      if (s == Scheme::GGML_Q2_K) q2_k_header(f.scale + lane0, f.neg_min + lane0, weighted ? sw + lane0 : nullptr, outs[k], &ss);
      else q45_k_header(f.scale + lane0, f.neg_min + lane0, weighted ? sw + lane0 : nullptr, nmax == 31, outs[k], &ss);
      alignas(64) uint8_t L[kSuperBlock];
      requantize<N>(xs[k], ss, true, 0.0f, static_cast<float>(nmax), L);
      keep_searched_levels<N>(xs[k], ss, f, lane0, true, 0, nmax, L);
      if (s == Scheme::GGML_Q2_K) pack_q2_k(L, outs[k]);
      else if (nmax == 15) pack_q4_k(L, outs[k]);
      else pack_q5_k(L, outs[k]);
    }
  }

  // Q3_K and Q6_K: symmetric levels (16 sub-blocks of 16).
  static void batch_symmetric(Scheme s, const float* const* xs, const float* const* qws, uint8_t* const* outs, int n) {
    constexpr int N = 16;
    const bool weighted = qws[0] != nullptr;
    const bool q3 = s == Scheme::GGML_Q3_K;
    const int nmax = q3 ? 4 : 32;
    Batch b;
    alignas(64) float sw[LANES];
    alignas(64) float Lq3[N * LANES];
    transpose<N>(xs, n, b.x);
    Fit f;
    if (q3 && !weighted) {
      fit_q3<N>(b, nmax, f, Lq3);
    } else {
      if (q3) imatrix_lanes<N>(b, xs, qws, n, 2.0f, sw);
      else if (weighted) transpose<N>(qws, n, b.w);
      else for (int i = 0; i < N * LANES; i += LANES) O::store(b.w + i, O::mul(O::load(b.x + i), O::load(b.x + i)));
      fit_symmetric<N>(b, nmax, f);
    }
    for (int k = 0; k < n; ++k) {
      const int lane0 = k * 16;
      SuperScales ss{};
      if (q3) q3_k_header(f.scale + lane0, weighted ? sw + lane0 : nullptr, outs[k], &ss);
      else q6_k_header(f.scale + lane0, outs[k], &ss);
      if (ss.zero) continue;
      alignas(64) uint8_t L[kSuperBlock];
      requantize<N>(xs[k], ss, false, static_cast<float>(-nmax), static_cast<float>(nmax - 1), L);
      if (q3 && !weighted) {
        for (int j = 0; j < 16; ++j)
          if (ss.d[j] == 0.0f)
            for (int i = 0; i < N; ++i) L[N * j + i] = static_cast<uint8_t>(Lq3[i * LANES + lane0 + j]);
      } else {
        keep_searched_levels<N>(xs[k], ss, f, lane0, false, -nmax, nmax - 1, L);
      }
      if (q3) pack_q3_k(reinterpret_cast<const int8_t*>(L), outs[k]);
      else pack_q6_k(reinterpret_cast<const int8_t*>(L), outs[k]);
    }
  }

  // Encodes `count` consecutive super-blocks (x: 256 floats each, out: consecutive blocks); qw: the
  // importance matrix of the row (per_row super-blocks), or nullptr.
  static void encode_k_blocks(Scheme s, const float* x, int64_t count, int64_t per_row, const float* qw, uint8_t* out) {
    const int subs = s == Scheme::GGML_Q4_K || s == Scheme::GGML_Q5_K ? 8 : 16;
    const int per_batch = LANES / subs;
    const int64_t bytes = llama_block_bytes(s);
    for (int64_t k = 0; k < count; k += per_batch) {
      const int n = static_cast<int>(count - k < per_batch ? count - k : per_batch);
      const float* xs[kMaxBatch];
      const float* qws[kMaxBatch];
      uint8_t* outs[kMaxBatch];
      for (int i = 0; i < n; ++i) {
        xs[i] = x + (k + i) * kSuperBlock;
        qws[i] = qw ? qw + (k + i) % per_row * kSuperBlock : nullptr;
        outs[i] = out + (k + i) * bytes;
      }
      switch (s) {
        case Scheme::GGML_Q2_K: batch_with_min<16>(s, xs, qws, outs, n); break;
        case Scheme::GGML_Q4_K: case Scheme::GGML_Q5_K: batch_with_min<32>(s, xs, qws, outs, n); break;
        default: batch_symmetric(s, xs, qws, outs, n); break;
      }
    }
  }

  // ---- blocks of 32 with an importance matrix (Q4_0, Q4_1, Q5_0, Q5_1) --------------------------
  // x: `blocks` blocks of 32 floats, w: their weights (legacy_weights), out: consecutive blocks.
  static void encode_weighted_blocks(Scheme s, const float* x, const float* w, int64_t blocks, uint8_t* out) {
    constexpr int N = 32;
    const bool with_min = s == Scheme::GGML_Q4_1 || s == Scheme::GGML_Q5_1;
    const int nmax = s == Scheme::GGML_Q4_0 ? 8 : s == Scheme::GGML_Q5_0 ? 16 : s == Scheme::GGML_Q4_1 ? 15 : 31;
    const int64_t bytes = llama_block_bytes(s);
    for (int64_t b0 = 0; b0 < blocks; b0 += LANES) {
      const int n = static_cast<int>(blocks - b0 < LANES ? blocks - b0 : LANES);
      const float* xl[LANES];
      const float* wl[LANES];
      for (int l = 0; l < n; ++l) {
        xl[l] = x + (b0 + l) * N;
        wl[l] = w + (b0 + l) * N;
      }
      Batch b;
      to_lanes<N>(xl, n, b.x);
      to_lanes<N>(wl, n, b.w);
      Fit f;
      if (with_min ? !fit_with_min<N>(b, weighted_min_fit(nmax), f) : (fit_symmetric<N>(b, nmax, f), false)) {
        for (int l = 0; l < n; ++l) encode_min_weighted(xl[l], wl[l], nmax, out + (b0 + l) * bytes);
        continue;
      }
      // the levels, from each lane's winning inverse scale (0 where the search stopped early)
      alignas(64) float Lt[N * LANES];
      const V t = O::load(f.iscale), m = O::load(f.min), zero = O::set1(0.0f);
      const M empty = O::gt(O::load(f.empty), zero);
      const V lo = O::set1(with_min ? 0.0f : static_cast<float>(-nmax)), hi = O::set1(static_cast<float>(with_min ? nmax : nmax - 1));
      for (int i = 0; i < N; ++i) {
        const V xi = O::load(b.x + i * LANES);
        const V l = with_min ? O::min_c(hi, vmax(O::round_even(O::mul(t, O::sub(xi, m))), zero))
                             : O::sub(O::min_c(hi, vmax(O::round_small(O::mul(t, xi)), lo)), lo);
        O::store(Lt + i * LANES, O::select(empty, zero, l));
      }
      for (int l = 0; l < n; ++l) {
        uint8_t* blk = out + (b0 + l) * bytes;
        uint8_t L[N];
        for (int i = 0; i < N; ++i) L[i] = static_cast<uint8_t>(Lt[i * LANES + l]);
        put_half_at(blk, f.scale[l]);
        if (with_min) put_half_at(blk + 2, -f.neg_min[l]);
        const int qh = with_min ? 4 : 2;
        if (nmax == 8 || nmax == 15) pack_q4_levels(L, blk + qh);
        else pack_q5_levels(L, blk + qh, blk + qh + 4);
      }
    }
  }

  // ---- IQ4_NL (kquants.h's encode_iq4_nl_block), one block of 32 per lane --------------------------

  // iq4nl_nearest for every lane, as the level value (and its index when `index` is given): a four-step
  // search over the levels whose probes bracket x (the largest level <= x and the smallest above it,
  // both met on the way), then llama.cpp's comparison of the two distances, in its operand order.
  static V iq4nl_level(V x, V* index) {
    auto c = [](float v) { return O::set1(v); };
    const M b1 = O::le(c(1), x);
    V lo = O::select(b1, c(1), c(-127)), hi = O::select(b1, c(113), c(1));
    const V p2 = O::select(b1, c(53), c(-49));
    const M b2 = O::le(p2, x);
    lo = O::select(b2, p2, lo);
    hi = O::select(b2, hi, p2);
    const V p3 = O::select(b1, O::select(b2, c(89), c(25)), O::select(b2, c(-22), c(-83)));
    const M b3 = O::le(p3, x);
    lo = O::select(b3, p3, lo);
    hi = O::select(b3, hi, p3);
    const V p4 = O::select(b1, O::select(b2, O::select(b3, c(113), c(69)), O::select(b3, c(38), c(13))),
                           O::select(b2, O::select(b3, c(-10), c(-35)), O::select(b3, c(-65), c(-104))));
    const M b4 = O::le(p4, x);
    lo = O::select(b4, p4, lo);
    hi = O::select(b4, hi, p4);
    const M lower = O::lt(O::sub(x, lo), O::sub(hi, x));
    const M nan = O::ne(x, x);
    if (index) {
      const V zero = c(0);
      V i = O::add(O::add(O::select(b1, c(8), zero), O::select(b2, c(4), zero)), O::add(O::select(b3, c(2), zero), O::select(b4, c(1), zero)));
      i = O::min_c(c(15), O::select(lower, i, O::add(i, c(1))));
      *index = O::select(nan, c(15), i);
    }
    return O::select(nan, c(113), O::select(lower, lo, hi));
  }

  // Blocks of 32 (x: `blocks` blocks, qw: their importance values or nullptr, out: 18-byte blocks).
  static void encode_iq4nl_blocks(const float* x, const float* qw, int64_t blocks, uint8_t* out) {
    constexpr int N = 32;
    for (int64_t b0 = 0; b0 < blocks; b0 += LANES) {
      const int n = static_cast<int>(blocks - b0 < LANES ? blocks - b0 : LANES);
      const float* lane[LANES];
      Batch b;
      for (int l = 0; l < n; ++l) lane[l] = x + (b0 + l) * N;
      to_lanes<N>(lane, n, b.x);
      if (qw) {
        for (int l = 0; l < n; ++l) lane[l] = qw + (b0 + l) * N;
        to_lanes<N>(lane, n, b.w);
      }
      const V zero = O::set1(0.0f);
      V amax;
      const V max = lanes_abs_max<N>(b.x, &amax);
      V sigma2 = zero;
      for (int i = 0; i < N; ++i) sigma2 = O::add(sigma2, O::mul(O::load(b.x + i * LANES), O::load(b.x + i * LANES)));
      sigma2 = O::mul(sigma2, O::set1(2.0f / 32.0f));
      for (int i = 0; i < N; ++i) {
        const V xi = O::load(b.x + i * LANES), x2 = O::mul(xi, xi);
        O::store(b.w + i * LANES, qw ? O::mul(O::load(b.w + i * LANES), O::sqrt(O::add(sigma2, x2))) : x2);
      }
      // sum w q x and sum w q^2 for an inverse scale
      auto sums = [&](V id, V& sqx, V& sq2) {
        sqx = zero;
        sq2 = zero;
        for (int i = 0; i < N; ++i) {
          const V xi = O::load(b.x + i * LANES);
          const V q = iq4nl_level(O::mul(id, xi), nullptr);
          const V wq = O::mul(O::load(b.w + i * LANES), q);
          sqx = O::add(sqx, O::mul(wq, xi));
          sq2 = O::add(sq2, O::mul(wq, q));
        }
      };
      V sqx, sq2;
      sums(O::div(O::set1(1.0f), O::div(O::neg(max), O::set1(-127.0f))), sqx, sq2);
      V d = O::select(O::gt(sq2, zero), O::div(sqx, sq2), zero);
      V best = O::mul(d, sqx);
      for (int t = -7; t <= 7; ++t) {
        sums(O::div(O::set1(static_cast<float>(t - 127)), max), sqx, sq2);
        const M take = O::m_and(O::gt(sq2, zero), O::gt(O::mul(sqx, sqx), O::mul(best, sq2)));
        d = O::select(take, O::div(sqx, sq2), d);
        best = O::select(take, O::mul(d, sqx), best);
      }
      d = O::select(O::lt(amax, O::set1(kGroupEps)), zero, d);
      // the levels for the unrounded scale
      const V id = O::select(O::ne(d, zero), O::div(O::set1(1.0f), d), zero);
      alignas(64) uint8_t idx[N * LANES];
      for (int i = 0; i < N; ++i) {
        V index;
        iq4nl_level(O::mul(id, O::load(b.x + i * LANES)), &index);
        O::levels(index, idx + i * LANES);
      }
      alignas(64) float ds[LANES];
      O::store(ds, d);
      for (int l = 0; l < n; ++l) {
        uint8_t* blk = out + (b0 + l) * 18;
        put_half_at(blk, ds[l]);
        uint8_t L[N];
        for (int i = 0; i < N; ++i) L[i] = idx[i * LANES + l];
        pack_q4_levels(L, blk + 2);
      }
    }
  }
};
