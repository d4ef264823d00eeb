// arch_llama.c: the Llama family as llama.cpp's "llama" (Llama 2/3, Mistral) or "qwen2"
// architecture: hyper-parameter keys and tensors, as convert_hf_to_gguf.py writes them.
//  - llama: q/k weights (and biases) with rows in llama.cpp's rotary order (its "llama" rope
//    rotates adjacent pairs, Hugging Face rotates halves); GQA through head_count_kv; optional
//    linear biases (llama.cpp loads attn_q/k/v/output and ffn biases when present); llama3
//    rope scaling as the tensor rope_freqs.weight (head_dim/2 frequency divisors: 1 for high
//    frequencies, factor for low ones, 1/((1-s)/factor + s) between), no scaling keys.
//  - qwen2: q/k/v biases required, rows as in Hugging Face (llama.cpp's qwen2 rope rotates
//    halves); no o_proj or MLP biases, no rope scaling (its loader reads neither).
//  - Mistral's sliding window: context_length is at most the window (see below).
//  - both: token_embd in the format of its plan op ("model.embed_tokens"; llama.cpp reads its
//    rows with get_rows, which dequantizes any type); a tied head is one plan op ("lm_head")
//    with the embedding: one tensor, token_embd in the head's format, and no output.weight
//    (llama.cpp then uses token_embd for the head).
// Must not: write a model llama.cpp would compute differently; such a model is refused with
// the feature named.
#include <math.h>
#include <string.h>

#include "arch/gguf_names.h"
#include "export/export.h"

static int is_qwen2(const mxp_model_config *c) {
    return strstr(c->arch_name, "Qwen2") != NULL || !strcmp(c->arch_name, "qwen2");
}

static mxp_status check(const mxp_model *m, int qwen2, mxp_err *err) {
    const mxp_model_config *c = &m->config;
    if (qwen2) {
        if (!c->qkv_bias || c->o_bias || c->mlp_bias)
            return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: llama.cpp's qwen2 architecture has q/k/v biases and no "
                            "o_proj or MLP biases (this model: q/k/v %d, o_proj %d, mlp %d)", m->path, c->qkv_bias,
                            c->o_bias, c->mlp_bias);
        if (c->rope_scaling != MXP_ROPE_NONE)
            return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: rope_scaling with llama.cpp's qwen2 architecture (its "
                            "loader reads no rope_freqs tensor)", m->path);
    }
    return MXP_OK;
}

// llama3 rope scaling: the divisor of each rotary frequency, as the converter computes it.
static void rope_factors(const mxp_model_config *c, float *out) {
    const double pi = 3.14159265358979323846;
    double low_wl = c->rope_orig_max_pos / c->rope_low_freq_factor;
    double high_wl = c->rope_orig_max_pos / c->rope_high_freq_factor;
    for (int i = 0; i < c->head_dim / 2; i++) {
        double f = pow(c->rope_theta, -2.0 * i / c->head_dim), wl = 2 * pi / f;
        if (wl < high_wl) {
            out[i] = 1.0f;
        } else if (wl > low_wl) {
            out[i] = (float)c->rope_factor;
        } else {
            double s = (c->rope_orig_max_pos / wl - c->rope_low_freq_factor) /
                       (c->rope_high_freq_factor - c->rope_low_freq_factor);
            out[i] = (float)(1.0 / ((1 - s) / c->rope_factor + s));
        }
    }
}

mxp_status mxp_export_arch_llama(const mxp_model *m, mxp_gguf_writer *w, mxp_export_plan *p, mxp_err *err) {
    const mxp_model_config *c = &m->config;
    const mxp_graph *g = &m->graph;
    int qwen2 = is_qwen2(c);
    mxp_status st = check(m, qwen2, err);
    if (st) return st;
    const char *arch = qwen2 ? "qwen2" : "llama";
    char key[96];
#define KEY(suffix) (snprintf(key, sizeof key, "%s.%s", arch, suffix), key)
    mxp_gguf_writer_kv_str(w, "general.architecture", arch, strlen(arch));
    // Mistral's sliding window: llama.cpp's llama architecture has none and attends to every
    // cached key, which equals the windowed attention only up to `window` positions; the
    // training context written is therefore at most the window (llama.cpp warns when a longer
    // context is asked for).
    int ctx = c->max_pos;
    if (c->sliding_window > 0 && (ctx <= 0 || c->sliding_window < ctx)) ctx = c->sliding_window;
    if (ctx > 0) mxp_gguf_writer_kv_u32(w, KEY("context_length"), (uint32_t)ctx);
    mxp_gguf_writer_kv_u32(w, KEY("embedding_length"), (uint32_t)c->dim);
    mxp_gguf_writer_kv_u32(w, KEY("block_count"), (uint32_t)c->n_layers);
    mxp_gguf_writer_kv_u32(w, KEY("feed_forward_length"), (uint32_t)c->ffn);
    mxp_gguf_writer_kv_u32(w, KEY("attention.head_count"), (uint32_t)c->n_heads);
    mxp_gguf_writer_kv_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->n_kv_heads);
    mxp_gguf_writer_kv_u32(w, KEY("rope.dimension_count"), (uint32_t)c->head_dim);
    if (c->head_dim * c->n_heads != c->dim) {
        mxp_gguf_writer_kv_u32(w, KEY("attention.key_length"), (uint32_t)c->head_dim);
        mxp_gguf_writer_kv_u32(w, KEY("attention.value_length"), (uint32_t)c->head_dim);
    }
    mxp_gguf_writer_kv_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->norm_eps);
    mxp_gguf_writer_kv_f32(w, KEY("rope.freq_base"), (float)c->rope_theta);
    mxp_gguf_writer_kv_u32(w, KEY("vocab_size"), (uint32_t)c->vocab);
#undef KEY
    if (c->rope_scaling == MXP_ROPE_LLAMA3) {
        int half = c->head_dim / 2;
        p->values = malloc((size_t)half * sizeof *p->values);
        mxp_export_tensor *t = p->values ? mxp_export_plan_add(p, "rope_freqs.weight", 1, half, 0) : NULL;
        if (!t) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        rope_factors(c, p->values);
        t->src = MXP_EXPORT_VALUES;
        t->values = p->values;
    } else if (c->rope_scaling != MXP_ROPE_NONE) {
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: this rope scaling has no llama.cpp form here", m->path);
    }
    for (int pi = 0; pi < g->n_params; pi++) {
        const char *hf = g->params[pi].name;
        char name[96];
        mxp_gguf_rope_rows rows;
        if (!mxp_gguf_name_from_hf(hf, name, sizeof name, &rows))
            return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: tensor %s has no llama.cpp name", m->path, hf);
        if ((st = mxp_export_plan_param(p, m, pi, name, mxp_export_param_format(m, pi), err))) return st;
        mxp_export_tensor *t = &p->t[p->n - 1];
        if (rows != MXP_GGUF_ROWS_PLAIN && !qwen2) {
            t->src = MXP_EXPORT_PARAM_ROPE;
            t->heads = rows == MXP_GGUF_ROWS_Q ? c->n_heads : c->n_kv_heads;
        }
    }
    return MXP_OK;
}
