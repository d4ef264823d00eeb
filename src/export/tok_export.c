// tok_export.c: tokenizer metadata of an exported GGUF. A GGUF input's tokenizer.* keys are
// carried over whole (every key, any type: tokens, scores, token types, merges, special ids,
// add_bos/add_eos, chat template...), after mixprec has built its own tokenizer from them, so
// a vocabulary it cannot read is refused rather than passed on blind. A Hugging Face folder's
// tokenizer.json goes to tok_bpe.c (byte-level BPE) or tok_spm.c (SentencePiece style).
// Also the token list and special ids both of those write.
//
// Must not: export a model without a tokenizer (llama.cpp's loader requires
// tokenizer.ggml.model), or pass on a tokenizer.ggml.pre llama.cpp does not know or reads
// differently from mixprec.
#include <string.h>

#include "export/export.h"

mxp_status mxp_export_token_list(const mxp_tokenizer *t, int vocab, const float *scores, mxp_gguf_writer *w,
                                 mxp_err *err) {
    int32_t n = mxp_tokenizer_vocab_size(t);
    MXP_ASSERT(n <= vocab);
    const char **tok = malloc((size_t)vocab * sizeof *tok);
    size_t *len = malloc((size_t)vocab * sizeof *len);
    int32_t *type = malloc((size_t)vocab * sizeof *type);
    char *pads = malloc((size_t)(vocab - n) * 24 + 1);
    mxp_status st = MXP_OK;
    if (!tok || !len || !type || !pads) {
        st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory for %d tokens", vocab);
        goto done;
    }
    for (int32_t i = 0; i < n; i++) {
        tok[i] = mxp_tokenizer_token(t, i, &len[i]);
        type[i] = mxp_tokenizer_token_type(t, i);
    }
    for (int32_t i = n; i < vocab; i++) {
        char *s = pads + (size_t)(i - n) * 24;
        len[i] = (size_t)snprintf(s, 24, "[PAD%d]", (int)i);
        tok[i] = s;
        type[i] = MXP_TOKT_UNUSED;
    }
    mxp_gguf_writer_kv_str_arr(w, "tokenizer.ggml.tokens", tok, len, (uint64_t)vocab);
    if (scores) mxp_gguf_writer_kv_arr(w, "tokenizer.ggml.scores", MXP_GGUF_F32, scores, (uint64_t)vocab);
    mxp_gguf_writer_kv_arr(w, "tokenizer.ggml.token_type", MXP_GGUF_I32, type, (uint64_t)vocab);
done:
    free(tok);
    free(len);
    free(type);
    free(pads);
    return st;
}

void mxp_export_special_ids(const mxp_tokenizer *t, mxp_gguf_writer *w) {
    int32_t id;
    mxp_tok_info ti;
    mxp_tokenizer_info(t, &ti);
    if (mxp_tokenizer_bos(t, &id)) mxp_gguf_writer_kv_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)id);
    if (mxp_tokenizer_eos(t, &id)) mxp_gguf_writer_kv_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)id);
    if (ti.has_unk) mxp_gguf_writer_kv_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)ti.unk_id);
    mxp_gguf_writer_kv_bool(w, "tokenizer.ggml.add_bos_token", mxp_tokenizer_add_bos(t));
    mxp_gguf_writer_kv_bool(w, "tokenizer.ggml.add_eos_token", mxp_tokenizer_add_eos(t));
}

// ---- a GGUF input's tokenizer, carried over ----

// One KV copied as it is (arrays of arrays are refused: tokenizer metadata has none).
static mxp_status copy_kv(const mxp_gguf_kv *kv, mxp_gguf_writer *w, const char *label, mxp_err *err) {
    if (kv->type == MXP_GGUF_STRING) {
        mxp_gguf_writer_kv_str(w, kv->key, kv->s.ptr, (size_t)kv->s.len);
        return MXP_OK;
    }
    if (kv->type != MXP_GGUF_ARRAY) {
        union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; float f32; uint64_t u64;
                int64_t i64; double f64; } v;
        switch (kv->type) {
        case MXP_GGUF_U8: case MXP_GGUF_BOOL: v.u8 = (uint8_t)kv->u; break;
        case MXP_GGUF_I8: v.i8 = (int8_t)kv->i; break;
        case MXP_GGUF_U16: v.u16 = (uint16_t)kv->u; break;
        case MXP_GGUF_I16: v.i16 = (int16_t)kv->i; break;
        case MXP_GGUF_U32: v.u32 = (uint32_t)kv->u; break;
        case MXP_GGUF_I32: v.i32 = (int32_t)kv->i; break;
        case MXP_GGUF_F32: v.f32 = (float)kv->f; break;
        case MXP_GGUF_U64: v.u64 = kv->u; break;
        case MXP_GGUF_I64: v.i64 = kv->i; break;
        case MXP_GGUF_F64: v.f64 = kv->f; break;
        default: return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: key %s has GGUF type %d", label, kv->key, (int)kv->type);
        }
        mxp_gguf_writer_kv(w, kv->key, kv->type, &v);
        return MXP_OK;
    }
    if (kv->arr_type == MXP_GGUF_STRING) {
        const char **s = malloc((kv->arr_n ? kv->arr_n : 1) * sizeof *s);
        size_t *len = malloc((kv->arr_n ? kv->arr_n : 1) * sizeof *len);
        if (!s || !len) {
            free(s);
            free(len);
            return mxp_fail(err, MXP_ERR_NOMEM, "out of memory copying %s", kv->key);
        }
        for (uint64_t i = 0; i < kv->arr_n; i++) s[i] = kv->arr_strs[i].ptr, len[i] = (size_t)kv->arr_strs[i].len;
        mxp_gguf_writer_kv_str_arr(w, kv->key, s, len, kv->arr_n);
        free(s);
        free(len);
        return MXP_OK;
    }
    if (!mxp_gguf_type_size(kv->arr_type))
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: key %s is an array of GGUF type %d", label, kv->key,
                        (int)kv->arr_type);
    // arr_data holds the little-endian values; the writer takes native ones (x86, ARM: the same)
    mxp_gguf_writer_kv_arr(w, kv->key, kv->arr_type, kv->arr_data, kv->arr_n);
    return MXP_OK;
}

// tokenizer.ggml.pre names that llama.cpp and mixprec (mxp_tokenizer_pre_from_name) read the
// same way. "gpt2" (written by earlier mixprec versions) is llama.cpp's "gpt-2". "default" is
// not here: llama.cpp's default regex is not GPT-2's.
static mxp_status carry_pre(const mxp_gguf_kv *kv, mxp_gguf_writer *w, const char *label, mxp_err *err) {
    static const char *const same[] = {"gpt-2", "llama-bpe", "llama3", "llama-v3", "qwen2"};
    if (kv->type != MXP_GGUF_STRING) return mxp_fail(err, MXP_ERR_FORMAT, "%s: tokenizer.ggml.pre is not a string", label);
    for (size_t i = 0; i < sizeof same / sizeof *same; i++)
        if (kv->s.len == strlen(same[i]) && !memcmp(kv->s.ptr, same[i], kv->s.len)) {
            mxp_gguf_writer_kv_str(w, kv->key, kv->s.ptr, (size_t)kv->s.len);
            return MXP_OK;
        }
    if (kv->s.len == 4 && !memcmp(kv->s.ptr, "gpt2", 4)) {
        mxp_gguf_writer_kv_str(w, kv->key, "gpt-2", 5);
        return MXP_OK;
    }
    int n = kv->s.len > 40 ? 40 : (int)kv->s.len;
    return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: tokenizer.ggml.pre \"%.*s\": not a pre-tokenizer llama.cpp and mixprec "
                    "both read the same way (gpt-2, llama-bpe, qwen2)", label, n, kv->s.ptr);
}

static mxp_status carry_over(const mxp_model *m, const mxp_tokenizer *t, mxp_gguf_writer *w, mxp_err *err) {
    if (mxp_tokenizer_vocab_size(t) != m->config.vocab)
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: %d tokens in tokenizer.ggml.tokens but %d rows in token_embd.weight "
                        "(llama.cpp needs them equal)", m->path, (int)mxp_tokenizer_vocab_size(t), m->config.vocab);
    const mxp_gguf *g = &m->gguf;
    for (int i = 0; i < g->n_kv; i++) {
        const mxp_gguf_kv *kv = &g->kv[i];
        if (strncmp(kv->key, "tokenizer.", 10)) continue;
        mxp_status st = !strcmp(kv->key, "tokenizer.ggml.pre") ? carry_pre(kv, w, m->path, err) : copy_kv(kv, w, m->path, err);
        if (st) return st;
    }
    return MXP_OK;
}

mxp_status mxp_export_tokenizer(mxp_model *m, mxp_gguf_writer *w, char *desc, size_t cap, mxp_err *err) {
    if (m->synthetic)
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: the model has no tokenizer, and llama.cpp loads no GGUF without "
                        "one", m->path);
    const mxp_tokenizer *t = NULL;
    mxp_status st = mxp_model_tokenizer(m, &t, err);
    if (st) return mxp_fail_prefix(err, "the GGUF needs the model's tokenizer (llama.cpp loads none without): ");
    if (m->is_gguf) {
        snprintf(desc, cap, "carried over from the GGUF input (%s)",
                 mxp_tokenizer_kind(t) == MXP_TOK_GPT2 ? "byte-level BPE" : "SentencePiece style");
        return carry_over(m, t, w, err);
    }
    if (mxp_tokenizer_vocab_size(t) > m->config.vocab)
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: the tokenizer has %d tokens, more than the model's vocabulary (%d)",
                        m->tokenizer_dir, (int)mxp_tokenizer_vocab_size(t), m->config.vocab);
    if (mxp_tokenizer_kind(t) == MXP_TOK_GPT2) return mxp_export_tok_bpe(t, m->config.vocab, m->tokenizer_dir, w, desc, cap, err);
    return mxp_export_tok_spm(t, m->config.vocab, m->tokenizer_dir, w, desc, cap, err);
}
