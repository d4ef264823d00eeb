// config.h: the architecture description of a model, from a Hugging Face config.json or
// from GGUF metadata, in one form the graph builders read.
// Parsing checks every value it uses (types, ranges, divisibility) and rejects settings the
// graph cannot honour (an unknown architecture, rope_scaling type, activation...) with a
// message naming the key.
#ifndef MXP_CONFIG_H
#define MXP_CONFIG_H

#include "core/base.h"
#include "io/tensors.h"

typedef enum mxp_arch { MXP_ARCH_LLAMA, MXP_ARCH_GPT2 } mxp_arch;

typedef enum mxp_rope_scaling { MXP_ROPE_NONE, MXP_ROPE_LLAMA3 } mxp_rope_scaling;

typedef struct mxp_model_config {
    mxp_arch arch;
    char arch_name[64];      // "LlamaForCausalLM", "Qwen2ForCausalLM", "GPT2LMHeadModel", "gguf:llama"
    int vocab, dim, n_layers, n_heads, n_kv_heads, head_dim, ffn;
    int max_pos;             // max_position_embeddings / n_positions (0: unknown)
    float norm_eps;
    double rope_theta;
    mxp_rope_scaling rope_scaling;
    double rope_factor, rope_low_freq_factor, rope_high_freq_factor, rope_orig_max_pos;
    int tied;                // head reuses the token embedding
    int qkv_bias;            // q/k/v projections have biases (Qwen2; attention_bias)
    int o_bias;              // o_proj has a bias (attention_bias)
    int mlp_bias;            // llama mlp_bias
    int sliding_window;      // Mistral: position i attends to keys j with i - j < sliding_window
                             // (0: no window)
} mxp_model_config;

// Parse config.json text (`label` names it in errors).
mxp_status mxp_config_from_hf_json(mxp_model_config *c, const char *json, size_t len,
                                   const char *label, mxp_err *err);
// Read the llama.* keys of a GGUF.
mxp_status mxp_config_from_gguf(mxp_model_config *c, const mxp_gguf *g, const char *label,
                                 mxp_err *err);

// RoPE inverse frequencies (head_dim/2) for this config, including rope_scaling.
void mxp_config_inv_freq(const mxp_model_config *c, float *inv_freq);

#endif
