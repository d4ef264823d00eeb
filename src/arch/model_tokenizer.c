// model_tokenizer.c: the tokenizer of a loaded model, from wherever the model keeps it: a
// Hugging Face folder's tokenizer.json, or a GGUF's tokenizer.ggml.* metadata (the same two
// kinds: "gpt2" byte-level BPE and "llama" SentencePiece-style BPE). Built on first use and
// kept by the model. Also data loading that tokenizes text with it only when needed.
#include <string.h>

#include "arch/model.h"
#include "io/data.h"
#include "io/tokenizer.h"

// A typed array from the GGUF metadata; NULL when absent. Wrong type: error naming the key.
static mxp_status gguf_array(const mxp_gguf *g, const char *key, mxp_gguf_type want, const mxp_gguf_kv **out,
                             const char *label, mxp_err *err) {
    const mxp_gguf_kv *kv = mxp_gguf_find(g, key);
    *out = NULL;
    if (!kv) return MXP_OK;
    if (kv->type != MXP_GGUF_ARRAY || kv->arr_type != want)
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: key %s has the wrong type", label, key);
    *out = kv;
    return MXP_OK;
}

// A bool key, def when absent; another type is an error naming the key.
static mxp_status gguf_flag(const mxp_gguf *g, const char *key, int def, int *out, const char *label, mxp_err *err) {
    const mxp_gguf_kv *kv = mxp_gguf_find(g, key);
    *out = def;
    if (!kv) return MXP_OK;
    if (kv->type != MXP_GGUF_BOOL) return mxp_fail(err, MXP_ERR_FORMAT, "%s: key %s is not a bool", label, key);
    *out = kv->u != 0;
    return MXP_OK;
}

static mxp_status gguf_id(const mxp_gguf *g, const char *key, int *has, int32_t *id, int32_t n, const char *label,
                          mxp_err *err) {
    uint64_t v;
    int found = 0;
    *has = 0;
    if (mxp_gguf_get_u64(g, key, &v, &found, err)) return mxp_fail_prefix(err, "%s: ", label);
    if (!found) return MXP_OK;
    if (v >= (uint64_t)n) return mxp_fail(err, MXP_ERR_FORMAT, "%s: %s = %llu is not a token id", label, key,
                                          (unsigned long long)v);
    *has = 1;
    *id = (int32_t)v;
    return MXP_OK;
}

mxp_status mxp_tokenizer_from_gguf(const mxp_gguf *g, const char *label, mxp_tokenizer **out, mxp_err *err) {
    mxp_gguf_str model;
    int found = 0;
    mxp_status st = mxp_gguf_get_str(g, "tokenizer.ggml.model", &model, &found, err);
    if (st) return mxp_fail_prefix(err, "%s: ", label);
    if (!found)
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: the GGUF has no tokenizer (tokenizer.ggml.model): give token ids",
                        label);
    mxp_tokenizer_desc d;
    memset(&d, 0, sizeof d);
    d.label = label;
    if (model.len == 4 && !memcmp(model.ptr, "gpt2", 4)) {
        d.kind = MXP_TOK_GPT2;
    } else if (model.len == 5 && !memcmp(model.ptr, "llama", 5)) {
        d.kind = MXP_TOK_LLAMA;
        if ((st = gguf_flag(g, "tokenizer.ggml.add_space_prefix", 1, &d.add_space_prefix, label, err))) return st;
        d.byte_fallback = 1;
    } else {
        int n = model.len > 32 ? 32 : (int)model.len;
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: tokenizer.ggml.model \"%.*s\" is not supported (gpt2, llama)",
                        label, n, model.ptr);
    }
    const mxp_gguf_kv *tokens, *types, *scores, *merges;
    if ((st = gguf_array(g, "tokenizer.ggml.tokens", MXP_GGUF_STRING, &tokens, label, err)) ||
        (st = gguf_array(g, "tokenizer.ggml.token_type", MXP_GGUF_I32, &types, label, err)) ||
        (st = gguf_array(g, "tokenizer.ggml.scores", MXP_GGUF_F32, &scores, label, err)) ||
        (st = gguf_array(g, "tokenizer.ggml.merges", MXP_GGUF_STRING, &merges, label, err)))
        return st;
    if (!tokens || tokens->arr_n == 0)
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: tokenizer.ggml.tokens is missing or empty", label);
    if (tokens->arr_n > (1u << 24) || (merges && merges->arr_n > (1u << 24)))
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: tokenizer.ggml.tokens or .merges has more than 2^24 entries", label);
    int32_t n = (int32_t)tokens->arr_n;
    if ((types && types->arr_n != tokens->arr_n) || (scores && scores->arr_n != tokens->arr_n))
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: token_type/scores do not have one entry per token", label);
    mxp_tok_str *toks = malloc((size_t)n * sizeof *toks);
    mxp_tok_str *mer = merges && merges->arr_n ? malloc((size_t)merges->arr_n * sizeof *mer) : NULL;
    int32_t *tt = types ? malloc((size_t)n * sizeof *tt) : NULL;
    float *sc = scores ? malloc((size_t)n * sizeof *sc) : NULL;
    if (!toks || (merges && merges->arr_n && !mer) || (types && !tt) || (scores && !sc)) {
        st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int32_t i = 0; i < n; i++) toks[i] = (mxp_tok_str){tokens->arr_strs[i].ptr, (size_t)tokens->arr_strs[i].len};
    for (uint64_t i = 0; mer && i < merges->arr_n; i++)
        mer[i] = (mxp_tok_str){merges->arr_strs[i].ptr, (size_t)merges->arr_strs[i].len};
    if (tt) memcpy(tt, types->arr_data, (size_t)n * sizeof *tt);  // little-endian i32, unaligned-safe
    if (sc) memcpy(sc, scores->arr_data, (size_t)n * sizeof *sc);
    d.n_tokens = n;
    d.tokens = toks;
    d.token_types = tt;
    d.scores = sc;
    d.n_merges = mer ? (int32_t)merges->arr_n : 0;
    d.merges = mer;
    if (d.kind == MXP_TOK_GPT2) {
        mxp_gguf_str pre;
        found = 0;
        if ((st = mxp_gguf_get_str(g, "tokenizer.ggml.pre", &pre, &found, err))) {
            mxp_fail_prefix(err, "%s: ", label);
            goto done;
        }
        if (found) {
            char name[64];
            snprintf(name, sizeof name, "%.*s", pre.len > 63 ? 63 : (int)pre.len, pre.ptr);
            if ((st = mxp_tokenizer_pre_from_name(name, &d.pre, err))) {
                mxp_fail_prefix(err, "%s: tokenizer.ggml.pre: ", label);
                goto done;
            }
        }
    }
    if ((st = gguf_id(g, "tokenizer.ggml.bos_token_id", &d.has_bos, &d.bos_id, n, label, err)) ||
        (st = gguf_id(g, "tokenizer.ggml.eos_token_id", &d.has_eos, &d.eos_id, n, label, err)) ||
        (st = gguf_id(g, "tokenizer.ggml.unknown_token_id", &d.has_unk, &d.unk_id, n, label, err)))
        goto done;
    if ((st = gguf_flag(g, "tokenizer.ggml.add_bos_token", d.kind == MXP_TOK_LLAMA, &d.add_bos, label, err)) ||
        (st = gguf_flag(g, "tokenizer.ggml.add_eos_token", 0, &d.add_eos, label, err)))
        goto done;
    st = mxp_tokenizer_from_arrays(&d, out, err);
done:
    free(toks);
    free(mer);
    free(tt);
    free(sc);
    return st;
}

mxp_status mxp_model_tokenizer(mxp_model *m, const mxp_tokenizer **out, mxp_err *err) {
    if (!m->tokenizer) {
        mxp_status st;
        if (m->is_gguf) st = mxp_tokenizer_from_gguf(&m->gguf, m->path, &m->tokenizer, err);
        else if (m->tokenizer_dir) st = mxp_tokenizer_load_json(m->tokenizer_dir, &m->tokenizer, err);
        else st = mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: the model has no tokenizer", m->path);
        if (st) return st;
    }
    *out = m->tokenizer;
    return MXP_OK;
}

mxp_status mxp_model_load_data(mxp_model *m, mxp_tokens *t, const char *path, mxp_err *err) {
    memset(t, 0, sizeof *t);
    mxp_mapping map;
    mxp_status st = mxp_map_file(&map, path, err);
    if (st) return st;
    const mxp_tokenizer *tok = NULL;
    if (map.size && !mxp_is_token_file(map.base, map.size)) {
        st = mxp_model_tokenizer(m, &tok, err);
        if (st) st = mxp_fail_prefix(err, "%s is text, but the model's tokenizer could not be loaded: ", path);
    }
    if (!st) st = mxp_data_parse(t, map.base, map.size, path, tok, err);
    mxp_unmap(&map);
    return st;
}

mxp_status mxp_tokenize_file(mxp_model *m, const char *path, int32_t **ids, size_t *n, mxp_err *err) {
    *ids = NULL;
    *n = 0;
    mxp_tokens t;
    mxp_status st = mxp_model_load_data(m, &t, path, err);
    if (st) return st;
    *ids = t.ids;
    *n = t.n;
    return MXP_OK;
}
