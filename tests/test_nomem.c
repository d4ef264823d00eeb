// test_nomem.c: out of memory is a status, not a crash. Runs public API calls (load, eval,
// calibrate with its prediction check, calibrate streaming, generate, apply) on models/tiny
// while one allocation made by mixprec's own code fails: in turn the first and the last
// allocation of every call site on the call's path. Each call must return MXP_OK (a failure it
// could absorb) or MXP_ERR_NOMEM with a message, must not leak what it allocated, and must
// leave the model as it was (a last clean evaluation gives the same loss as the first).
//
// How: this program replaces malloc, calloc, realloc, aligned_alloc and free (forwarding to
// glibc's __libc_* functions, the same heap). An allocation fails only when its caller lies in
// this executable's own code (the statically linked library; not libc, OpenMP, OpenBLAS or
// cJSON, whose own failures are not ours to handle). While armed, every such allocation is
// recorded until freed: what is left after a call is a leak. The replacement does not mix
// with AddressSanitizer's own allocator: under ASan the test reports a skip (exit 77).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "mixprec.h"

#if defined(__SANITIZE_ADDRESS__)
#define NOMEM_SKIP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NOMEM_SKIP 1
#endif
#endif

#ifndef NOMEM_SKIP

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
extern void __libc_free(void *p);
extern char __executable_start[], etext[];

// ---- injection state (this test only) ----
static int armed;            // 1: count and record allocations from our code
static long fail_at;         // fail the fail_at-th counted allocation (0: none)
static long counted;         // allocations counted since armed
#define MAX_SITES 65536
static void *site[MAX_SITES];  // site[k-1]: where the k-th counted allocation was called from
static int failed;           // 1: the injected failure happened
static volatile int lock_;   // guards the record (allocations may come from OpenMP threads)

#define REC_CAP (1 << 20)    // open addressing, power of two
static uintptr_t *rec;       // live pointers allocated by our code while armed (0: empty, 1: deleted)
static long rec_live;

static void lock(void) {
    while (__atomic_exchange_n(&lock_, 1, __ATOMIC_ACQUIRE)) {
    }
}
static void unlock(void) { __atomic_store_n(&lock_, 0, __ATOMIC_RELEASE); }

static size_t slot_of(uintptr_t p) { return (size_t)((p >> 4) * 0x9E3779B97F4A7C15ULL) & (REC_CAP - 1); }

static void rec_add(void *p) {
    if (!p || !rec) return;
    for (size_t i = slot_of((uintptr_t)p);; i = (i + 1) & (REC_CAP - 1))
        if (rec[i] <= 1) {
            rec[i] = (uintptr_t)p;
            rec_live++;
            return;
        }
}

static void rec_del(void *p) {
    if (!p || !rec) return;
    for (size_t i = slot_of((uintptr_t)p); rec[i]; i = (i + 1) & (REC_CAP - 1))
        if (rec[i] == (uintptr_t)p) {
            rec[i] = 1;
            rec_live--;
            return;
        }
}

// Is this allocation, called from ra, ours? Then count it; returns 1 if it must fail.
static int ours(void *ra, int *fail) {
    *fail = 0;
    if (!__atomic_load_n(&armed, __ATOMIC_RELAXED)) return 0;
    if ((char *)ra < __executable_start || (char *)ra >= etext) return 0;
    long n = __atomic_add_fetch(&counted, 1, __ATOMIC_RELAXED);
    if (n <= MAX_SITES) site[n - 1] = ra;
    if (n == fail_at) {
        *fail = 1;
        failed = 1;
    }
    return 1;
}

#define TRACKED(expr)                                   \
    do {                                                \
        int fail_;                                      \
        int mine_ = ours(__builtin_return_address(0), &fail_); \
        if (fail_) return NULL;                         \
        void *p_ = (expr);                              \
        if (mine_) {                                    \
            lock();                                     \
            rec_add(p_);                                \
            unlock();                                   \
        }                                               \
        return p_;                                      \
    } while (0)

void *malloc(size_t n) { TRACKED(__libc_malloc(n)); }
void *calloc(size_t n, size_t size) { TRACKED(__libc_calloc(n, size)); }
void *aligned_alloc(size_t align, size_t n) { TRACKED(__libc_memalign(align, n)); }

void *realloc(void *p, size_t n) {
    int fail;
    int mine = ours(__builtin_return_address(0), &fail);
    if (fail) return NULL;
    void *q = __libc_realloc(p, n);
    if (q || n == 0) {
        lock();
        rec_del(p);
        if (mine) rec_add(q);
        unlock();
    }
    return q;
}

void free(void *p) {
    if (!p) return;
    if (__atomic_load_n(&armed, __ATOMIC_RELAXED) || rec_live) {
        lock();
        rec_del(p);
        unlock();
    }
    __libc_free(p);
}

static void arm(long k) {
    memset(rec, 0, REC_CAP * sizeof *rec);
    rec_live = 0;
    counted = 0;
    failed = 0;
    fail_at = k;
    __atomic_store_n(&armed, 1, __ATOMIC_SEQ_CST);
}
static void disarm(void) { __atomic_store_n(&armed, 0, __ATOMIC_SEQ_CST); }

// ---- the calls under test ----
typedef struct {
    mxp_model *m;       // models/tiny, loaded while disarmed
    char dir[64];       // scratch folder for outputs
    FILE *sink;         // calibrate's report
} env;

typedef mxp_status (*scenario)(env *e, mxp_err *err);

static mxp_status run_load(env *e, mxp_err *err) {
    mxp_model *m = NULL;
    mxp_status st = mxp_model_load("models/tiny", &m, err);
    mxp_model_free(m);
    return st;
}

static mxp_status run_eval(env *e, mxp_err *err) {
    mxp_eval_opts o = {.data_path = "models/tiny/heldout.txt", .seq_len = 16, .max_samples = 2,
                       .formats = "uniform:q8_0", .decode_tokens = 3};
    mxp_eval_result r;
    return mxp_eval(e->m, &o, &r, err);
}

static mxp_status run_calibrate(env *e, mxp_err *err) {
    char out[128];
    snprintf(out, sizeof out, "%s/sens.json", e->dir);
    mxp_calib_opts o = {.data_path = "models/tiny/heldout.txt", .samples = 2, .seq_len = 16, .batch = 2,
                        .formats = "f32,q8_0,q4_0", .out_path = out, .check = 2, .check_samples = 2,
                        .report = e->sink};
    mxp_calib_result r;
    return mxp_calibrate(e->m, &o, &r, err);
}

// calibrate streaming (block by block: the segments, the arena, the weight release)
static mxp_status run_calibrate_stream(env *e, mxp_err *err) {
    char out[128];
    snprintf(out, sizeof out, "%s/sens.json", e->dir);
    mxp_calib_opts o = {.data_path = "models/tiny/heldout.txt", .samples = 3, .seq_len = 16, .batch = 2,
                        .formats = "f32,q8_0,q4_0", .out_path = out, .stream = MXP_STREAM_ON};
    mxp_calib_result r;
    return mxp_calibrate(e->m, &o, &r, err);
}

static mxp_status run_generate(env *e, mxp_err *err) {
    mxp_generate_opts o = {.prompt = "In the beginning", .n_tokens = 3};
    mxp_generate_result r = {0};
    mxp_status st = mxp_generate(e->m, &o, &r, err);
    if (!st) mxp_generate_result_free(&r);
    return st;
}

static mxp_status run_apply(env *e, mxp_err *err) {
    char out[128];
    snprintf(out, sizeof out, "%s/model.gguf", e->dir);
    mxp_apply_report r;
    return mxp_apply("models/tiny", "uniform:q8_0", out, &r, err);
}

// Which allocations to fail, of the `total` a clean run made: the first and the last made
// from each call site (a site in a loop: its first pass and its last, after others held memory).
static long pick(long total, long *ks) {
    long n = 0, m = total < MAX_SITES ? total : MAX_SITES;
    for (long k = 0; k < m; k++) {
        int first = 1, last = 1;
        for (long j = 0; j < k && first; j++) first = site[j] != site[k];
        for (long j = k + 1; j < m && last; j++) last = site[j] != site[k];
        if (first || last) ks[n++] = k + 1;
    }
    return n;
}

static void sweep(env *e, const char *name, scenario fn) {
    mxp_err err = {0};
    arm(0);
    mxp_status st = fn(e, &err);
    disarm();
    long total = counted;
    CHECK(st == MXP_OK, "%s without injected failures: %s", name, err.msg);
    CHECK(rec_live == 0, "%s: %ld allocations not freed after a successful call", name, rec_live);
    long *ks = __libc_malloc(sizeof(long) * (size_t)(total ? total : 1));
    if (!ks) abort();
    long nk = pick(total, ks);
    int runs = 0, nomem = 0;
    for (long i = 0; i < nk; i++) {
        long k = ks[i];
        memset(&err, 0, sizeof err);
        arm(k);
        st = fn(e, &err);
        disarm();
        if (!failed) continue;  // fewer allocations this time (e.g. a buffer pool reused)
        runs++;
        nomem += st == MXP_ERR_NOMEM;
        CHECK(st == MXP_OK || st == MXP_ERR_NOMEM, "%s, allocation %ld failing: status %s (%s)", name, k,
              mxp_status_name(st), err.msg);
        CHECK(st == MXP_OK || err.msg[0], "%s, allocation %ld failing: no message", name, k);
        CHECK(rec_live == 0, "%s, allocation %ld failing: %ld allocations not freed", name, k, rec_live);
    }
    __libc_free(ks);
    fprintf(stderr, "%-10s %6ld allocations, %4d runs with one failing, %4d gave out of memory\n", name, total, runs,
            nomem);
    CHECK(nomem > 0, "%s: no injected failure gave MXP_ERR_NOMEM", name);
}

// argv[1], if given, names the one call to sweep (load, eval, calibrate, calibrate_stream,
// generate, apply).
int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL;
    rec = __libc_calloc(REC_CAP, sizeof *rec);
    if (!rec) return 1;
    env e = {0};
    snprintf(e.dir, sizeof e.dir, "/tmp/mxp_test_nomem_XXXXXX");
    e.sink = fopen("/dev/null", "w");
    mxp_err err = {0};
    if (!mkdtemp(e.dir) || !e.sink || mxp_model_load("models/tiny", &e.m, &err)) {
        fprintf(stderr, "FAIL setup: %s\n", err.msg);
        return 1;
    }
    mxp_eval_opts eo = {.data_path = "models/tiny/heldout.txt", .seq_len = 16, .max_samples = 2, .decode_tokens = -1};
    mxp_eval_result before, after;
    CHECK(mxp_eval(e.m, &eo, &before, &err) == MXP_OK, "eval: %s", err.msg);

    const char *names[] = {"load", "eval", "calibrate", "calibrate_stream", "generate", "apply"};
    scenario fns[] = {run_load, run_eval, run_calibrate, run_calibrate_stream, run_generate, run_apply};
    for (int i = 0; i < 6; i++)
        if (!only || !strcmp(only, names[i])) sweep(&e, names[i], fns[i]);

    CHECK(mxp_eval(e.m, &eo, &after, &err) == MXP_OK, "eval: %s", err.msg);
    CHECK(after.ref.loss == before.ref.loss, "the model changed: loss %.9g before, %.9g after", before.ref.loss,
          after.ref.loss);
    mxp_model_free(e.m);
    fclose(e.sink);
    char path[128];
    const char *files[] = {"sens.json", "model.gguf"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", e.dir, files[i]);
        unlink(path);
    }
    rmdir(e.dir);
    CHECK_DONE();
}

#else

int main(void) {
    fprintf(stderr, "test_nomem: skipped (its malloc replacement does not mix with AddressSanitizer)\n");
    return 77;
}

#endif
