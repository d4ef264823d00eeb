// format.c: the format table (ref and AVX2 variants), run-time dispatch, name parsing, row
// sizes, whole-matrix quantization and the fake-quant helpers. No state: the tables are
// const and dispatch is a pure function of the CPU and MXP_FORCE_REF, evaluated per call.
// Which kernels are mixprec's own and what each serves that ggml's base library does not:
// format.h ("Why mixprec has kernels of its own"). Rows OWN and GGQ_OWN below are those;
// f8_e4m3 is the one row of a non-GGUF target (FP8 accelerators), never exported.
#include "quant/quant_internal.h"

#include "mixprec.h"
_Static_assert(MXP_FMT_COUNT <= MXP_MAX_FORMATS, "mixprec.h's MXP_MAX_FORMATS holds every format");

#include <omp.h>
#include <stdlib.h>
#include <strings.h>
#include <cpuid.h>
#include <pthread.h>
#include <string.h>

// sgemm_min_T: measured with `bench_kernels --crossover` (2-core Zen 3, I = O = 4096): below
// it the integer/converting dot kernels beat dequantize-tile + sgemm. The same values in
// both tables (scratch sizes depend on them). The formats whose dot dequantizes a block at a
// time (ggml's formats after f8_e4m3) take the sgemm path from T = 2.
//
// Columns: id, name, block elements, block bytes, row prefix bytes, activation rounding,
// integer dot, GGML type (or -1: none), fallback (or -1: none), sgemm_min_T, kernels.
#define ROW(ID, NAME, BS, BB, PFX, ACT, INTDOT, GT, FB, MINT, ...)                                    \
    [ID] = {.id = ID, .name = NAME, .block_size = BS, .block_bytes = BB, .row_prefix_bytes = PFX,     \
            .bits_per_weight = 8.0 * (BB) / (BS), .act = ACT, .int_dot = INTDOT,                      \
            .has_ggml_type = (GT) >= 0, .ggml_type = (GT) >= 0 ? (uint32_t)(GT) : 0,                  \
            .has_fallback = (FB) >= 0, .fallback = (FB) >= 0 ? (mxp_format_id)(FB) : MXP_FMT_F32,     \
            .sgemm_min_T = MINT, __VA_ARGS__}
// mixprec's own kernels of format K
#define OWN(K, IMPL)                                                                                \
    .impl = #IMPL, .quantize_row = mxp_quantize_##K##_##IMPL, .dequantize_row = mxp_dequantize_##K##_##IMPL, \
    .dot = mxp_dot_##K##_##IMPL
// ggml's quantizer, mixprec's own dequantizer and integer dot on q8 activations
#define GGQ_OWN(K, IMPL)                                                                            \
    .impl = #IMPL, .quantize_row = mxp_quantize_##K##_ggml, .dequantize_row = mxp_dequantize_##K##_##IMPL, \
    .dot = mxp_dot_##K##_##IMPL, .quantize_act = mxp_quantize_act_q8_##IMPL
// ggml's quantizer and dequantizer; the dot dequantizes the weight row a block at a time
#define GG(K, IMPL)                                                                                 \
    .impl = #IMPL, .quantize_row = mxp_quantize_##K##_ggml, .dequantize_row = mxp_dequantize_##K##_ggml, \
    .dot = mxp_dot_##K##_ggml

#define MXP_FORMAT_TABLE(IMPL)                                                                           \
    {                                                                                                    \
        ROW(MXP_FMT_F32, "f32", 1, 4, 0, MXP_ACT_F32, false, 0, -1, 2, OWN(f32, IMPL)),                   \
        ROW(MXP_FMT_BF16, "bf16", 1, 2, 0, MXP_ACT_BF16, false, 30, -1, 8, OWN(bf16, IMPL)),              \
        ROW(MXP_FMT_F16, "f16", 1, 2, 0, MXP_ACT_F16, false, 1, -1, 8, OWN(f16, IMPL)),                   \
        ROW(MXP_FMT_Q8_0, "q8_0", 32, 34, 0, MXP_ACT_Q8_0, true, 8, -1, 32, GGQ_OWN(q8_0, IMPL)),         \
        ROW(MXP_FMT_Q4_0, "q4_0", 32, 18, 0, MXP_ACT_Q8_0, true, 2, -1, 32, GGQ_OWN(q4_0, IMPL)),         \
        ROW(MXP_FMT_F8_E4M3, "f8_e4m3", 1, 1, 4, MXP_ACT_F32, false, -1, -1, 8, OWN(f8_e4m3, IMPL)),      \
        ROW(MXP_FMT_Q4_1, "q4_1", 32, 20, 0, MXP_ACT_Q8_1, false, 3, -1, 2, GG(q4_1, IMPL)),              \
        ROW(MXP_FMT_Q5_0, "q5_0", 32, 22, 0, MXP_ACT_Q8_0, false, 6, -1, 2, GG(q5_0, IMPL)),              \
        ROW(MXP_FMT_Q5_1, "q5_1", 32, 24, 0, MXP_ACT_Q8_1, false, 7, -1, 2, GG(q5_1, IMPL)),              \
        ROW(MXP_FMT_Q2_K, "q2_K", 256, 84, 0, MXP_ACT_Q8_K, false, 10, MXP_FMT_Q4_0, 2, GG(q2_K, IMPL)),  \
        ROW(MXP_FMT_Q3_K, "q3_K", 256, 110, 0, MXP_ACT_Q8_K, false, 11, MXP_FMT_Q4_0, 2, GG(q3_K, IMPL)), \
        ROW(MXP_FMT_Q4_K, "q4_K", 256, 144, 0, MXP_ACT_Q8_K, false, 12, MXP_FMT_Q5_0, 2, GG(q4_K, IMPL)), \
        ROW(MXP_FMT_Q5_K, "q5_K", 256, 176, 0, MXP_ACT_Q8_K, false, 13, MXP_FMT_Q5_1, 2, GG(q5_K, IMPL)), \
        ROW(MXP_FMT_Q6_K, "q6_K", 256, 210, 0, MXP_ACT_Q8_K, false, 14, MXP_FMT_Q8_0, 2, GG(q6_K, IMPL)), \
        ROW(MXP_FMT_IQ4_NL, "iq4_nl", 32, 18, 0, MXP_ACT_Q8_0, false, 20, -1, 2, GG(iq4_nl, IMPL)),       \
    }

static const mxp_format formats_ref[MXP_FMT_COUNT] = MXP_FORMAT_TABLE(ref);
static const mxp_format formats_avx2[MXP_FMT_COUNT] = MXP_FORMAT_TABLE(avx2);

// CPUID leaf 1: ECX bit 12 FMA, 27 OSXSAVE, 28 AVX, 29 F16C; leaf 7: EBX bit 5 AVX2; and the
// OS must save the YMM state (XCR0 bits 1 and 2). Read directly: clang's
// __builtin_cpu_supports does not know "f16c".
static bool detect_avx2(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!(fma && osxsave && avx && f16c)) return false;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6) != 6) return false;
    if (__get_cpuid_max(0, NULL) < 7) return false;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 5) & 1;
}

// The dispatch is decided once per process (CPUID is slow under virtualisation and the
// answer cannot change): whether the CPU has the AVX2 set, and whether MXP_FORCE_REF=1 in the
// environment at the first call forces the scalar reference kernels everywhere.
static pthread_once_t dispatch_once = PTHREAD_ONCE_INIT;
static bool cpu_avx2, chosen_avx2;  // written once, inside dispatch_once

static void decide_dispatch(void) {
    cpu_avx2 = detect_avx2();
    const char *force = getenv("MXP_FORCE_REF");
    chosen_avx2 = cpu_avx2 && !(force && strcmp(force, "1") == 0);
}

bool mxp_cpu_has_avx2(void) {
    pthread_once(&dispatch_once, decide_dispatch);
    return cpu_avx2;
}

static bool use_avx2(void) {
    pthread_once(&dispatch_once, decide_dispatch);
    return chosen_avx2;
}

const char *mxp_kernel_impl_name(void) { return use_avx2() ? "avx2" : "ref"; }

const mxp_format *mxp_format_get_impl(mxp_format_id id, mxp_impl impl) {
    MXP_ASSERT(id >= 0 && id < MXP_FMT_COUNT);
    bool avx2 = impl == MXP_IMPL_AVX2 || (impl == MXP_IMPL_AUTO && use_avx2());
    if (impl == MXP_IMPL_AVX2) MXP_ASSERT(mxp_cpu_has_avx2());
    return avx2 ? &formats_avx2[id] : &formats_ref[id];
}

const mxp_format *mxp_format_get(mxp_format_id id) { return mxp_format_get_impl(id, MXP_IMPL_AUTO); }

mxp_status mxp_format_parse(const char *name, mxp_format_id *out, mxp_err *err) {
    for (int i = 0; i < MXP_FMT_COUNT; i++) {
        if (name && strcasecmp(name, formats_ref[i].name) == 0) {
            *out = (mxp_format_id)i;
            return MXP_OK;
        }
    }
    char list[256] = "";
    for (int i = 0; i < MXP_FMT_COUNT; i++) {
        strcat(list, formats_ref[i].name);
        if (i + 1 < MXP_FMT_COUNT) strcat(list, ", ");
    }
    return mxp_fail(err, MXP_ERR_ARG, "unknown format '%s' (valid formats: %s)",
                    name ? name : "(null)", list);
}

const char *mxp_format_name(int id) { return id >= 0 && id < MXP_FMT_COUNT ? formats_ref[id].name : NULL; }

const char *mxp_act_name(mxp_act_id a) {
    static const char *const names[MXP_ACT_COUNT] = {"f32", "f16", "bf16", "q8_0", "q8_1", "q8_K"};
    MXP_ASSERT(a >= 0 && a < MXP_ACT_COUNT);
    return names[a];
}

bool mxp_format_fit(mxp_format_id want, int64_t I, mxp_format_id *out) {
    MXP_ASSERT(want >= 0 && want < MXP_FMT_COUNT && I > 0);
    const mxp_format *f = &formats_ref[want];
    if (I % f->block_size == 0) {
        *out = want;
        return true;
    }
    *out = f->has_fallback && I % formats_ref[f->fallback].block_size == 0 ? f->fallback : MXP_FMT_F16;
    return false;
}

size_t mxp_row_bytes(const mxp_format *fmt, int n) {
    MXP_ASSERT(n > 0 && n % fmt->block_size == 0);
    return (size_t)fmt->row_prefix_bytes + (size_t)(n / fmt->block_size) * (size_t)fmt->block_bytes;
}

mxp_status mxp_format_row_bytes_checked(mxp_format_id id, int64_t n, size_t *out, mxp_err *err) {
    if (id < 0 || id >= MXP_FMT_COUNT) return mxp_fail(err, MXP_ERR_ARG, "bad format id %d", (int)id);
    const mxp_format *f = &formats_ref[id];
    if (n <= 0 || n > INT32_MAX)
        return mxp_fail(err, MXP_ERR_ARG, "format %s: row length %lld out of range (1..%d)", f->name,
                        (long long)n, INT32_MAX);
    if (n % f->block_size != 0)
        return mxp_fail(err, MXP_ERR_ARG,
                        "format %s: row length %lld is not a multiple of the block size %d",
                        f->name, (long long)n, f->block_size);
    size_t b;
    if (!mxp_mul_ok((size_t)(n / f->block_size), (size_t)f->block_bytes, &b) ||
        !mxp_add_ok(b, (size_t)f->row_prefix_bytes, &b))
        return mxp_fail(err, MXP_ERR_NOMEM, "format %s: row of %lld elements overflows size_t",
                        f->name, (long long)n);
    *out = b;
    return MXP_OK;
}

mxp_status mxp_format_matrix_bytes(mxp_format_id id, int64_t O, int64_t I, size_t *out, mxp_err *err) {
    size_t rb;
    mxp_status st = mxp_format_row_bytes_checked(id, I, &rb, err);
    if (st) return st;
    if (O <= 0 || O > INT32_MAX)
        return mxp_fail(err, MXP_ERR_ARG, "format %s: row count %lld out of range (1..%d)",
                        formats_ref[id].name, (long long)O, INT32_MAX);
    if (!mxp_mul_ok(rb, (size_t)O, out))
        return mxp_fail(err, MXP_ERR_NOMEM, "format %s: matrix (%lld, %lld) overflows size_t",
                        formats_ref[id].name, (long long)O, (long long)I);
    return MXP_OK;
}

mxp_status mxp_quantize_check_values_at(mxp_format_id id, const float *w, int O, int I, int64_t row0, const char *name,
                                        mxp_err *err) {
    if (!name) name = "(unnamed)";
    const mxp_format *f = mxp_format_get(id);
    // Element formats with a smaller range than f32: values that would round to inf.
    const float lim = id == MXP_FMT_F16    ? 65520.0f  // half way from 65504 up: rounds to inf
                      : id == MXP_FMT_BF16 ? mxp_bits_f32(0x7F7F8000u)  // same for bf16
                                           : INFINITY;
    for (size_t k = 0; k < (size_t)O * (size_t)I; k++) {
        if (!isfinite(w[k]))
            return mxp_fail(err, MXP_ERR_ARG, "tensor %s: non-finite weight %g at row %zu column %zu",
                            name, (double)w[k], (size_t)row0 + k / (size_t)I, k % (size_t)I);
        if (fabsf(w[k]) >= lim)
            return mxp_fail(err, MXP_ERR_ARG, "tensor %s: weight %g at row %zu column %zu overflows %s",
                            name, (double)w[k], (size_t)row0 + k / (size_t)I, k % (size_t)I, f->name);
    }
    return MXP_OK;
}

mxp_status mxp_quantize_check_values(mxp_format_id id, const float *w, int O, int I, const char *name,
                                     mxp_err *err) {
    return mxp_quantize_check_values_at(id, w, O, I, 0, name, err);
}

mxp_status mxp_quantize_rows(mxp_format_id id, const float *w, int O, int I, void *out, int *bad_row,
                             const char *name, mxp_err *err) {
    if (!name) name = "(unnamed)";
    const mxp_format *f = mxp_format_get(id);
    const size_t rb = mxp_row_bytes(f, I);
    uint8_t *o8 = out;
    *bad_row = -1;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < O; r++) f->quantize_row(w + (size_t)r * I, o8 + (size_t)r * rb, I);
    // Block formats store f16 scales, which overflow for weights too large for them: the row
    // then reads back with an inf or a NaN. (The element formats' values are checked before.)
    if (f->block_size == 1) return MXP_OK;
    const int nthr = omp_get_max_threads();
    float *ybuf = malloc((size_t)nthr * (size_t)I * sizeof *ybuf);  // one row per thread
    if (!ybuf) return mxp_fail(err, MXP_ERR_NOMEM, "tensor %s: out of memory checking the %s scales", name, f->name);
    int bad = -1;
#pragma omp parallel num_threads(nthr)
    {
        float *y = ybuf + (size_t)omp_get_thread_num() * (size_t)I;
#pragma omp for schedule(static) reduction(max : bad)
        for (int r = 0; r < O; r++) {
            f->dequantize_row(o8 + (size_t)r * rb, y, I);
            for (int i = 0; i < I; i++)
                if (!isfinite(y[i]) && r > bad) bad = r;
        }
    }
    free(ybuf);
    *bad_row = bad;
    return MXP_OK;
}

mxp_status mxp_quantize_out_check(mxp_format_id id, int O, int I, size_t out_bytes, const char *name, mxp_err *err) {
    size_t need = 0;
    mxp_status st = mxp_format_matrix_bytes(id, O, I, &need, err);
    if (st) return mxp_fail_prefix(err, "tensor %s: ", name);
    if (out_bytes < need)
        return mxp_fail(err, MXP_ERR_ARG, "tensor %s: output buffer of %zu bytes < %zu needed for %s (%d, %d)",
                        name, out_bytes, need, mxp_format_get(id)->name, O, I);
    return MXP_OK;
}

mxp_status mxp_quantize_matrix(mxp_format_id id, const float *w, int O, int I, void *out,
                               size_t out_bytes, const char *name, mxp_err *err) {
    if (!name) name = "(unnamed)";
    mxp_status st = mxp_quantize_out_check(id, O, I, out_bytes, name, err);
    if (st) return st;
    const mxp_format *f = mxp_format_get(id);
    // Validate first (serial scan: cheap next to quantization, and gives the first bad index).
    st = mxp_quantize_check_values(id, w, O, I, name, err);
    if (st) return st;
    int bad_row;
    st = mxp_quantize_rows(id, w, O, I, out, &bad_row, name, err);
    if (st) return st;
    if (bad_row >= 0)
        return mxp_fail(err, MXP_ERR_ARG, "tensor %s: a %s scale of row %d overflows f16 (weights too large for %s)",
                        name, f->name, bad_row, f->name);
    return MXP_OK;
}

void mxp_fake_quant_weight_row(const mxp_format *fmt, const float *x, float *y, int n, void *scratch) {
    fmt->quantize_row(x, scratch, n);
    fmt->dequantize_row(scratch, y, n);
}

// q8_0 / q8_1 activation rounding with a given kernel: block by block so no scratch is
// needed; the same kernels as the matmul.
static void act_q8_row(mxp_quantize_act_fn q, const float *x, float *y, int n) {
    MXP_ASSERT(n % MXP_QK == 0);
    for (int i = 0; i < n; i += MXP_QK) {
        int8_t qs[MXP_QK];
        float d;
        q(x + i, qs, &d, MXP_QK);
        for (int j = 0; j < MXP_QK; j++) y[i + j] = (float)qs[j] * d;
    }
}

void mxp_act_round_row(mxp_act_id a, const float *x, float *y, int n) {
    switch (a) {
    case MXP_ACT_F32:
        if (y != x) memmove(y, x, (size_t)n * sizeof *y);
        return;
    case MXP_ACT_F16:
    case MXP_ACT_BF16: {  // the weight kernels of f16/bf16 (AVX2 when dispatched), 256 at a time
        const mxp_format *f = mxp_format_get(a == MXP_ACT_F16 ? MXP_FMT_F16 : MXP_FMT_BF16);
        uint16_t h[256];
        for (int i = 0; i < n; i += 256) {
            const int len = n - i < 256 ? n - i : 256;
            f->quantize_row(x + i, h, len);
            f->dequantize_row(h, y + i, len);
        }
        return;
    }
    case MXP_ACT_Q8_0:
    case MXP_ACT_Q8_1:  // the same values (the contract in format.h)
        act_q8_row(mxp_format_get(MXP_FMT_Q8_0)->quantize_act, x, y, n);
        return;
    case MXP_ACT_Q8_K:
        mxp_act_round_q8_K(x, y, n);
        return;
    case MXP_ACT_COUNT:
        break;
    }
    MXP_ASSERT(!"bad activation id");
}

void mxp_fake_quant_act_row(const mxp_format *fmt, const float *x, float *y, int n) {
    if (fmt->int_dot)
        act_q8_row(fmt->quantize_act, x, y, n);  // this table's kernel (ref or avx2: same values)
    else
        mxp_act_round_row(fmt->act, x, y, n);
}
