// GPTQ (Frantar et al., 2022): quantize a weight matrix one column at a time and push each column's
// rounding error onto the columns not yet quantized, in the proportions that minimise the error of the
// layer's output for inputs with second moment H (sum of x x^T over calibration tokens). Group scales
// come from quantkit's scale search (search.h) over the already-corrected weights when a group starts,
// weighted by diag(H), so the result is an ordinary symmetric layout (Q8_0, Q4_0, IQ4_NL blocks or
// compressed-tensors int4/int8 groups) that every reader of that layout loads.
//
// Plain C++ over doubles: the work is a triangular factorisation and rank-1 row updates, not a SIMD
// quantization kernel; -ffp-contract=off keeps the arithmetic the same on every target.
#pragma once
#include <cstdint>

#include "../kernels/kernels.h"

namespace qk {

// The upper-triangular U with U^T U = (H + damp * mean(diag H) * I)^-1, H symmetric n x n (row-major);
// a column with H[j][j] == 0 (an input never seen) is treated as H[j][j] = mean(diag H), or 1 when the
// whole diagonal is zero. Writes U (n x n, zeros below the diagonal). Returns nullptr, or a static
// message when the damped H is not positive definite (or holds NaN/Inf). Columns of the triangular
// inverse are split over `threads`; the result does not depend on it.
const char* gptq_factor(const float* H, int64_t n, double damp, double* U, int threads);

// Quantizes rows [row_begin, row_end) of the rows x cols matrix src with U from gptq_factor, for a spec
// check_spec accepts with Method::GPTQ (Q8_0, Q4_0, IQ4_NL, INT_SYM, INT_ASYM); spec.weights
// (diag H, or nullptr) weights the scale search. Rows are independent, so any split over threads gives
// the same bytes. Status as KernelTable::quantize_rows.
QuantStatus gptq_quantize_rows(const QuantSpec& spec, const void* src, DType src_type, int64_t cols, const double* U,
                               int64_t row_begin, int64_t row_end, QuantParts out);

}  // namespace qk
