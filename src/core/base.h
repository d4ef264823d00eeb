// base.h: what every file of mixprec needs: status codes and error messages, the assertion
// for programmer bugs, checked size arithmetic, and small helpers.
// It must not hold state: no globals, no allocation.
#ifndef MXP_BASE_H
#define MXP_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "mixprec.h"

// Programmer bugs: on in every build (release too), aborts with file:line.
#define MXP_ASSERT(cond)                                                              \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "mixprec: internal error at %s:%d: %s\n", __FILE__, __LINE__, \
                    #cond);                                                           \
            abort();                                                                  \
        }                                                                             \
    } while (0)

// Bad input or environment: fill *err (may be NULL) and return code.
// Usage: return mxp_fail(err, MXP_ERR_FORMAT, "%s: tensor %s: ...", path, name);
mxp_status mxp_fail(mxp_err *err, mxp_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// Prepend context to an existing error message ("file.safetensors: " + old message).
mxp_status mxp_fail_prefix(mxp_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// Checked arithmetic: return 0 on overflow (out untouched), 1 on success.
static inline int mxp_mul_ok(size_t a, size_t b, size_t *out) {
    size_t r;
    if (__builtin_mul_overflow(a, b, &r)) return 0;
    *out = r;
    return 1;
}
static inline int mxp_add_ok(size_t a, size_t b, size_t *out) {
    size_t r;
    if (__builtin_add_overflow(a, b, &r)) return 0;
    *out = r;
    return 1;
}

// Allocation that aborts on out-of-memory is *not* used: callers check NULL and return
// MXP_ERR_NOMEM. These wrappers only zero-fill and check count*size overflow.
void *mxp_calloc(size_t count, size_t size);  // NULL on overflow or OOM
void *mxp_aligned_alloc(size_t bytes);        // 64-byte aligned, zero-filled; free with free()
char *mxp_strdup(const char *s);

// Monotonic wall clock in seconds.
double mxp_now(void);
// qsort comparator for doubles (ascending), and the median of v (n > 0), sorting v in place.
int mxp_cmp_double(const void *a, const void *b);
double mxp_median_inplace(double *v, size_t n);

// Write back and evict [p, p + n) from every cache level (x86 clflush; elsewhere a no-op), so
// that the next read of it comes from memory. For timing, outside the timed region.
void mxp_evict(const void *p, size_t n);

#endif
