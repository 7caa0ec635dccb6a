// Runs llama.cpp's OWN quantizers and dequantizers (ggml-quants.c, compiled from the llama.cpp source
// that node-llama-cpp bundles, by scripts/build-ggml-reference.sh) over the cases of a request file, so
// that quantkit's kernels can be compared with them byte for byte (test/native/ggml-identity.test.ts)
// and timed side by side (native/test/kernel_bench.cc links the same object).
//
//   ggml_reference REQUEST OUTPUT
//
// REQUEST: records until end of file, little-endian:
//   int32 ggml type id, int32 rows, int32 cols, int32 has_imatrix,
//   float imatrix[cols] (when has_imatrix), float x[rows * cols]
// OUTPUT: per record, what llama-quantize's ggml_quantize_chunk writes for those rows
// (quantize_<type>(x, out, rows, cols, imatrix or NULL)), then dequantize_row_<type> of it
// (float[rows * cols]).
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-quants.h"

// The few ggml.c functions that ggml-quants.c calls, for the types handled here.
static int block_weights(enum ggml_type t) {
  switch (t) {
    case GGML_TYPE_Q2_K: case GGML_TYPE_Q3_K: case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K: case GGML_TYPE_Q6_K: return QK_K;
    default: return 32;
  }
}
size_t ggml_type_size(enum ggml_type t) {
  switch (t) {
    case GGML_TYPE_Q4_0: return sizeof(block_q4_0);
    case GGML_TYPE_Q4_1: return sizeof(block_q4_1);
    case GGML_TYPE_Q5_0: return sizeof(block_q5_0);
    case GGML_TYPE_Q5_1: return sizeof(block_q5_1);
    case GGML_TYPE_Q8_0: return sizeof(block_q8_0);
    case GGML_TYPE_Q2_K: return sizeof(block_q2_K);
    case GGML_TYPE_Q3_K: return sizeof(block_q3_K);
    case GGML_TYPE_Q4_K: return sizeof(block_q4_K);
    case GGML_TYPE_Q5_K: return sizeof(block_q5_K);
    case GGML_TYPE_Q6_K: return sizeof(block_q6_K);
    case GGML_TYPE_IQ4_NL: return sizeof(block_iq4_nl);
    default: return 0;
  }
}
size_t ggml_row_size(enum ggml_type t, int64_t ne) { return ggml_type_size(t) * (size_t)(ne / block_weights(t)); }
const char* ggml_type_name(enum ggml_type t) { return t == GGML_TYPE_Q4_0 ? "q4_0" : "other"; }
void ggml_abort(const char* file, int line, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "ggml_abort %s:%d: ", file, line);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  abort();
}

size_t ggml_reference_quantize(int type, const float* x, void* out, int64_t rows, int64_t cols, const float* imatrix);
void ggml_reference_dequantize(int type, const void* q, float* y, int64_t n);

// What ggml_quantize_chunk calls for each type (returns the bytes written, 0 for a type not handled here).
size_t ggml_reference_quantize(int type, const float* x, void* out, int64_t rows, int64_t cols, const float* imatrix) {
  switch ((enum ggml_type)type) {
    case GGML_TYPE_Q4_0: return quantize_q4_0(x, out, rows, cols, imatrix);
    case GGML_TYPE_Q4_1: return quantize_q4_1(x, out, rows, cols, imatrix);
    case GGML_TYPE_Q5_0: return quantize_q5_0(x, out, rows, cols, imatrix);
    case GGML_TYPE_Q5_1: return quantize_q5_1(x, out, rows, cols, imatrix);
    case GGML_TYPE_Q8_0: return quantize_q8_0(x, out, rows, cols, imatrix);
    case GGML_TYPE_Q2_K: return quantize_q2_K(x, out, rows, cols, imatrix);
    case GGML_TYPE_Q3_K: return quantize_q3_K(x, out, rows, cols, imatrix);
    case GGML_TYPE_Q4_K: return quantize_q4_K(x, out, rows, cols, imatrix);
    case GGML_TYPE_Q5_K: return quantize_q5_K(x, out, rows, cols, imatrix);
    case GGML_TYPE_Q6_K: return quantize_q6_K(x, out, rows, cols, imatrix);
    case GGML_TYPE_IQ4_NL: return quantize_iq4_nl(x, out, rows, cols, imatrix);
    default: return 0;
  }
}

void ggml_reference_dequantize(int type, const void* q, float* y, int64_t n) {
  switch ((enum ggml_type)type) {
    case GGML_TYPE_Q4_0: dequantize_row_q4_0(q, y, n); break;
    case GGML_TYPE_Q4_1: dequantize_row_q4_1(q, y, n); break;
    case GGML_TYPE_Q5_0: dequantize_row_q5_0(q, y, n); break;
    case GGML_TYPE_Q5_1: dequantize_row_q5_1(q, y, n); break;
    case GGML_TYPE_Q8_0: dequantize_row_q8_0(q, y, n); break;
    case GGML_TYPE_Q2_K: dequantize_row_q2_K(q, y, n); break;
    case GGML_TYPE_Q3_K: dequantize_row_q3_K(q, y, n); break;
    case GGML_TYPE_Q4_K: dequantize_row_q4_K(q, y, n); break;
    case GGML_TYPE_Q5_K: dequantize_row_q5_K(q, y, n); break;
    case GGML_TYPE_Q6_K: dequantize_row_q6_K(q, y, n); break;
    case GGML_TYPE_IQ4_NL: dequantize_row_iq4_nl(q, y, n); break;
    default: break;
  }
}

#ifndef GGML_REFERENCE_NO_MAIN
static void read_exactly(FILE* f, void* p, size_t n) {
  if (fread(p, 1, n, f) != n) {
    fprintf(stderr, "ggml_reference: truncated request\n");
    exit(2);
  }
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: ggml_reference REQUEST OUTPUT\n");
    return 2;
  }
  FILE* in = fopen(argv[1], "rb");
  FILE* out = fopen(argv[2], "wb");
  if (!in || !out) {
    perror("ggml_reference");
    return 2;
  }
  int32_t head[4];
  while (fread(head, 4, 4, in) == 4) {
    const int type = head[0];
    const int64_t rows = head[1], cols = head[2];
    if (rows <= 0 || cols <= 0 || cols % block_weights((enum ggml_type)type) != 0 || ggml_type_size((enum ggml_type)type) == 0) {
      fprintf(stderr, "ggml_reference: bad record (type %d, %lld x %lld)\n", type, (long long)rows, (long long)cols);
      return 2;
    }
    float* imatrix = NULL;
    if (head[3]) {
      imatrix = malloc((size_t)cols * sizeof(float));
      read_exactly(in, imatrix, (size_t)cols * sizeof(float));
    }
    const size_t n = (size_t)(rows * cols);
    float* x = malloc(n * sizeof(float));
    float* y = malloc(n * sizeof(float));
    read_exactly(in, x, n * sizeof(float));
    const size_t bytes = (size_t)rows * ggml_row_size((enum ggml_type)type, cols);
    void* q = malloc(bytes);
    if (ggml_reference_quantize(type, x, q, rows, cols, imatrix) != bytes) {
      fprintf(stderr, "ggml_reference: quantize wrote an unexpected size\n");
      return 2;
    }
    ggml_reference_dequantize(type, q, y, (int64_t)n);
    fwrite(q, 1, bytes, out);
    fwrite(y, sizeof(float), n, out);
    free(q);
    free(x);
    free(y);
    free(imatrix);
  }
  fclose(in);
  return fclose(out) == 0 ? 0 : 1;
}
#endif
