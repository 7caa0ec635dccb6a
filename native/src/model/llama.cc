#include "llama.h"

#include <algorithm>
#include <cmath>

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

// Rotate-half RoPE (Hugging Face's layout) on [n, heads, head_dim] in place.
void rope(float* q, int64_t n, int64_t heads, int64_t hd, float theta) {
  const int64_t half = hd / 2;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < half; ++i) {
      const double inv = std::pow(static_cast<double>(theta), -2.0 * static_cast<double>(i) / static_cast<double>(hd));
      const double a = static_cast<double>(t) * inv;
      const float c = static_cast<float>(std::cos(a)), s = static_cast<float>(std::sin(a));
      for (int64_t h = 0; h < heads; ++h) {
        float* v = q + (t * heads + h) * hd;
        const float x1 = v[i], x2 = v[i + half];
        v[i] = x1 * c - x2 * s;
        v[i + half] = x2 * c + x1 * s;
      }
    }
}

}  // namespace

void llama_logits(const LlamaConfig& cfg, const LlamaWeights& w, const int32_t* tokens, int64_t n,
                  float* logits, int threads) {
  const int64_t d = cfg.hidden, hd = cfg.head_dim, nq = cfg.heads * hd, nkv = cfg.kv_heads * hd;
  const int64_t group = cfg.heads / cfg.kv_heads;
  std::vector<float> x(n * d), h(n * d), q(n * nq), k(n * nkv), v(n * nkv), att(n * nq), tmp(n * d);
  std::vector<float> gate(n * cfg.ffn), up(n * cfg.ffn), scores(n);
  for (int64_t t = 0; t < n; ++t) std::copy_n(w.embed + static_cast<int64_t>(tokens[t]) * d, d, x.data() + t * d);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (const LlamaLayerWeights& L : w.layers) {
    rms_norm(x.data(), L.attn_norm, n, d, cfg.norm_eps, h.data());
    matmul(h.data(), n, d, L.wq, nq, q.data(), threads);
    matmul(h.data(), n, d, L.wk, nkv, k.data(), threads);
    matmul(h.data(), n, d, L.wv, nkv, v.data(), threads);
    rope(q.data(), n, cfg.heads, hd, cfg.rope_theta);
    rope(k.data(), n, cfg.kv_heads, hd, cfg.rope_theta);
    for (int64_t hq = 0; hq < cfg.heads; ++hq) {
      const int64_t hk = hq / group;
      for (int64_t t = 0; t < n; ++t) {
        const float* qt = q.data() + t * nq + hq * hd;
        float mx = -INFINITY;
        for (int64_t u = 0; u <= t; ++u) {
          const float* ku = k.data() + u * nkv + hk * hd;
          float s = 0.0f;
          for (int64_t i = 0; i < hd; ++i) s += qt[i] * ku[i];
          scores[u] = s * scale;
          mx = std::max(mx, scores[u]);
        }
        float sum = 0.0f;
        for (int64_t u = 0; u <= t; ++u) { scores[u] = std::exp(scores[u] - mx); sum += scores[u]; }
        float* out = att.data() + t * nq + hq * hd;
        std::fill_n(out, hd, 0.0f);
        for (int64_t u = 0; u <= t; ++u) {
          const float p = scores[u] / sum;
          const float* vu = v.data() + u * nkv + hk * hd;
          for (int64_t i = 0; i < hd; ++i) out[i] += p * vu[i];
        }
      }
    }
    matmul(att.data(), n, nq, L.wo, d, tmp.data(), threads);
    for (int64_t i = 0; i < n * d; ++i) x[i] += tmp[i];
    rms_norm(x.data(), L.ffn_norm, n, d, cfg.norm_eps, h.data());
    matmul(h.data(), n, d, L.w_gate, cfg.ffn, gate.data(), threads);
    matmul(h.data(), n, d, L.w_up, cfg.ffn, up.data(), threads);
    for (int64_t i = 0; i < n * cfg.ffn; ++i) {
      const float g = gate[i];
      gate[i] = g / (1.0f + std::exp(-g)) * up[i];  // SiLU(gate) * up
    }
    matmul(gate.data(), n, cfg.ffn, L.w_down, d, tmp.data(), threads);
    for (int64_t i = 0; i < n * d; ++i) x[i] += tmp[i];
  }
  rms_norm(x.data(), w.final_norm, n, d, cfg.norm_eps, h.data());
  matmul(h.data(), n, d, w.lm_head, cfg.vocab, logits, threads);
}

}  // namespace qk
