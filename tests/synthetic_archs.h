// synthetic_archs.h: the small synthetic models that stand for the other architectures in the
// tests that run every architecture through one path (tests/test_stream.c,
// tests/test_ggml_graph.c): GPT-2 (tied head, biases everywhere, head_dim dim/4, MLP 4 x dim),
// Qwen2 (GQA 8:2, q/k/v biases, rope theta 1e6, MLP 2 x dim) and Mistral (Qwen2's shapes
// without biases, a sliding window of 5), each `dim` wide with `n_layers` layers.
#ifndef MXP_TEST_SYNTHETIC_ARCHS_H
#define MXP_TEST_SYNTHETIC_ARCHS_H

#include <stdio.h>
#include "arch/config.h"

enum { N_SYNTHETIC_ARCHS = 3 };
static const char *const synthetic_arch_label[N_SYNTHETIC_ARCHS] = {"gpt2(synthetic)", "qwen2(synthetic)",
                                                                    "mistral(synthetic,w5)"};

static inline void synthetic_archs(int dim, int n_layers, mxp_model_config out[N_SYNTHETIC_ARCHS]) {
    out[0] = (mxp_model_config){.arch = MXP_ARCH_GPT2, .vocab = 300, .dim = dim, .n_layers = n_layers, .n_heads = 4,
                                .n_kv_heads = 4, .head_dim = dim / 4, .ffn = 4 * dim, .max_pos = 64,
                                .norm_eps = 1e-5f, .tied = 1, .qkv_bias = 1, .o_bias = 1, .mlp_bias = 1};
    out[1] = (mxp_model_config){.arch = MXP_ARCH_LLAMA, .vocab = 300, .dim = dim, .n_layers = n_layers, .n_heads = 8,
                                .n_kv_heads = 2, .head_dim = dim / 8, .ffn = 2 * dim, .max_pos = 64,
                                .norm_eps = 1e-6f, .rope_theta = 1000000.0, .qkv_bias = 1};
    snprintf(out[1].arch_name, sizeof out[1].arch_name, "Qwen2ForCausalLM");
    out[2] = out[1];
    out[2].qkv_bias = 0;
    out[2].sliding_window = 5;
    snprintf(out[2].arch_name, sizeof out[2].arch_name, "MistralForCausalLM");
}

#endif
