// A reference forward pass for the Llama family (Llama, Mistral, Qwen2-without-bias, the bundled models):
// token ids in, logits out, every product accumulated in f32. It exists to measure what quantization does
// to a model (perplexity, KL divergence, top-1 agreement), so it favours plain, checkable code over speed:
// no KV cache tricks, one sequence at a time, matrices already dequantized to f32 by the caller.
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

}  // namespace qk
