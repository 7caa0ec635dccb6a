// A reference forward pass for the Llama family (Llama, Mistral, Qwen2-without-bias, the bundled models):
// token ids in, logits out, every product accumulated in f32. It exists to measure what quantization does
// to a model (perplexity, KL divergence, top-1 agreement) and to calibrate GPTQ on text the model writes
// itself, so it favours plain, checkable code over speed: one sequence at a time, a plain KV cache,
// matrices already dequantized to f32 by the caller.
#pragma once
#include <cstdint>
#include <vector>

namespace qk {

struct LlamaConfig {
  int64_t hidden = 0;      // model width
  int64_t ffn = 0;         // MLP width
  int64_t layers = 0;
  int64_t heads = 0;
  int64_t kv_heads = 0;    // grouped-query attention: heads % kv_heads == 0
  int64_t head_dim = 0;
  int64_t vocab = 0;
  float norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
};

// Row-major matrices in Hugging Face orientation ([out, in]); q/k rows in rotate-half order.
struct LlamaLayerWeights {
  const float* attn_norm;  // [hidden]
  const float* wq;         // [heads*head_dim, hidden]
  const float* wk;         // [kv_heads*head_dim, hidden]
  const float* wv;         // [kv_heads*head_dim, hidden]
  const float* wo;         // [hidden, heads*head_dim]
  const float* ffn_norm;   // [hidden]
  const float* w_gate;     // [ffn, hidden]
  const float* w_up;       // [ffn, hidden]
  const float* w_down;     // [hidden, ffn]
};

struct LlamaWeights {
  const float* embed;       // [vocab, hidden]
  const float* final_norm;  // [hidden]
  const float* lm_head;     // [vocab, hidden] (the embedding itself when tied)
  std::vector<LlamaLayerWeights> layers;
};

// Logits [n_tokens, vocab] for one causal sequence. `tokens` must be < vocab (the binding checks).
// Matrix products are split by output rows over `threads`; the result does not depend on `threads`.
void llama_logits(const LlamaConfig& cfg, const LlamaWeights& w, const int32_t* tokens, int64_t n_tokens,
                  float* logits, int threads);

// Samples `count` sequences of `length` tokens, each starting with `first`: token t + 1 drawn from
// softmax(logits_t / temperature) (temperature 0: the first largest logit) with a generator seeded by
// `seed` and the sequence's index, so the result depends on neither `threads` nor timing. Decoding is
// incremental (a KV cache), with the same products as llama_logits. `out` holds count * length ids.
void llama_generate(const LlamaConfig& cfg, const LlamaWeights& w, int32_t first, int64_t count, int64_t length,
                    uint64_t seed, float temperature, int32_t* out, int threads);

// Second moments of every linear layer's input, sum over tokens of x x^T (GPTQ's Hessian up to a
// factor), over the sequences tokens[s * length, (s + 1) * length): per layer the attention input
// (RMSNorm output, [hidden, hidden]), o_proj's input ([heads*head_dim]^2), the MLP input ([hidden]^2)
// and down_proj's input ([ffn]^2), layer after layer in each array; `final_in` is the output head's
// input ([hidden]^2). Accumulated in double, stored as f32.
struct LlamaInputStats {
  float* attn_in;
  float* o_in;
  float* mlp_in;
  float* down_in;
  float* final_in;
};
void llama_input_stats(const LlamaConfig& cfg, const LlamaWeights& w, const int32_t* tokens, int64_t count,
                       int64_t length, const LlamaInputStats& out, int threads);

}  // namespace qk
