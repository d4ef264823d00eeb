// data.c: data files (token ids or text, format in data.h), the calibration/evaluation
// split and cutting token streams into samples. Writes only token-id files (mxp_write_tokens).
#include "io/data.h"

#include <stdio.h>
#include <string.h>

#include "core/rng.h"
#include "io/tensors.h"

int mxp_is_token_file(const uint8_t *buf, size_t size) {
    size_t k = strlen(MXP_TOKENS_MAGIC);
    return size >= k && !memcmp(buf, MXP_TOKENS_MAGIC, k) && (size == k || buf[k] == '\n' || buf[k] == '\r');
}

mxp_status mxp_tokens_parse(mxp_tokens *t, const uint8_t *buf, size_t size, const char *label, mxp_err *err) {
    memset(t, 0, sizeof *t);
    if (!mxp_is_token_file(buf, size))
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: not a token-id file (first line must be \"%s\")", label,
                        MXP_TOKENS_MAGIC);
    size_t cap = 1024, line = 1, i = strlen(MXP_TOKENS_MAGIC);
    t->ids = malloc(cap * sizeof *t->ids);
    if (!t->ids) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    while (i < size) {
        uint8_t c = buf[i];
        if (c == '\n') { line++; i++; continue; }
        if (c == ' ' || c == '\t' || c == '\r') { i++; continue; }
        if (c < '0' || c > '9') {
            mxp_tokens_free(t);
            return mxp_fail(err, MXP_ERR_FORMAT, "%s:%zu: expected a token id, found byte 0x%02x", label, line, c);
        }
        int64_t v = 0;
        while (i < size && buf[i] >= '0' && buf[i] <= '9') {
            v = v * 10 + (buf[i] - '0');
            if (v > INT32_MAX) {
                mxp_tokens_free(t);
                return mxp_fail(err, MXP_ERR_FORMAT, "%s:%zu: token id too large", label, line);
            }
            i++;
        }
        if (i < size && !(buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n')) {
            mxp_tokens_free(t);
            return mxp_fail(err, MXP_ERR_FORMAT, "%s:%zu: junk after a token id (byte 0x%02x)", label, line, buf[i]);
        }
        if (t->n == cap) {
            cap *= 2;
            int32_t *p = realloc(t->ids, cap * sizeof *p);
            if (!p) {
                mxp_tokens_free(t);
                return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
            }
            t->ids = p;
        }
        t->ids[t->n++] = (int32_t)v;
    }
    if (t->n == 0) {
        mxp_tokens_free(t);
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: holds no token ids", label);
    }
    return MXP_OK;
}

void mxp_tokens_free(mxp_tokens *t) {
    free(t->ids);
    memset(t, 0, sizeof *t);
}

size_t mxp_tokens_windows(const mxp_tokens *t, size_t start, int T, size_t max_windows, int32_t *out) {
    size_t w = 0, stride = (size_t)T + 1;
    while (w < max_windows && start + (w + 1) * stride <= t->n) {
        memcpy(out + w * stride, t->ids + start + w * stride, stride * sizeof(int32_t));
        w++;
    }
    return w;
}

mxp_status mxp_data_parse(mxp_tokens *t, const uint8_t *buf, size_t size, const char *label,
                          const mxp_tokenizer *tok, mxp_err *err) {
    memset(t, 0, sizeof *t);
    if (size == 0) return mxp_fail(err, MXP_ERR_FORMAT, "%s: empty file", label);
    if (mxp_is_token_file(buf, size)) return mxp_tokens_parse(t, buf, size, label, err);
    if (!tok)
        return mxp_fail(err, MXP_ERR_UNSUPPORTED,
                        "%s: text data needs the model's tokenizer, and this model has none here "
                        "(give a token-id file: first line \"%s\", then ids)", label, MXP_TOKENS_MAGIC);
    unsigned flags = (mxp_tokenizer_add_bos(tok) ? MXP_TOK_ADD_BOS : 0u) | (mxp_tokenizer_add_eos(tok) ? MXP_TOK_ADD_EOS : 0u);
    int32_t *ids = NULL;
    size_t n = 0;
    mxp_status st = mxp_tokenizer_encode(tok, (const char *)buf, size, flags, &ids, &n, err);
    if (st) return mxp_fail_prefix(err, "%s: ", label);
    if (n == 0) {
        free(ids);
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: the text gives no tokens", label);
    }
    t->ids = ids;
    t->n = n;
    return MXP_OK;
}

mxp_status mxp_data_load(mxp_tokens *t, const char *path, const mxp_tokenizer *tok, mxp_err *err) {
    memset(t, 0, sizeof *t);
    mxp_mapping map;
    mxp_status st = mxp_map_file(&map, path, err);
    if (st) return st;
    st = mxp_data_parse(t, map.base, map.size, path, tok, err);
    mxp_unmap(&map);
    return st;
}

const char *mxp_split_name(mxp_split s) {
    switch (s) {
    case MXP_SPLIT_ALL: return "all";
    case MXP_SPLIT_CALIB: return "calibration";
    case MXP_SPLIT_EVAL: return "evaluation";
    }
    return "?";
}

void mxp_split_range(size_t n, mxp_split s, size_t *start, size_t *end) {
    size_t half = n / 2;
    *start = s == MXP_SPLIT_EVAL ? half : 0;
    *end = s == MXP_SPLIT_CALIB ? half : n;
}

size_t mxp_split_windows(size_t n, mxp_split s, int T) {
    MXP_ASSERT(T >= 1);
    size_t a, b;
    mxp_split_range(n, s, &a, &b);
    return (b - a) / ((size_t)T + 1);
}

mxp_status mxp_data_sample_count(const mxp_tokens *t, mxp_split s, int T, size_t requested, size_t def,
                                 const char *option, const char *label, size_t *n, int *reduced, mxp_err *err) {
    MXP_ASSERT(def >= MXP_MIN_DEFAULT_SAMPLES);
    *n = requested;
    *reduced = 0;
    if (requested) return MXP_OK;
    if (T < 1) return mxp_fail(err, MXP_ERR_ARG, "%s: sequence length must be positive (got %d)", label, T);
    size_t a, b, avail = mxp_split_windows(t->n, s, T);
    mxp_split_range(t->n, s, &a, &b);
    if (avail < MXP_MIN_DEFAULT_SAMPLES)
        return mxp_fail(err, MXP_ERR_ARG,
                        "%s: the %s split (%zu of %zu tokens) holds %zu windows of %d+1 tokens; at least %d are "
                        "needed (give more text, a shorter --seq, or %s N)",
                        label, mxp_split_name(s), b - a, t->n, avail, T, MXP_MIN_DEFAULT_SAMPLES, option);
    *n = avail < def ? avail : def;
    *reduced = avail < def;
    return MXP_OK;
}

mxp_status mxp_data_samples(const mxp_tokens *t, mxp_split s, int T, size_t n_samples, uint64_t seed,
                            const char *label, int32_t **out, size_t *n_out, mxp_err *err) {
    *out = NULL;
    *n_out = 0;
    if (T < 1) return mxp_fail(err, MXP_ERR_ARG, "%s: sequence length must be positive (got %d)", label, T);
    size_t a, b, stride = (size_t)T + 1;
    mxp_split_range(t->n, s, &a, &b);
    size_t avail = (b - a) / stride;
    size_t want = n_samples ? n_samples : avail;
    if (avail == 0)
        return mxp_fail(err, MXP_ERR_ARG, "%s: the %s split (%zu of %zu tokens) is too short for one window of %d+1 tokens",
                        label, mxp_split_name(s), b - a, t->n, T);
    if (want > avail)
        return mxp_fail(err, MXP_ERR_ARG,
                        "%s: the %s split (%zu of %zu tokens) holds %zu windows of %d+1 tokens; %zu requested", label,
                        mxp_split_name(s), b - a, t->n, avail, T, want);
    size_t bytes;
    if (!mxp_mul_ok(want, stride * sizeof(int32_t), &bytes)) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    int32_t *o = malloc(bytes ? bytes : 1);
    uint8_t *pick = want < avail ? calloc(avail, 1) : NULL;
    if (!o || (want < avail && !pick)) {
        free(o);
        free(pick);
        return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    }
    if (pick) {
        // Floyd's algorithm: `want` distinct window indices, uniform, in O(want) draws.
        mxp_rng rng;
        mxp_rng_seed(&rng, seed);
        for (size_t j = avail - want; j < avail; j++) {
            size_t k = (size_t)mxp_rng_below(&rng, (uint64_t)j + 1);
            pick[pick[k] ? j : k] = 1;
        }
    }
    size_t w = 0;
    for (size_t k = 0; k < avail; k++) {
        if (pick && !pick[k]) continue;
        memcpy(o + w * stride, t->ids + a + k * stride, stride * sizeof(int32_t));
        w++;
    }
    MXP_ASSERT(w == want);
    free(pick);
    *out = o;
    *n_out = want;
    return MXP_OK;
}

mxp_status mxp_write_tokens(const char *path, const int32_t *ids, size_t n, mxp_err *err) {
    size_t cap;  // magic line + at most 11 bytes per id + final newline
    if (!mxp_mul_ok(n, 12, &cap) || cap > SIZE_MAX - 64) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    cap += strlen(MXP_TOKENS_MAGIC) + 2;
    char *buf = malloc(cap);
    if (!buf) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    size_t len = (size_t)snprintf(buf, cap, "%s\n", MXP_TOKENS_MAGIC);
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0) {
            free(buf);
            return mxp_fail(err, MXP_ERR_ARG, "%s: token id %zu is negative (%d)", path, i, (int)ids[i]);
        }
        len += (size_t)snprintf(buf + len, cap - len, "%d%c", (int)ids[i], (i % 16 == 15 || i + 1 == n) ? '\n' : ' ');
    }
    mxp_status st = mxp_write_file_atomic(path, buf, len, err);
    free(buf);
    return st;
}
