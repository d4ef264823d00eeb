// bench_calibrate.c: what the sensitivity pass costs next to a plain forward+backward.
// usage: bench_calibrate MODEL [--samples N] [--seq T] [--batch B] [--formats f32,bf16,...]
// (run from the repository root)
// Times, in one run and interleaved, (a) forward + loss + backward forming every linear
// weight gradient (what a training step computes, without the optimizer) and (b) the
// calibration pass with the given formats (default: calibrate's default list, 6 formats;
// taylor + noise metrics), both over the same N samples of
// random tokens, B samples per pass (both), in alternating rounds. Each calibration call does
// one-time work first (the weight checks, the cache of quantized bytes of the slow formats,
// the mean squared weight errors), so every round also runs it on one batch alone: the
// per-sample cost of the calibration is (t(N) - t(B)) / (N - B), its one-time work
// t(B) - B times that. Prints the medians and the ratios to a forward+backward: per sample, and of
// the whole call over the N samples (what `calibrate --samples N` pays).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/model.h"
#include "core/rng.h"
#include "method/sensitivity.h"
#include "runtime/exec.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_calibrate MODEL [--samples N] [--seq T] [--batch B] [--formats LIST]\n");
        return 2;
    }
    int N = 8, T = 0, B = 1;
    const char *list = MXP_DEFAULT_FORMATS;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--samples")) N = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seq")) T = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) B = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--formats")) list = argv[i + 1];
    }
    if (B < 1 || N < 2 * B || N % B) {
        fprintf(stderr, "bench_calibrate: --samples must be a multiple of --batch, at least twice it\n");
        return 2;
    }
    mxp_format_id fmts[MXP_FMT_COUNT];
    int n_fmts = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *sv = NULL, *tok = strtok_r(buf, ",", &sv); tok; tok = strtok_r(NULL, ",", &sv)) {
        mxp_err e = {0};
        if (n_fmts == MXP_FMT_COUNT || mxp_format_parse(tok, &fmts[n_fmts++], &e)) {
            fprintf(stderr, "bench_calibrate: --formats: %s\n", e.msg[0] ? e.msg : "too many formats");
            return 2;
        }
    }
    mxp_err err = {0};
    mxp_model *m;
    if (mxp_model_load(argv[1], &m, &err)) {
        fprintf(stderr, "bench_calibrate: %s\n", err.msg);
        return 1;
    }
    mxp_graph *g = &m->graph;
    if (T <= 0) T = g->max_pos > 0 && g->max_pos < 256 ? g->max_pos : 256;
    int32_t *seq = malloc((size_t)N * (T + 1) * sizeof *seq);
    mxp_rng rng;
    mxp_rng_seed(&rng, 1);
    for (int i = 0; i < N * (T + 1); i++) seq[i] = (int32_t)mxp_rng_below(&rng, (uint64_t)g->vocab);
    mxp_sens s;
    mxp_qcache qc;
    mxp_exec ex;
    if (mxp_sens_init(&s, g, fmts, n_fmts, T, &err) || mxp_qcache_init(&qc, g, &err) || mxp_exec_init(&ex, g, B, T, MXP_EXEC_WGRAD_SCRATCH, &err)) {
        fprintf(stderr, "bench_calibrate: %s\n", err.msg);
        return 1;
    }
    const mxp_sens_run run = {.batch = B, .cache_bytes = (size_t)MXP_CALIB_MAX_CACHE_MB << 20};
    // warm-up (the first sample also checks the weights and measures var_w: reported apart)
    double tc0 = mxp_now();
    if (mxp_sens_accumulate(&s, m, &qc, seq, 1, &run, &err)) {
        fprintf(stderr, "bench_calibrate: %s\n", err.msg);
        return 1;
    }
    double t_cache = mxp_now() - tc0;
    // R rounds, alternating: N plain passes, then one calibration call over the same N samples
    enum { R = 5 };
    double tp[R], tc[R], t1[R], marg[R], setup[R], whole[R];
    for (int r = 0; r < R; r++) {
        double t0 = mxp_now();
        for (int n = 0; n < N; n += B) {
            mxp_exec_set_batch(&ex, seq + (size_t)n * (T + 1), &err);
            mxp_exec_forward(&ex, 0, g->n_nodes);
            mxp_exec_loss(&ex, NULL);
            mxp_exec_zero_grads(&ex);
            if (mxp_exec_backward(&ex, 0, g->n_nodes, 1.0f / (float)T, NULL, NULL, &err)) {
                fprintf(stderr, "bench_calibrate: %s\n", err.msg);
                return 1;
            }
        }
        tp[r] = (mxp_now() - t0) / N;
        t0 = mxp_now();
        if (mxp_sens_accumulate(&s, m, &qc, seq, (size_t)N, &run, &err)) {
            fprintf(stderr, "bench_calibrate: %s\n", err.msg);
            return 1;
        }
        tc[r] = (mxp_now() - t0) / N;
        t0 = mxp_now();
        if (mxp_sens_accumulate(&s, m, &qc, seq, (size_t)B, &run, &err)) {
            fprintf(stderr, "bench_calibrate: %s\n", err.msg);
            return 1;
        }
        t1[r] = mxp_now() - t0;
        double per = (tc[r] * N - t1[r]) / (N - B);
        marg[r] = per / tp[r];
        setup[r] = t1[r] - B * per;
        whole[r] = tc[r] / tp[r];
    }
    qsort(tp, R, sizeof *tp, cmp_double);
    qsort(tc, R, sizeof *tc, cmp_double);
    qsort(marg, R, sizeof *marg, cmp_double);
    qsort(setup, R, sizeof *setup, cmp_double);
    qsort(whole, R, sizeof *whole, cmp_double);
    printf("model %s, %d samples x %d tokens, batches of %d, %d formats (%s; taylor + noise), kernels %s, median of %d rounds\n",
           argv[1], N, T, B, n_fmts, list, mxp_kernel_impl_name(), R);
    printf("forward+backward (weight grads formed): %.4f s/sample\n", tp[R / 2]);
    printf("calibration pass (incl. its setup):     %.4f s/sample\n", tc[R / 2]);
    printf("ratio per sample (one-time work apart): %.2fx forward+backward (median of the rounds' ratios)\n", marg[R / 2]);
    printf("one-time work of a calibration call:    %.3f s\n", setup[R / 2]);
    printf("ratio of the whole call over %3d samples: %.2fx forward+backward\n", N, whole[R / 2]);
    printf("first call (first use of every weight): %.3f s\n", t_cache);
    mxp_exec_free(&ex);
    mxp_qcache_free(&qc);
    mxp_sens_free(&s);
    free(seq);
    mxp_model_free(m);
    return 0;
}
