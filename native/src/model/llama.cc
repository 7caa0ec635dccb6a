#include "llama.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "../parallel.h"

namespace qk {
namespace {

// A dot product in a fixed order: eight interleaved partial sums (element i to sum i % 8, which the
// compiler turns into SIMD lanes), added pairwise, then the tail. f32 throughout.
float dot(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// y[t, o] = sum_i x[t, i] * W[o, i] for t < n, split by output rows. Each dot product runs in one
// order, so the result is the same for every thread count.
void matmul(const float* x, int64_t n, int64_t in, const float* W, int64_t out, float* y, int threads) {
  if (n * in * out < (int64_t{1} << 17)) threads = 1;  // too small to be worth handing out (one decoded token)
  const int64_t per = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, in));
  const int64_t chunks = (out + per - 1) / per;
  parallel_for(threads, chunks, [&](int64_t c) {
    const int64_t o0 = c * per, o1 = std::min(out, o0 + per);
    for (int64_t t = 0; t < n; ++t) {
      const float* xt = x + t * in;
      for (int64_t o = o0; o < o1; ++o) {
        y[t * out + o] = dot(xt, W + o * in, in);
      }
    }
  });
}

void rms_norm(const float* x, const float* g, int64_t n, int64_t d, float eps, float* y) {
  for (int64_t t = 0; t < n; ++t) {
    float ss = 0.0f;
    for (int64_t i = 0; i < d; ++i) ss += x[t * d + i] * x[t * d + i];
    const float r = 1.0f / std::sqrt(ss / static_cast<float>(d) + eps);
    for (int64_t i = 0; i < d; ++i) y[t * d + i] = x[t * d + i] * r * g[i];
  }
}

// Rotate-half RoPE (Hugging Face's layout) on [n, heads, head_dim] in place, token t at position pos0 + t.
void rope(float* q, int64_t n, int64_t pos0, int64_t heads, int64_t hd, float theta) {
  const int64_t half = hd / 2;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < half; ++i) {
      const double inv = std::pow(static_cast<double>(theta), -2.0 * static_cast<double>(i) / static_cast<double>(hd));
      const double a = static_cast<double>(pos0 + t) * inv;
      const float c = static_cast<float>(std::cos(a)), s = static_cast<float>(std::sin(a));
      for (int64_t h = 0; h < heads; ++h) {
        float* v = q + (t * heads + h) * hd;
        const float x1 = v[i], x2 = v[i + half];
        v[i] = x1 * c - x2 * s;
        v[i + half] = x2 * c + x1 * s;
      }
    }
}

// Second-moment accumulators of llama_input_stats, in double.
struct StatsAcc {
  std::vector<double> attn_in, o_in, mlp_in, down_in, final_in;
};

// acc[i, j] += sum over t of x[t, i] * x[t, j] for j >= i (the upper triangle; mirror_moments fills the
// rest at the end); rows of acc split over threads, each entry summed in token order (the same result
// for every thread count).
void add_moments(const float* x, int64_t n, int64_t d, double* acc, int threads) {
  parallel_for(threads, d, [&](int64_t i) {
    double* a = acc + i * d;
    for (int64_t t = 0; t < n; ++t) {
      const double xi = x[t * d + i];
      const float* xt = x + t * d;
      for (int64_t j = i; j < d; ++j) a[j] += xi * static_cast<double>(xt[j]);
    }
  });
}

// The lower triangles of `count` consecutive d x d moment matrices from their upper ones.
void mirror_moments(std::vector<double>& a, int64_t count, int64_t d) {
  for (int64_t m = 0; m < count; ++m) {
    double* p = a.data() + m * d * d;
    for (int64_t i = 0; i < d; ++i)
      for (int64_t j = 0; j < i; ++j) p[i * d + j] = p[j * d + i];
  }
}

// One causal sequence with a KV cache: step() runs the next tokens at the following positions.
class Runner {
 public:
  Runner(const LlamaConfig& cfg, const LlamaWeights& w, int64_t capacity, int threads)
      : cfg_(cfg), w_(w), cap_(capacity), threads_(threads) {
    const int64_t nkv = cfg.kv_heads * cfg.head_dim;
    kc_.assign(static_cast<size_t>(cfg.layers), std::vector<float>(static_cast<size_t>(capacity * nkv)));
    vc_ = kc_;
  }

  // tokens[0..n) at positions len..len+n (len + n <= capacity). Logits [n, vocab] when `logits` is not
  // null; input moments added to `stats` when it is not null.
  void step(const int32_t* tokens, int64_t n, float* logits, StatsAcc* stats) {
    if (n > cap_ - len_) throw std::length_error("llama: more tokens than the KV cache holds");
    const LlamaConfig& cfg = cfg_;
    const int64_t d = cfg.hidden, hd = cfg.head_dim, nq = cfg.heads * hd, nkv = cfg.kv_heads * hd;
    const int64_t group = cfg.heads / cfg.kv_heads, pos0 = len_;
    std::vector<float> x(n * d), h(n * d), q(n * nq), k(n * nkv), v(n * nkv), att(n * nq), tmp(n * d);
    std::vector<float> gate(n * cfg.ffn), up(n * cfg.ffn), scores(pos0 + n);
    for (int64_t t = 0; t < n; ++t) std::copy_n(w_.embed + static_cast<int64_t>(tokens[t]) * d, d, x.data() + t * d);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    for (int64_t l = 0; l < cfg.layers; ++l) {
      const LlamaLayerWeights& L = w_.layers[static_cast<size_t>(l)];
      float* kc = kc_[static_cast<size_t>(l)].data();
      float* vc = vc_[static_cast<size_t>(l)].data();
      rms_norm(x.data(), L.attn_norm, n, d, cfg.norm_eps, h.data());
      if (stats) add_moments(h.data(), n, d, stats->attn_in.data() + l * d * d, threads_);
      matmul(h.data(), n, d, L.wq, nq, q.data(), threads_);
      matmul(h.data(), n, d, L.wk, nkv, k.data(), threads_);
      matmul(h.data(), n, d, L.wv, nkv, v.data(), threads_);
      rope(q.data(), n, pos0, cfg.heads, hd, cfg.rope_theta);
      rope(k.data(), n, pos0, cfg.kv_heads, hd, cfg.rope_theta);
      std::copy_n(k.data(), n * nkv, kc + pos0 * nkv);
      std::copy_n(v.data(), n * nkv, vc + pos0 * nkv);
      for (int64_t hq = 0; hq < cfg.heads; ++hq) {
        const int64_t hk = hq / group;
        for (int64_t t = 0; t < n; ++t) {
          const int64_t p = pos0 + t;
          const float* qt = q.data() + t * nq + hq * hd;
          float mx = -INFINITY;
          for (int64_t u = 0; u <= p; ++u) {
            const float* ku = kc + u * nkv + hk * hd;
            float s = 0.0f;
            for (int64_t i = 0; i < hd; ++i) s += qt[i] * ku[i];
            scores[u] = s * scale;
            mx = std::max(mx, scores[u]);
          }
          float sum = 0.0f;
          for (int64_t u = 0; u <= p; ++u) { scores[u] = std::exp(scores[u] - mx); sum += scores[u]; }
          float* out = att.data() + t * nq + hq * hd;
          std::fill_n(out, hd, 0.0f);
          for (int64_t u = 0; u <= p; ++u) {
            const float pr = scores[u] / sum;
            const float* vu = vc + u * nkv + hk * hd;
            for (int64_t i = 0; i < hd; ++i) out[i] += pr * vu[i];
          }
        }
      }
      if (stats) add_moments(att.data(), n, nq, stats->o_in.data() + l * nq * nq, threads_);
      matmul(att.data(), n, nq, L.wo, d, tmp.data(), threads_);
      for (int64_t i = 0; i < n * d; ++i) x[i] += tmp[i];
      rms_norm(x.data(), L.ffn_norm, n, d, cfg.norm_eps, h.data());
      if (stats) add_moments(h.data(), n, d, stats->mlp_in.data() + l * d * d, threads_);
      matmul(h.data(), n, d, L.w_gate, cfg.ffn, gate.data(), threads_);
      matmul(h.data(), n, d, L.w_up, cfg.ffn, up.data(), threads_);
      for (int64_t i = 0; i < n * cfg.ffn; ++i) {
        const float g = gate[i];
        gate[i] = g / (1.0f + std::exp(-g)) * up[i];  // SiLU(gate) * up
      }
      if (stats) add_moments(gate.data(), n, cfg.ffn, stats->down_in.data() + l * cfg.ffn * cfg.ffn, threads_);
      matmul(gate.data(), n, cfg.ffn, L.w_down, d, tmp.data(), threads_);
      for (int64_t i = 0; i < n * d; ++i) x[i] += tmp[i];
    }
    rms_norm(x.data(), w_.final_norm, n, d, cfg.norm_eps, h.data());
    if (stats) add_moments(h.data(), n, d, stats->final_in.data(), threads_);
    if (logits) matmul(h.data(), n, d, w_.lm_head, cfg.vocab, logits, threads_);
    len_ += n;
  }

 private:
  const LlamaConfig& cfg_;
  const LlamaWeights& w_;
  int64_t cap_, len_ = 0;
  int threads_;
  std::vector<std::vector<float>> kc_, vc_;  // per layer: [capacity, kv_heads * head_dim]
};

// splitmix64: a small, well-mixed generator; its stream depends only on the seed.
struct SplitMix64 {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
};

int32_t sample(const float* logits, int64_t vocab, float temperature, SplitMix64& rng) {
  int64_t best = 0;
  for (int64_t i = 1; i < vocab; ++i)
    if (logits[i] > logits[best]) best = i;
  if (!(temperature > 0.0f)) return static_cast<int32_t>(best);
  std::vector<double> p(static_cast<size_t>(vocab));
  double total = 0.0;
  for (int64_t i = 0; i < vocab; ++i) {
    p[i] = std::exp((static_cast<double>(logits[i]) - logits[best]) / temperature);
    total += p[i];
  }
  const double u = rng.uniform() * total;
  double cum = 0.0;
  for (int64_t i = 0; i < vocab; ++i) {
    cum += p[i];
    if (cum > u) return static_cast<int32_t>(i);
  }
  return static_cast<int32_t>(best);  // u within rounding of the total
}

}  // namespace

void llama_logits(const LlamaConfig& cfg, const LlamaWeights& w, const int32_t* tokens, int64_t n,
                  float* logits, int threads) {
  Runner r(cfg, w, n, threads);
  r.step(tokens, n, logits, nullptr);
}

void llama_generate(const LlamaConfig& cfg, const LlamaWeights& w, int32_t first, int64_t count, int64_t length,
                    uint64_t seed, float temperature, int32_t* out, int threads) {
  std::vector<float> logits(static_cast<size_t>(cfg.vocab));
  for (int64_t s = 0; s < count; ++s) {
    SplitMix64 rng{seed ^ (static_cast<uint64_t>(s) * 0xd1b54a32d192ed03ull)};
    Runner r(cfg, w, length, threads);
    int32_t* seq = out + s * length;
    seq[0] = first;
    for (int64_t t = 1; t < length; ++t) {
      r.step(seq + t - 1, 1, logits.data(), nullptr);
      seq[t] = sample(logits.data(), cfg.vocab, temperature, rng);
    }
  }
}

void llama_input_stats(const LlamaConfig& cfg, const LlamaWeights& w, const int32_t* tokens, int64_t count,
                       int64_t length, const LlamaInputStats& out, int threads) {
  const int64_t d = cfg.hidden, nq = cfg.heads * cfg.head_dim, f = cfg.ffn;
  StatsAcc acc;
  acc.attn_in.assign(static_cast<size_t>(cfg.layers * d * d), 0.0);
  acc.o_in.assign(static_cast<size_t>(cfg.layers * nq * nq), 0.0);
  acc.mlp_in.assign(static_cast<size_t>(cfg.layers * d * d), 0.0);
  acc.down_in.assign(static_cast<size_t>(cfg.layers * f * f), 0.0);
  acc.final_in.assign(static_cast<size_t>(d * d), 0.0);
  for (int64_t s = 0; s < count; ++s) {
    Runner r(cfg, w, length, threads);
    r.step(tokens + s * length, length, nullptr, &acc);
  }
  mirror_moments(acc.attn_in, cfg.layers, d);
  mirror_moments(acc.o_in, cfg.layers, nq);
  mirror_moments(acc.mlp_in, cfg.layers, d);
  mirror_moments(acc.down_in, cfg.layers, f);
  mirror_moments(acc.final_in, 1, d);
  const auto store = [](const std::vector<double>& a, float* o) {
    for (size_t i = 0; i < a.size(); ++i) o[i] = static_cast<float>(a[i]);
  };
  store(acc.attn_in, out.attn_in);
  store(acc.o_in, out.o_in);
  store(acc.mlp_in, out.mlp_in);
  store(acc.down_in, out.down_in);
  store(acc.final_in, out.final_in);
}

}  // namespace qk
