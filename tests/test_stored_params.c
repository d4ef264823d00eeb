// test_stored_params.c: parameters kept in bf16/f16 or a block format (q8_0, q4_K: a quantized
// GGUF; core/graph.h) read as their f32 values, bit for bit, by every mechanism that reads them.
// The f32 values of a block-format row are its dequantized row, converted whole (what loading
// a quantized GGUF into f32 made):
//  1. The accessor: mxp_param_widen (row and column windows, llama.cpp's rotary row order
//     undone; for the block formats windows that start and end inside a block, lie within one
//     block, or are whole blocks) and mxp_param_rows equal the values widened one by one.
//  2. The linear products (ops/gemm.c): forward y = x W^T + b and backward dx, dW, db with W
//     stored in bf16, f16, q8_0 and q4_K (and rows in rotary order) are memcmp-equal to the
//     same calls on an f32 copy, in every tiling a shape can take: matrix-vector (one row), cut along W
//     (rows of W in the forward, columns in the backward), cut along the other operand (all of
//     W widened for the call), long inner dimension (split-K partials), with 2 and 1 threads.
//  3. Quantizing a chunk of rows at a time (mxp_quantize_param): the bytes of quantizing the
//     whole f32 copy, in order and through a row permutation, for element, block, super-block
//     and per-row-scale formats; a non-finite value gives the same message.
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/graph.h"
#include "core/rng.h"
#include "ops/ops.h"
#include "quant/format.h"
#include "runtime/qcache.h"

static mxp_rng rng;  // seeded in main
static float rng_sym(void) { return (float)mxp_rng_uniform(&rng) * 2.0f - 1.0f; }

// A stored weight (O, I) of random values in `type` (bf16, f16 or a block format), with its f32
// copy in compute order. heads > 0: the stored rows are in llama.cpp's rotary order for that
// many heads.
typedef struct sw {
    mxp_param p;      // stored
    mxp_param p32;    // f32 copy (compute order)
    uint8_t *raw;
    float *w32;
} sw;

static const char *fname(int type) { return mxp_format_get((mxp_format_id)type)->name; }

static int64_t rotary_stored_row(int64_t r, int64_t O, int heads) {  // stored row of compute row r
    int64_t hd = O / heads, half = hd / 2, h = r / hd, w = r % hd;
    return h * hd + 2 * (w % half) + w / half;
}

static void sw_make(sw *s, int type, int O, int I, int heads, float scale) {
    memset(s, 0, sizeof *s);
    size_t n = (size_t)O * I;
    const mxp_format *f = mxp_format_get((mxp_format_id)type);
    const size_t rb = mxp_row_bytes(f, I);
    s->raw = malloc((size_t)O * rb);
    s->w32 = malloc(n * sizeof *s->w32);
    float *v = malloc((size_t)I * sizeof *v);
    for (int64_t r = 0; r < O; r++) {
        int64_t sr = heads ? rotary_stored_row(r, O, heads) : r;
        for (int64_t c = 0; c < I; c++) v[c] = rng_sym() * scale;
        f->quantize_row(v, s->raw + sr * rb, I);
        f->dequantize_row(s->raw + sr * rb, s->w32 + r * I, I);
    }
    free(v);
    s->p = (mxp_param){.name = "w", .ndim = 2, .shape = {O, I}, .nelem = n, .stored = type, .raw = s->raw,
                       .row_heads = heads};
    s->p32 = (mxp_param){.name = "w", .ndim = 2, .shape = {O, I}, .nelem = n, .stored = MXP_FMT_F32,
                         .data = s->w32, .raw = s->w32};
}

static void sw_free(sw *s) {
    free(s->raw);
    free(s->w32);
}

static float *rnd(size_t n) {
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = rng_sym();
    return x;
}

static void test_accessor(void) {
    const int types[4] = {MXP_FMT_BF16, MXP_FMT_F16, MXP_FMT_Q8_0, MXP_FMT_Q4_K};
    // column windows (c0, nc) of a 512-wide row: inside blocks at both ends, within one block
    // (of 32 and of 256), whole blocks, one element, the whole row
    static const int win[][2] = {{7, 20}, {7, 300}, {40, 20}, {250, 10}, {300, 200}, {256, 256},
                                 {31, 2},  {0, 512}, {511, 1}, {32, 480}, {1, 510}};
    enum { O = 32, I = 512, LD = 520 };
    static float out[O * LD], buf[O * I];
    for (int t = 0; t < 4; t++)
        for (int heads = 0; heads <= 4; heads += 4) {
            sw s;
            sw_make(&s, types[t], O, I, heads, 3.0f);
            int bad = 0;
            for (size_t w = 0; w < sizeof win / sizeof *win; w++) {
                const int c0 = win[w][0], nc = win[w][1];
                memset(out, 0, sizeof out);
                mxp_param_widen(&s.p, 5, 9, c0, nc, out, LD);  // rows 5..13
                for (int r = 0; r < 9; r++)
                    for (int c = 0; c < nc; c++) bad += memcmp(&out[r * LD + c], &s.w32[(5 + r) * I + c0 + c], 4) != 0;
                for (int r = 0; r < 9; r++)  // nothing written past the window
                    for (int c = nc; c < LD && r * LD + c < O * LD; c++) bad += out[r * LD + c] != 0.0f;
            }
            CHECK(!bad, "%s heads %d: windows widened: %d values differ", fname(types[t]), heads, bad);
            const float *rows = mxp_param_rows(&s.p, 3, 10, buf);
            CHECK(rows == buf && !memcmp(rows, s.w32 + 3 * I, 10 * I * sizeof(float)), "%s heads %d: rows",
                  fname(types[t]), heads);
            CHECK(mxp_param_stored_bytes(&s.p) == (size_t)O * mxp_row_bytes(mxp_format_get(types[t]), I),
                  "%s: stored bytes", fname(types[t]));
            CHECK(mxp_param_rows(&s.p32, 3, 10, buf) == s.w32 + 3 * I, "f32 rows are the data itself");
            sw_free(&s);
        }
}

// Forward and backward of one shape with W stored in `type` vs its f32 copy: memcmp-equal.
static void check_linear(int type, int N, int I, int O, int heads, int bias) {
    sw s;
    sw_make(&s, type, O, I, heads, 0.5f);
    float *x = rnd((size_t)N * I), *dy = rnd((size_t)N * O), *b = bias ? rnd((size_t)O) : NULL;
    size_t floats = mxp_linear_scratch_floats(&s.p, N);
    float *scratch = malloc((floats ? floats : 1) * sizeof *scratch);
    float *y0 = malloc((size_t)N * O * sizeof *y0), *y1 = malloc((size_t)N * O * sizeof *y1);
    float *dx0 = rnd((size_t)N * I), *dx1 = malloc((size_t)N * I * sizeof *dx1);
    float *dw0 = rnd((size_t)O * I), *dw1 = malloc((size_t)O * I * sizeof *dw1);
    float *db0 = rnd((size_t)O), *db1 = malloc((size_t)O * sizeof *db1);
    memcpy(dx1, dx0, (size_t)N * I * sizeof *dx1);  // backward accumulates: the same start
    memcpy(dw1, dw0, (size_t)O * I * sizeof *dw1);
    memcpy(db1, db0, (size_t)O * sizeof *db1);
    for (int threads = 2; threads >= 1; threads--) {
        omp_set_num_threads(threads);
        mxp_linear_fwd(y0, x, s.w32, b, N, I, O);
        mxp_linear_fwd_w(y1, x, &s.p, b, N, I, O, scratch, floats);
        CHECK(!memcmp(y0, y1, (size_t)N * O * sizeof *y0), "%s forward N %d I %d O %d heads %d, %d threads",
              fname(type), N, I, O, heads, threads);
        mxp_linear_bwd(dx0, dw0, db0, dy, x, s.w32, N, I, O);
        mxp_linear_bwd_w(dx1, dw1, db1, dy, x, &s.p, N, I, O, scratch, floats);
        CHECK(!memcmp(dx0, dx1, (size_t)N * I * sizeof *dx0) && !memcmp(dw0, dw1, (size_t)O * I * sizeof *dw0) &&
                  !memcmp(db0, db1, (size_t)O * sizeof *db0),
              "%s backward N %d I %d O %d heads %d, %d threads", fname(type), N, I, O, heads, threads);
    }
    omp_set_num_threads(2);
    free(x), free(dy), free(b), free(scratch), free(y0), free(y1), free(dx0), free(dx1), free(dw0), free(dw1);
    free(db0), free(db1);
    sw_free(&s);
}

static void test_linear(void) {
    // (N, I, O): one row (matrix-vector); W's rows >= N (cut along W); N above O and I (cut
    // along x: all of W for the call); N between (forward along W, backward along x, and the
    // reverse); I long (forward split-K); O long (backward split-K: the LM head's dx)
    static const int shapes[][3] = {{1, 96, 200}, {1, 4096, 48}, {40, 256, 320}, {300, 128, 96},
                                    {200, 320, 96}, {200, 96, 320}, {8, 4096, 64}, {8, 64, 4096},
                                    {3, 100, 37}};
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++)
        for (int t = 0; t < 2; t++)
            check_linear(t ? MXP_FMT_F16 : MXP_FMT_BF16, shapes[k][0], shapes[k][1], shapes[k][2], 0, (int)(k % 2));
    check_linear(MXP_FMT_BF16, 24, 128, 256, 4, 1);   // rows in rotary order
    check_linear(MXP_FMT_F16, 300, 128, 64, 2, 0);
    // block formats (I a multiple of 256): the tilings above, whose column tiles of W (the
    // backward's dx cut along I) cut through blocks
    static const int bshapes[][3] = {{1, 512, 200}, {1, 4096, 48}, {40, 256, 320}, {300, 256, 96},
                                     {200, 512, 96}, {8, 4096, 64}, {8, 256, 4096}, {3, 768, 37}};
    for (size_t k = 0; k < sizeof bshapes / sizeof *bshapes; k++)
        for (int t = 0; t < 2; t++)
            check_linear(t ? MXP_FMT_Q4_K : MXP_FMT_Q8_0, bshapes[k][0], bshapes[k][1], bshapes[k][2], 0, (int)(k % 2));
    check_linear(MXP_FMT_Q8_0, 24, 256, 256, 4, 1);
    check_linear(MXP_FMT_Q4_K, 300, 256, 64, 2, 0);
}

static void test_quantize(void) {
    static const mxp_format_id fmts[] = {MXP_FMT_F32, MXP_FMT_BF16, MXP_FMT_F16, MXP_FMT_Q8_0, MXP_FMT_Q4_K,
                                         MXP_FMT_F8_E4M3};
    const int O = 700, I = 2048;  // 1.4M weights: two chunks of rows
    sw s;
    sw_make(&s, MXP_FMT_BF16, O, I, 0, 2.0f);
    int64_t *row_of = malloc((size_t)O * sizeof *row_of);
    for (int r = 0; r < O; r++) row_of[r] = (int64_t)((r * 263) % O);  // a permutation (263 prime to 700)
    float *perm32 = malloc((size_t)O * I * sizeof *perm32);
    for (int r = 0; r < O; r++) memcpy(perm32 + (size_t)r * I, s.w32 + (size_t)row_of[r] * I, (size_t)I * sizeof(float));
    mxp_err err = {0};
    for (size_t k = 0; k < sizeof fmts / sizeof *fmts; k++) {
        size_t bytes = 0;
        CHECK(mxp_format_matrix_bytes(fmts[k], O, I, &bytes, &err) == MXP_OK, "%s", err.msg);
        uint8_t *a = malloc(bytes), *b = malloc(bytes);
        for (int p = 0; p < 2; p++) {
            memset(a, 0, bytes);
            memset(b, 0xAB, bytes);
            mxp_status sa = mxp_quantize_matrix(fmts[k], p ? perm32 : s.w32, O, I, a, bytes, "w", &err);
            mxp_status sb = mxp_quantize_param(fmts[k], &s.p, p ? row_of : NULL, b, bytes, "w", &err);
            CHECK(sa == MXP_OK && sb == MXP_OK && !memcmp(a, b, bytes), "%s%s: chunked bytes differ from the whole's",
                  mxp_format_get(fmts[k])->name, p ? " (permuted rows)" : "");
        }
        free(a);
        free(b);
    }
    // a non-finite value in the second chunk: the whole matrix's message
    const uint16_t inf_bf16 = 0x7F80;  // +inf
    memcpy(s.raw + ((size_t)650 * I + 17) * 2, &inf_bf16, 2);
    s.w32[(size_t)650 * I + 17] = INFINITY;
    size_t bytes;
    mxp_format_matrix_bytes(MXP_FMT_Q8_0, O, I, &bytes, NULL);
    uint8_t *q = malloc(bytes);
    mxp_err e1 = {0}, e2 = {0};
    mxp_status s1 = mxp_quantize_matrix(MXP_FMT_Q8_0, s.w32, O, I, q, bytes, "w", &e1);
    mxp_status s2 = mxp_quantize_param(MXP_FMT_Q8_0, &s.p, NULL, q, bytes, "w", &e2);
    CHECK(s1 == MXP_ERR_ARG && s2 == s1 && !strcmp(e1.msg, e2.msg), "messages: '%s' vs '%s'", e1.msg, e2.msg);
    mxp_status s3 = mxp_param_check_values(MXP_FMT_F16, &s.p, "w", &e2);
    CHECK(s3 == MXP_ERR_ARG && strstr(e2.msg, "row 650 column 17"), "check_values: %s", e2.msg);
    free(q);
    free(row_of);
    free(perm32);
    sw_free(&s);
}

int main(void) {
    mxp_rng_seed(&rng, 0x243F6A8885A308D3ull);
    omp_set_num_threads(2);
    test_accessor();
    test_linear();
    test_quantize();
    CHECK_DONE();
}
