// tok_bpe.c: a byte-level BPE tokenizer.json as GGUF metadata: tokenizer.ggml.model "gpt2",
// .pre (llama.cpp's name for the split regex: "gpt-2", "llama-bpe", "qwen2"), .tokens (as
// stored, "Ġthe"), .token_type, .merges ("left right", rank order), special ids, add_bos /
// add_eos. The tokenizer was parsed by tokenizer_json.c, which refuses a split regex it does
// not know, quoting it; here the settings llama.cpp ties to each name are checked:
// llama-bpe ignores merges (a piece found whole in the vocabulary is one token), gpt-2 and
// qwen2 do not, and no llama.cpp pre-tokenizer adds a prefix space.
#include <string.h>

#include "export/export.h"

mxp_status mxp_export_tok_bpe(const mxp_tokenizer *t, int vocab, const char *label, mxp_gguf_writer *w,
                              char *desc, size_t cap, mxp_err *err) {
    mxp_tok_info ti;
    mxp_tokenizer_info(t, &ti);
    const char *pre = mxp_tokenizer_pre_llama_name(ti.pre);
    MXP_ASSERT(pre);
    if (ti.ignore_merges != (ti.pre == MXP_TOK_PRE_LLAMA3))
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: model.ignore_merges=%s with this split regex: llama.cpp's \"%s\" "
                        "pre-tokenizer %s merges", label, ti.ignore_merges ? "true" : "false", pre,
                        ti.pre == MXP_TOK_PRE_LLAMA3 ? "ignores" : "applies");
    if (ti.add_prefix_space)
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: ByteLevel add_prefix_space=true has no llama.cpp equivalent", label);
    int32_t *pairs = NULL, n = 0;
    mxp_status st = mxp_tokenizer_merges(t, &pairs, &n, err);
    if (st) return st;
    const char **ms = malloc(((size_t)n + 1) * sizeof *ms);
    size_t *ml = malloc(((size_t)n + 1) * sizeof *ml), total = 0;
    for (int32_t i = 0; i < n; i++) {
        size_t a, b;
        mxp_tokenizer_token(t, pairs[2 * i], &a);
        mxp_tokenizer_token(t, pairs[2 * i + 1], &b);
        total += a + b + 1;
    }
    char *blob = malloc(total + 1);
    if (!ms || !ml || !blob) {
        st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory for %d merges", (int)n);
        goto done;
    }
    char *o = blob;
    for (int32_t i = 0; i < n; i++) {
        size_t a, b;
        const char *l = mxp_tokenizer_token(t, pairs[2 * i], &a), *r = mxp_tokenizer_token(t, pairs[2 * i + 1], &b);
        if (memchr(l, ' ', a) || memchr(r, ' ', b)) {
            st = mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: merge %d has a token with a space, which GGUF's \"left right\" "
                          "merges cannot hold", label, (int)i);
            goto done;
        }
        ms[i] = o;
        ml[i] = a + b + 1;
        memcpy(o, l, a);
        o[a] = ' ';
        memcpy(o + a + 1, r, b);
        o += a + b + 1;
    }
    mxp_gguf_writer_kv_str(w, "tokenizer.ggml.model", "gpt2", 4);
    mxp_gguf_writer_kv_str(w, "tokenizer.ggml.pre", pre, strlen(pre));
    if ((st = mxp_export_token_list(t, vocab, NULL, w, err))) goto done;
    mxp_gguf_writer_kv_str_arr(w, "tokenizer.ggml.merges", ms, ml, (uint64_t)n);
    mxp_export_special_ids(t, w);
    snprintf(desc, cap, "byte-level BPE from tokenizer.json (gpt2, pre %s, %d merges)", pre, (int)n);
done:
    free(pairs);
    free(ms);
    free(ml);
    free(blob);
    return st;
}
