#include "gptq.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "../kernels/search.h"
#include "../parallel.h"

namespace qk {
namespace {

// sum_k a[k] * b[k] for k < n, in four interleaved partial sums (which the compiler can keep in SIMD
// registers; a single running sum would be one long dependency chain). A fixed order: the same result
// on every run and thread count.
double dot4(const double* a, const double* b, int64_t n) {
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  int64_t k = 0;
  for (; k + 4 <= n; k += 4) {
    s0 += a[k] * b[k];
    s1 += a[k + 1] * b[k + 1];
    s2 += a[k + 2] * b[k + 2];
    s3 += a[k + 3] * b[k + 3];
  }
  for (; k < n; ++k) s0 += a[k] * b[k];
  return (s0 + s1) + (s2 + s3);
}

// Lower-triangular L with L L^T = A (row-major, n x n; the upper part of L is left zero). False when A
// is not positive definite. Unblocked: it streams the triangle from memory n times, fine for the
// matrices the reference forward pass calibrates (docs/benchmarks.md has the cost at Phi-3 sizes).
bool cholesky_lower(const double* A, int64_t n, double* L) {
  std::fill(L, L + n * n, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const double* Li = L + i * n;
    for (int64_t j = 0; j <= i; ++j) {
      const double s = A[i * n + j] - dot4(Li, L + j * n, j);
      if (i == j) {
        if (!(s > 0.0) || !std::isfinite(s)) return false;
        L[i * n + i] = std::sqrt(s);
      } else {
        L[i * n + j] = s / L[j * n + j];
      }
    }
  }
  return true;
}

// A corrected weight as the float the search and the encoders take: an error feedback that overflowed
// (only possible with an extreme factor) gives the largest finite float, NaN gives 0, so no NaN or Inf
// reaches a float-to-int conversion.
float finite_float(double v) {
  if (!(v == v)) return 0.0f;
  constexpr double kMax = 3.4028234663852886e38;
  return static_cast<float>(v > kMax ? kMax : (v < -kMax ? -kMax : v));
}

}  // namespace

// With J the order-reversing permutation and J A J = M M^T (M lower triangular), A = R R^T for the upper
// triangular R = J M J, so A^-1 = (R^-1)^T R^-1: U = R^-1 = J M^-1 J. One factorisation and one
// triangular inverse, no explicit A^-1.
const char* gptq_factor(const float* H, int64_t n, double damp, double* U, int threads) {
  if (!(damp >= 0.0) || !std::isfinite(damp)) return "damp must be finite and non-negative";
  double mean = 0.0;
  for (int64_t j = 0; j < n; ++j) {
    const double h = H[j * n + j];
    if (!std::isfinite(h) || h < 0.0) return "the Hessian's diagonal must be finite and non-negative";
    mean += h;
  }
  mean /= static_cast<double>(n);
  const double unseen = mean > 0.0 ? mean : 1.0;
  // A = J (H damped) J, exactly symmetric
  std::vector<double> A(static_cast<size_t>(n * n)), M(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const double h = 0.5 * (static_cast<double>(H[i * n + j]) + static_cast<double>(H[j * n + i]));
      if (!std::isfinite(h)) return "the Hessian holds NaN or Inf";
      A[(n - 1 - i) * n + (n - 1 - j)] = h;
    }
  for (int64_t j = 0; j < n; ++j) {
    double& d = A[j * n + j];
    if (d == 0.0) d = unseen;
    d += damp * unseen;
  }
  if (!cholesky_lower(A.data(), n, M.data())) return "the damped Hessian is not positive definite (raise the damping)";
  // Column c of M^-1 by forward substitution (columns are independent: split over threads), written
  // straight into U: (M^-1)[i][c] = U[n-1-i][n-1-c].
  std::fill(U, U + n * n, 0.0);
  parallel_for(threads, n, [&](int64_t c) {
    std::vector<double> x(static_cast<size_t>(n), 0.0);
    for (int64_t i = c; i < n; ++i) {
      const double rhs = (i == c ? 1.0 : 0.0) - dot4(M.data() + i * n + c, x.data() + c, i - c);
      x[i] = rhs / M[i * n + i];
      U[(n - 1 - i) * n + (n - 1 - c)] = x[i];
    }
  });
  return nullptr;
}

namespace {

// Loads rows [r0, r0 + nb) into w as doubles, counting NaN/Inf (replaced by 0 so the run stays defined).
void load_rows(const void* src, DType src_type, int64_t cols, int64_t r0, int64_t nb, double* w, QuantStatus& st) {
  for (int64_t r = 0; r < nb; ++r)
    for (int64_t j = 0; j < cols; ++j) {
      const float v = load_as_f32(src, src_type, (r0 + r) * cols + j);
      if (!std::isfinite(v)) {
        if (st.nonfinite == 0) st.first_nonfinite = (r0 + r) * cols + j;
        st.nonfinite++;
      }
      w[r * cols + j] = std::isfinite(v) ? v : 0.0;
    }
}

// compressed-tensors' asymmetric groups (x ~ s * (q - zp), q and the integer zp in [-2^(b-1), 2^(b-1))):
// at a group's first column its scale and zero point come from the search over the corrected weights
// (search_asym_int, weighted by diag(H)); each column is then rounded on that grid and written as it is
// rounded, and its error fed forward exactly as in the symmetric loop.
QuantStatus gptq_asym_rows(const QuantSpec& spec, const void* src, DType src_type, int64_t cols, const double* U,
                           int64_t row_begin, int64_t row_end, QuantParts out) {
  QuantStatus st;
  const int64_t g = spec.group, groups = cols / g;
  const int64_t data_row = data_bytes_per_row(spec, cols);
  const float qmin = -static_cast<float>(1 << (spec.bits - 1)), qmax = -qmin - 1.0f;
  const int32_t offset = 1 << (spec.bits - 1);
  constexpr int64_t kRows = 8;
  std::vector<double> w(static_cast<size_t>(kRows * cols));
  std::vector<float> x(static_cast<size_t>(g));
  float ds[kRows], inv[kRows], zp[kRows];
  bool written[kRows];
  double e[kRows];
  for (int64_t r0 = row_begin; r0 < row_end; r0 += kRows) {
    const int64_t nb = std::min(kRows, row_end - r0);
    load_rows(src, src_type, cols, r0, nb, w.data(), st);
    for (int64_t r = 0; r < nb; ++r) std::memset(out.data + (r0 + r) * data_row, 0, static_cast<size_t>(data_row));
    for (int64_t gi = 0; gi < groups; ++gi) {
      const int64_t g0 = gi * g;
      const float* imp = spec.weights ? spec.weights + g0 : nullptr;
      for (int64_t r = 0; r < nb; ++r) {
        const int64_t row = r0 + r;
        for (int64_t j = 0; j < g; ++j) x[j] = finite_float(w[r * cols + g0 + j]);
        const IntAsymFit f = search_asym_int(x.data(), imp, g, qmin, qmax);
        const float stored = store_scale(out.scales, spec.scale_dtype, row * groups + gi, f.s);
        zp[r] = f.zp;
        // An overflowed scale leaves the group's zero point and codes unwritten, as the search does (the
        // tensor is refused; with an identity Hessian GPTQ writes the search's bytes, overflow included).
        written[r] = std::isfinite(stored);
        if (!written[r]) {
          if (st.scale_overflow == 0) st.first_overflow_row = row;
          st.scale_overflow++;
          ds[r] = inv[r] = 0.0f;
          continue;
        }
        out.zeros[row * groups + gi] = static_cast<int8_t>(f.zp);
        ds[r] = stored;
        inv[r] = stored_scale_inverse(stored);
      }
      for (int64_t j = g0; j < g0 + g; ++j) {
        const double* Uj = U + j * cols;
        for (int64_t r = 0; r < nb; ++r) {
          const double wj = w[r * cols + j];
          const float q = std::min(qmax, std::max(qmin, round_even(finite_float(wj) * inv[r]) + zp[r]));
          if (written[r]) put_code(out.data + (r0 + r) * data_row, spec.bits, j, static_cast<uint32_t>(static_cast<int32_t>(q) + offset));
          const float qv = (q - zp[r]) * ds[r];
          const double err = (wj - static_cast<double>(qv)) / Uj[j];
          e[r] = std::isfinite(err) ? err : 0.0;
        }
        for (int64_t r = 0; r < nb; ++r) {
          double* wr = w.data() + r * cols;
          const double er = e[r];
          for (int64_t k = j + 1; k < cols; ++k) wr[k] -= er * Uj[k];
        }
      }
    }
  }
  return st;
}

}  // namespace

QuantStatus gptq_quantize_rows(const QuantSpec& spec, const void* src, DType src_type, int64_t cols, const double* U,
                               int64_t row_begin, int64_t row_end, QuantParts out) {
  if (spec.scheme == Scheme::INT_ASYM) return gptq_asym_rows(spec, src, src_type, cols, U, row_begin, row_end, out);
  QuantStatus st;
  const SymCode c = sym_code_for(spec);
  const bool ggml = spec.scheme != Scheme::INT_SYM;
  const int64_t g = spec.group, groups = cols / g;
  const int64_t data_row = data_bytes_per_row(spec, cols), block_bytes = ggml ? data_row / groups : 0;
  const int64_t scale_size = dtype_size(spec.scale_dtype);
  // A few rows at a time: each row of U is then read once for all of them.
  constexpr int64_t kRows = 8;
  std::vector<double> w(static_cast<size_t>(kRows * cols));
  std::vector<float> q(static_cast<size_t>(kRows * cols)), x(static_cast<size_t>(g)), d(static_cast<size_t>(kRows * groups));
  float ds[kRows], inv[kRows];
  double e[kRows];
  for (int64_t r0 = row_begin; r0 < row_end; r0 += kRows) {
    const int64_t nb = std::min(kRows, row_end - r0);
    load_rows(src, src_type, cols, r0, nb, w.data(), st);
    for (int64_t gi = 0; gi < groups; ++gi) {
      const int64_t g0 = gi * g;
      const float* imp = spec.weights ? spec.weights + g0 : nullptr;
      for (int64_t r = 0; r < nb; ++r) {
        for (int64_t j = 0; j < g; ++j) x[j] = finite_float(w[r * cols + g0 + j]);
        const float dr = search_sym_scale(c, x.data(), imp, g);
        d[r * groups + gi] = dr;
        // the value a reader sees, and the inverse the encoders below use with it
        uint8_t tmp[4];
        const float stored = ggml ? f16_to_f32(f32_to_f16(dr)) : store_scale(tmp, spec.scale_dtype, 0, dr);
        if (!std::isfinite(stored)) {
          if (st.scale_overflow == 0) st.first_overflow_row = r0 + r;
          st.scale_overflow++;
          ds[r] = inv[r] = 0.0f;
          continue;
        }
        ds[r] = stored;
        inv[r] = ggml ? (stored != 0.0f ? 1.0f / stored : 0.0f) : stored_scale_inverse(stored);
      }
      for (int64_t j = g0; j < g0 + g; ++j) {
        const double* Uj = U + j * cols;
        for (int64_t r = 0; r < nb; ++r) {
          const double wj = w[r * cols + j];
          const float qv = code_value(c, finite_float(wj) * inv[r]) * ds[r];
          q[r * cols + j] = qv;
          const double err = (wj - static_cast<double>(qv)) / Uj[j];
          e[r] = std::isfinite(err) ? err : 0.0;  // an overflowed feedback stops here
        }
        for (int64_t r = 0; r < nb; ++r) {
          double* wr = w.data() + r * cols;
          const double er = e[r];
          for (int64_t k = j + 1; k < cols; ++k) wr[k] -= er * Uj[k];
        }
      }
    }
    // q holds code value x stored scale, so encoding it with the same scale gives back exactly those codes.
    for (int64_t r = 0; r < nb; ++r) {
      const int64_t row = r0 + r;
      uint8_t* row_out = out.data + row * data_row;
      if (!ggml) std::memset(row_out, 0, static_cast<size_t>(data_row));
      for (int64_t gi = 0; gi < groups; ++gi) {
        const float* qg = q.data() + r * cols + gi * g;
        const float dr = d[r * groups + gi];
        if (ggml) encode_sym_block(spec, c, qg, dr, row_out + gi * block_bytes);
        else encode_sym_int_group(spec, c, qg, g, dr, row_out, gi * g, out.scales + row * groups * scale_size, gi);
      }
    }
  }
  return st;
}

}  // namespace qk
