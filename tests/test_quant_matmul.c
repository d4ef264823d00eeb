// test_quant_matmul.c: mxp_matmul for every format and kernel set against a double-precision
// reference computed from the dequantized weights and the fake-quantized activations
// (tolerance 4e-6 * sum_i |w_i x_i| per output: float summation order only), on decode
// (T = 1) and prefill shapes, both matmul paths (integer/converting dots and dequantized
// tiles + sgemm), O not a multiple of any SIMD width, and the same result bit for bit for
// 1, 2 and 3 threads.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "quant/format.h"
#include "test_quant_util.h"

typedef struct shape {
    int T, I, O;
} shape;

static double worst_rel[MXP_FMT_COUNT];

// Returns the number of outputs out of tolerance.
static int check_against_double(const mxp_format *f, const float *y, const float *wd, const float *xa, int T,
                                int I, int O) {
    int bad = 0;
    for (int t = 0; t < T; t++) {
        for (int o = 0; o < O; o++) {
            double ref = 0, mag = 0;
            for (int i = 0; i < I; i++) {
                const double p = (double)wd[(size_t)o * I + i] * xa[(size_t)t * I + i];
                ref += p;
                mag += fabs(p);
            }
            const double e = fabs(y[(size_t)t * O + o] - ref), tol = 4e-6 * mag + 1e-30;
            if (mag > 0 && e / mag > worst_rel[f->id]) worst_rel[f->id] = e / mag;
            if (!(e <= tol) && bad++ < 3)
                fprintf(stderr, "%s/%s T=%d I=%d O=%d: y[%d,%d] = %.9g, double %.9g (tol %.3g)\n", f->name, f->impl, T,
                        I, O, t, o, (double)y[(size_t)t * O + o], ref, tol);
        }
    }
    return bad;
}

static void run_shape(const mxp_format *f, shape s, tq_rng *r) {
    const int T = s.T, I = s.I, O = s.O;
    float *w = malloc(sizeof(float) * (size_t)O * I), *wd = malloc(sizeof(float) * (size_t)O * I);
    float *x = malloc(sizeof(float) * (size_t)T * I), *xa = malloc(sizeof(float) * (size_t)T * I);
    float *y = malloc(sizeof(float) * (size_t)T * O), *y2 = malloc(sizeof(float) * (size_t)T * O);
    size_t wb;
    mxp_err err = {0};
    CHECK(mxp_format_matrix_bytes(f->id, O, I, &wb, &err) == MXP_OK, "%s", err.msg);
    uint8_t *wq = malloc(wb);
    tq_fill(r, w, O * I, 0.05f);
    tq_fill(r, x, T * I, 1.0f);
    CHECK(mxp_quantize_matrix(f->id, w, O, I, wq, wb, "w", &err) == MXP_OK, "%s", err.msg);
    const size_t rb = mxp_row_bytes(f, I);
    for (int o = 0; o < O; o++) f->dequantize_row(wq + (size_t)o * rb, wd + (size_t)o * I, I);
    for (int t = 0; t < T; t++) mxp_fake_quant_act_row(f, x + (size_t)t * I, xa + (size_t)t * I, I);

    mxp_quant_scratch sc = {0};
    CHECK(mxp_quant_scratch_reserve(&sc, mxp_matmul_scratch_bytes(f->id, T, I, O), &err) == MXP_OK, "%s", err.msg);
    omp_set_num_threads(2);
    mxp_matmul_fmt(y, f, wq, x, T, I, O, &sc);
    const int bad = check_against_double(f, y, wd, xa, T, I, O);
    CHECK(bad == 0, "%s/%s T=%d I=%d O=%d: %d outputs out of tolerance", f->name, f->impl, T, I, O, bad);
    for (int nt = 1; nt <= 3; nt += 2) {
        omp_set_num_threads(nt);
        memset(y2, 0, sizeof(float) * (size_t)T * O);
        mxp_matmul_fmt(y2, f, wq, x, T, I, O, &sc);
        CHECK(memcmp(y, y2, sizeof(float) * (size_t)T * O) == 0, "%s/%s T=%d I=%d O=%d: %d threads differ from 2",
              f->name, f->impl, T, I, O, nt);
    }
    omp_set_num_threads(2);
    // Row t of a prefill equals a decode of that row (whichever path each takes).
    if (T > 1) {
        const int t = T - 1;
        mxp_matmul_fmt(y2, f, wq, x + (size_t)t * I, 1, I, O, &sc);
        int badrow = 0;
        for (int o = 0; o < O; o++) {
            double mag = 0;
            for (int i = 0; i < I; i++) mag += fabs((double)wd[(size_t)o * I + i] * xa[(size_t)t * I + i]);
            if (!(fabs((double)y2[o] - y[(size_t)t * O + o]) <= 8e-6 * mag + 1e-30)) badrow++;
        }
        CHECK(badrow == 0, "%s/%s T=%d I=%d O=%d: last row differs from its decode in %d outputs", f->name, f->impl,
              T, I, O, badrow);
    }
    mxp_quant_scratch_free(&sc);
    free(w), free(wd), free(x), free(xa), free(y), free(y2), free(wq);
}

int main(void) {
    const shape shapes[] = {{1, 32, 1},   {1, 256, 37},  {1, 4096, 67}, {2, 96, 17},  {5, 128, 33},
                            {8, 128, 33}, {17, 64, 70},  {64, 256, 300}, {3, 1024, 9}, {32, 512, 129}};
    tq_rng r = {2024};
    for (int impl = MXP_IMPL_REF; impl <= MXP_IMPL_AVX2; impl++) {
        if (impl == MXP_IMPL_AVX2 && !mxp_cpu_has_avx2()) {
            fprintf(stderr, "test_quant_matmul: no AVX2, AVX2 kernels not tested\n");
            break;
        }
        for (int fi = 0; fi < MXP_FMT_COUNT; fi++) {
            const mxp_format *f = mxp_format_get_impl((mxp_format_id)fi, (mxp_impl)impl);
            for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++)
                if (shapes[k].I % f->block_size == 0) run_shape(f, shapes[k], &r);
        }
    }
    for (int fi = 0; fi < MXP_FMT_COUNT; fi++)
        fprintf(stderr, "%s matmul: worst |y - double| / sum|w x| = %.3g\n", mxp_format_get((mxp_format_id)fi)->name,
                worst_rel[fi]);
    CHECK_DONE();
}
