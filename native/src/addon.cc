// The binding layer: checks every argument, then hands plain pointers to the kernels off the JS thread.
// Nothing that reaches a kernel can be out of bounds: buffer sizes are checked here against the layout.
#include <napi.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <atomic>
#include <functional>
#include <memory>
#include <stdexcept>
#include <cmath>
#include <string>
#include <vector>

#include "checksum/crc32.h"
#include "gptq/gptq.h"
#include "kernels/kernels.h"
#include "kernels/numeric.h"
#include "model/llama.h"
#include "parallel.h"

namespace {

using qk::ConstQuantParts;
using qk::DType;
using qk::QuantParts;
using qk::QuantSpec;
using qk::Scheme;

const qk::KernelTable* g_kernels = nullptr;
const char* g_kernel_error = nullptr;

class ArgError {
 public:
  explicit ArgError(std::string m) : message(std::move(m)) {}
  std::string message;
};

[[noreturn]] void fail(const std::string& m) { throw ArgError(m); }

Napi::Error coded_error(Napi::Env env, const std::string& code, const std::string& message, bool type) {
  Napi::Error e = type ? Napi::TypeError::New(env, message) : Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

const qk::KernelTable& kernels() {
  if (!g_kernels) fail(g_kernel_error ? g_kernel_error : "no kernels available");
  return *g_kernels;
}

int64_t get_int(const Napi::Object& o, const char* key, int64_t lo, int64_t hi) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) fail(std::string(key) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d) fail(std::string(key) + " must be an integer");
  if (d < static_cast<double>(lo) || d > static_cast<double>(hi))
    fail(std::string(key) + " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return static_cast<int64_t>(d);
}

std::string get_string(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) fail(std::string(key) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

DType parse_dtype(const std::string& s, const char* what) {
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  fail(std::string(what) + " must be one of F32, F16, BF16 (got '" + s + "')");
}

QuantSpec parse_spec(const Napi::Value& v) {
  if (!v.IsObject()) fail("spec must be an object");
  const Napi::Object o = v.As<Napi::Object>();
  const std::string scheme = get_string(o, "scheme");
  QuantSpec spec{};
  if (scheme == "q8_0") spec.scheme = Scheme::GGML_Q8_0;
  else if (scheme == "q4_0") spec.scheme = Scheme::GGML_Q4_0;
  else if (scheme == "q4_1") spec.scheme = Scheme::GGML_Q4_1;
  else if (scheme == "int_sym") spec.scheme = Scheme::INT_SYM;
  else if (scheme == "int_asym") spec.scheme = Scheme::INT_ASYM;
  else if (scheme == "iq4_nl") spec.scheme = Scheme::GGML_IQ4_NL;
  else if (scheme == "q5_0") spec.scheme = Scheme::GGML_Q5_0;
  else if (scheme == "q5_1") spec.scheme = Scheme::GGML_Q5_1;
  else if (scheme == "q2_k") spec.scheme = Scheme::GGML_Q2_K;
  else if (scheme == "q3_k") spec.scheme = Scheme::GGML_Q3_K;
  else if (scheme == "q4_k") spec.scheme = Scheme::GGML_Q4_K;
  else if (scheme == "q5_k") spec.scheme = Scheme::GGML_Q5_K;
  else if (scheme == "q6_k") spec.scheme = Scheme::GGML_Q6_K;
  else fail("spec.scheme must be one of q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, q2_k, q3_k, q4_k, q5_k, q6_k, int_sym, int_asym (got '" + scheme + "')");
  spec.bits = static_cast<int32_t>(get_int(o, "bits", 1, 64));
  spec.group = get_int(o, "group", 1, int64_t{1} << 40);
  spec.scale_dtype = parse_dtype(get_string(o, "scaleDtype"), "spec.scaleDtype");
  const Napi::Value mv = o.Get("method");
  const std::string method = mv.IsUndefined() ? "rtn" : get_string(o, "method");
  if (method == "rtn") spec.method = qk::Method::RTN;
  else if (method == "search") spec.method = qk::Method::SEARCH;
  else if (method == "gptq") spec.method = qk::Method::GPTQ;
  else if (method == "hqq") spec.method = qk::Method::HQQ;
  else if (method == "imatrix") spec.method = qk::Method::IMATRIX;
  else fail("spec.method must be rtn, search, gptq, hqq or imatrix (got '" + method + "')");
  return spec;
}

// A typed array's bytes, kept alive by a persistent reference while a worker uses them.
struct Bytes {
  uint8_t* ptr = nullptr;
  size_t len = 0;
  Napi::ObjectReference ref;
};

Bytes get_bytes(const Napi::Value& v, const std::string& what) {
  if (!v.IsTypedArray()) fail(what + " must be a TypedArray (Uint8Array, Buffer, Float32Array, ...)");
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  Bytes b;
  Napi::ArrayBuffer ab = ta.ArrayBuffer();
  b.ptr = static_cast<uint8_t*>(ab.Data()) + ta.ByteOffset();
  b.len = ta.ByteLength();
  b.ref = Napi::Persistent(ta.As<Napi::Object>());
  return b;
}

void need_bytes(const Bytes& b, int64_t n, const std::string& what) {
  if (static_cast<int64_t>(b.len) < n)
    fail(what + " is too small: " + std::to_string(b.len) + " bytes, need " + std::to_string(n));
}

int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r) || r > (int64_t{1} << 53)) fail(std::string(what) + " overflows");
  return r;
}

struct Shape {
  int64_t rows, cols;
};

Shape parse_shape(const Napi::Object& o, const QuantSpec& spec) {
  Shape s{get_int(o, "rows", 1, int64_t{1} << 40), get_int(o, "cols", 1, int64_t{1} << 40)};
  checked_mul(s.rows, s.cols, "rows * cols");
  if (const char* why = qk::check_spec(spec, s.cols))
    fail(std::string("spec does not fit a row of ") + std::to_string(s.cols) + ": " + why);
  return s;
}

// The quantized parts of a tensor (data, scales, zeros), each checked against the layout.
struct Parts {
  Bytes data, scales, zeros;
};

Parts get_parts(const Napi::Value& v, const QuantSpec& spec, const Shape& s) {
  if (!v.IsObject()) fail("parts must be an object {data, scales?, zeros?}");
  const Napi::Object o = v.As<Napi::Object>();
  Parts p;
  p.data = get_bytes(o.Get("data"), "parts.data");
  need_bytes(p.data, checked_mul(s.rows, qk::data_bytes_per_row(spec, s.cols), "data size"), "parts.data");
  const int64_t sb = qk::scale_bytes_per_row(spec, s.cols);
  if (sb > 0) {
    p.scales = get_bytes(o.Get("scales"), "parts.scales");
    need_bytes(p.scales, checked_mul(s.rows, sb, "scale size"), "parts.scales");
  }
  const int64_t zb = qk::zero_bytes_per_row(spec, s.cols);
  if (zb > 0) {
    p.zeros = get_bytes(o.Get("zeros"), "parts.zeros");
    need_bytes(p.zeros, checked_mul(s.rows, zb, "zero-point size"), "parts.zeros");
  }
  return p;
}

struct Source {
  Bytes bytes;
  DType dtype;
};

Source get_source(const Napi::Object& o, const Shape& s) {
  Source src{get_bytes(o.Get("src"), "src"), parse_dtype(get_string(o, "srcDtype"), "srcDtype")};
  need_bytes(src.bytes, checked_mul(checked_mul(s.rows, s.cols, "src size"), qk::dtype_size(src.dtype), "src size"), "src");
  return src;
}

// Options shared by the long-running calls: worker threads, and an optional BigInt64Array(2) the
// kernels share with JS: [0] source bytes processed so far (added atomically, read by JS for progress),
// [1] set non-zero by JS to cancel (checked between chunks).
struct RunOptions {
  int threads = 1;
  Bytes control;
  int64_t* counters() const { return control.ptr ? reinterpret_cast<int64_t*>(control.ptr) : nullptr; }
};

// `threads`: 1 to 256, default 1.
int get_threads(const Napi::Object& o) {
  return o.Has("threads") && !o.Get("threads").IsUndefined() ? static_cast<int>(get_int(o, "threads", 1, 256)) : 1;
}

RunOptions get_run_options(const Napi::Object& o) {
  RunOptions r;
  r.threads = get_threads(o);
  if (o.Has("control") && !o.Get("control").IsUndefined()) {
    Napi::Value v = o.Get("control");
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_bigint64_array)
      fail("control must be a BigInt64Array of length 2");
    r.control = get_bytes(v, "control");
    need_bytes(r.control, 16, "control");
    if (reinterpret_cast<uintptr_t>(r.control.ptr) % 8 != 0) fail("control must be 8-byte aligned");
  }
  return r;
}

// Runs `chunk_fn(chunk, row_begin, row_end)` over all rows in deterministic chunks, reporting
// progress and honouring cancellation. Returns false when cancelled.
template <class Fn>
bool run_chunks(const RunOptions& ro, int64_t rows, int64_t cols, int64_t bytes_per_row, Fn chunk_fn) {
  const int64_t per = qk::rows_per_chunk(cols);
  const int64_t n = (rows + per - 1) / per;
  int64_t* ctr = ro.counters();
  std::atomic<bool> cancelled{false};
  qk::parallel_for(ro.threads, n, [&](int64_t c) {
    if (cancelled.load(std::memory_order_relaxed)) return;
    if (ctr && __atomic_load_n(ctr + 1, __ATOMIC_RELAXED) != 0) {
      cancelled.store(true);
      return;
    }
    const int64_t b = c * per, e = b + per < rows ? b + per : rows;
    chunk_fn(c, b, e);
    if (ctr) __atomic_fetch_add(ctr, (e - b) * bytes_per_row, __ATOMIC_RELAXED);
  });
  return !cancelled.load();
}

int64_t chunk_count(int64_t rows, int64_t cols) {
  const int64_t per = qk::rows_per_chunk(cols);
  return (rows + per - 1) / per;
}

// ---- workers ------------------------------------------------------------------------------------

class KernelWorker : public Napi::AsyncWorker {
 public:
  KernelWorker(Napi::Env env, const qk::KernelTable& k, RunOptions ro)
      : Napi::AsyncWorker(env), kernels_(k), run_(std::move(ro)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void OnError(const Napi::Error& e) override {
    Napi::Error err = e;
    if (cancelled_) err = coded_error(Env(), "ERR_CANCELLED", "cancelled", false);
    deferred_.Reject(err.Value());
  }
  void Execute() override {
    try {
      Run();
      if (cancelled_) SetError("cancelled");
    } catch (const std::bad_alloc&) {
      SetError("out of memory in the quantkit addon");
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  virtual void Run() = 0;
  const qk::KernelTable& kernels_;
  RunOptions run_;
  bool cancelled_ = false;
  Napi::Promise::Deferred deferred_;
};

// Error sums of chunks merged in row order: the same sums for any thread count.
// Adds the chunks' sums to `st` in row order (from zero: the tensor's sums; from the sums of the rows
// before: the same floats as if those rows had been in the same call).
qk::ErrorStats merge_errors(const std::vector<qk::ErrorStats>& parts, qk::ErrorStats st = qk::ErrorStats()) {
  for (const qk::ErrorStats& p : parts) {
    st.sum_sq_err += p.sum_sq_err;
    st.sum_sq_ref += p.sum_sq_ref;
    st.max_abs_err = std::max(st.max_abs_err, p.max_abs_err);
    st.count += p.count;
    st.nonfinite += p.nonfinite;
  }
  return st;
}

Napi::Object error_object(Napi::Env env, const qk::ErrorStats& st) {
  Napi::Object r = Napi::Object::New(env);
  r.Set("sumSqErr", st.sum_sq_err);
  r.Set("sumSqRef", st.sum_sq_ref);
  r.Set("maxAbsErr", st.max_abs_err);
  r.Set("count", static_cast<double>(st.count));
  r.Set("nonfinite", static_cast<double>(st.nonfinite));
  return r;
}

// quantize_rows, or with a GPTQ factor gptq_quantize_rows, over a tensor's rows in chunks. Optionally
// (quantize only) output row r is quantized from source row rowOrder[r] (a permutation: llama.cpp's
// rotary row order for q/k, applied here instead of in a reordered copy), and the round trip's error
// is measured chunk by chunk while the chunk is in cache (`measure`: the same sums errorStats gives
// on the reordered tensor, merged in the same order).
class QuantizeWorker : public KernelWorker {
 public:
  QuantizeWorker(Napi::Env env, const qk::KernelTable& k, RunOptions ro, QuantSpec spec, Shape s, Source src, Parts out, Bytes weights,
                 Bytes factor = Bytes(), Bytes row_order = Bytes(), bool measure = false, qk::ErrorStats errors_from = qk::ErrorStats())
      : KernelWorker(env, k, std::move(ro)), spec_(spec), shape_(s), src_(std::move(src)), out_(std::move(out)), weights_(std::move(weights)),
        factor_(std::move(factor)), row_order_(std::move(row_order)), measure_(measure), errors_from_(errors_from) {
    spec_.weights = reinterpret_cast<const float*>(weights_.ptr);
  }

 protected:
  void Run() override {
    const int64_t n = chunk_count(shape_.rows, shape_.cols);
    std::vector<qk::QuantStatus> parts(static_cast<size_t>(n));
    std::vector<qk::ErrorStats> errors(measure_ ? static_cast<size_t>(n) : 0);
    const QuantParts out{out_.data.ptr, out_.scales.ptr, reinterpret_cast<int8_t*>(out_.zeros.ptr)};
    const double* U = reinterpret_cast<const double*>(factor_.ptr);
    const int64_t cols = shape_.cols, row_bytes = cols * qk::dtype_size(src_.dtype);
    const int64_t data_row = qk::data_bytes_per_row(spec_, cols), scale_row = qk::scale_bytes_per_row(spec_, cols),
                  zero_row = qk::zero_bytes_per_row(spec_, cols);
    const int32_t* order = reinterpret_cast<const int32_t*>(row_order_.ptr);
    cancelled_ = !run_chunks(run_, shape_.rows, cols, row_bytes, [&](int64_t c, int64_t b, int64_t e) {
      if (factor_.ptr) {
        parts[c] = qk::gptq_quantize_rows(spec_, src_.bytes.ptr, src_.dtype, cols, U, b, e, out);
        return;
      }
      if (!order) {
        parts[c] = kernels_.quantize_rows(spec_, src_.bytes.ptr, src_.dtype, cols, b, e, out);
        if (measure_) errors[c] = kernels_.error_rows(spec_, src_.bytes.ptr, src_.dtype, ConstQuantParts{out.data, out.scales, out.zeros}, cols, b, e);
        return;
      }
      // The chunk's source rows gathered in output order, quantized as rows [0, e - b) into the parts at row b.
      thread_local std::vector<uint8_t> gathered;
      gathered.resize(static_cast<size_t>((e - b) * row_bytes));
      for (int64_t r = b; r < e; ++r) std::memcpy(gathered.data() + (r - b) * row_bytes, src_.bytes.ptr + order[r] * row_bytes, static_cast<size_t>(row_bytes));
      const QuantParts at{out.data + b * data_row, out.scales ? out.scales + b * scale_row : nullptr, out.zeros ? out.zeros + b * zero_row : nullptr};
      qk::QuantStatus st = kernels_.quantize_rows(spec_, gathered.data(), src_.dtype, cols, 0, e - b, at);
      if (st.nonfinite) st.first_nonfinite += b * cols;
      if (st.scale_overflow) st.first_overflow_row += b;
      parts[c] = st;
      if (measure_) errors[c] = kernels_.error_rows(spec_, gathered.data(), src_.dtype, ConstQuantParts{at.data, at.scales, at.zeros}, cols, 0, e - b);
    });
    for (const qk::QuantStatus& p : parts) {  // in row order: the first problem is the first row's
      if (p.nonfinite && status_.nonfinite == 0) status_.first_nonfinite = p.first_nonfinite;
      status_.nonfinite += p.nonfinite;
      if (p.scale_overflow && status_.scale_overflow == 0) status_.first_overflow_row = p.first_overflow_row;
      status_.scale_overflow += p.scale_overflow;
    }
    if (measure_) errors_ = merge_errors(errors, errors_from_);
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object r = Napi::Object::New(env);
    r.Set("nonfinite", static_cast<double>(status_.nonfinite));
    r.Set("firstNonfinite", static_cast<double>(status_.first_nonfinite));
    r.Set("scaleOverflow", static_cast<double>(status_.scale_overflow));
    r.Set("firstOverflowRow", static_cast<double>(status_.first_overflow_row));
    if (measure_) r.Set("errors", error_object(env, errors_));
    if (row_order_.ptr) r.Set("rowOrderApplied", true);  // JS checks it: an addon without rowOrder ignores it
    deferred_.Resolve(r);
  }

 private:
  QuantSpec spec_;
  Shape shape_;
  Source src_;
  Parts out_;
  Bytes weights_;    // per-column importance for the search, or empty
  Bytes factor_;     // GPTQ's factor (gptq_factor), or empty
  Bytes row_order_;  // Int32Array permutation of the rows, or empty
  bool measure_;
  qk::ErrorStats errors_from_;  // the sums the measurement starts from (the rows before, in an earlier call)
  qk::QuantStatus status_;
  qk::ErrorStats errors_;
};

class DequantizeWorker : public KernelWorker {
 public:
  DequantizeWorker(Napi::Env env, const qk::KernelTable& k, RunOptions ro, QuantSpec spec, Shape s, Parts in, Bytes out)
      : KernelWorker(env, k, std::move(ro)), spec_(spec), shape_(s), in_(std::move(in)), out_(std::move(out)) {}

 protected:
  void Run() override {
    const ConstQuantParts in{in_.data.ptr, in_.scales.ptr, reinterpret_cast<const int8_t*>(in_.zeros.ptr)};
    cancelled_ = !run_chunks(run_, shape_.rows, shape_.cols, shape_.cols * 4, [&](int64_t, int64_t b, int64_t e) {
      kernels_.dequantize_rows(spec_, in, shape_.cols, b, e, reinterpret_cast<float*>(out_.ptr));
    });
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }

 private:
  QuantSpec spec_;
  Shape shape_;
  Parts in_;
  Bytes out_;
};

class ErrorWorker : public KernelWorker {
 public:
  ErrorWorker(Napi::Env env, const qk::KernelTable& k, RunOptions ro, QuantSpec spec, Shape s, Source src, Parts in)
      : KernelWorker(env, k, std::move(ro)), spec_(spec), shape_(s), src_(std::move(src)), in_(std::move(in)) {}

 protected:
  void Run() override {
    std::vector<qk::ErrorStats> parts(static_cast<size_t>(chunk_count(shape_.rows, shape_.cols)));
    const ConstQuantParts in{in_.data.ptr, in_.scales.ptr, reinterpret_cast<const int8_t*>(in_.zeros.ptr)};
    cancelled_ = !run_chunks(run_, shape_.rows, shape_.cols, shape_.cols * qk::dtype_size(src_.dtype),
                             [&](int64_t c, int64_t b, int64_t e) {
                               parts[c] = kernels_.error_rows(spec_, src_.bytes.ptr, src_.dtype, in, shape_.cols, b, e);
                             });
    stats_ = merge_errors(parts);
  }
  void OnOK() override { deferred_.Resolve(error_object(Env(), stats_)); }

 private:
  QuantSpec spec_;
  Shape shape_;
  Source src_;
  Parts in_;
  qk::ErrorStats stats_;
};


// Runs a function off the JS thread and resolves with undefined; the Bytes it reads stay referenced.
class TaskWorker : public Napi::AsyncWorker {
 public:
  TaskWorker(Napi::Env env, std::vector<Bytes> keep, std::function<void()> fn)
      : Napi::AsyncWorker(env), keep_(std::move(keep)), fn_(std::move(fn)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      fn_();
    } catch (const std::bad_alloc&) {
      SetError("out of memory in the quantkit addon");
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  std::vector<Bytes> keep_;
  std::function<void()> fn_;
  Napi::Promise::Deferred deferred_;
};


// ---- exported functions -------------------------------------------------------------------------

Napi::Object args_object(const Napi::CallbackInfo& info) {
  if (info.Length() != 1 || !info[0].IsObject()) fail("expected one options object");
  return info[0].As<Napi::Object>();
}

template <typename F>
Napi::Value guarded(const Napi::CallbackInfo& info, F body) {
  try {
    return body();
  } catch (const ArgError& e) {
    coded_error(info.Env(), "ERR_NATIVE_ARGUMENT", "quantkit addon: " + e.message, true)
        .ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
}

// Optional per-column importance: a Float32Array with one finite, non-negative value per column.
Bytes get_weights(const Napi::Object& o, const Shape& s) {
  Bytes weights;
  const Napi::Value wv = o.Get("weights");
  if (wv.IsUndefined() || wv.IsNull()) return weights;
  if (!wv.IsTypedArray() || wv.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) fail("weights must be a Float32Array");
  weights = get_bytes(wv, "weights");
  if (static_cast<int64_t>(weights.len) != checked_mul(s.cols, 4, "weights size"))
    fail("weights must hold one value per column (" + std::to_string(s.cols) + ")");
  const float* p = reinterpret_cast<const float*>(weights.ptr);
  for (int64_t j = 0; j < s.cols; ++j)
    if (!(p[j] >= 0.0f) || !std::isfinite(p[j])) fail("weights[" + std::to_string(j) + "] must be finite and non-negative");
  return weights;
}

// Optional rowOrder: an Int32Array holding a permutation of the rows (output row r from source row rowOrder[r]).
Bytes get_row_order(const Napi::Object& o, const Shape& s) {
  Bytes order;
  const Napi::Value v = o.Get("rowOrder");
  if (v.IsUndefined() || v.IsNull()) return order;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) fail("rowOrder must be an Int32Array");
  order = get_bytes(v, "rowOrder");
  if (static_cast<int64_t>(order.len) != checked_mul(s.rows, 4, "rowOrder size")) fail("rowOrder must hold one index per row (" + std::to_string(s.rows) + ")");
  const int32_t* p = reinterpret_cast<const int32_t*>(order.ptr);
  std::vector<bool> seen(static_cast<size_t>(s.rows), false);
  for (int64_t r = 0; r < s.rows; ++r) {
    if (p[r] < 0 || p[r] >= s.rows || seen[static_cast<size_t>(p[r])]) fail("rowOrder must be a permutation of 0.." + std::to_string(s.rows - 1));
    seen[static_cast<size_t>(p[r])] = true;
  }
  return order;
}

// Queues a worker and returns its promise.
template <typename W>
Napi::Value queued(W* w) {
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// `errorsFrom`: the error sums of the rows before this call's (a tensor quantized in several calls),
// from which this call's measurement continues; zero when absent.
qk::ErrorStats get_errors_from(const Napi::Object& o) {
  qk::ErrorStats st;
  if (!o.Has("errorsFrom") || o.Get("errorsFrom").IsUndefined()) return st;
  Napi::Value v = o.Get("errorsFrom");
  if (!v.IsObject()) fail("errorsFrom must be an object of error sums");
  const Napi::Object e = v.As<Napi::Object>();
  auto num = [&](const char* k) {
    Napi::Value x = e.Get(k);
    if (!x.IsNumber()) fail(std::string("errorsFrom.") + k + " must be a number");
    const double d = x.As<Napi::Number>().DoubleValue();
    if (!(d >= 0) || !std::isfinite(d)) fail(std::string("errorsFrom.") + k + " must be finite and not negative");
    return d;
  };
  st.sum_sq_err = num("sumSqErr");
  st.sum_sq_ref = num("sumSqRef");
  st.max_abs_err = num("maxAbsErr");
  const double count = num("count"), nonfinite = num("nonfinite");
  if (count > 9007199254740992.0 || nonfinite > 9007199254740992.0 || count != std::floor(count) || nonfinite != std::floor(nonfinite))
    fail("errorsFrom.count and errorsFrom.nonfinite must be whole numbers");
  st.count = static_cast<int64_t>(count);
  st.nonfinite = static_cast<int64_t>(nonfinite);
  return st;
}

Napi::Value Quantize(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const Napi::Object o = args_object(info);
    const QuantSpec spec = parse_spec(o.Get("spec"));
    if (spec.method == qk::Method::GPTQ) fail("spec.method 'gptq' runs through gptqQuantize (it needs a Hessian factor)");
    const Shape s = parse_shape(o, spec);
    Source src = get_source(o, s);
    Parts out = get_parts(o.Get("out"), spec, s);
    Bytes weights = get_weights(o, s);
    if (spec.method == qk::Method::IMATRIX && !weights.ptr) fail("spec.method 'imatrix' needs weights (the importance matrix: one value per column)");
    if (weights.ptr && spec.method != qk::Method::SEARCH && spec.method != qk::Method::IMATRIX)
      fail("weights apply to spec.method 'search' or 'imatrix' only");
    Bytes order = get_row_order(o, s);
    const bool measure = o.Has("measure") && o.Get("measure").ToBoolean().Value();
    const qk::ErrorStats from = get_errors_from(o);
    if (o.Has("errorsFrom") && !measure) fail("errorsFrom applies with measure only");
    return queued(new QuantizeWorker(info.Env(), kernels(), get_run_options(o), spec, s, std::move(src), std::move(out), std::move(weights), Bytes(),
                                     std::move(order), measure, from));
  });
}

// A Float64Array of exactly `count` values.
Bytes get_f64(const Napi::Object& o, const char* key, int64_t count) {
  Napi::Value v = o.Get(key);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) fail(std::string(key) + " must be a Float64Array");
  Bytes b = get_bytes(v, key);
  if (static_cast<int64_t>(b.len) != checked_mul(count, 8, key))
    fail(std::string(key) + " has " + std::to_string(b.len / 8) + " values, expected " + std::to_string(count));
  return b;
}

// {hessian: Float32Array(cols * cols), cols, damp, out: Float64Array(cols * cols)} -> the factor gptqQuantize takes.
Napi::Value GptqFactor(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const Napi::Object o = args_object(info);
    const int64_t n = get_int(o, "cols", 1, 1 << 16);
    Napi::Value hv = o.Get("hessian");
    if (!hv.IsTypedArray() || hv.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) fail("hessian must be a Float32Array");
    Bytes h = get_bytes(hv, "hessian");
    if (static_cast<int64_t>(h.len) != checked_mul(checked_mul(n, n, "hessian size"), 4, "hessian size"))
      fail("hessian must hold cols * cols values (" + std::to_string(n * n) + ")");
    Napi::Value dv = o.Get("damp");
    if (!dv.IsNumber()) fail("damp must be a number");
    const double damp = dv.As<Napi::Number>().DoubleValue();
    if (!(damp >= 0.0) || !std::isfinite(damp)) fail("damp must be finite and non-negative");
    Bytes out = get_f64(o, "out", n * n);
    const float* H = reinterpret_cast<const float*>(h.ptr);
    double* U = reinterpret_cast<double*>(out.ptr);
    std::vector<Bytes> keep;
    keep.push_back(std::move(h));
    keep.push_back(std::move(out));
    const int threads = get_threads(o);
    return queued(new TaskWorker(info.Env(), std::move(keep), [H, n, damp, U, threads]() {
      if (const char* why = qk::gptq_factor(H, n, damp, U, threads)) throw std::runtime_error(std::string("gptqFactor: ") + why);
    }));
  });
}

// quantize's arguments plus factor (gptqFactor's output for the matrix's input Hessian); spec.method 'gptq'.
Napi::Value GptqQuantize(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const Napi::Object o = args_object(info);
    const QuantSpec spec = parse_spec(o.Get("spec"));
    if (spec.method != qk::Method::GPTQ) fail("gptqQuantize needs spec.method 'gptq'");
    const Shape s = parse_shape(o, spec);
    Source src = get_source(o, s);
    Parts out = get_parts(o.Get("out"), spec, s);
    Bytes weights = get_weights(o, s);
    Bytes factor = get_f64(o, "factor", checked_mul(s.cols, s.cols, "factor size"));
    const double* U = reinterpret_cast<const double*>(factor.ptr);
    for (int64_t i = 0; i < s.cols; ++i) {
      if (!(U[i * s.cols + i] > 0.0)) fail("factor[" + std::to_string(i) + ", " + std::to_string(i) + "] must be positive");
      for (int64_t j = 0; j < s.cols; ++j)
        if (!std::isfinite(U[i * s.cols + j])) fail("factor holds NaN or Inf");
    }
    return queued(new QuantizeWorker(info.Env(), kernels(), get_run_options(o), spec, s, std::move(src), std::move(out), std::move(weights), std::move(factor)));
  });
}

Napi::Value Dequantize(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const Napi::Object o = args_object(info);
    const QuantSpec spec = parse_spec(o.Get("spec"));
    const Shape s = parse_shape(o, spec);
    Parts in = get_parts(o.Get("parts"), spec, s);
    Napi::Value outv = o.Get("out");
    if (!outv.IsTypedArray() || outv.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      fail("out must be a Float32Array");
    Bytes out = get_bytes(outv, "out");
    need_bytes(out, checked_mul(checked_mul(s.rows, s.cols, "out size"), 4, "out size"), "out");
    return queued(new DequantizeWorker(info.Env(), kernels(), get_run_options(o), spec, s, std::move(in), std::move(out)));
  });
}

Napi::Value ErrorStatsFn(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const Napi::Object o = args_object(info);
    const QuantSpec spec = parse_spec(o.Get("spec"));
    const Shape s = parse_shape(o, spec);
    Source src = get_source(o, s);
    Parts in = get_parts(o.Get("parts"), spec, s);
    return queued(new ErrorWorker(info.Env(), kernels(), get_run_options(o), spec, s, std::move(src), std::move(in)));
  });
}


const float* get_f32(const Napi::Object& o, const char* key, int64_t count, std::vector<Bytes>& keep, const std::string& where) {
  Napi::Value v = o.Get(key);
  const std::string what = where + key;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) fail(what + " must be a Float32Array");
  Bytes b = get_bytes(v, what);
  if (static_cast<int64_t>(b.len) != checked_mul(count, 4, "weight size"))
    fail(what + " has " + std::to_string(b.len / 4) + " values, expected " + std::to_string(count));
  const float* p = reinterpret_cast<const float*>(b.ptr);
  keep.push_back(std::move(b));
  return p;
}

// The pre-pass's row sums, in one fixed order: each row's terms (w * w) * a in double, column i added to
// the row's partial sum i % 8 (in column order), the eight partial sums then added pairwise,
// ((s0+s1)+(s2+s3)) + ((s4+s5)+(s6+s7)), and rounded to f32. A row's eight independent chains fill one
// vector of doubles (one chain per row waited on the adder's latency); the order is the definition, so
// every thread count and instruction set gives the same floats.
constexpr int64_t kSquareLanes = 8;

// Eight lanes as one value: GCC/Clang vector extensions, which every target lowers to its own registers
// (one AVX-512 register, two AVX2 ones, four SSE2 or NEON ones); lane-wise IEEE operations, no fusing.
typedef double F64x8 __attribute__((vector_size(64)));
typedef float F32x8 __attribute__((vector_size(32)));
typedef uint32_t U32x8 __attribute__((vector_size(32)));
typedef uint16_t U16x8 __attribute__((vector_size(16)));

// An output Float32Array: its data and the reference that keeps it alive while a worker writes it.
struct Float32Out {
  float* ptr;
  Bytes keep;
};

// Eight lanes of a row from column i on, as doubles (into `out`: a 64-byte vector returned by value
// would have an ABI that depends on AVX-512, which GCC warns about for the default clone).
template <DType ST>
inline __attribute__((always_inline)) void lanes_f64(const uint8_t* row, int64_t i, F64x8& out) {
  constexpr int64_t size = ST == DType::F32 ? 4 : 2;
  F32x8 w;
  if constexpr (ST == DType::BF16) {
    U16x8 h;
    __builtin_memcpy(&h, row + i * size, sizeof h);
    const U32x8 bits = __builtin_convertvector(h, U32x8) << 16;  // bf16 is the top half of an f32
    __builtin_memcpy(&w, &bits, sizeof w);
  } else {
    for (int64_t l = 0; l < kSquareLanes; ++l) w[l] = qk::load_as_f32(row, ST, i + l);
  }
  out = __builtin_convertvector(w, F64x8);
}

// out[j0 + k] = the row sum above for k < n. Four rows at a time: four independent
// chains of vector additions (one waited on the adder's latency, half the speed).
template <DType ST>
inline __attribute__((always_inline)) void row_squares(const uint8_t* W, int64_t cols, int64_t j0, int64_t n, const float* a, float* out) {
  constexpr int64_t size = ST == DType::F32 ? 4 : 2;
  constexpr int64_t kTogether = 4;
  for (int64_t k0 = 0; k0 < n; k0 += kTogether) {
    const uint8_t* rows[kTogether];
    for (int64_t r = 0; r < kTogether; ++r) rows[r] = W + (j0 + (k0 + r < n ? k0 + r : k0)) * cols * size;  // a short group repeats its first row
    F64x8 s[kTogether] = {};
    int64_t i = 0;
    for (; i + kSquareLanes <= cols; i += kSquareLanes) {
      F32x8 af;
      __builtin_memcpy(&af, a + i, sizeof af);
      const F64x8 ad = __builtin_convertvector(af, F64x8);
      for (int64_t r = 0; r < kTogether; ++r) {
        F64x8 wd;
        lanes_f64<ST>(rows[r], i, wd);
        s[r] += wd * wd * ad;
      }
    }
    for (; i < cols; ++i) {
      const double ai = a[i];
      for (int64_t r = 0; r < kTogether; ++r) {
        const double wd = qk::load_as_f32(rows[r], ST, i);
        s[r][i % kSquareLanes] += wd * wd * ai;
      }
    }
    for (int64_t r = 0; r < kTogether && k0 + r < n; ++r)
      out[j0 + k0 + r] = static_cast<float>(((s[r][0] + s[r][1]) + (s[r][2] + s[r][3])) + ((s[r][4] + s[r][5]) + (s[r][6] + s[r][7])));
  }
}

// row_squares for BF16 (checkpoints' usual dtype), compiled also for AVX2 and AVX-512 where the CPU has
// them: a row's eight partial sums go side by side in vector lanes. Each lane's operations are the
// scalar loop's (no contraction: -ffp-contract=off), so every version gives the same floats.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void row_squares_bf16(const uint8_t* W, int64_t cols, int64_t j0, int64_t n, const float* a, float* out) {
  row_squares<DType::BF16>(W, cols, j0, n, a, out);
}

// The first failure of the reads of one call (worker threads must not throw; it is reported after).
struct ReadFailure {
  std::atomic<int> code{0};  // errno, or -1 for a file that ends early, -2 for no memory
  std::atomic<int64_t> at{0};

  void record(int c, int64_t where) {
    int expected = 0;
    if (code.compare_exchange_strong(expected, c)) at.store(where);
  }
  bool failed() const { return code.load(std::memory_order_relaxed) != 0; }

  // Reads [where, where + len) of fd into buf; false (and recorded) on a read error or the file's end.
  bool read(int fd, uint8_t* buf, int64_t len, int64_t where) {
    for (int64_t done = 0; done < len;) {
      const ssize_t r = pread(fd, buf + done, static_cast<size_t>(len - done), static_cast<off_t>(where + done));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        record(r < 0 ? errno : -1, where + done);
        return false;
      }
      done += r;
    }
    return true;
  }

  // Throws (on the worker's own thread, which turns it into a rejection) what was recorded; `end` is
  // the byte after the tensor's data.
  void rethrow(int64_t end) const {
    const int c = code.load();
    if (c == -2) throw std::bad_alloc();
    if (c == -1) throw std::runtime_error("the file ends at byte " + std::to_string(at.load()) + ", before the end of the tensor's data (byte " + std::to_string(end) + ")");
    if (c > 0) throw std::runtime_error(std::string("cannot read the file at byte ") + std::to_string(at.load()) + ": " + std::strerror(c));
  }
};

// The arguments both file readers share: the open file, the byte offset of a [rows, cols] matrix in it.
struct FileMatrix {
  int fd;
  int64_t offset, rows, cols, row_bytes;
  DType dtype;
};

FileMatrix parse_file_matrix(const Napi::Object& o) {
  FileMatrix m{};
  m.rows = get_int(o, "rows", 1, int64_t{1} << 40);
  m.cols = get_int(o, "cols", 1, int64_t{1} << 32);
  m.dtype = parse_dtype(get_string(o, "srcDtype"), "srcDtype");
  m.fd = static_cast<int>(get_int(o, "fd", 0, 1 << 30));
  m.offset = get_int(o, "offset", 0, int64_t{1} << 52);
  m.row_bytes = checked_mul(m.cols, qk::dtype_size(m.dtype), "row size");
  if (checked_mul(m.rows, m.row_bytes, "matrix size") > (int64_t{1} << 52) - m.offset) fail("offset + matrix size is beyond any file");
  return m;
}

Float32Out get_f32_out(const Napi::Object& o, int64_t n, const char* what) {
  Napi::Value ov = o.Get("out");
  if (!ov.IsTypedArray() || ov.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) fail("out must be a Float32Array");
  Bytes out = get_bytes(ov, "out");
  if (static_cast<int64_t>(out.len) != checked_mul(n, 4, "out size")) fail(std::string("out must hold one value per ") + what);
  float* p = reinterpret_cast<float*>(out.ptr);
  return {p, std::move(out)};
}

// weightedRowSquaresFile: out[j] = row_squares of row j of the matrix (the column importance pre-pass of
// --method search, src/quant/importance.ts). The addon's threads read a few hundred KiB of rows at a time
// into a buffer that stays in each core's cache and sum them there: reading the tensor into a buffer of
// its own first doubled the pre-pass's memory traffic (the copy out of the page cache went to DRAM, the
// sums read it back). The result is the same float for any thread count; rows run in parallel.
constexpr int64_t kFileChunkBytes = int64_t{256} << 10;

Napi::Value WeightedRowSquaresFile(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const Napi::Object o = args_object(info);
    const FileMatrix m = parse_file_matrix(o);
    std::vector<Bytes> keep;
    const float* a = get_f32(o, "a", m.cols, keep, "");
    Float32Out out = get_f32_out(o, m.rows, "row");
    float* O = out.ptr;
    keep.push_back(std::move(out.keep));
    const int threads = get_threads(o);
    return queued(new TaskWorker(info.Env(), std::move(keep), [O, a, m, threads]() {
      const int64_t per = std::max<int64_t>(1, kFileChunkBytes / m.row_bytes);  // rows per chunk
      const int64_t chunks = (m.rows + per - 1) / per;
      ReadFailure failure;
      qk::parallel_for(threads, chunks, [&](int64_t c) {
        if (failure.failed()) return;
        const int64_t j0 = c * per, n = std::min(per, m.rows - j0), len = n * m.row_bytes;
        thread_local std::vector<uint8_t> buf;
        try {
          if (static_cast<int64_t>(buf.size()) < len) buf.resize(static_cast<size_t>(len));
        } catch (const std::bad_alloc&) {
          failure.record(-2, 0);
          return;
        }
        if (!failure.read(m.fd, buf.data(), len, m.offset + j0 * m.row_bytes)) return;
        switch (m.dtype) {
          case DType::F32: row_squares<DType::F32>(buf.data(), m.cols, 0, n, a, O + j0); break;
          case DType::F16: row_squares<DType::F16>(buf.data(), m.cols, 0, n, a, O + j0); break;
          default: row_squares_bf16(buf.data(), m.cols, 0, n, a, O + j0); break;
        }
      });
      failure.rethrow(m.offset + m.rows * m.row_bytes);
    }));
  });
}

// out[i] for columns [i0, i0 + n) accumulates rows [0, rows) of a chunk in row order, each step
// out[i] = f32(out[i] + w * w) computed in double: the operations of the JS loop it replaced (JS
// multiplies and adds in double and a Float32Array store rounds), so the same floats.
template <DType ST>
inline __attribute__((always_inline)) void column_squares(const uint8_t* chunk, int64_t cols, int64_t rows, int64_t i0, int64_t n, float* out) {
  constexpr int64_t size = ST == DType::F32 ? 4 : 2;
  for (int64_t j = 0; j < rows; ++j) {
    const uint8_t* row = chunk + j * cols * size;
    int64_t i = i0;
    for (; i + kSquareLanes <= i0 + n; i += kSquareLanes) {
      F64x8 w;
      lanes_f64<ST>(row, i, w);
      F32x8 acc;
      __builtin_memcpy(&acc, out + i, sizeof acc);
      acc = __builtin_convertvector(__builtin_convertvector(acc, F64x8) + w * w, F32x8);
      __builtin_memcpy(out + i, &acc, sizeof acc);
    }
    for (; i < i0 + n; ++i) {
      const double w = qk::load_as_f32(row, ST, i);
      out[i] = static_cast<float>(static_cast<double>(out[i]) + w * w);
    }
  }
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void column_squares_bf16(const uint8_t* chunk, int64_t cols, int64_t rows, int64_t i0, int64_t n, float* out) {
  column_squares<DType::BF16>(chunk, cols, rows, i0, n, out);
}

// columnSquaresFile: out[i] += sum over rows of W[j, i]^2, row after row (column_squares), for the
// matrix in the file (the embedding's per-column variance the importance pre-pass starts from; a
// 128k-token vocabulary's took 1 s in JS). Read in chunks of a few MiB of rows; each chunk's columns
// are split among the threads, so the order, and the floats, do not depend on the thread count.
constexpr int64_t kColumnChunkBytes = int64_t{4} << 20;
constexpr int64_t kColumnBlock = 256;

Napi::Value ColumnSquaresFile(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const Napi::Object o = args_object(info);
    const FileMatrix m = parse_file_matrix(o);
    Float32Out out = get_f32_out(o, m.cols, "column");
    float* O = out.ptr;
    std::vector<Bytes> keep;
    keep.push_back(std::move(out.keep));
    const int threads = get_threads(o);
    return queued(new TaskWorker(info.Env(), std::move(keep), [O, m, threads]() {
      const int64_t per = std::max<int64_t>(1, kColumnChunkBytes / m.row_bytes);
      std::vector<uint8_t> buf(static_cast<size_t>(std::min(per, m.rows) * m.row_bytes));
      ReadFailure failure;
      const int64_t blocks = (m.cols + kColumnBlock - 1) / kColumnBlock;
      for (int64_t j0 = 0; j0 < m.rows; j0 += per) {
        const int64_t n = std::min(per, m.rows - j0);
        if (!failure.read(m.fd, buf.data(), n * m.row_bytes, m.offset + j0 * m.row_bytes)) break;
        qk::parallel_for(threads, blocks, [&](int64_t b) {
          const int64_t i0 = b * kColumnBlock, k = std::min(kColumnBlock, m.cols - i0);
          switch (m.dtype) {
            case DType::F32: column_squares<DType::F32>(buf.data(), m.cols, n, i0, k, O); break;
            case DType::F16: column_squares<DType::F16>(buf.data(), m.cols, n, i0, k, O); break;
            default: column_squares_bf16(buf.data(), m.cols, n, i0, k, O); break;
          }
        });
      }
      failure.rethrow(m.offset + m.rows * m.row_bytes);
    }));
  });
}

// config and weights of the reference forward pass, every weight checked against the configured shape.
struct LlamaArgs {
  qk::LlamaConfig cfg;
  qk::LlamaWeights w;
  std::vector<Bytes> keep;
};

LlamaArgs parse_llama(const Napi::Object& o) {
  LlamaArgs a;
  qk::LlamaConfig& cfg = a.cfg;
  qk::LlamaWeights& lw = a.w;
  std::vector<Bytes>& keep = a.keep;
  Napi::Value cv = o.Get("config");
  if (!cv.IsObject()) fail("config must be an object");
  const Napi::Object c = cv.As<Napi::Object>();
  cfg.hidden = get_int(c, "hidden", 1, 1 << 20);
  cfg.ffn = get_int(c, "ffn", 1, 1 << 22);
  cfg.layers = get_int(c, "layers", 1, 4096);
  cfg.heads = get_int(c, "heads", 1, 4096);
  cfg.kv_heads = get_int(c, "kvHeads", 1, 4096);
  cfg.head_dim = get_int(c, "headDim", 2, 65536);
  cfg.vocab = get_int(c, "vocab", 1, 1 << 24);
  if (cfg.heads % cfg.kv_heads != 0) fail("config.heads must be a multiple of config.kvHeads");
  if (cfg.head_dim % 2 != 0) fail("config.headDim must be even (RoPE rotates pairs)");
  for (const char* k : {"normEps", "ropeTheta"}) {
    Napi::Value v = c.Get(k);
    if (!v.IsNumber() || !(v.As<Napi::Number>().DoubleValue() > 0) || !std::isfinite(v.As<Napi::Number>().DoubleValue()))
      fail(std::string("config.") + k + " must be a positive number");
  }
  cfg.norm_eps = c.Get("normEps").As<Napi::Number>().FloatValue();
  cfg.rope_theta = c.Get("ropeTheta").As<Napi::Number>().FloatValue();
  const int64_t d = cfg.hidden, nq = cfg.heads * cfg.head_dim, nkv = cfg.kv_heads * cfg.head_dim;
  Napi::Value wv = o.Get("weights");
  if (!wv.IsObject()) fail("weights must be an object");
  const Napi::Object w = wv.As<Napi::Object>();
  lw.embed = get_f32(w, "embed", checked_mul(cfg.vocab, d, "embed"), keep, "weights.");
  lw.final_norm = get_f32(w, "finalNorm", d, keep, "weights.");
  lw.lm_head = get_f32(w, "lmHead", checked_mul(cfg.vocab, d, "lmHead"), keep, "weights.");
  Napi::Value lv = w.Get("layers");
  if (!lv.IsArray() || lv.As<Napi::Array>().Length() != static_cast<uint32_t>(cfg.layers))
    fail("weights.layers must be an array of config.layers entries");
  const Napi::Array layers = lv.As<Napi::Array>();
  for (uint32_t i = 0; i < layers.Length(); ++i) {
    Napi::Value e = layers.Get(i);
    const std::string where = "weights.layers[" + std::to_string(i) + "].";
    if (!e.IsObject()) fail(where + " must be an object");
    const Napi::Object L = e.As<Napi::Object>();
    qk::LlamaLayerWeights x{};
    x.attn_norm = get_f32(L, "attnNorm", d, keep, where);
    x.wq = get_f32(L, "wq", checked_mul(nq, d, "wq"), keep, where);
    x.wk = get_f32(L, "wk", checked_mul(nkv, d, "wk"), keep, where);
    x.wv = get_f32(L, "wv", checked_mul(nkv, d, "wv"), keep, where);
    x.wo = get_f32(L, "wo", checked_mul(d, nq, "wo"), keep, where);
    x.ffn_norm = get_f32(L, "ffnNorm", d, keep, where);
    x.w_gate = get_f32(L, "wGate", checked_mul(cfg.ffn, d, "wGate"), keep, where);
    x.w_up = get_f32(L, "wUp", checked_mul(cfg.ffn, d, "wUp"), keep, where);
    x.w_down = get_f32(L, "wDown", checked_mul(d, cfg.ffn, "wDown"), keep, where);
    lw.layers.push_back(x);
  }
  return a;
}

// Token ids of `key`: an Int32Array of 1 to 2^20 ids inside the vocabulary.
Bytes get_tokens(const Napi::Object& o, const char* key, int64_t vocab) {
  Napi::Value tv = o.Get(key);
  if (!tv.IsTypedArray() || tv.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) fail(std::string(key) + " must be an Int32Array");
  Bytes tokens = get_bytes(tv, key);
  const int64_t n = static_cast<int64_t>(tokens.len / 4);
  if (n < 1 || n > (1 << 20)) fail(std::string(key) + " must hold 1 to 1048576 ids");
  const int32_t* ids = reinterpret_cast<const int32_t*>(tokens.ptr);
  for (int64_t t = 0; t < n; ++t)
    if (ids[t] < 0 || ids[t] >= vocab) fail(std::string(key) + "[" + std::to_string(t) + "] = " + std::to_string(ids[t]) + " is outside the vocabulary");
  return tokens;
}

Napi::Value LlamaLogits(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const Napi::Object o = args_object(info);
    auto a = std::make_shared<LlamaArgs>(parse_llama(o));
    Bytes tokens = get_tokens(o, "tokens", a->cfg.vocab);
    const int64_t n = static_cast<int64_t>(tokens.len / 4);
    Napi::Value ov = o.Get("out");
    if (!ov.IsTypedArray() || ov.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) fail("out must be a Float32Array");
    Bytes out = get_bytes(ov, "out");
    need_bytes(out, checked_mul(checked_mul(n, a->cfg.vocab, "out size"), 4, "out size"), "out");
    const int32_t* ids = reinterpret_cast<const int32_t*>(tokens.ptr);
    float* logits = reinterpret_cast<float*>(out.ptr);
    const int threads = get_threads(o);
    std::vector<Bytes> keep;
    keep.push_back(std::move(tokens));
    keep.push_back(std::move(out));
    return queued(new TaskWorker(info.Env(), std::move(keep), [a, ids, n, logits, threads]() {
      qk::llama_logits(a->cfg, a->w, ids, n, logits, threads);
    }));
  });
}

// {config, weights, first, count, length, seed, temperature, out: Int32Array(count * length), threads?}
Napi::Value LlamaGenerate(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const Napi::Object o = args_object(info);
    auto a = std::make_shared<LlamaArgs>(parse_llama(o));
    const int32_t first = static_cast<int32_t>(get_int(o, "first", 0, a->cfg.vocab - 1));
    const int64_t count = get_int(o, "count", 1, 1 << 16), length = get_int(o, "length", 1, 1 << 16);
    const uint64_t seed = static_cast<uint64_t>(get_int(o, "seed", 0, (int64_t{1} << 53) - 1));
    Napi::Value tv = o.Get("temperature");
    if (!tv.IsNumber() || !(tv.As<Napi::Number>().DoubleValue() >= 0) || !std::isfinite(tv.As<Napi::Number>().DoubleValue()))
      fail("temperature must be a finite number >= 0");
    const float temperature = tv.As<Napi::Number>().FloatValue();
    Napi::Value ov = o.Get("out");
    if (!ov.IsTypedArray() || ov.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) fail("out must be an Int32Array");
    Bytes out = get_bytes(ov, "out");
    if (static_cast<int64_t>(out.len) != checked_mul(checked_mul(count, length, "out size"), 4, "out size"))
      fail("out must hold count * length ids");
    int32_t* ids = reinterpret_cast<int32_t*>(out.ptr);
    const int threads = get_threads(o);
    std::vector<Bytes> keep;
    keep.push_back(std::move(out));
    return queued(new TaskWorker(info.Env(), std::move(keep), [a, first, count, length, seed, temperature, ids, threads]() {
      qk::llama_generate(a->cfg, a->w, first, count, length, seed, temperature, ids, threads);
    }));
  });
}

// {config, weights, tokens, length (tokens.length / length sequences), out: {attnIn, oIn, mlpIn, downIn, final}, threads?}
Napi::Value LlamaInputStats(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const Napi::Object o = args_object(info);
    auto a = std::make_shared<LlamaArgs>(parse_llama(o));
    const qk::LlamaConfig& cfg = a->cfg;
    Bytes tokens = get_tokens(o, "tokens", cfg.vocab);
    const int64_t n = static_cast<int64_t>(tokens.len / 4);
    const int64_t length = get_int(o, "length", 1, n);
    if (n % length != 0) fail("tokens must hold whole sequences of length ids");
    Napi::Value ov = o.Get("out");
    if (!ov.IsObject()) fail("out must be an object {attnIn, oIn, mlpIn, downIn, final}");
    const Napi::Object out = ov.As<Napi::Object>();
    const int64_t d = cfg.hidden, nq = cfg.heads * cfg.head_dim, L = cfg.layers;
    std::vector<Bytes> keep;
    const auto take = [&](const char* key, int64_t count) { return const_cast<float*>(get_f32(out, key, count, keep, "out.")); };
    qk::LlamaInputStats st{};
    st.attn_in = take("attnIn", checked_mul(L, checked_mul(d, d, "attnIn"), "attnIn"));
    st.o_in = take("oIn", checked_mul(L, checked_mul(nq, nq, "oIn"), "oIn"));
    st.mlp_in = take("mlpIn", checked_mul(L, checked_mul(d, d, "mlpIn"), "mlpIn"));
    st.down_in = take("downIn", checked_mul(L, checked_mul(cfg.ffn, cfg.ffn, "downIn"), "downIn"));
    st.final_in = take("final", checked_mul(d, d, "final"));
    const int32_t* ids = reinterpret_cast<const int32_t*>(tokens.ptr);
    keep.push_back(std::move(tokens));
    const int threads = get_threads(o);
    return queued(new TaskWorker(info.Env(), std::move(keep), [a, ids, n, length, st, threads]() {
      qk::llama_input_stats(a->cfg, a->w, ids, n / length, length, st, threads);
    }));
  });
}

// {bytes}: a zero-filled ArrayBuffer of that many bytes in memory of its own, asked to be backed by
// 2 MiB pages (Linux MADV_HUGEPAGE where transparent huge pages are on: madvise mode). Tensor buffers
// are several MiB and are streamed through by read(2) and the kernels; with 4 KiB pages, the page
// faults and TLB misses doubled the CPU time of reading 1 GB into a reused buffer and passing over it
// (docs/benchmarks.md). Null where the memory cannot be mapped (the caller falls back to a plain
// ArrayBuffer). Unmapped when the ArrayBuffer is collected.
Napi::Value LargeBuffer(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const Napi::Object o = args_object(info);
    const int64_t bytes = get_int(o, "bytes", 1, int64_t{1} << 40);
    constexpr size_t kHuge = size_t{2} << 20;
    const size_t mapped = (static_cast<size_t>(bytes) + kHuge - 1) / kHuge * kHuge + kHuge;  // room to align
    void* base = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return info.Env().Null();
    uint8_t* data = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(base) + kHuge - 1) & ~(uintptr_t{kHuge} - 1));
#ifdef MADV_HUGEPAGE
    madvise(data, mapped - kHuge, MADV_HUGEPAGE);  // advisory: 4 KiB pages where it is refused
#endif
    struct Mapping {
      void* base;
      size_t len;
    };
    auto* m = new Mapping{base, mapped};
    Napi::MemoryManagement::AdjustExternalMemory(info.Env(), static_cast<int64_t>(mapped));
    return Napi::ArrayBuffer::New(info.Env(), data, static_cast<size_t>(bytes), [](Napi::Env env, void*, Mapping* hint) {
      munmap(hint->base, hint->len);
      Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(hint->len));
      delete hint;
    }, m);
  });
}

// {data, crc}: zlib's crc32(crc, data), on the JS thread (several GB/s, called on the chunks a writer
// hands to the file). `crc` is the running value of the bytes before (0 for none).
Napi::Value Crc32(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const Napi::Object o = args_object(info);
    const Napi::Value d = o.Get("data");
    if (!d.IsTypedArray()) fail("data must be a TypedArray (Uint8Array, Buffer, ...)");
    const int64_t crc = get_int(o, "crc", 0, 0xffffffffLL);
    // The view's own pointer (offset included), which also covers views of a SharedArrayBuffer.
    napi_typedarray_type type;
    size_t elements = 0, offset = 0;
    void* data = nullptr;
    napi_value buffer;
    if (napi_get_typedarray_info(info.Env(), d, &type, &elements, &data, &buffer, &offset) != napi_ok) fail("data cannot be read");
    const size_t len = d.As<Napi::TypedArray>().ByteLength();
    const uint32_t r = len && data ? qk::crc32_best().fn(static_cast<uint32_t>(crc), static_cast<const uint8_t*>(data), len) : static_cast<uint32_t>(crc);
    return Napi::Number::New(info.Env(), static_cast<double>(r));
  });
}

Napi::Value Layout(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const Napi::Object o = args_object(info);
    const QuantSpec spec = parse_spec(o.Get("spec"));
    const int64_t cols = get_int(o, "cols", 1, int64_t{1} << 40);
    Napi::Object r = Napi::Object::New(info.Env());
    const char* why = qk::check_spec(spec, cols);
    r.Set("error", why ? Napi::Value(Napi::String::New(info.Env(), why)) : info.Env().Null());
    r.Set("dataBytesPerRow", static_cast<double>(qk::data_bytes_per_row(spec, cols)));
    r.Set("scaleBytesPerRow", static_cast<double>(qk::scale_bytes_per_row(spec, cols)));
    r.Set("zeroBytesPerRow", static_cast<double>(qk::zero_bytes_per_row(spec, cols)));
    r.Set("rowsPerChunk", static_cast<double>(qk::rows_per_chunk(cols)));  // the kernels' unit of work and of merged sums
    return r;
  });
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object r = Napi::Object::New(env);
  r.Set("isa", g_kernels ? Napi::Value(Napi::String::New(env, g_kernels->isa)) : env.Null());
  r.Set("isaError", g_kernel_error ? Napi::Value(Napi::String::New(env, g_kernel_error)) : env.Null());
  const qk::KernelTable* tables[8];
  const int n = qk::available_isas(tables, 8);
  Napi::Array a = Napi::Array::New(env, n);
  for (int i = 0; i < n; ++i) a.Set(static_cast<uint32_t>(i), tables[i]->isa);
  r.Set("available", a);
  r.Set("crc32", qk::crc32_best().name);
  r.Set("napiVersion", NAPI_VERSION);
  return r;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  g_kernels = qk::select_kernels(&g_kernel_error);
  if (!g_kernels) {
    const qk::KernelTable* tables[8];
    const int n = qk::available_isas(tables, 8);
    std::string list;
    for (int i = 0; i < n; ++i) list += std::string(i ? ", " : "") + tables[i]->isa;
    const char* forced = std::getenv("QUANTKIT_ISA");
    throw coded_error(env, "ERR_ISA_UNAVAILABLE",
                      std::string("QUANTKIT_ISA=") + (forced ? forced : "") + " is not available on this CPU/build (available: " + list + ")", false);
  }
  exports.Set("quantize", Napi::Function::New(env, Quantize));
  exports.Set("dequantize", Napi::Function::New(env, Dequantize));
  exports.Set("errorStats", Napi::Function::New(env, ErrorStatsFn));
  exports.Set("weightedRowSquaresFile", Napi::Function::New(env, WeightedRowSquaresFile));
  exports.Set("columnSquaresFile", Napi::Function::New(env, ColumnSquaresFile));
  exports.Set("layout", Napi::Function::New(env, Layout));
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("llamaLogits", Napi::Function::New(env, LlamaLogits));
  exports.Set("llamaGenerate", Napi::Function::New(env, LlamaGenerate));
  exports.Set("llamaInputStats", Napi::Function::New(env, LlamaInputStats));
  exports.Set("gptqFactor", Napi::Function::New(env, GptqFactor));
  exports.Set("gptqQuantize", Napi::Function::New(env, GptqQuantize));
  exports.Set("largeBuffer", Napi::Function::New(env, LargeBuffer));
  exports.Set("crc32", Napi::Function::New(env, Crc32));
  return exports;
}

}  // namespace

NODE_API_MODULE(quantkit, Init)
