// test_quant_formats.c: the format table's definitions checked against independent
// computations: scalar conversions (exhaustive f16 decode, brute-force nearest for e4m3,
// bounds for bf16/f16), hand-built q8_0 and q4_0 blocks (bytes worked out by hand), the
// round-trip error bound of every format, name parsing, row sizes and mxp_quantize_matrix
// errors.
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "quant/format.h"
#include "test_quant_util.h"

static void test_table(void) {
    // GGML type numbers, block sizes and bytes from ggml.h / ggml-common.h; activation rounding
    // from vec_dot_type in ggml-cpu.c's type_traits_cpu (q8_1 for q4_1/q5_1, q8_K for k-quants).
    static const char *names[] = {"f32",  "bf16", "f16",  "q8_0", "q4_0", "f8_e4m3", "q4_1", "q5_0",
                                  "q5_1", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K",    "iq4_nl"};
    static const int bs[] = {1, 1, 1, 32, 32, 1, 32, 32, 32, 256, 256, 256, 256, 256, 32};
    static const int bb[] = {4, 2, 2, 34, 18, 1, 20, 22, 24, 84, 110, 144, 176, 210, 18};
    static const uint32_t gt[] = {0, 30, 1, 8, 2, 0, 3, 6, 7, 10, 11, 12, 13, 14, 20};
    static const mxp_act_id act[] = {MXP_ACT_F32,  MXP_ACT_BF16, MXP_ACT_F16,  MXP_ACT_Q8_0, MXP_ACT_Q8_0,
                                     MXP_ACT_F32,  MXP_ACT_Q8_1, MXP_ACT_Q8_0, MXP_ACT_Q8_1, MXP_ACT_Q8_K,
                                     MXP_ACT_Q8_K, MXP_ACT_Q8_K, MXP_ACT_Q8_K, MXP_ACT_Q8_K, MXP_ACT_Q8_0};
    _Static_assert(sizeof names / sizeof *names == MXP_FMT_COUNT, "one name per format");
    for (int i = 0; i < MXP_FMT_COUNT; i++) {
        const mxp_format *f = mxp_format_get_impl((mxp_format_id)i, MXP_IMPL_REF);
        CHECK(f->id == (mxp_format_id)i && strcmp(f->name, names[i]) == 0, "table entry %d", i);
        CHECK(f->block_size == bs[i] && f->block_bytes == bb[i], "%s block", names[i]);
        CHECK(f->has_ggml_type == (i != MXP_FMT_F8_E4M3), "%s ggml", names[i]);
        if (f->has_ggml_type) CHECK(f->ggml_type == gt[i], "%s ggml type %u", names[i], f->ggml_type);
        CHECK(fabs(f->bits_per_weight - 8.0 * bb[i] / bs[i]) < 1e-12, "%s bpw", names[i]);
        CHECK(f->act == act[i], "%s act %s", names[i], mxp_act_name(f->act));
        CHECK(f->int_dot == (i == MXP_FMT_Q8_0 || i == MXP_FMT_Q4_0), "%s integer dot", names[i]);
        CHECK((f->quantize_act != NULL) == f->int_dot, "%s act fn", names[i]);
        mxp_format_id id;
        CHECK(mxp_format_parse(names[i], &id, NULL) == MXP_OK && id == (mxp_format_id)i, "parse %s", names[i]);
    }
    mxp_err err = {0};
    mxp_format_id id;
    CHECK(mxp_format_parse("q7_k", &id, &err) == MXP_ERR_ARG, "bad name rejected");
    CHECK(strstr(err.msg, "q7_k") && strstr(err.msg, "q4_0") && strstr(err.msg, "f8_e4m3") && strstr(err.msg, "q6_K"),
          "message names the bad format and the valid ones: %s", err.msg);
    CHECK(mxp_format_parse("Q8_0", &id, &err) == MXP_OK && id == MXP_FMT_Q8_0, "names are case-insensitive");
    CHECK(mxp_format_parse("q4_k", &id, &err) == MXP_OK && id == MXP_FMT_Q4_K, "q4_k is q4_K");
    // llama.cpp's fallback for rows the block does not divide (tensor_type_fallback)
    mxp_format_id fb;
    CHECK(mxp_format_fit(MXP_FMT_Q4_K, 512, &fb) && fb == MXP_FMT_Q4_K, "q4_K fits 512");
    CHECK(!mxp_format_fit(MXP_FMT_Q4_K, 704, &fb) && fb == MXP_FMT_Q5_0, "q4_K on 704 -> q5_0");
    CHECK(!mxp_format_fit(MXP_FMT_Q5_K, 704, &fb) && fb == MXP_FMT_Q5_1, "q5_K on 704 -> q5_1");
    CHECK(!mxp_format_fit(MXP_FMT_Q6_K, 704, &fb) && fb == MXP_FMT_Q8_0, "q6_K on 704 -> q8_0");
    CHECK(!mxp_format_fit(MXP_FMT_Q2_K, 704, &fb) && fb == MXP_FMT_Q4_0, "q2_K on 704 -> q4_0");
    CHECK(!mxp_format_fit(MXP_FMT_Q3_K, 100, &fb) && fb == MXP_FMT_F16, "q3_K on 100 -> q4_0 does not fit -> f16");
    CHECK(!mxp_format_fit(MXP_FMT_Q8_0, 100, &fb) && fb == MXP_FMT_F16, "q8_0 on 100 -> f16");
    CHECK(mxp_format_fit(MXP_FMT_F8_E4M3, 100, &fb) && fb == MXP_FMT_F8_E4M3, "f8 fits any width");

    size_t b = 0;
    CHECK(mxp_format_row_bytes_checked(MXP_FMT_Q4_0, 4096, &b, NULL) == MXP_OK && b == 128 * 18, "q4_0 row");
    CHECK(mxp_format_row_bytes_checked(MXP_FMT_F8_E4M3, 100, &b, NULL) == MXP_OK && b == 104, "f8 row");
    CHECK(mxp_format_row_bytes_checked(MXP_FMT_Q8_0, 100, &b, &err) == MXP_ERR_ARG &&
              strstr(err.msg, "100") && strstr(err.msg, "32"), "odd row: %s", err.msg);
    CHECK(mxp_format_row_bytes_checked(MXP_FMT_F16, 0, &b, &err) == MXP_ERR_ARG, "empty row");
    CHECK(mxp_format_matrix_bytes(MXP_FMT_F32, (int64_t)1 << 31, 4, &b, &err) == MXP_ERR_ARG, "huge O");
    CHECK(mxp_format_matrix_bytes(MXP_FMT_BF16, 3, 64, &b, NULL) == MXP_OK && b == 384, "bf16 matrix");
}

// f16 decode exhaustively against ldexp; encode on a sweep of bit patterns against the
// nearest-even rule computed in double.
static double f16_value(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e ? ldexp(1.0 + m / 1024.0, e - 15) : ldexp(m / 1024.0, -14);
    return (h & 0x8000) ? -v : v;
}

static void test_f16(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        const int e = (h >> 10) & 31;
        const float f = mxp_f16_to_f32((uint16_t)h);
        if (e == 31) {
            if ((h & 1023) ? !isnan(f) : !isinf(f)) bad++;
            continue;
        }
        if ((double)f != f16_value((uint16_t)h) || (signbit(f) != 0) != ((h & 0x8000) != 0)) bad++;
        if (mxp_f32_to_f16(f) != h) bad++;  // exact values round-trip
    }
    CHECK(bad == 0, "f16 decode/round-trip: %d bad", bad);
    // Encode: nearest representable (ties to even mantissa), overflow to inf at >= 65520.
    bad = 0;
    for (uint64_t u = 0; u < 0x80000000ull; u += 4099) {
        const float x = tq_bits((uint32_t)u);
        if (isnan(x)) continue;
        const uint16_t h = mxp_f32_to_f16(x);
        if (x >= 65520.0f) { bad += h != 0x7C00; continue; }
        const double v = f16_value(h), ax = x;
        // neighbours
        const double lo = (h & 0x7FFF) ? f16_value((uint16_t)(h - 1)) : 0.0;
        const double hi = (h < 0x7BFF) ? f16_value((uint16_t)(h + 1)) : 65536.0;
        const double err = fabs(v - ax);
        if (err > fabs(lo - ax) || err > fabs(hi - ax)) bad++;
        if ((err == fabs(lo - ax) && v != lo) || (err == fabs(hi - ax) && v != hi))
            bad += (h & 1) != 0;  // a tie must land on the even code
    }
    CHECK(bad == 0, "f16 encode nearest-even: %d bad", bad);
    CHECK(mxp_f32_to_f16(-0.0f) == 0x8000 && mxp_f32_to_f16(65504.0f) == 0x7BFF &&
              mxp_f32_to_f16(65519.0f) == 0x7BFF && mxp_f32_to_f16(65520.0f) == 0x7C00 &&
              mxp_f32_to_f16(-INFINITY) == 0xFC00 && (mxp_f32_to_f16(NAN) & 0x7C00) == 0x7C00 &&
              (mxp_f32_to_f16(NAN) & 0x3FF) != 0 && mxp_f32_to_f16(ldexpf(1, -25)) == 0 &&
              mxp_f32_to_f16(ldexpf(1.5f, -25)) == 1 && mxp_f32_to_f16(ldexpf(3, -25)) == 2,
          "f16 special values");
}

static void test_bf16(void) {
    CHECK(mxp_f32_to_bf16(1.0f) == 0x3F80, "bf16 1.0");
    CHECK(mxp_f32_to_bf16(tq_bits(0x3F808000)) == 0x3F80, "tie to even (down)");
    CHECK(mxp_f32_to_bf16(tq_bits(0x3F818000)) == 0x3F82, "tie to even (up)");
    CHECK(mxp_f32_to_bf16(tq_bits(0x3F808001)) == 0x3F81, "above tie");
    CHECK(mxp_f32_to_bf16(tq_bits(0x7F7FFFFF)) == 0x7F80, "overflow to inf");
    CHECK(mxp_f32_to_bf16(tq_bits(0x7F800001)) != 0x7F80 && isnan(mxp_bf16_to_f32(mxp_f32_to_bf16(tq_bits(0x7F800001)))),
          "signalling NaN stays NaN");
    CHECK(mxp_f32_to_bf16(tq_bits(0xFFC00000)) == 0xFFC0, "quiet NaN kept");
    tq_rng r = {0x1234};
    int bad = 0;
    for (int i = 0; i < 1000000; i++) {
        const float x = tq_bits(tq_u32(&r));
        if (!isfinite(x) || fabsf(x) > 3.38e38f) continue;
        const float y = mxp_bf16_to_f32(mxp_f32_to_bf16(x));
        // half ulp <= 2^-8 |x| (normal); subnormal spacing 2^-133
        if (!(fabs((double)y - x) <= ldexp(fabs((double)x), -8) + ldexp(1, -134))) bad++;
    }
    CHECK(bad == 0, "bf16 relative bound: %d bad", bad);
}

static double e4m3_value(int c) {  // independent: sign * 2^(e-7) * (1 + m/8), subnormal e=0
    const int e = (c >> 3) & 15, m = c & 7;
    const double v = e ? pow(2.0, e - 7) * (1 + m / 8.0) : pow(2.0, -6) * (m / 8.0);
    return (c & 0x80) ? -v : v;
}

static void test_e4m3(void) {
    int bad = 0;
    for (int c = 0; c < 256; c++) {
        if ((c & 0x7F) == 0x7F) continue;
        if ((double)mxp_e4m3_to_f32((uint8_t)c) != e4m3_value(c)) bad++;
    }
    CHECK(bad == 0, "e4m3 decode: %d bad", bad);
    CHECK(mxp_e4m3_to_f32(0x7E) == 448.0f && mxp_e4m3_to_f32(0x38) == 1.0f &&
              mxp_e4m3_to_f32(0x01) == ldexpf(1, -9) && mxp_e4m3_to_f32(0x08) == ldexpf(1, -6),
          "e4m3 known codes");
    // Encoding through the row quantizer with scale 1 (amax = 448): brute-force nearest code.
    const mxp_format *f = mxp_format_get_impl(MXP_FMT_F8_E4M3, MXP_IMPL_REF);
    tq_rng r = {99};
    enum { N = 4096 };
    float x[N];
    uint8_t q[4 + N];
    x[0] = 448.0f;
    for (int i = 1; i < N; i++) {
        float mag = ldexpf(tq_unif(&r), -(int)(tq_u32(&r) % 14)) * 448.0f;
        if (i % 7 == 0) mag = (float)fabs(e4m3_value((int)(tq_u32(&r) % 126)) + e4m3_value((int)(tq_u32(&r) % 126) + 1)) / 2;
        x[i] = (tq_u32(&r) & 1) ? -mag : mag;
    }
    f->quantize_row(x, q, N);
    float s;
    memcpy(&s, q, 4);
    CHECK(s == 1.0f, "f8 scale 448/448 = %g", (double)s);
    bad = 0;
    for (int i = 0; i < N; i++) {
        double best = 1e30;
        int bc = 0;
        for (int c = 0; c < 127; c++) {
            double d = fabs(e4m3_value(c) - fabs((double)x[i]));
            if (d < best || (d == best && (c & 1) == 0)) { best = d; bc = c; }
        }
        int want = bc | (signbit(x[i]) ? 0x80 : 0);
        if (q[4 + i] != want) {
            if (bad++ < 5) fprintf(stderr, "x=%.9g code %02x want %02x\n", (double)x[i], q[4 + i], want);
        }
    }
    CHECK(bad == 0, "e4m3 nearest-even encoding: %d bad", bad);
}

// Hand-built blocks: the bytes are worked out by hand from the layout in format.h.
static void test_hand_blocks(void) {
    float x[32] = {0};
    // q8_0: amax 63.5 -> d = 0.5 (f16 0x3800); q = round_away(x / 0.5)
    x[0] = 63.5f; x[1] = -63.5f; x[2] = 0.25f; x[3] = -0.25f; x[4] = 0.74f;
    x[5] = 10.0f; x[6] = -0.7f; x[7] = 1.25f;
    const uint8_t want8[34] = {0x00, 0x38, 0x7F, 0x81, 0x01, 0xFF, 0x01, 0x14, 0xFF, 0x03};
    for (int impl = MXP_IMPL_REF; impl <= MXP_IMPL_AVX2; impl++) {
        if (impl == MXP_IMPL_AVX2 && !mxp_cpu_has_avx2()) break;
        uint8_t got[34];
        mxp_format_get_impl(MXP_FMT_Q8_0, (mxp_impl)impl)->quantize_row(x, got, 32);
        CHECK(memcmp(got, want8, 34) == 0, "q8_0 hand block (%s)", impl == MXP_IMPL_REF ? "ref" : "avx2");
    }
    // q4_0: largest magnitude is -8 -> d = -8/-8 = 1 (f16 0x3C00); q = min(15, floor(x + 8.5));
    // byte j = q[j] | q[j+16] << 4.
    memset(x, 0, sizeof x);
    x[0] = -8.0f; x[1] = 7.0f; x[3] = 0.5f; x[4] = -0.5f; x[5] = 3.2f;
    x[16] = 1.0f; x[17] = -3.0f; x[31] = 7.9f;
    const uint8_t want4[18] = {0x00, 0x3C, 0x90, 0x5F, 0x88, 0x89, 0x88, 0x8B, 0x88, 0x88,
                               0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0xF8};
    // positive extreme: 4 is the largest magnitude -> d = -0.5 (f16 0xB800); x/d = -8 -> q 0,
    // element 1: -1 / -0.5 = 2 -> floor(10.5) = 10; element 16: 0.25 / -0.5 = -0.5 -> 8
    float y[32] = {0};
    y[0] = 4.0f; y[1] = -1.0f; y[16] = 0.25f;
    const uint8_t want4b[18] = {0x00, 0xB8, 0x80, 0x8A, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88,
                                0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88};
    for (int impl = MXP_IMPL_REF; impl <= MXP_IMPL_AVX2; impl++) {
        if (impl == MXP_IMPL_AVX2 && !mxp_cpu_has_avx2()) break;
        const mxp_format *f = mxp_format_get_impl(MXP_FMT_Q4_0, (mxp_impl)impl);
        uint8_t got[18];
        f->quantize_row(x, got, 32);
        CHECK(memcmp(got, want4, 18) == 0, "q4_0 hand block (%s)", f->impl);
        f->quantize_row(y, got, 32);
        CHECK(memcmp(got, want4b, 18) == 0, "q4_0 hand block, positive max (%s)", f->impl);
        float deq[32];
        f->dequantize_row(want4, deq, 32);
        CHECK(deq[0] == -8 && deq[1] == 7 && deq[2] == 0 && deq[3] == 1 && deq[5] == 3 && deq[16] == 1 &&
                  deq[17] == -3 && deq[31] == 7, "q4_0 hand dequant (%s)", f->impl);
    }
}

// Round trip bounds on random data at several scales (incl. tiny scales whose f16 rounds).
static void test_roundtrip(void) {
    enum { N = 4096 };
    static float x[N], y[N];
    static uint8_t q[N * 4 + 64];
    tq_rng r = {7};
    const float scales[] = {1.0f, 1e-3f, 3e-7f, 1e3f};  // overflow: test_quantize_matrix
    for (int impl = MXP_IMPL_REF; impl <= MXP_IMPL_AVX2; impl++) {
        if (impl == MXP_IMPL_AVX2 && !mxp_cpu_has_avx2()) break;
        for (size_t si = 0; si < sizeof scales / sizeof *scales; si++) {
            tq_fill(&r, x, N, scales[si]);
            // (the formats after f8_e4m3 are ggml's own: tests/test_quant_ggml.c)
            for (int fi = 0; fi <= MXP_FMT_F8_E4M3; fi++) {
                const mxp_format *f = mxp_format_get_impl((mxp_format_id)fi, (mxp_impl)impl);
                mxp_fake_quant_weight_row(f, x, y, N, q);
                int bad = 0;
                double worst = 0;
                for (int i = 0; i < N; i++) {
                    const int b0 = i / 32 * 32;
                    double amax = 0, mx = 0;
                    for (int j = b0; j < b0 + 32; j++) if (fabs(x[j]) > amax) { amax = fabs(x[j]); mx = x[j]; }
                    double bound = 0;
                    const double e = fabs((double)y[i] - x[i]);
                    switch (fi) {
                    case MXP_FMT_F32: bound = 0; break;
                    case MXP_FMT_BF16: bound = ldexp(fabs(x[i]), -8); break;
                    case MXP_FMT_F16: bound = ldexp(fabs(x[i]), -11) + ldexp(1, -25); break;
                    case MXP_FMT_Q8_0: {
                        const double d32 = (float)(amax / 127), d16 = f16_value(mxp_f32_to_f16((float)d32));
                        bound = 127 * fabs(d16 - d32) + 0.5 * d32 * (1 + 1e-5) + 1e-6 * fabs(x[i]);
                        break;
                    }
                    case MXP_FMT_Q4_0: {
                        const double d32 = fabs(mx) / 8, d16 = f16_value(mxp_f32_to_f16((float)d32));
                        const double v = x[i] / (mx / -8);  // in [-8, 8]
                        const double qerr = v > 7.5 ? v - 7 : 0.5;  // 15 is the top code
                        bound = 8 * fabs(d16 - d32) + qerr * d32 * (1 + 1e-5) + 1e-6 * fabs(x[i]);
                        break;
                    }
                    case MXP_FMT_F8_E4M3: {
                        double rowmax = 0;
                        for (int j = 0; j < N; j++) rowmax = fmax(rowmax, fabs(x[j]));
                        const double s = (float)(rowmax / 448), v = fabs(x[i]) / s;
                        bound = s * (v >= ldexp(1, -6) ? ldexp(v, -4) : ldexp(1, -10)) * (1 + 1e-5) +
                                1e-6 * fabs(x[i]);
                        break;
                    }
                    }
                    if (!(e <= bound)) {
                        if (bad++ < 3)
                            fprintf(stderr, "%s/%s scale %g: x[%d]=%.9g y=%.9g err %.3g > bound %.3g\n",
                                    f->name, f->impl, (double)scales[si], i, (double)x[i], (double)y[i], e, bound);
                    }
                    if (e > worst) worst = e;
                }
                CHECK(bad == 0, "%s (%s) round trip bound at scale %g: %d bad", f->name, f->impl,
                      (double)scales[si], bad);
            }
        }
    }
}

static void test_quantize_matrix(void) {
    enum { O = 5, I = 256 };
    float w[O * I];
    tq_rng r = {11};
    tq_fill(&r, w, O * I, 0.1f);
    mxp_err err = {0};
    uint8_t out[O * I * 4];
    for (int fi = 0; fi < MXP_FMT_COUNT; fi++) {
        const mxp_format *f = mxp_format_get((mxp_format_id)fi);
        size_t need;
        CHECK(mxp_format_matrix_bytes((mxp_format_id)fi, O, I, &need, NULL) == MXP_OK, "bytes");
        CHECK(mxp_quantize_matrix((mxp_format_id)fi, w, O, I, out, need, "blk.0.w", &err) == MXP_OK,
              "%s quantize_matrix: %s", f->name, err.msg);
        uint8_t row[I * 4 + 4];
        f->quantize_row(w + 3 * I, row, I);
        CHECK(memcmp(row, out + 3 * mxp_row_bytes(f, I), mxp_row_bytes(f, I)) == 0, "%s row 3", f->name);
        CHECK(mxp_quantize_matrix((mxp_format_id)fi, w, O, I, out, need - 1, "blk.0.w", &err) == MXP_ERR_ARG,
              "%s small buffer", f->name);
    }
    // I not a multiple of the block: clean error naming the tensor and the size.
    CHECK(mxp_quantize_matrix(MXP_FMT_Q4_0, w, 2, 48, out, sizeof out, "blk.1.ffn", &err) == MXP_ERR_ARG &&
              strstr(err.msg, "blk.1.ffn") && strstr(err.msg, "48") && strstr(err.msg, "q4_0"),
          "odd I: %s", err.msg);
    CHECK(mxp_quantize_matrix(MXP_FMT_Q8_0, w, 1, 31, out, sizeof out, "t", &err) == MXP_ERR_ARG, "I=31");
    CHECK(mxp_quantize_matrix(MXP_FMT_F16, w, 0, 64, out, sizeof out, "t", &err) == MXP_ERR_ARG, "O=0");
    w[2 * I + 5] = NAN;
    CHECK(mxp_quantize_matrix(MXP_FMT_Q8_0, w, O, I, out, sizeof out, "t", &err) == MXP_ERR_ARG &&
              strstr(err.msg, "row 2 column 5"), "NaN weight: %s", err.msg);
    w[2 * I + 5] = 5e6f;  // q8_0 scale 5e6/127 fits f16; q4_0 scale 6.25e5 does not
    CHECK(mxp_quantize_matrix(MXP_FMT_Q8_0, w, O, I, out, sizeof out, "t", &err) == MXP_OK, "5e6 fits q8_0");
    CHECK(mxp_quantize_matrix(MXP_FMT_Q4_0, w, O, I, out, sizeof out, "t", &err) == MXP_ERR_ARG &&
              strstr(err.msg, "overflows f16"), "q4_0 scale overflow: %s", err.msg);
    w[2 * I + 5] = 1e9f;
    CHECK(mxp_quantize_matrix(MXP_FMT_Q8_0, w, O, I, out, sizeof out, "t", &err) == MXP_ERR_ARG, "q8 overflow");
    CHECK(mxp_quantize_matrix(MXP_FMT_F8_E4M3, w, O, I, out, sizeof out, "t", &err) == MXP_OK, "f8 any scale");
    w[2 * I + 5] = 70000.0f;
    CHECK(mxp_quantize_matrix(MXP_FMT_F16, w, O, I, out, sizeof out, "t", &err) == MXP_ERR_ARG &&
              strstr(err.msg, "overflows f16"), "f16 overflow: %s", err.msg);
    CHECK(mxp_quantize_matrix(MXP_FMT_BF16, w, O, I, out, sizeof out, "t", &err) == MXP_OK, "bf16 fine");
    w[2 * I + 5] = 3.4e38f;
    CHECK(mxp_quantize_matrix(MXP_FMT_BF16, w, O, I, out, sizeof out, "t", &err) == MXP_ERR_ARG, "bf16 overflow");
}

// Activation rounding by its definition in format.h: identity for f32, element conversion
// for f16/bf16, q * f16(amax/127) with |q| <= 127 and round-to-nearest for q8_0/q8_1 (half
// a step at most), q * (m/-127) (f32 scale) for q8_K. (Bit-exactness against llama.cpp's
// CPU backend: tests/test_quant_ggml.c.)
static void test_fake_act(void) {
    enum { N = 512 };
    float x[N], y[N];
    tq_rng r = {5};
    tq_fill(&r, x, N, 2.0f);
    for (int fi = 0; fi < MXP_FMT_COUNT; fi++) {
        const mxp_format *f = mxp_format_get((mxp_format_id)fi);
        mxp_fake_quant_act_row(f, x, y, N);
        int bad = 0;
        const int bs = f->act == MXP_ACT_Q8_K ? 256 : 32;
        for (int i = 0; i < N; i++) {
            double amax = 0, m = 0;
            for (int j = i / bs * bs; j < i / bs * bs + bs; j++)
                if (fabs(x[j]) > amax) amax = fabs(x[j]), m = x[j];
            switch (f->act) {
            case MXP_ACT_F32: bad += y[i] != x[i]; break;
            case MXP_ACT_F16: bad += y[i] != mxp_f16_to_f32(mxp_f32_to_f16(x[i])); break;
            case MXP_ACT_BF16: bad += y[i] != mxp_bf16_to_f32(mxp_f32_to_bf16(x[i])); break;
            case MXP_ACT_Q8_0:
            case MXP_ACT_Q8_1: {
                const double d = mxp_f16_to_f32(mxp_f32_to_f16((float)(amax / 127))), q = y[i] / d;
                bad += q != nearbyint(q) || fabs(q) > 127 || fabs(q - x[i] * 127 / amax) > 0.5 + 1e-5;
                break;
            }
            case MXP_ACT_Q8_K: {
                const double d = (float)(1 / (float)(-127 / (float)m)), q = y[i] / d;
                bad += fabs(q - nearbyint(q)) > 1e-4 || q > 127 || q < -128 || fabs(y[i] - x[i]) > 0.5 * fabs(d) * (1 + 1e-5);
                break;
            }
            default: bad++;
            }
        }
        CHECK(bad == 0, "%s activations (%s): %d values off their definition", f->name, mxp_act_name(f->act), bad);
    }
}

// MXP_FORCE_REF=1 (in the environment at start) forces the reference kernels; otherwise AVX2
// when the CPU has it. ctest runs this test a second time with MXP_FORCE_REF=1.
static void test_dispatch(void) {
    const char *force = getenv("MXP_FORCE_REF");
    int forced = force && strcmp(force, "1") == 0;
    const char *want = !forced && mxp_cpu_has_avx2() ? "avx2" : "ref";
    CHECK(strcmp(mxp_format_get(MXP_FMT_Q4_0)->impl, want) == 0 && strcmp(mxp_kernel_impl_name(), want) == 0,
          "MXP_FORCE_REF=%s gives %s", force ? force : "(unset)", want);
    setenv("MXP_FORCE_REF", forced ? "0" : "1", 1);  // decided once: a later change has no effect
    CHECK(strcmp(mxp_format_get(MXP_FMT_F16)->impl, want) == 0, "dispatch is decided once");
    CHECK(strcmp(mxp_format_get_impl(MXP_FMT_F16, MXP_IMPL_REF)->impl, "ref") == 0, "explicit ref");
}

// The calibration pass (src/method/sensitivity.c) fake-quantizes weights in pieces of whole
// blocks, 256-aligned, cut wherever a chunk of the matrix ends inside a row: every format
// whose rows carry no per-row prefix must give a piece exactly the values the whole row
// gives there (blocks are quantized independently), for every kernel set.
static void test_pieces(void) {
    enum { N = 5632 };  // 22 k-quant super-blocks, not a divisor of the pass's chunks
    static float x[N], whole[N], piece[N];
    static uint8_t q[N * 4 + 64];
    tq_rng r = {23};
    tq_fill(&r, x, N, 0.05f);
    const int cuts[] = {0, 256, 1024, 2816, 4096, 5376, N};  // pieces of 1 to 7 super-blocks
    for (int impl = MXP_IMPL_REF; impl <= MXP_IMPL_AVX2; impl++) {
        if (impl == MXP_IMPL_AVX2 && !mxp_cpu_has_avx2()) break;
        for (int fi = 0; fi < MXP_FMT_COUNT; fi++) {
            const mxp_format *f = mxp_format_get_impl((mxp_format_id)fi, (mxp_impl)impl);
            if (f->row_prefix_bytes) continue;  // f8_e4m3: a scale per row, quantized as whole rows
            mxp_fake_quant_weight_row(f, x, whole, N, q);
            for (size_t c = 0; c + 1 < sizeof cuts / sizeof *cuts; c++)
                mxp_fake_quant_weight_row(f, x + cuts[c], piece + cuts[c], cuts[c + 1] - cuts[c], q);
            CHECK(!memcmp(whole, piece, sizeof whole), "%s (%s): pieces of a row differ from the whole row",
                  f->name, f->impl);
        }
    }
}

int main(void) {
    test_dispatch();
    test_table();
    test_f16();
    test_bf16();
    test_e4m3();
    test_hand_blocks();
    test_roundtrip();
    test_quantize_matrix();
    test_fake_act();
    test_pieces();
    CHECK_DONE();
}
