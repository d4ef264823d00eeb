// config.c: Hugging Face config.json and GGUF metadata -> mxp_model_config.
// Every key the graph depends on is read and checked here; nothing else reads config files.
#include "arch/config.h"

#include <math.h>
#include <string.h>
#include <cJSON.h>

// ---- config.json helpers ----

// Integer key: required unless def_ok; rejects non-integers and values outside [lo, hi].
static mxp_status json_int(const cJSON *o, const char *key, int required, int def, int lo, int hi,
                           int *out, const char *label, mxp_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) {
        if (required) return mxp_fail(err, MXP_ERR_FORMAT, "%s: missing integer key \"%s\"", label, key);
        *out = def;
        return MXP_OK;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: key \"%s\" must be an integer", label, key);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: key \"%s\" = %.17g is out of range [%d, %d]", label, key,
                        v->valuedouble, lo, hi);
    *out = (int)v->valuedouble;
    return MXP_OK;
}

static mxp_status json_num(const cJSON *o, const char *key, double def, double lo, double hi, double *out,
                           const char *label, mxp_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return MXP_OK;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: key \"%s\" must be a number", label, key);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: key \"%s\" = %g is out of range [%g, %g]", label, key,
                        v->valuedouble, lo, hi);
    *out = v->valuedouble;
    return MXP_OK;
}

static mxp_status json_bool(const cJSON *o, const char *key, int def, int *out, const char *label, mxp_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return MXP_OK;
    }
    if (!cJSON_IsBool(v)) return mxp_fail(err, MXP_ERR_FORMAT, "%s: key \"%s\" must be true or false", label, key);
    *out = cJSON_IsTrue(v);
    return MXP_OK;
}

static const char *json_str(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

#define TRY(x)                   \
    do {                         \
        mxp_status st_ = (x);    \
        if (st_) goto fail;      \
    } while (0)

static mxp_status parse_rope_scaling(mxp_model_config *c, const cJSON *root, const char *label, mxp_err *err) {
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    c->rope_scaling = MXP_ROPE_NONE;
    if (!rs || cJSON_IsNull(rs)) return MXP_OK;
    if (!cJSON_IsObject(rs)) return mxp_fail(err, MXP_ERR_FORMAT, "%s: \"rope_scaling\" must be an object or null", label);
    const char *type = json_str(rs, "rope_type");
    if (!type) type = json_str(rs, "type");
    if (!type) return mxp_fail(err, MXP_ERR_FORMAT, "%s: \"rope_scaling\" has no \"rope_type\"", label);
    if (!strcmp(type, "default")) return MXP_OK;
    if (strcmp(type, "llama3"))
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: rope_scaling type \"%s\" is not supported (supported: llama3)",
                        label, type);
    c->rope_scaling = MXP_ROPE_LLAMA3;
    mxp_status st;
    if ((st = json_num(rs, "factor", 0, 1.0, 1e6, &c->rope_factor, label, err))) return st;
    if ((st = json_num(rs, "low_freq_factor", 1.0, 1e-6, 1e6, &c->rope_low_freq_factor, label, err))) return st;
    if ((st = json_num(rs, "high_freq_factor", 4.0, 1e-6, 1e6, &c->rope_high_freq_factor, label, err))) return st;
    if ((st = json_num(rs, "original_max_position_embeddings", 8192, 1, 1e9, &c->rope_orig_max_pos, label, err))) return st;
    if (c->rope_factor < 1.0)
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: rope_scaling \"factor\" is missing or below 1", label);
    if (c->rope_high_freq_factor <= c->rope_low_freq_factor)
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: rope_scaling high_freq_factor must exceed low_freq_factor", label);
    return MXP_OK;
}

static mxp_status check_dims(mxp_model_config *c, const char *label, mxp_err *err) {
    if (c->n_kv_heads <= 0 || c->n_heads % c->n_kv_heads)
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: attention heads (%d) must be a multiple of key/value heads (%d)", label,
                        c->n_heads, c->n_kv_heads);
    if (c->head_dim <= 0 || c->head_dim % 2)
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: head dimension %d must be positive and even", label, c->head_dim);
    return MXP_OK;
}

static mxp_status parse_llama(mxp_model_config *c, const cJSON *root, const char *label, mxp_err *err) {
    const int big = 1 << 24;
    c->arch = MXP_ARCH_LLAMA;
    const char *act = json_str(root, "hidden_act");
    if (act && strcmp(act, "silu"))
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: hidden_act \"%s\" is not supported (llama family: silu)", label, act);
    double eps, theta;
    TRY(json_int(root, "vocab_size", 1, 0, 1, big, &c->vocab, label, err));
    TRY(json_int(root, "hidden_size", 1, 0, 1, big, &c->dim, label, err));
    TRY(json_int(root, "intermediate_size", 1, 0, 1, big, &c->ffn, label, err));
    TRY(json_int(root, "num_hidden_layers", 1, 0, 1, 4096, &c->n_layers, label, err));
    TRY(json_int(root, "num_attention_heads", 1, 0, 1, 4096, &c->n_heads, label, err));
    TRY(json_int(root, "num_key_value_heads", 0, c->n_heads, 1, 4096, &c->n_kv_heads, label, err));
    if (c->dim % c->n_heads && !cJSON_GetObjectItemCaseSensitive(root, "head_dim"))
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: hidden_size %d is not a multiple of num_attention_heads %d", label,
                        c->dim, c->n_heads);
    TRY(json_int(root, "head_dim", 0, c->dim / c->n_heads, 2, 65536, &c->head_dim, label, err));
    TRY(json_int(root, "max_position_embeddings", 0, 0, 0, 1 << 30, &c->max_pos, label, err));
    TRY(json_num(root, "rms_norm_eps", 1e-6, 0, 1, &eps, label, err));
    TRY(json_num(root, "rope_theta", 10000.0, 1.0, 1e12, &theta, label, err));
    c->norm_eps = (float)eps;
    c->rope_theta = theta;
    TRY(json_bool(root, "tie_word_embeddings", 0, &c->tied, label, err));
    int attn_bias;
    TRY(json_bool(root, "attention_bias", 0, &attn_bias, label, err));
    TRY(json_bool(root, "mlp_bias", 0, &c->mlp_bias, label, err));
    c->qkv_bias = attn_bias;
    c->o_bias = attn_bias;
    if (strstr(c->arch_name, "Qwen2")) {
        c->qkv_bias = 1;  // Qwen2 always has q/k/v biases and none on o_proj
        c->o_bias = 0;
        int sw;
        TRY(json_bool(root, "use_sliding_window", 0, &sw, label, err));
        if (sw) return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: use_sliding_window=true is not supported", label);
    }
    // Mistral's window applies to every layer; Llama has none, Qwen2 only with use_sliding_window
    TRY(json_int(root, "sliding_window", 0, 0, 0, 1 << 30, &c->sliding_window, label, err));
    if (strcmp(c->arch_name, "MistralForCausalLM") && strcmp(c->arch_name, "mistral")) c->sliding_window = 0;
    TRY(parse_rope_scaling(c, root, label, err));
    return check_dims(c, label, err);
fail:
    return err ? err->code : MXP_ERR_FORMAT;
}

static mxp_status parse_gpt2(mxp_model_config *c, const cJSON *root, const char *label, mxp_err *err) {
    const int big = 1 << 24;
    c->arch = MXP_ARCH_GPT2;
    const char *act = json_str(root, "activation_function");
    if (act && strcmp(act, "gelu_new") && strcmp(act, "gelu_pytorch_tanh"))
        return mxp_fail(err, MXP_ERR_UNSUPPORTED,
                        "%s: activation_function \"%s\" is not supported (gpt2: gelu_new, gelu_pytorch_tanh)", label, act);
    int flag;
    TRY(json_bool(root, "scale_attn_by_inverse_layer_idx", 0, &flag, label, err));
    if (flag) return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: scale_attn_by_inverse_layer_idx=true is not supported", label);
    TRY(json_bool(root, "scale_attn_weights", 1, &flag, label, err));
    if (!flag) return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: scale_attn_weights=false is not supported", label);
    double eps;
    TRY(json_int(root, "vocab_size", 1, 0, 1, big, &c->vocab, label, err));
    TRY(json_int(root, "n_embd", 1, 0, 1, big, &c->dim, label, err));
    TRY(json_int(root, "n_layer", 1, 0, 1, 4096, &c->n_layers, label, err));
    TRY(json_int(root, "n_head", 1, 0, 1, 4096, &c->n_heads, label, err));
    TRY(json_int(root, "n_positions", 1, 0, 1, 1 << 24, &c->max_pos, label, err));
    TRY(json_int(root, "n_inner", 0, 4 * c->dim, 1, big, &c->ffn, label, err));
    TRY(json_num(root, "layer_norm_epsilon", 1e-5, 0, 1, &eps, label, err));
    if (c->dim % c->n_heads)
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: n_embd %d is not a multiple of n_head %d", label, c->dim, c->n_heads);
    c->norm_eps = (float)eps;
    c->n_kv_heads = c->n_heads;
    c->head_dim = c->dim / c->n_heads;
    c->tied = 1;
    c->qkv_bias = c->o_bias = c->mlp_bias = 1;
    return check_dims(c, label, err);
fail:
    return err ? err->code : MXP_ERR_FORMAT;
}

mxp_status mxp_config_from_hf_json(mxp_model_config *c, const char *json, size_t len, const char *label,
                                   mxp_err *err) {
    memset(c, 0, sizeof *c);
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return mxp_fail(err, MXP_ERR_FORMAT, "%s: not valid JSON", label);
    mxp_status st = MXP_OK;
    if (!cJSON_IsObject(root)) {
        st = mxp_fail(err, MXP_ERR_FORMAT, "%s: top level must be a JSON object", label);
        goto done;
    }
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const char *arch = NULL;
    if (cJSON_IsArray(archs) && cJSON_GetArraySize(archs) >= 1 && cJSON_IsString(cJSON_GetArrayItem(archs, 0)))
        arch = cJSON_GetArrayItem(archs, 0)->valuestring;
    const char *model_type = json_str(root, "model_type");
    if (!arch && !model_type) {
        st = mxp_fail(err, MXP_ERR_FORMAT, "%s: neither \"architectures\" nor \"model_type\" is given", label);
        goto done;
    }
    snprintf(c->arch_name, sizeof c->arch_name, "%s", arch ? arch : model_type);
    static const char *const llama_like[] = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM",
                                             "llama", "mistral", "qwen2"};
    int is_llama = 0;
    for (size_t i = 0; i < sizeof llama_like / sizeof *llama_like; i++)
        if (!strcmp(c->arch_name, llama_like[i])) is_llama = 1;
    if (is_llama) {
        st = parse_llama(c, root, label, err);
    } else if (!strcmp(c->arch_name, "GPT2LMHeadModel") || !strcmp(c->arch_name, "gpt2")) {
        st = parse_gpt2(c, root, label, err);
    } else {
        st = mxp_fail(err, MXP_ERR_UNSUPPORTED,
                      "%s: architecture \"%s\" is not supported (supported: LlamaForCausalLM, MistralForCausalLM, "
                      "Qwen2ForCausalLM, GPT2LMHeadModel)",
                      label, c->arch_name);
    }
done:
    cJSON_Delete(root);
    return st;
}

// ---- GGUF ----

static mxp_status gguf_int(const mxp_gguf *g, const char *key, int required, int def, int lo, int hi, int *out,
                           const char *label, mxp_err *err) {
    uint64_t v;
    int found = 0;
    mxp_status st = mxp_gguf_get_u64(g, key, &v, required ? NULL : &found, err);
    if (st) return mxp_fail_prefix(err, "%s: ", label);
    if (!required && !found) {
        *out = def;
        return MXP_OK;
    }
    if (v < (uint64_t)lo || v > (uint64_t)hi)
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: key %s = %llu is out of range [%d, %d]", label, key,
                        (unsigned long long)v, lo, hi);
    *out = (int)v;
    return MXP_OK;
}

mxp_status mxp_config_from_gguf(mxp_model_config *c, const mxp_gguf *g, const char *label, mxp_err *err) {
    memset(c, 0, sizeof *c);
    mxp_gguf_str arch;
    mxp_status st = mxp_gguf_get_str(g, "general.architecture", &arch, NULL, err);
    if (st) return mxp_fail_prefix(err, "%s: ", label);
    if (arch.len != 5 || memcmp(arch.ptr, "llama", 5)) {
        int n = arch.len > 40 ? 40 : (int)arch.len;
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: GGUF architecture \"%.*s\" is not supported (supported: llama)",
                        label, n, arch.ptr);
    }
    snprintf(c->arch_name, sizeof c->arch_name, "gguf:llama");
    c->arch = MXP_ARCH_LLAMA;
    const int big = 1 << 24;
    if ((st = gguf_int(g, "llama.embedding_length", 1, 0, 1, big, &c->dim, label, err))) return st;
    if ((st = gguf_int(g, "llama.feed_forward_length", 1, 0, 1, big, &c->ffn, label, err))) return st;
    if ((st = gguf_int(g, "llama.block_count", 1, 0, 1, 4096, &c->n_layers, label, err))) return st;
    if ((st = gguf_int(g, "llama.attention.head_count", 1, 0, 1, 4096, &c->n_heads, label, err))) return st;
    if ((st = gguf_int(g, "llama.attention.head_count_kv", 0, c->n_heads, 1, 4096, &c->n_kv_heads, label, err))) return st;
    if ((st = gguf_int(g, "llama.context_length", 0, 0, 0, 1 << 30, &c->max_pos, label, err))) return st;
    if (c->dim % c->n_heads)
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: embedding_length %d is not a multiple of head_count %d", label, c->dim,
                        c->n_heads);
    if ((st = gguf_int(g, "llama.rope.dimension_count", 0, c->dim / c->n_heads, 2, 65536, &c->head_dim, label, err)))
        return st;
    if (c->head_dim != c->dim / c->n_heads)
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: llama.rope.dimension_count %d (partial rotary) is not supported",
                        label, c->head_dim);
    double eps = 1e-5, theta = 10000.0;
    int found;
    if ((st = mxp_gguf_get_f64(g, "llama.attention.layer_norm_rms_epsilon", &eps, &found, err)))
        return mxp_fail_prefix(err, "%s: ", label);
    if ((st = mxp_gguf_get_f64(g, "llama.rope.freq_base", &theta, &found, err))) return mxp_fail_prefix(err, "%s: ", label);
    if (!(eps >= 0 && eps < 1) || !(theta >= 1 && theta < 1e12))
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: rms epsilon %g or rope freq_base %g out of range", label, eps, theta);
    c->norm_eps = (float)eps;
    c->rope_theta = theta;
    if (mxp_gguf_find(g, "llama.rope.scaling.type"))
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: llama.rope.scaling.type is not supported", label);
    if (mxp_tensor_find(&g->tensors, "rope_freqs.weight"))
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: tensor rope_freqs.weight (llama3 rope scaling) is not supported",
                        label);
    c->tied = !mxp_tensor_find(&g->tensors, "output.weight");
    // vocabulary size from the embedding tensor (GGUF has no required vocab key)
    const mxp_tensor_info *emb = mxp_tensor_find(&g->tensors, "token_embd.weight");
    if (!emb || emb->ndim != 2 || emb->shape[0] <= 0 || emb->shape[0] > big)
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: tensor token_embd.weight is missing or not 2-D", label);
    c->vocab = (int)emb->shape[0];
    return check_dims(c, label, err);
}

void mxp_config_inv_freq(const mxp_model_config *c, float *inv_freq) {
    int half = c->head_dim / 2;
    for (int i = 0; i < half; i++) {
        double f = pow(c->rope_theta, -2.0 * i / c->head_dim);
        if (c->rope_scaling == MXP_ROPE_LLAMA3) {
            const double pi = 3.14159265358979323846;
            double wavelen = 2 * pi / f;
            double low_wl = c->rope_orig_max_pos / c->rope_low_freq_factor;
            double high_wl = c->rope_orig_max_pos / c->rope_high_freq_factor;
            if (wavelen > low_wl) {
                f = f / c->rope_factor;
            } else if (wavelen >= high_wl) {
                double smooth = (c->rope_orig_max_pos / wavelen - c->rope_low_freq_factor) /
                                (c->rope_high_freq_factor - c->rope_low_freq_factor);
                f = (1 - smooth) * f / c->rope_factor + smooth * f;
            }
        }
        inv_freq[i] = (float)f;
    }
}
