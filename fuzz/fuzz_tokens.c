// fuzz_tokens.c: libFuzzer target for data files (io/data.h): the input is a data file
// image, read by mxp_data_parse as a token-id file ("mixprec-tokens 1" first line) or as text
// through a fixed byte-level tokenizer, and by mxp_tokens_parse on its own. Accepted ids are
// then cut into samples of both splits (mxp_data_samples, every window and a random draw)
// with a sequence length taken from the first byte.
//
// Every input must give MXP_OK or a clean error naming the label; accepted ids must be
// non-negative; samples must be whole windows copied from the right split.
#include <string.h>

#include "io/data.h"

static mxp_tokenizer *tok;

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    static char store[256][4];
    mxp_tok_str toks[257];
    for (int b = 0, shifted = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        toks[b] = (mxp_tok_str){store[b], put_utf8(store[b], printable ? (uint32_t)b : 256u + (uint32_t)shifted++)};
    }
    toks[256] = (mxp_tok_str){"Ġt", strlen("Ġt")};
    mxp_tok_str merge = {"Ġ t", strlen("Ġ t")};
    mxp_tokenizer_desc d = {0};
    d.kind = MXP_TOK_GPT2;
    d.n_tokens = 257;
    d.tokens = toks;
    d.n_merges = 1;
    d.merges = &merge;
    mxp_err e;
    if (mxp_tokenizer_from_arrays(&d, &tok, &e)) abort();
    return 0;
}

static void samples(const mxp_tokens *t, mxp_split s, int T, size_t n, uint64_t seed) {
    int32_t *out = NULL;
    size_t nw = 0;
    mxp_err err = {0};
    if (mxp_data_samples(t, s, T, n, seed, "fuzz-data", &out, &nw, &err)) {
        MXP_ASSERT(out == NULL && strstr(err.msg, "fuzz-data"));
        return;
    }
    size_t a, b, stride = (size_t)T + 1;
    mxp_split_range(t->n, s, &a, &b);
    MXP_ASSERT(nw >= 1 && nw <= mxp_split_windows(t->n, s, T) && (n == 0 || nw == n));
    for (size_t w = 0; w < nw; w++) {
        // each window is one whole window of the split
        const int32_t *win = out + w * stride;
        int found = 0;
        for (size_t k = 0; !found && a + (k + 1) * stride <= b; k++)
            found = !memcmp(win, t->ids + a + k * stride, stride * sizeof *win);
        MXP_ASSERT(found);
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mxp_tokens t;
    mxp_err err = {0};
    mxp_status st = mxp_tokens_parse(&t, data, size, "fuzz-data", &err);
    if (st) MXP_ASSERT(t.ids == NULL && t.n == 0 && strstr(err.msg, "fuzz-data"));
    mxp_tokens_free(&t);
    memset(&err, 0, sizeof err);
    // without a tokenizer text is refused; with one it is tokenized
    st = mxp_data_parse(&t, data, size, "fuzz-data", size & 1 ? NULL : tok, &err);
    if (st) {
        MXP_ASSERT(t.ids == NULL && strstr(err.msg, "fuzz-data"));
        return 0;
    }
    MXP_ASSERT(t.n > 0);
    for (size_t i = 0; i < t.n; i++) MXP_ASSERT(t.ids[i] >= 0);
    int T = size ? 1 + data[0] % 16 : 1;
    samples(&t, MXP_SPLIT_CALIB, T, 0, 1);
    samples(&t, MXP_SPLIT_EVAL, T, 0, 1);
    samples(&t, MXP_SPLIT_ALL, T, 2, size);
    samples(&t, MXP_SPLIT_CALIB, 0, 0, 1);
    mxp_tokens_free(&t);
    return 0;
}
