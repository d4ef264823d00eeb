// test_quant_simd.c: every AVX2 kernel against its scalar `_ref`. Quantizers (weights and
// activations) and dequantizers must be bit-identical on random and adversarial data
// (zeros, -0, huge, tiny, f16-scale underflow, subnormals, exact rounding ties, equal
// +-maxima, inf and NaN: non-finite input gives meaningless but identical bytes). Dots must
// agree within 2e-6 * sum_i |w_i x_i| (float summation order only) + 1e-30.
// Skipped (passes with a note) on a CPU without AVX2/FMA/F16C.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "quant/format.h"
#include "test_quant_util.h"

enum { NMAX = 4096 + 64 };

// Adversarial patterns, n elements each (n a multiple of 32 for the block formats).
static void make_case(int kind, tq_rng *r, float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = 0.0f;
    switch (kind) {
    case 0: tq_fill(r, x, n, 1.0f); break;
    case 1: break;                                                                  // zeros
    case 2: for (int i = 0; i < n; i++) x[i] = -0.0f; break;
    case 3: tq_fill(r, x, n, 1e30f); break;                                         // huge
    case 4: tq_fill(r, x, n, 1e-30f); break;                                        // tiny: f16 scale = 0
    case 5: tq_fill(r, x, n, 3e-6f); break;                                         // f16 scale subnormal
    case 6: for (int i = 0; i < n; i++) x[i] = tq_bits(tq_u32(r) & 0x807FFFFF); break; // f32 subnormals
    case 7:  // ties for q8_0 (amax 127 -> d = 1) and q4_0 (max -8 -> d = 1)
        for (int i = 0; i < n; i++) {
            const int j = i % 32;
            x[i] = j == 0 ? 127.0f : (float)((int)(tq_u32(r) % 250) - 125) + 0.5f;
            if (i % 64 >= 32) x[i] = j == 0 ? -8.0f : (float)((int)(tq_u32(r) % 16) - 8) + 0.5f;
        }
        break;
    case 8:  // equal +-maxima: q4_0 must take the first
        for (int i = 0; i < n; i++) x[i] = (i % 5 == 0) ? ((i / 5) % 2 ? 3.0f : -3.0f) : tq_normal(r);
        break;
    case 9:  // inf and NaN sprinkled in
        tq_fill(r, x, n, 1.0f);
        for (int i = 0; i < n; i += 37) x[i] = (i / 37) % 3 == 0 ? INFINITY : (i / 37) % 3 == 1 ? -INFINITY : NAN;
        break;
    case 10:  // NaN only in some blocks
        tq_fill(r, x, n, 1.0f);
        for (int i = 5; i < n; i += 64) x[i] = NAN;
        break;
    case 11:  // random bit patterns (anything at all)
        for (int i = 0; i < n; i++) x[i] = tq_bits(tq_u32(r));
        break;
    case 12:  // near f16 / bf16 rounding boundaries
        for (int i = 0; i < n; i++) x[i] = tq_bits((tq_u32(r) & 0xC7FFE000u) | 0x1000u | ((tq_u32(r) & 1) << 13));
        break;
    case 13:  // f8: values straddling 2^-6 * scale and 448 ties
        for (int i = 0; i < n; i++) x[i] = ldexpf(1.0f + (float)(tq_u32(r) % 16) / 16.0f, -(int)(tq_u32(r) % 20));
        x[0] = 448.0f;
        break;
    }
}
#define NCASES 14

static void test_bit_identity(void) {
    static float x[NMAX], y0[NMAX], y1[NMAX];
    static uint8_t q0[NMAX * 4 + 8], q1[NMAX * 4 + 8];
    static int8_t a0[NMAX], a1[NMAX];
    static float d0[NMAX / 32], d1[NMAX / 32];
    const int sizes[] = {32, 64, 96, 4096, 4096 + 32, 1, 7, 8, 15, 16, 33, 100, 1000};
    tq_rng r = {42};
    for (int fi = 0; fi < MXP_FMT_COUNT; fi++) {
        const mxp_format *fr = mxp_format_get_impl((mxp_format_id)fi, MXP_IMPL_REF);
        const mxp_format *fa = mxp_format_get_impl((mxp_format_id)fi, MXP_IMPL_AVX2);
        int bad_q = 0, bad_d = 0, bad_a = 0;
        for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
            const int n = sizes[si];
            if (n % fr->block_size) continue;
            for (int kind = 0; kind < NCASES; kind++) {
                for (int rep = 0; rep < 3; rep++) {
                    make_case(kind, &r, x, n);
                    const size_t rb = mxp_row_bytes(fr, n);
                    memset(q0, 0xAB, rb);
                    memset(q1, 0xCD, rb);
                    fr->quantize_row(x, q0, n);
                    fa->quantize_row(x, q1, n);
                    if (memcmp(q0, q1, rb) != 0) {
                        size_t k = 0;
                        while (q0[k] == q1[k]) k++;
                        if (bad_q++ < 3)
                            fprintf(stderr, "%s quantize n=%d case %d: byte %zu ref %02x avx2 %02x\n", fr->name, n,
                                    kind, k, q0[k], q1[k]);
                    }
                    // dequantize the same bytes (also foreign bytes: case 11 as raw data)
                    const void *src = q0;
                    if (kind == 11) {
                        for (size_t k = 0; k < rb; k++) q0[k] = (uint8_t)tq_u32(&r);
                    }
                    fr->dequantize_row(src, y0, n);
                    fa->dequantize_row(src, y1, n);
                    if (memcmp(y0, y1, (size_t)n * 4) != 0) {
                        int k = 0;
                        while (!memcmp(&y0[k], &y1[k], 4)) k++;
                        if (bad_d++ < 3)
                            fprintf(stderr, "%s dequantize n=%d case %d: elem %d ref %g avx2 %g\n", fr->name, n, kind,
                                    k, (double)y0[k], (double)y1[k]);
                    }
                    if (fr->quantize_act) {
                        fr->quantize_act(x, a0, d0, n);
                        fa->quantize_act(x, a1, d1, n);
                        if (memcmp(a0, a1, (size_t)n) || memcmp(d0, d1, (size_t)n / 32 * 4)) {
                            if (bad_a++ < 3) fprintf(stderr, "%s act quant n=%d case %d differs\n", fr->name, n, kind);
                        }
                    }
                }
            }
        }
        CHECK(bad_q == 0, "%s: AVX2 quantizer differs from ref in %d cases", fr->name, bad_q);
        CHECK(bad_d == 0, "%s: AVX2 dequantizer differs from ref in %d cases", fr->name, bad_d);
        CHECK(bad_a == 0, "%s: AVX2 activation quantizer differs from ref in %d cases", fr->name, bad_a);
    }
}

// Dots: AVX2 vs ref within the float-summation tolerance, and both vs a double dot of the
// dequantized weight and the activation as the kernel sees it.
static void test_dots(void) {
    static float x[NMAX], w[NMAX], wd[NMAX], xa[NMAX];
    static uint8_t q[NMAX * 4 + 8];
    static int8_t aq[NMAX];
    static float ad[NMAX / 32];
    const int sizes[] = {32, 64, 96, 160, 4096, 4096 + 32, 1, 7, 9, 31, 33, 100};
    tq_rng r = {77};
    for (int fi = 0; fi < MXP_FMT_COUNT; fi++) {
        const mxp_format *fr = mxp_format_get_impl((mxp_format_id)fi, MXP_IMPL_REF);
        const mxp_format *fa = mxp_format_get_impl((mxp_format_id)fi, MXP_IMPL_AVX2);
        int bad = 0;
        double worst = 0;
        for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
            const int n = sizes[si];
            if (n % fr->block_size || (fr->quantize_act && n % 32)) continue;
            for (int rep = 0; rep < 20; rep++) {
                tq_fill(&r, w, n, rep % 2 ? 0.02f : 3.0f);
                tq_fill(&r, x, n, rep % 3 ? 1.0f : 1e-3f);
                fr->quantize_row(w, q, n);
                fr->dequantize_row(q, wd, n);
                mxp_fake_quant_act_row(fr, x, xa, n);
                const void *act = xa;  // the non-integer dots take the rounded activations
                mxp_q8_row ar = {aq, ad};
                if (fr->quantize_act) {
                    fr->quantize_act(x, aq, ad, n);
                    act = &ar;
                }
                double ref = 0, mag = 0;
                for (int i = 0; i < n; i++) {
                    ref += (double)wd[i] * xa[i];
                    mag += fabs((double)wd[i] * xa[i]);
                }
                const float gr = fr->dot(n, q, act), ga = fa->dot(n, q, act);
                const double tol = 2e-6 * mag + 1e-30;
                const double e1 = fabs((double)gr - ga), e2 = fabs((double)ga - ref), e3 = fabs((double)gr - ref);
                if (e1 > tol || e2 > tol || e3 > tol) {
                    if (bad++ < 3)
                        fprintf(stderr, "%s dot n=%d: ref %.9g avx2 %.9g double %.9g (tol %.3g)\n", fr->name, n,
                                (double)gr, (double)ga, ref, tol);
                }
                if (mag > 0 && e1 / mag > worst) worst = e1 / mag;
            }
        }
        CHECK(bad == 0, "%s dot: %d out of tolerance", fr->name, bad);
        fprintf(stderr, "%s dot: worst |avx2 - ref| / sum|w x| = %.3g\n", fr->name, worst);
    }
}

int main(void) {
    if (!mxp_cpu_has_avx2()) {
        fprintf(stderr, "test_quant_simd: CPU lacks AVX2/FMA/F16C, AVX2 kernels not tested\n");
        CHECK_DONE();
    }
    test_bit_identity();
    test_dots();
    CHECK_DONE();
}
