// bench_kernels.c: speed of every format's matmul on this machine, printed as a table.
//   - read bandwidth: sum of 64-bit words over a 1 GB buffer, 2 threads, median of repeats;
//   - decode (T = 1) GEMV on a 4096 x 4096 weight streamed from memory (the benchmark cycles
//     through enough copies of the weight to exceed the caches): time, GB/s of weight bytes,
//     fraction of the read bandwidth, speed-up vs f32;
//   - prefill (T = 256): GFLOP/s vs f32 sgemm (ours, chunked single-threaded OpenBLAS calls)
//     and vs plain threaded OpenBLAS sgemm;
//   - with --crossover: dot path vs dequantize + sgemm path for small T (tunes sgemm_min_T).
// Medians of >= 5 repeats, formats interleaved within each repeat. Run as:
//   OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=2 build/bench_kernels
// Timing goes to stdout; nothing is asserted (speed is a measurement, not a test).
#include <cblas.h>
#undef I
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/format.h"

enum { NREP = 7, DIM = 4096, TPRE = 256 };

static int cmp_d(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

__attribute__((target("avx2"))) static uint64_t sum_words(const uint64_t *p, size_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 16 <= n; i += 16) {
        a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(p + i + 4)));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(p + i + 8)));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(p + i + 12)));
    }
    __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    uint64_t out[4];
    _mm256_storeu_si256((__m256i *)out, s);
    return out[0] + out[1] + out[2] + out[3];
}

static double read_bandwidth(void) {
    const size_t bytes = (size_t)1 << 30, n = bytes / 8;
    uint64_t *buf = mxp_aligned_alloc(bytes);
    if (!buf) return 0;
    for (size_t i = 0; i < n; i++) buf[i] = i;
    double t[NREP];
    volatile uint64_t sink = 0;
    for (int r = 0; r < NREP; r++) {
        uint64_t part[2] = {0, 0};
        const double t0 = mxp_now();
#pragma omp parallel num_threads(2)
        {
            const int id = omp_get_thread_num();
            const size_t h = n / 2;
            part[id] = sum_words(buf + (size_t)id * h, h);
        }
        t[r] = mxp_now() - t0;
        sink += part[0] + part[1];
    }
    (void)sink;
    free(buf);
    return (double)bytes / median(t, NREP) / 1e9;
}

typedef struct fmt_bench {
    const mxp_format *f;
    size_t wbytes;   // one weight copy
    int ncopy;       // copies cycled through for decode
    uint8_t *w;      // (ncopy, DIM rows)
    double dec[NREP], pre[NREP];
} fmt_bench;

static void fill(float *x, size_t n, unsigned seed) {
    uint32_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = ((float)(s >> 8) / 16777216.0f - 0.5f) * 0.1f;
    }
}

int main(int argc, char **argv) {
    const int crossover = argc > 1 && strcmp(argv[1], "--crossover") == 0;
    fprintf(stderr, "bench_kernels: kernels %s, OpenMP threads %d\n", mxp_kernel_impl_name(), omp_get_max_threads());
    const double bw = read_bandwidth();
    printf("read bandwidth (1 GB, 2 threads, median of %d): %.2f GB/s\n", NREP, bw);

    float *w32 = malloc(sizeof(float) * DIM * DIM), *x = malloc(sizeof(float) * TPRE * DIM);
    float *y = malloc(sizeof(float) * TPRE * DIM);
    fill(w32, (size_t)DIM * DIM, 1);
    fill(x, (size_t)TPRE * DIM, 2);
    fmt_bench fb[MXP_FMT_COUNT];
    const size_t stream_bytes = (size_t)320 << 20;  // ~10x the L3
    mxp_err err = {0};
    for (int fi = 0; fi < MXP_FMT_COUNT; fi++) {
        fmt_bench *b = &fb[fi];
        b->f = mxp_format_get((mxp_format_id)fi);
        if (mxp_format_matrix_bytes(b->f->id, DIM, DIM, &b->wbytes, &err)) return 1;
        b->ncopy = (int)((stream_bytes + b->wbytes - 1) / b->wbytes);
        b->w = mxp_aligned_alloc(b->wbytes * (size_t)b->ncopy);
        if (!b->w) { fprintf(stderr, "out of memory\n"); return 1; }
        if (mxp_quantize_matrix(b->f->id, w32, DIM, DIM, b->w, b->wbytes, "bench", &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        for (int c = 1; c < b->ncopy; c++) memcpy(b->w + (size_t)c * b->wbytes, b->w, b->wbytes);
    }
    mxp_quant_scratch sc = {0};
    size_t need = 0;
    for (int fi = 0; fi < MXP_FMT_COUNT; fi++) {
        size_t n1 = mxp_matmul_scratch_bytes((mxp_format_id)fi, TPRE, DIM, DIM);
        if (n1 > need) need = n1;
    }
    if (mxp_quant_scratch_reserve(&sc, need + ((size_t)64 << 20), &err)) return 1;

    double blas_pre[NREP];
    for (int r = 0; r < NREP; r++) {
        for (int fi = 0; fi < MXP_FMT_COUNT; fi++) {
            fmt_bench *b = &fb[fi];
            mxp_matmul_fmt(y, b->f, b->w, x, 1, DIM, DIM, &sc);  // warm
            double t0 = mxp_now();
            for (int c = 0; c < b->ncopy; c++) mxp_matmul_fmt(y, b->f, b->w + (size_t)c * b->wbytes, x, 1, DIM, DIM, &sc);
            b->dec[r] = (mxp_now() - t0) / b->ncopy;
            t0 = mxp_now();
            mxp_matmul_fmt(y, b->f, b->w, x, TPRE, DIM, DIM, &sc);
            b->pre[r] = mxp_now() - t0;
        }
        const double t0 = mxp_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, TPRE, DIM, DIM, 1.0f, x, DIM, (const float *)fb[0].w, DIM,
                    0.0f, y, DIM);
        blas_pre[r] = mxp_now() - t0;
    }
    const double flops = 2.0 * TPRE * DIM * DIM;
    const double dec32 = median(fb[0].dec, NREP), pre32 = median(fb[0].pre, NREP);
    const double preblas = median(blas_pre, NREP);
    printf("decode: y = W x, W %dx%d streamed from memory; prefill: T = %d (medians of %d)\n", DIM, DIM, TPRE, NREP);
    printf("%-8s %7s %9s %8s %7s %8s | %9s %8s %9s\n", "format", "MB", "decode_ms", "GB/s", "of_bw", "vs_f32",
           "prefill_GF", "vs_f32", "vs_blas");
    for (int fi = 0; fi < MXP_FMT_COUNT; fi++) {
        fmt_bench *b = &fb[fi];
        const double d = median(b->dec, NREP), p = median(b->pre, NREP);
        printf("%-8s %7.2f %9.3f %8.2f %6.0f%% %7.2fx | %9.1f %7.2fx %8.2fx\n", b->f->name, b->wbytes / 1e6, d * 1e3,
               b->wbytes / d / 1e9, 100.0 * b->wbytes / d / 1e9 / bw, dec32 / d, flops / p / 1e9, pre32 / p,
               preblas / p);
    }
    printf("f32 OpenBLAS sgemm, threaded by OpenBLAS: %.1f GFLOP/s\n", flops / preblas / 1e9);

    if (crossover) {
        printf("\ncrossover (I = O = %d): ms of dot path / dequantize+sgemm path\n%-8s", DIM, "T");
        const int Ts[] = {1, 2, 4, 8, 16, 32, 64};
        for (size_t k = 0; k < sizeof Ts / sizeof *Ts; k++) printf(" %13d", Ts[k]);
        printf("\n");
        for (int fi = 1; fi < MXP_FMT_COUNT; fi++) {
            printf("%-8s", fb[fi].f->name);
            for (size_t k = 0; k < sizeof Ts / sizeof *Ts; k++) {
                mxp_format fd = *fb[fi].f, fs = *fb[fi].f;
                fd.sgemm_min_T = 1 << 30;
                fs.sgemm_min_T = 1;
                double td[5], ts[5];
                for (int r = 0; r < 5; r++) {
                    double t0 = mxp_now();
                    mxp_matmul_fmt(y, &fd, fb[fi].w, x, Ts[k], DIM, DIM, &sc);
                    td[r] = mxp_now() - t0;
                    t0 = mxp_now();
                    mxp_matmul_fmt(y, &fs, fb[fi].w, x, Ts[k], DIM, DIM, &sc);
                    ts[r] = mxp_now() - t0;
                }
                printf(" %6.2f/%6.2f", median(td, 5) * 1e3, median(ts, 5) * 1e3);
            }
            printf("\n");
        }
    }
    // The machine may be shared: print the load so each table carries its context.
    FILE *la = fopen("/proc/loadavg", "r");
    char line[128] = "?";
    if (la) {
        if (!fgets(line, sizeof line, la)) line[0] = 0;
        fclose(la);
    }
    printf("load average at the end: %s(ratios within one run are comparable; absolute figures on a busy "
           "machine are not)\n", line);
    for (int fi = 0; fi < MXP_FMT_COUNT; fi++) free(fb[fi].w);
    mxp_quant_scratch_free(&sc);
    free(w32), free(x), free(y);
    return 0;
}
