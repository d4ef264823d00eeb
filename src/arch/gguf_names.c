// gguf_names.c: Hugging Face <-> llama.cpp GGUF tensor names (Llama family). This table is
// the only place the mapping lives.
#include "arch/gguf_names.h"

#include <stdio.h>
#include <string.h>

int mxp_gguf_name_from_hf(const char *hf, char *out, size_t cap, mxp_gguf_rope_rows *rows) {
    static const struct { const char *hf, *gg; } fixed[] = {
        {"model.embed_tokens.weight", "token_embd.weight"},
        {"model.norm.weight", "output_norm.weight"},
        {"lm_head.weight", "output.weight"},
    };
    static const struct { const char *hf, *gg; mxp_gguf_rope_rows rows; } per_layer[] = {
        {"input_layernorm.weight", "attn_norm.weight", MXP_GGUF_ROWS_PLAIN},
        {"self_attn.q_proj.weight", "attn_q.weight", MXP_GGUF_ROWS_Q},
        {"self_attn.k_proj.weight", "attn_k.weight", MXP_GGUF_ROWS_K},
        {"self_attn.v_proj.weight", "attn_v.weight", MXP_GGUF_ROWS_PLAIN},
        {"self_attn.o_proj.weight", "attn_output.weight", MXP_GGUF_ROWS_PLAIN},
        {"post_attention_layernorm.weight", "ffn_norm.weight", MXP_GGUF_ROWS_PLAIN},
        {"mlp.gate_proj.weight", "ffn_gate.weight", MXP_GGUF_ROWS_PLAIN},
        {"mlp.up_proj.weight", "ffn_up.weight", MXP_GGUF_ROWS_PLAIN},
        {"mlp.down_proj.weight", "ffn_down.weight", MXP_GGUF_ROWS_PLAIN},
    };
    if (rows) *rows = MXP_GGUF_ROWS_PLAIN;
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        if (!strcmp(hf, fixed[i].hf)) {
            snprintf(out, cap, "%s", fixed[i].gg);
            return 1;
        }
    int layer, consumed = 0;
    if (sscanf(hf, "model.layers.%d.%n", &layer, &consumed) != 1 || consumed == 0 || layer < 0) return 0;
    const char *rest = hf + consumed;
    for (size_t i = 0; i < sizeof per_layer / sizeof *per_layer; i++)
        if (!strcmp(rest, per_layer[i].hf)) {
            snprintf(out, cap, "blk.%d.%s", layer, per_layer[i].gg);
            if (rows) *rows = per_layer[i].rows;
            return 1;
        }
    return 0;
}
