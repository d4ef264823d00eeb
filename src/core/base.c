// base.c: error formatting, allocation helpers and the clock. No state.
#include "core/base.h"

#include <stdarg.h>
#include <stdint.h>
#if defined(__x86_64__) || defined(__i386__)
#include <emmintrin.h>
#endif
#include <string.h>
#include <time.h>

mxp_status mxp_fail(mxp_err *err, mxp_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

mxp_status mxp_fail_prefix(mxp_err *err, const char *fmt, ...) {
    if (!err) return MXP_ERR_FORMAT;
    char head[512], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s%s", head, old);
    return err->code;
}

void *mxp_calloc(size_t count, size_t size) {
    size_t bytes;
    if (!mxp_mul_ok(count, size, &bytes)) return NULL;
    return calloc(bytes ? bytes : 1, 1);
}

void *mxp_aligned_alloc(size_t bytes) {
    size_t rounded;
    if (!mxp_add_ok(bytes, 63, &rounded)) return NULL;
    rounded &= ~(size_t)63;
    if (rounded == 0) rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (p) memset(p, 0, rounded);
    return p;
}

char *mxp_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

double mxp_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *mxp_status_name(mxp_status s) {
    switch (s) {
    case MXP_OK: return "ok";
    case MXP_ERR_IO: return "I/O error";
    case MXP_ERR_FORMAT: return "format error";
    case MXP_ERR_UNSUPPORTED: return "unsupported";
    case MXP_ERR_ARG: return "bad argument";
    case MXP_ERR_NOMEM: return "out of memory";
    case MXP_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown error";
}

const char *mxp_version(void) { return MXP_VERSION; }

int mxp_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void mxp_evict(const void *p, size_t n) {
#if defined(__x86_64__) || defined(__i386__)
    const char *c = (const char *)((uintptr_t)p & ~(uintptr_t)63);
    const char *end = (const char *)p + n;
    for (; c < end; c += 64) _mm_clflush(c);
    _mm_mfence();
#else
    (void)p;
    (void)n;
#endif
}

double mxp_median_inplace(double *v, size_t n) {
    MXP_ASSERT(n > 0);
    qsort(v, n, sizeof *v, mxp_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
