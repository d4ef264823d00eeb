// tok_spm.c: a SentencePiece-style tokenizer.json (model.type "BPE" with byte_fallback, spaces
// as "▁" through a Replace/Prepend normalizer or a Metaspace pre-tokenizer: Llama 2, Mistral,
// TinyLlama) as GGUF metadata: tokenizer.ggml.model "llama", .tokens (as stored, "▁the"),
// .scores, .token_type (normal, unknown, control, user-defined, byte for <0xNN>), special ids,
// add_bos / add_eos, add_space_prefix.
//
// Scores. llama.cpp's "llama" tokenizer has no merge list: it repeatedly merges the adjacent
// pair whose concatenation is the token with the highest score (leftmost on ties), as
// SentencePiece does with the model's piece scores. A tokenizer.json has merges instead, and
// convert_hf_to_gguf.py (LlamaHfVocab) gives every token the score -1000, which makes
// llama.cpp merge left to right whatever the merges say. Here the score of a token is minus
// the rank of the first merge that makes it (-1 for the first merge), so llama.cpp merges in
// the tokenizer.json's order; tokens no merge makes (single characters, which start as
// symbols) get -(n_merges + 1) and special, byte and unused tokens 0, as in SentencePiece
// models. For a tokenizer.json derived from a SentencePiece model (whose merges list every
// split of every piece, ordered by piece score) the two procedures give the same tokens.
//
// Refused: no byte fallback (llama.cpp falls back to <0xNN> tokens and has no other way for
// characters outside the vocabulary), and a Metaspace split at every "▁" when some token
// spans a "▁" after another character (llama.cpp never splits there). Known difference:
// with Metaspace prepend_scheme "first", Hugging Face adds the "▁" prefix at the start of the
// text only, llama.cpp also after each special token found in the text.
#include <string.h>

#include "export/export.h"

mxp_status mxp_export_tok_spm(const mxp_tokenizer *t, int vocab, const char *label, mxp_gguf_writer *w,
                              char *desc, size_t cap, mxp_err *err) {
    mxp_tok_info ti;
    mxp_tokenizer_info(t, &ti);
    if (!ti.byte_fallback)
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: a SentencePiece-style tokenizer without byte_fallback: llama.cpp's "
                        "\"llama\" tokenizer falls back to <0xNN> byte tokens", label);
    if (ti.split_on_space && !ti.space_split_safe)
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: Metaspace split=true while some token spans a \"\xE2\x96\x81\" "
                        "after another character: llama.cpp does not split there", label);
    int32_t *pairs = NULL, n = 0;
    mxp_status st = mxp_tokenizer_merges(t, &pairs, &n, err);
    if (st) return st;
    float *scores = malloc((size_t)vocab * sizeof *scores);
    uint8_t *made = calloc((size_t)vocab, 1);
    if (!scores || !made) {
        st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory for %d scores", vocab);
        goto done;
    }
    int32_t nt = mxp_tokenizer_vocab_size(t);
    for (int32_t i = 0; i < vocab; i++)
        scores[i] = i < nt && mxp_tokenizer_token_type(t, i) == MXP_TOKT_NORMAL ? -(float)((double)n + 1) : 0.0f;
    for (int32_t r = 0; r < n; r++) {
        int32_t c = mxp_tokenizer_merge_result(t, pairs[2 * r], pairs[2 * r + 1]);
        MXP_ASSERT(c >= 0 && c < nt);
        if (made[c]) continue;
        made[c] = 1;
        scores[c] = -(float)((double)r + 1);
    }
    mxp_gguf_writer_kv_str(w, "tokenizer.ggml.model", "llama", 5);
    if ((st = mxp_export_token_list(t, vocab, scores, w, err))) goto done;
    mxp_export_special_ids(t, w);
    mxp_gguf_writer_kv_bool(w, "tokenizer.ggml.add_space_prefix", ti.add_space_prefix);
    snprintf(desc, cap, "SentencePiece-style BPE from tokenizer.json (llama, scores from %d merge ranks)", (int)n);
done:
    free(pairs);
    free(scores);
    free(made);
    return st;
}
