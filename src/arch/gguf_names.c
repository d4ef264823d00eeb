// gguf_names.c: Hugging Face <-> llama.cpp GGUF tensor names (the Llama family: Llama,
// Mistral, Qwen2; and GPT-2). This table is the only place the mapping lives; llama.cpp's
// names are those of its src/llama-arch.cpp (LLM_TENSOR_*), the Hugging Face side those of
// convert_hf_to_gguf.py's tensor map.
#include "arch/gguf_names.h"

#include <stdio.h>
#include <string.h>

typedef struct name_pair {
    const char *hf, *gg;
    mxp_gguf_rope_rows rows;
} name_pair;

static const name_pair llama_fixed[] = {
    {"model.embed_tokens.weight", "token_embd.weight", MXP_GGUF_ROWS_PLAIN},
    {"model.norm.weight", "output_norm.weight", MXP_GGUF_ROWS_PLAIN},
    {"lm_head.weight", "output.weight", MXP_GGUF_ROWS_PLAIN},
};
static const name_pair llama_layer[] = {
    {"input_layernorm.weight", "attn_norm.weight", MXP_GGUF_ROWS_PLAIN},
    {"self_attn.q_proj.weight", "attn_q.weight", MXP_GGUF_ROWS_Q},
    {"self_attn.k_proj.weight", "attn_k.weight", MXP_GGUF_ROWS_K},
    {"self_attn.v_proj.weight", "attn_v.weight", MXP_GGUF_ROWS_PLAIN},
    {"self_attn.o_proj.weight", "attn_output.weight", MXP_GGUF_ROWS_PLAIN},
    {"self_attn.q_proj.bias", "attn_q.bias", MXP_GGUF_ROWS_Q},
    {"self_attn.k_proj.bias", "attn_k.bias", MXP_GGUF_ROWS_K},
    {"self_attn.v_proj.bias", "attn_v.bias", MXP_GGUF_ROWS_PLAIN},
    {"self_attn.o_proj.bias", "attn_output.bias", MXP_GGUF_ROWS_PLAIN},
    {"post_attention_layernorm.weight", "ffn_norm.weight", MXP_GGUF_ROWS_PLAIN},
    {"mlp.gate_proj.weight", "ffn_gate.weight", MXP_GGUF_ROWS_PLAIN},
    {"mlp.up_proj.weight", "ffn_up.weight", MXP_GGUF_ROWS_PLAIN},
    {"mlp.down_proj.weight", "ffn_down.weight", MXP_GGUF_ROWS_PLAIN},
    {"mlp.gate_proj.bias", "ffn_gate.bias", MXP_GGUF_ROWS_PLAIN},
    {"mlp.up_proj.bias", "ffn_up.bias", MXP_GGUF_ROWS_PLAIN},
    {"mlp.down_proj.bias", "ffn_down.bias", MXP_GGUF_ROWS_PLAIN},
};
// GPT-2, with or without the "transformer." prefix (the Hub's checkpoint has none).
static const name_pair gpt2_fixed[] = {
    {"wte.weight", "token_embd.weight", MXP_GGUF_ROWS_PLAIN},
    {"wpe.weight", "position_embd.weight", MXP_GGUF_ROWS_PLAIN},
    {"ln_f.weight", "output_norm.weight", MXP_GGUF_ROWS_PLAIN},
    {"ln_f.bias", "output_norm.bias", MXP_GGUF_ROWS_PLAIN},
};
static const name_pair gpt2_layer[] = {
    {"ln_1.weight", "attn_norm.weight", MXP_GGUF_ROWS_PLAIN},
    {"ln_1.bias", "attn_norm.bias", MXP_GGUF_ROWS_PLAIN},
    {"attn.c_attn.weight", "attn_qkv.weight", MXP_GGUF_ROWS_PLAIN},
    {"attn.c_attn.bias", "attn_qkv.bias", MXP_GGUF_ROWS_PLAIN},
    {"attn.c_proj.weight", "attn_output.weight", MXP_GGUF_ROWS_PLAIN},
    {"attn.c_proj.bias", "attn_output.bias", MXP_GGUF_ROWS_PLAIN},
    {"ln_2.weight", "ffn_norm.weight", MXP_GGUF_ROWS_PLAIN},
    {"ln_2.bias", "ffn_norm.bias", MXP_GGUF_ROWS_PLAIN},
    {"mlp.c_fc.weight", "ffn_up.weight", MXP_GGUF_ROWS_PLAIN},
    {"mlp.c_fc.bias", "ffn_up.bias", MXP_GGUF_ROWS_PLAIN},
    {"mlp.c_proj.weight", "ffn_down.weight", MXP_GGUF_ROWS_PLAIN},
    {"mlp.c_proj.bias", "ffn_down.bias", MXP_GGUF_ROWS_PLAIN},
};

static int lookup(const name_pair *t, size_t n, const char *key, const name_pair **hit) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(key, t[i].hf)) {
            *hit = &t[i];
            return 1;
        }
    return 0;
}

int mxp_gguf_name_from_hf(const char *hf, char *out, size_t cap, mxp_gguf_rope_rows *rows) {
    if (rows) *rows = MXP_GGUF_ROWS_PLAIN;
    const name_pair *hit = NULL;
    int layer = -1, consumed = 0;
    if (lookup(llama_fixed, sizeof llama_fixed / sizeof *llama_fixed, hf, &hit)) {
    } else if (sscanf(hf, "model.layers.%d.%n", &layer, &consumed) == 1 && consumed > 0 && layer >= 0) {
        if (!lookup(llama_layer, sizeof llama_layer / sizeof *llama_layer, hf + consumed, &hit)) return 0;
    } else {
        const char *g = strncmp(hf, "transformer.", 12) ? hf : hf + 12;
        layer = -1;
        if (lookup(gpt2_fixed, sizeof gpt2_fixed / sizeof *gpt2_fixed, g, &hit)) {
        } else if (sscanf(g, "h.%d.%n", &layer, &consumed) == 1 && consumed > 0 && layer >= 0) {
            if (!lookup(gpt2_layer, sizeof gpt2_layer / sizeof *gpt2_layer, g + consumed, &hit)) return 0;
        } else {
            return 0;
        }
    }
    if (layer >= 0) snprintf(out, cap, "blk.%d.%s", layer, hit->gg);
    else snprintf(out, cap, "%s", hit->gg);
    if (rows) *rows = hit->rows;
    return 1;
}
