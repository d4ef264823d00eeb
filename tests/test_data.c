// test_data.c: data files and samples (src/io/data.h) on hand-made inputs: empty files, junk
// token files, text without a tokenizer, invalid UTF-8 (the byte offset), text through a
// hand-built byte-level tokenizer, calibration/evaluation split disjointness, sample counts
// and the "how many fit" message, seed determinism and uniformity of the window draw.
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "io/data.h"

// A byte-level BPE tokenizer with no merges: id b is byte b (GPT-2's bytes-to-unicode
// spelling), id 256 is <|endoftext|> (BOS/EOS, not added by default).
static mxp_tokenizer *byte_tokenizer(void) {
    static char spelled[256][4];
    mxp_tok_str toks[257];
    int32_t types[257];
    int n = 0, map[256];
    for (int b = 0; b < 256; b++) map[b] = -1;
    for (int b = '!'; b <= '~'; b++) map[b] = b;
    for (int b = 0xA1; b <= 0xAC; b++) map[b] = b;
    for (int b = 0xAE; b <= 0xFF; b++) map[b] = b;
    for (int b = 0; b < 256; b++)
        if (map[b] < 0) map[b] = 256 + n++;
    for (int b = 0; b < 256; b++) {
        uint32_t cp = (uint32_t)map[b];  // < 0x800: one or two UTF-8 bytes
        char *s = spelled[b];
        size_t len;
        if (cp < 0x80) {
            s[0] = (char)cp;
            len = 1;
        } else {
            s[0] = (char)(0xC0 | (cp >> 6));
            s[1] = (char)(0x80 | (cp & 0x3F));
            len = 2;
        }
        toks[b] = (mxp_tok_str){s, len};
        types[b] = MXP_TOKT_NORMAL;
    }
    toks[256] = (mxp_tok_str){"<|endoftext|>", 13};
    types[256] = MXP_TOKT_CONTROL;
    mxp_tokenizer_desc d = {.kind = MXP_TOK_GPT2, .pre = MXP_TOK_PRE_GPT2, .n_tokens = 257, .tokens = toks,
                            .token_types = types, .label = "test tokenizer", .has_bos = 1, .bos_id = 256,
                            .has_eos = 1, .eos_id = 256};
    mxp_tokenizer *t = NULL;
    mxp_err err = {0};
    if (mxp_tokenizer_from_arrays(&d, &t, &err)) fprintf(stderr, "byte_tokenizer: %s\n", err.msg);
    return t;
}

static mxp_status parse_str(mxp_tokens *t, const char *s, const mxp_tokenizer *tok, mxp_err *err) {
    return mxp_data_parse(t, (const uint8_t *)s, strlen(s), "in.txt", tok, err);
}

static void test_files(const mxp_tokenizer *tok) {
    mxp_tokens t;
    mxp_err err = {0};
    // empty
    CHECK(mxp_data_parse(&t, (const uint8_t *)"", 0, "empty.txt", tok, &err) == MXP_ERR_FORMAT, "empty");
    CHECK(strstr(err.msg, "empty.txt") && strstr(err.msg, "empty"), "message: %s", err.msg);
    // token files: good, junk, too large, magic only
    CHECK(parse_str(&t, "mixprec-tokens 1\n3 4\n\t5\r\n", NULL, &err) == MXP_OK, "%s", err.msg);
    CHECK(t.n == 3 && t.ids[0] == 3 && t.ids[2] == 5, "ids");
    mxp_tokens_free(&t);
    CHECK(parse_str(&t, "mixprec-tokens 1\n1 2\n3 x4\n", NULL, &err) == MXP_ERR_FORMAT, "junk");
    CHECK(strstr(err.msg, "in.txt:3"), "line number in: %s", err.msg);
    CHECK(parse_str(&t, "mixprec-tokens 1\n12a\n", NULL, &err) == MXP_ERR_FORMAT, "junk after id");
    CHECK(parse_str(&t, "mixprec-tokens 1\n-1\n", NULL, &err) == MXP_ERR_FORMAT, "negative");
    CHECK(parse_str(&t, "mixprec-tokens 1\n2147483648\n", NULL, &err) == MXP_ERR_FORMAT, "too large");
    CHECK(parse_str(&t, "mixprec-tokens 1\n", NULL, &err) == MXP_ERR_FORMAT, "no ids");
    // text: no tokenizer, invalid UTF-8 (offset), good text
    CHECK(parse_str(&t, "hello", NULL, &err) == MXP_ERR_UNSUPPORTED, "text without tokenizer");
    CHECK(strstr(err.msg, "tokenizer"), "message: %s", err.msg);
    if (!tok) return;
    CHECK(parse_str(&t, "ab\xff" "cd", tok, &err) == MXP_ERR_ARG, "invalid UTF-8");
    CHECK(strstr(err.msg, "in.txt") && strstr(err.msg, "offset 2"), "offset in: %s", err.msg);
    CHECK(parse_str(&t, "abc\xc3\xa9\xe2\x82", tok, &err) == MXP_ERR_ARG, "truncated UTF-8");
    CHECK(strstr(err.msg, "offset 5"), "offset in: %s", err.msg);
    CHECK(parse_str(&t, "Hi, you!\n", tok, &err) == MXP_OK, "%s", err.msg);
    CHECK(t.n == 9, "9 byte tokens, got %zu", t.n);
    for (size_t i = 0; i < t.n && i < 9; i++) CHECK(t.ids[i] == (unsigned char)"Hi, you!\n"[i], "id %zu", i);
    mxp_tokens_free(&t);
    // from a path: missing file, then a real one
    CHECK(mxp_data_load(&t, "/nonexistent/data.txt", tok, &err) == MXP_ERR_IO, "missing file");
    CHECK(strstr(err.msg, "/nonexistent/data.txt"), "path in: %s", err.msg);
    char dir[200], path[300];
    if (check_tmpdir(dir, sizeof dir, "mxp_test_data")) {
        snprintf(path, sizeof path, "%s/data.txt", dir);
        FILE *f = fopen(path, "w");
        CHECK(f != NULL, "create %s", path);
        if (!f) return;
        fputs("In the beginning", f);
        fclose(f);
        CHECK(mxp_data_load(&t, path, tok, &err) == MXP_OK, "%s", err.msg);
        CHECK(t.n == 16, "16 tokens, got %zu", t.n);
        mxp_tokens_free(&t);
        CHECK(mxp_data_load(&t, path, NULL, &err) == MXP_ERR_UNSUPPORTED, "text without a tokenizer");
        CHECK(strstr(err.msg, path), "data path in: %s", err.msg);
        unlink(path);
        rmdir(dir);
    }
}

// Stream whose id i is i, so a window's ids say where it came from.
static mxp_tokens iota(size_t n) {
    mxp_tokens t = {malloc(n * sizeof(int32_t)), n};
    for (size_t i = 0; i < n; i++) t.ids[i] = (int32_t)i;
    return t;
}

static void test_splits(void) {
    mxp_err err = {0};
    for (size_t n = 1000; n <= 1001; n++) {
        mxp_tokens t = iota(n);
        const int T = 9;  // windows of 10
        size_t a, b;
        mxp_split_range(n, MXP_SPLIT_CALIB, &a, &b);
        CHECK(a == 0 && b == 500, "calibration range [%zu, %zu)", a, b);
        mxp_split_range(n, MXP_SPLIT_EVAL, &a, &b);
        CHECK(a == 500 && b == n, "evaluation range [%zu, %zu)", a, b);
        CHECK(mxp_split_windows(n, MXP_SPLIT_CALIB, T) == 50 && mxp_split_windows(n, MXP_SPLIT_EVAL, T) == 50,
              "50 windows each");
        CHECK(mxp_split_windows(n, MXP_SPLIT_ALL, T) == 100, "100 windows in all");
        // every window of each split: inside its range, consecutive, aligned to the split start
        uint8_t *seen = calloc(n, 1);
        for (int s = MXP_SPLIT_CALIB; s <= MXP_SPLIT_EVAL; s++) {
            int32_t *w = NULL;
            size_t nw = 0;
            CHECK(mxp_data_samples(&t, (mxp_split)s, T, 0, 0, "x", &w, &nw, &err) == MXP_OK, "%s", err.msg);
            CHECK(nw == 50, "all windows: %zu", nw);
            mxp_split_range(n, (mxp_split)s, &a, &b);
            for (size_t k = 0; k < nw; k++)
                for (int j = 0; j <= T; j++) {
                    int32_t id = w[k * (T + 1) + (size_t)j];
                    CHECK(id == (int32_t)(a + k * (T + 1) + (size_t)j), "window %zu pos %d", k, j);
                    CHECK((size_t)id >= a && (size_t)id < b, "id %d outside its split", id);
                    CHECK(!seen[id], "id %d in two windows", id);
                    seen[id] = 1;
                }
            free(w);
        }
        free(seen);
        // for any pair of sequence lengths, calibration ids stay below evaluation ids
        int32_t *wc = NULL, *we = NULL;
        size_t nc = 0, ne = 0;
        CHECK(mxp_data_samples(&t, MXP_SPLIT_CALIB, 99, 0, 0, "x", &wc, &nc, &err) == MXP_OK, "%s", err.msg);
        CHECK(mxp_data_samples(&t, MXP_SPLIT_EVAL, 6, 0, 0, "x", &we, &ne, &err) == MXP_OK, "%s", err.msg);
        CHECK(nc == 5 && ne == (n - 500) / 7, "counts %zu %zu", nc, ne);
        int32_t maxc = -1, mine = INT32_MAX;
        for (size_t i = 0; i < nc * 100; i++) maxc = wc[i] > maxc ? wc[i] : maxc;
        for (size_t i = 0; i < ne * 7; i++) mine = we[i] < mine ? we[i] : mine;
        CHECK(maxc < mine, "calibration max %d vs evaluation min %d", maxc, mine);
        free(wc);
        free(we);
        mxp_tokens_free(&t);
    }
}

static void test_samples(void) {
    mxp_err err = {0};
    mxp_tokens t = iota(1000);
    const int T = 9;
    int32_t *w1 = NULL, *w2 = NULL, *w3 = NULL;
    size_t n1 = 0, n2 = 0, n3 = 0;
    CHECK(mxp_data_samples(&t, MXP_SPLIT_EVAL, T, 10, 7, "x", &w1, &n1, &err) == MXP_OK, "%s", err.msg);
    CHECK(mxp_data_samples(&t, MXP_SPLIT_EVAL, T, 10, 7, "x", &w2, &n2, &err) == MXP_OK, "%s", err.msg);
    CHECK(mxp_data_samples(&t, MXP_SPLIT_EVAL, T, 10, 8, "x", &w3, &n3, &err) == MXP_OK, "%s", err.msg);
    CHECK(n1 == 10 && n2 == 10 && n3 == 10, "10 samples");
    CHECK(w1 && w2 && !memcmp(w1, w2, 10 * (T + 1) * sizeof(int32_t)), "same seed, same samples");
    CHECK(w1 && w3 && memcmp(w1, w3, 10 * (T + 1) * sizeof(int32_t)), "another seed, other samples");
    for (size_t k = 0; w1 && k < n1; k++) {
        int32_t s = w1[k * (T + 1)];
        CHECK(s >= 500 && (s - 500) % (T + 1) == 0, "window start %d aligned in the evaluation split", s);
        if (k) CHECK(s > w1[(k - 1) * (T + 1)], "stream order, distinct");
    }
    free(w1);
    free(w2);
    free(w3);
    // uniformity: 4000 draws of 10 windows out of 50, each window expected 800 times
    int count[50] = {0};
    for (uint64_t seed = 0; seed < 4000; seed++) {
        int32_t *w = NULL;
        size_t nw = 0;
        if (mxp_data_samples(&t, MXP_SPLIT_CALIB, T, 10, seed, "x", &w, &nw, &err)) break;
        for (size_t k = 0; k < nw; k++) count[w[k * (T + 1)] / (T + 1)]++;
        free(w);
    }
    int lo = count[0], hi = count[0];
    for (int k = 1; k < 50; k++) {
        lo = count[k] < lo ? count[k] : lo;
        hi = count[k] > hi ? count[k] : hi;
    }
    // binomial(4000, 0.2): sd ~25; 700..900 is 4 sd either side
    CHECK(lo > 700 && hi < 900, "window draw counts between %d and %d, expected ~800", lo, hi);
    // too many, too short, bad T
    int32_t *w = NULL;
    size_t nw = 0;
    CHECK(mxp_data_samples(&t, MXP_SPLIT_EVAL, T, 51, 1, "data.txt", &w, &nw, &err) == MXP_ERR_ARG, "51 of 50");
    CHECK(strstr(err.msg, "data.txt") && strstr(err.msg, "holds 50 windows") && strstr(err.msg, "51 requested"),
          "message: %s", err.msg);
    CHECK(!w && nw == 0, "nothing returned on error");
    CHECK(mxp_data_samples(&t, MXP_SPLIT_EVAL, 500, 0, 1, "data.txt", &w, &nw, &err) == MXP_ERR_ARG, "too short");
    CHECK(strstr(err.msg, "too short for one window of 500+1") && strstr(err.msg, "500 of 1000 tokens"), "message: %s", err.msg);
    CHECK(mxp_data_samples(&t, MXP_SPLIT_EVAL, 0, 0, 1, "data.txt", &w, &nw, &err) == MXP_ERR_ARG, "T = 0");
    // exactly all windows by count: the same as 0 (all), in order
    int32_t *wa = NULL, *wb = NULL;
    size_t na = 0, nb = 0;
    CHECK(mxp_data_samples(&t, MXP_SPLIT_ALL, T, 100, 3, "x", &wa, &na, &err) == MXP_OK, "%s", err.msg);
    CHECK(mxp_data_samples(&t, MXP_SPLIT_ALL, T, 0, 3, "x", &wb, &nb, &err) == MXP_OK, "%s", err.msg);
    CHECK(na == 100 && nb == 100 && !memcmp(wa, wb, 100 * (T + 1) * sizeof(int32_t)), "all windows");
    free(wa);
    free(wb);
    mxp_tokens_free(&t);
}

int main(void) {
    mxp_tokenizer *tok = byte_tokenizer();
    CHECK(tok != NULL, "hand-built tokenizer");
    test_files(tok);
    test_splits();
    test_samples();
    mxp_tokenizer_free(tok);
    CHECK_DONE();
}
