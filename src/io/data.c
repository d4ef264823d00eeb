// data.c: token-id files (format in data.h) and cutting token streams into samples.
#include "io/data.h"

#include <errno.h>
#include <string.h>

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
