// check.h: the tiny test harness every tests/test_*.c uses. A failed check prints where and
// why and makes the test exit non-zero (CHECK_DONE()). Header-only; include in one file.
#ifndef MXP_CHECK_H
#define MXP_CHECK_H

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures = 0;
static int check_count = 0;

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        check_count++;                                                    \
        if (!(cond)) {                                                    \
            check_failures++;                                             \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                 \
            fprintf(stderr, "\n");                                        \
        }                                                                 \
    } while (0)

// Compare got against want elementwise: |got - want| <= atol + rtol * |want|; where either
// side is NaN or infinite, both must be the same non-finite value (NaN matches NaN).
// Prints the worst element (by excess over the tolerance) on failure. Returns 1 if ok.
static inline int check_close_impl(const char *file, int line, const char *what, const float *got,
                                   const float *want, long n, double atol, double rtol) {
    long worst = -1;
    double worst_excess = 0, max_abs = 0;
    int nonfinite = 0;
    for (long i = 0; i < n; i++) {
        double g = got[i], w = want[i];
        if (!isfinite(g) || !isfinite(w)) {
            // A non-finite value on either side matches only the same value: NaN with NaN,
            // an infinity with the infinity of the same sign. (The tolerance arithmetic below
            // would turn inf - inf into NaN, and NaN compares false: every result would pass.)
            if ((isnan(g) && isnan(w)) || g == w) continue;
            nonfinite = 1; worst = i; break;
        }
        double d = fabs(g - w);
        if (d > max_abs) max_abs = d;
        double excess = d - (atol + rtol * fabs(w));
        if (excess > worst_excess) { worst_excess = excess; worst = i; }
    }
    check_count++;
    if (worst >= 0) {
        check_failures++;
        fprintf(stderr,
                "FAIL %s:%d: %s: element %ld got %.9g want %.9g (atol %.3g rtol %.3g, max abs diff %.3g)%s\n",
                file, line, what, worst, (double)got[worst], (double)want[worst], atol, rtol, max_abs,
                nonfinite ? " non-finite" : "");
        return 0;
    }
    return 1;
}
#define CHECK_CLOSE(what, got, want, n, atol, rtol) \
    check_close_impl(__FILE__, __LINE__, what, got, want, (long)(n), atol, rtol)

// A fresh private folder for a test's files: "<tmp>/<name>_XXXXXX" made with mkdtemp into
// buf, where <tmp> is $TMPDIR, or /tmp when TMPDIR is unset or empty. Returns buf, or NULL
// after a failed check that says why and names the folder TMPDIR pointed at.
static inline char *check_tmpdir(char *buf, size_t cap, const char *name) {
    const char *t = getenv("TMPDIR");
    if (!t || !t[0]) t = "/tmp";
    int n = snprintf(buf, cap, "%s/%s_XXXXXX", t, name);
    check_count++;
    if (n < 0 || (size_t)n >= cap) {
        check_failures++;
        fprintf(stderr, "FAIL: temporary folder name under TMPDIR=%s is too long\n", t);
        return NULL;
    }
    if (!mkdtemp(buf)) {
        check_failures++;
        fprintf(stderr, "FAIL: cannot create a temporary folder in %s (TMPDIR): %s\n", t, strerror(errno));
        return NULL;
    }
    return buf;
}

#define CHECK_DONE()                                                                    \
    do {                                                                                \
        fprintf(stderr, "%s: %d checks, %d failed\n", __FILE__, check_count, check_failures); \
        return check_failures ? 1 : 0;                                                  \
    } while (0)

#endif
