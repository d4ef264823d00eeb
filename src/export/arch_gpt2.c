// arch_gpt2.c: GPT-2 as llama.cpp's "gpt2" architecture, as convert_hf_to_gguf.py writes it:
// token_embd (in the format of the tied head's plan op "lm_head", one tensor: llama.cpp uses
// token_embd for the head when output.weight is absent) and position_embd (f32), per block
// attn_norm / ffn_norm LayerNorm weights and biases, the fused attn_qkv (q, k, v rows in that order) and attn_output, ffn_up / ffn_down,
// each linear with its bias; output_norm weight and bias. The converter transposes Conv1D
// weights from (in, out) to (out, in): that is the layout mixprec computes with (the loader
// transposed them), so they are written as they are.
// Keys: gpt2.context_length (= n_positions: llama.cpp sizes position_embd by it),
// embedding_length, block_count, feed_forward_length, attention.head_count,
// attention.layer_norm_epsilon.
#include <string.h>

#include "arch/gguf_names.h"
#include "export/export.h"

mxp_status mxp_export_arch_gpt2(const mxp_model *m, mxp_gguf_writer *w, mxp_export_plan *p, mxp_err *err) {
    const mxp_model_config *c = &m->config;
    const mxp_graph *g = &m->graph;
    if (c->max_pos <= 0) return mxp_fail(err, MXP_ERR_FORMAT, "%s: GPT-2 without n_positions", m->path);
    mxp_gguf_writer_kv_str(w, "general.architecture", "gpt2", 4);
    mxp_gguf_writer_kv_u32(w, "gpt2.context_length", (uint32_t)c->max_pos);
    mxp_gguf_writer_kv_u32(w, "gpt2.embedding_length", (uint32_t)c->dim);
    mxp_gguf_writer_kv_u32(w, "gpt2.block_count", (uint32_t)c->n_layers);
    mxp_gguf_writer_kv_u32(w, "gpt2.feed_forward_length", (uint32_t)c->ffn);
    mxp_gguf_writer_kv_u32(w, "gpt2.attention.head_count", (uint32_t)c->n_heads);
    mxp_gguf_writer_kv_f32(w, "gpt2.attention.layer_norm_epsilon", c->norm_eps);
    mxp_status st;
    for (int pi = 0; pi < g->n_params; pi++) {
        const char *hf = g->params[pi].name;
        char name[96];
        if (!mxp_gguf_name_from_hf(hf, name, sizeof name, NULL))
            return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: tensor %s has no llama.cpp name", m->path, hf);
        if ((st = mxp_export_plan_param(p, m, pi, name, mxp_export_param_format(m, pi), err))) return st;
    }
    return MXP_OK;
}
