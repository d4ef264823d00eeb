// test_gguf_tokenizer.c: the tokenizer a GGUF's tokenizer.ggml.* metadata describes
// (mxp_tokenizer_from_gguf): a byte-level one builds and round-trips text; metadata of the
// wrong type or out of range fails with a message naming the file and the key.
#include <string.h>

#include "arch/model.h"
#include "check.h"
#include "io/gguf_write.h"

enum { KEEP, BOS_AS_U32, BOS_ID_OUT_OF_RANGE, NO_TOKENS, TYPES_SHORT, MODEL_UNKNOWN };

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

// A GGUF image with GPT-2's 256 byte tokens, one merge, and the change `what`. Owned by w.
static int build(mxp_gguf_writer *w, int what) {
    static char store[256][4];
    const char *strs[257];
    size_t lens[257];
    int32_t types[257];
    for (int b = 0, shifted = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        lens[b] = put_utf8(store[b], printable ? (uint32_t)b : 256u + (uint32_t)shifted++);
        strs[b] = store[b];
        types[b] = MXP_TOKT_NORMAL;
    }
    strs[256] = "\xC4\xA0t";  // "Ġt"
    lens[256] = 3;
    types[256] = MXP_TOKT_NORMAL;
    const char *merge = "\xC4\xA0 t";
    size_t ml = strlen(merge);
    mxp_gguf_writer_init(w);
    mxp_gguf_writer_kv_str(w, "general.architecture", "llama", 5);
    if (what == MODEL_UNKNOWN) mxp_gguf_writer_kv_str(w, "tokenizer.ggml.model", "bert", 4);
    else mxp_gguf_writer_kv_str(w, "tokenizer.ggml.model", "gpt2", 4);
    if (what != NO_TOKENS) mxp_gguf_writer_kv_str_arr(w, "tokenizer.ggml.tokens", strs, lens, 257);
    mxp_gguf_writer_kv_arr(w, "tokenizer.ggml.token_type", MXP_GGUF_I32, types, what == TYPES_SHORT ? 256 : 257);
    mxp_gguf_writer_kv_str_arr(w, "tokenizer.ggml.merges", &merge, &ml, 1);
    mxp_gguf_writer_kv_u32(w, "tokenizer.ggml.bos_token_id", what == BOS_ID_OUT_OF_RANGE ? 257 : 256);
    if (what == BOS_AS_U32) mxp_gguf_writer_kv_u32(w, "tokenizer.ggml.add_bos_token", 1);
    else mxp_gguf_writer_kv_bool(w, "tokenizer.ggml.add_bos_token", 1);
    mxp_err err = {0};
    mxp_status st = mxp_gguf_writer_finish(w, &err);
    CHECK(st == MXP_OK, "writer: %s", err.msg);
    return st == MXP_OK;
}

static mxp_status from(int what, mxp_tokenizer **t, mxp_err *err) {
    mxp_gguf_writer w;
    mxp_gguf g;
    *t = NULL;
    if (!build(&w, what)) return MXP_ERR_ARG;
    mxp_status st = mxp_gguf_parse(&g, w.image, w.size, "tok.gguf", err);
    CHECK(st == MXP_OK, "parse: %s", err->msg);
    if (!st) {
        st = mxp_tokenizer_from_gguf(&g, "tok.gguf", t, err);
        mxp_gguf_free(&g);
    }
    mxp_gguf_writer_free(&w);
    return st;
}

int main(void) {
    mxp_tokenizer *t;
    mxp_err err = {0};
    CHECK(from(KEEP, &t, &err) == MXP_OK, "valid: %s", err.msg);
    if (t) {
        const char *text = "the tea, 3 times\n";
        int32_t *ids = NULL;
        size_t n = 0;
        CHECK(mxp_tokenizer_encode(t, text, strlen(text), MXP_TOK_ADD_BOS, &ids, &n, &err) == MXP_OK, "%s", err.msg);
        CHECK(n >= 2 && ids[0] == 256 && mxp_tokenizer_add_bos(t), "BOS first (%zu ids)", n);
        char *out = NULL;
        size_t on = 0;
        CHECK(n && mxp_tokenizer_decode(t, ids + 1, n - 1, 0, &out, &on, &err) == MXP_OK && on == strlen(text) &&
                  !memcmp(out, text, on),
              "round trip: %s", err.msg);
        free(out);
        free(ids);
        mxp_tokenizer_free(t);
    }
    static const struct {
        int what;
        const char *want;
    } bad[] = {
        {BOS_AS_U32, "tokenizer.ggml.add_bos_token is not a bool"},  // was silently ignored
        {BOS_ID_OUT_OF_RANGE, "tokenizer.ggml.bos_token_id = 257 is not a token id"},
        {NO_TOKENS, "tokenizer.ggml.tokens is missing"},
        {TYPES_SHORT, "token_type/scores do not have one entry per token"},
        {MODEL_UNKNOWN, "tokenizer.ggml.model \"bert\" is not supported"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        memset(&err, 0, sizeof err);
        mxp_status st = from(bad[k].what, &t, &err);
        CHECK(st != MXP_OK && t == NULL && strstr(err.msg, "tok.gguf") && strstr(err.msg, bad[k].want), "case %zu: %s", k,
              err.msg);
        mxp_tokenizer_free(t);
    }
    CHECK_DONE();
}
