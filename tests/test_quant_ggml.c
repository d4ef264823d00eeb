// test_quant_ggml.c: mixprec's formats are ggml's, checked against ggml itself.
//  1. The table agrees with ggml's type traits: name, block elements, block bytes, row bytes;
//     no format needs an importance matrix (ggml_quantize_requires_imatrix).
//  2. Every format with a GGML type writes exactly ggml_quantize_chunk's bytes and reads them
//     back exactly as the type traits' to_float does, with both kernel sets, on random rows
//     at many scales and on edge cases (zero blocks, blocks whose f16 scale underflows or is
//     subnormal, exact ties of the rounding rule, one large element among small ones).
//  3. The round trip of the formats whose kernels are ggml's is a quantizer at their bit
//     width (relative RMS error below a loose bound: a wrong type mapping is far off).
//  4. Activation rounding is llama.cpp's CPU backend's: the x86 backend library llama.cpp
//     would load on this CPU (the libggml-cpu-*.so of node-llama-cpp with the highest
//     ggml_backend_score) is opened with dlopen and its quantize_row_q8_0, quantize_row_q8_1,
//     quantize_row_q8_K (the from_float of each vec_dot_type), ggml_cpu_fp32_to_fp16 and
//     ggml_cpu_fp32_to_bf16 are compared with mixprec's activation kernels bit for bit.
#include <dirent.h>
#include <dlfcn.h>
#include <ggml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "quant/format.h"
#include "test_quant_util.h"

enum { N = 1024 };  // a multiple of every block size

// Test rows: kind 0..7 = edge cases, the rest random at a spread of scales.
static void make_row(tq_rng *r, int kind, float *x) {
    static const float scales[] = {1.0f, 0.02f, 1e-3f, 3e-5f, 2e-6f, 1e-8f, 40.0f, 1e3f};
    switch (kind) {
    case 0:  // all zero
        memset(x, 0, N * sizeof *x);
        break;
    case 1:  // zero blocks among random ones
        tq_fill(r, x, N, 1.0f);
        for (int i = 0; i < N; i += 64) memset(x + i, 0, 32 * sizeof *x);
        break;
    case 2:  // q8_0 ties: amax 127 * 2^-k gives d = 2^-k and x / d = q + 0.5 exactly
        for (int i = 0; i < N; i++) x[i] = (float)(((int)(tq_u32(r) % 253) - 126) + 0.5) * 0x1p-4f;
        for (int i = 0; i < N; i += 32) x[i] = 127 * 0x1p-4f;
        break;
    case 3:  // q4_0 ties: largest -8 * 2^-k, elements on half steps
        for (int i = 0; i < N; i++) x[i] = (float)((int)(tq_u32(r) % 15) - 7 + 0.5) * 0.25f;
        for (int i = 0; i < N; i += 32) x[i] = -8 * 0.25f;
        break;
    case 4:  // one large element per block among small ones
        tq_fill(r, x, N, 1e-3f);
        for (int i = 0; i < N; i += 32) x[i + (int)(tq_u32(r) % 32)] = (tq_u32(r) & 1) ? 50.0f : -50.0f;
        break;
    case 5:  // scales whose f16 rounds to 0 or to a subnormal
        tq_fill(r, x, N, 1e-7f);
        break;
    case 6:  // f16/bf16 rounding boundaries: halfway values
        for (int i = 0; i < N; i++) x[i] = (1.0f + ((float)(tq_u32(r) % 1024) + 0.5f) / 1024.0f) * ((i & 1) ? -1 : 1);
        break;
    case 7:  // integers
        for (int i = 0; i < N; i++) x[i] = (float)((int)(tq_u32(r) % 41) - 20);
        break;
    default:
        tq_fill(r, x, N, scales[kind % 8]);
    }
}

static void test_traits(void) {
    for (int fi = 0; fi < MXP_FMT_COUNT; fi++) {
        const mxp_format *f = mxp_format_get((mxp_format_id)fi);
        if (!f->has_ggml_type) continue;
        const enum ggml_type t = (enum ggml_type)f->ggml_type;
        const struct ggml_type_traits *tr = ggml_get_type_traits(t);
        CHECK(!strcmp(f->name, ggml_type_name(t)), "%s: ggml calls type %u %s", f->name, f->ggml_type, ggml_type_name(t));
        CHECK(f->block_size == ggml_blck_size(t) && (size_t)f->block_bytes == ggml_type_size(t),
              "%s: block %d x %d bytes, ggml %lld x %zu", f->name, f->block_size, f->block_bytes,
              (long long)ggml_blck_size(t), ggml_type_size(t));
        CHECK(mxp_row_bytes(f, N) == ggml_row_size(t, N), "%s row bytes", f->name);
        CHECK(!ggml_quantize_requires_imatrix(t), "%s needs no importance matrix", f->name);
        CHECK(t == GGML_TYPE_F32 || tr->to_float != NULL, "%s has a to_float", f->name);
    }
}

static void test_bytes(void) {
    static float x[N], y0[N], y1[N];
    static uint8_t got[N * 4], want[N * 4];
    tq_rng r = {314};
    for (int impl = MXP_IMPL_REF; impl <= MXP_IMPL_AVX2; impl++) {
        if (impl == MXP_IMPL_AVX2 && !mxp_cpu_has_avx2()) break;
        for (int fi = 0; fi < MXP_FMT_COUNT; fi++) {
            const mxp_format *f = mxp_format_get_impl((mxp_format_id)fi, (mxp_impl)impl);
            if (!f->has_ggml_type) continue;
            const enum ggml_type t = (enum ggml_type)f->ggml_type;
            int bad_q = 0, bad_d = 0;
            for (int kind = 0; kind < 64; kind++) {
                make_row(&r, kind, x);
                const size_t rb = mxp_row_bytes(f, N);
                memset(got, 0xAB, rb);
                memset(want, 0xCD, rb);
                f->quantize_row(x, got, N);
                CHECK(ggml_quantize_chunk(t, x, want, 0, 1, N, NULL) == rb, "%s ggml row size", f->name);
                if (memcmp(got, want, rb) && bad_q++ < 2) {
                    size_t k = 0;
                    while (got[k] == want[k]) k++;
                    fprintf(stderr, "%s/%s row kind %d: byte %zu is %02x, ggml %02x\n", f->name, f->impl, kind, k,
                            got[k], want[k]);
                }
                f->dequantize_row(want, y0, N);
                if (t == GGML_TYPE_F32)  // ggml has no conversion for f32: the bytes are the values
                    memcpy(y1, want, sizeof y1);
                else
                    ggml_get_type_traits(t)->to_float(want, y1, N);
                if (memcmp(y0, y1, sizeof y0) && bad_d++ < 2)
                    fprintf(stderr, "%s/%s row kind %d: dequantized values differ from ggml's\n", f->name, f->impl, kind);
            }
            CHECK(bad_q == 0, "%s (%s): %d of 64 rows not ggml_quantize_chunk's bytes", f->name, f->impl, bad_q);
            CHECK(bad_d == 0, "%s (%s): %d of 64 rows not dequantized as ggml's to_float", f->name, f->impl, bad_d);
        }
    }
}

// Relative RMS error of the round trip on Gaussian rows, against a loose bound per bit width
// (the data has 8x outliers, 1 in 64; measured errors are about two thirds of these bounds,
// 0.10 for q4_K, 0.34 for q2_K; a wrong type or layout gives errors near 1).
static void test_roundtrip(void) {
    static const struct { mxp_format_id f; double bound; } b[] = {
        {MXP_FMT_Q4_1, 0.15}, {MXP_FMT_Q5_0, 0.11}, {MXP_FMT_Q5_1, 0.075}, {MXP_FMT_Q2_K, 0.5},
        {MXP_FMT_Q3_K, 0.3},  {MXP_FMT_Q4_K, 0.15}, {MXP_FMT_Q5_K, 0.075}, {MXP_FMT_Q6_K, 0.04},
        {MXP_FMT_IQ4_NL, 0.16},
    };
    static float x[N], y[N];
    static uint8_t q[N * 4];
    tq_rng r = {9};
    for (size_t k = 0; k < sizeof b / sizeof *b; k++) {
        const mxp_format *f = mxp_format_get(b[k].f);
        double se = 0, sx = 0;
        for (int rep = 0; rep < 16; rep++) {
            tq_fill(&r, x, N, 0.02f);
            mxp_fake_quant_weight_row(f, x, y, N, q);
            for (int i = 0; i < N; i++) se += ((double)y[i] - x[i]) * ((double)y[i] - x[i]), sx += (double)x[i] * x[i];
        }
        const double rel = sqrt(se / sx);
        CHECK(rel < b[k].bound, "%s round trip: relative RMS error %.4f >= %.2f", f->name, rel, b[k].bound);
        fprintf(stderr, "%s round trip: relative RMS error %.4f\n", f->name, rel);
    }
}

// ---- activations vs llama.cpp's CPU backend ----

typedef void (*from_float_fn)(const float *x, void *y, int64_t n);
typedef struct cpu_backend {
    void *lib;
    char name[256];
    from_float_fn q8_0, q8_1, q8_K, f16, bf16;
} cpu_backend;

// The CPU backend llama.cpp loads here: the variant with the highest ggml_backend_score.
static int open_best_backend(cpu_backend *cb) {
    DIR *d = opendir(MXP_GGML_LIB_DIR);
    if (!d) return 0;
    int best = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "libggml-cpu-", 12) || !strstr(e->d_name, ".so")) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", MXP_GGML_LIB_DIR, e->d_name);
        void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!lib) continue;
        int (*score)(void) = (int (*)(void))dlsym(lib, "ggml_backend_score");
        int s = score ? score() : 0;
        if (s > best) {
            if (cb->lib) dlclose(cb->lib);
            best = s;
            cb->lib = lib;
            snprintf(cb->name, sizeof cb->name, "%s", e->d_name);
        } else {
            dlclose(lib);
        }
    }
    closedir(d);
    if (!cb->lib) return 0;
    void (*init)(void) = (void (*)(void))dlsym(cb->lib, "ggml_cpu_init");
    if (init) init();
    cb->q8_0 = (from_float_fn)dlsym(cb->lib, "quantize_row_q8_0");
    cb->q8_1 = (from_float_fn)dlsym(cb->lib, "quantize_row_q8_1");
    cb->q8_K = (from_float_fn)dlsym(cb->lib, "quantize_row_q8_K");
    cb->f16 = (from_float_fn)dlsym(cb->lib, "ggml_cpu_fp32_to_fp16");
    cb->bf16 = (from_float_fn)dlsym(cb->lib, "ggml_cpu_fp32_to_bf16");
    return cb->q8_0 && cb->q8_1 && cb->q8_K && cb->f16 && cb->bf16;
}

static void test_activations(void) {
    cpu_backend cb = {0};
    int ok = open_best_backend(&cb);
    CHECK(ok, "no llama.cpp CPU backend with the activation converters could be opened in %s (run scripts/deps.sh)",
          MXP_GGML_LIB_DIR);
    if (!ok) return;
    fprintf(stderr, "llama.cpp CPU backend for this machine: %s\n", cb.name);
    static float x[N], got[N], want[N];
    static int8_t qs[N];
    static float d[N / 32];
    static uint8_t blk[N * 2];
    tq_rng r = {2718};
    int bad[6] = {0};
    for (int kind = 0; kind < 64; kind++) {
        make_row(&r, kind, x);
        // q8_0 / q8_1 blocks: (f16 d, [f16 s,] 32 x int8) -> mixprec's unpacked form, both kernel sets
        for (int v = 0; v < 2; v++) {
            const int bb = v == 0 ? 34 : 36, off = v == 0 ? 2 : 4;
            (v == 0 ? cb.q8_0 : cb.q8_1)(x, blk, N);
            for (int impl = MXP_IMPL_REF; impl <= MXP_IMPL_AVX2; impl++) {
                if (impl == MXP_IMPL_AVX2 && !mxp_cpu_has_avx2()) break;
                mxp_format_get_impl(MXP_FMT_Q8_0, (mxp_impl)impl)->quantize_act(x, qs, d, N);
                for (int b = 0; b < N / 32; b++) {
                    uint16_t dh;
                    memcpy(&dh, blk + b * bb, 2);
                    if (memcmp(qs + b * 32, blk + b * bb + off, 32) || d[b] != mxp_f16_to_f32(dh)) {
                        if (bad[v]++ < 3) fprintf(stderr, "q8_%d activations, row kind %d block %d differ\n", v, kind, b);
                        break;
                    }
                }
            }
            mxp_act_round_row(v == 0 ? MXP_ACT_Q8_0 : MXP_ACT_Q8_1, x, got, N);
            for (int b = 0; b < N / 32; b++) {
                uint16_t dh;
                memcpy(&dh, blk + b * bb, 2);
                for (int j = 0; j < 32; j++) want[b * 32 + j] = (float)((int8_t)blk[b * bb + off + j]) * mxp_f16_to_f32(dh);
            }
            if (memcmp(got, want, sizeof got) && bad[v]++ < 3) fprintf(stderr, "q8_%d rounded row, kind %d differs\n", v, kind);
        }
        // q8_K: (f32 d, 256 x int8, 16 x int16) read back as d * q
        cb.q8_K(x, blk, N);
        for (int b = 0; b < N / 256; b++) {
            float dk;
            memcpy(&dk, blk + b * 292, 4);
            for (int j = 0; j < 256; j++) want[b * 256 + j] = dk * (float)(int8_t)blk[b * 292 + 4 + j];
        }
        mxp_act_round_row(MXP_ACT_Q8_K, x, got, N);
        if (memcmp(got, want, sizeof got) && bad[2]++ < 3) fprintf(stderr, "q8_K activations, row kind %d differ\n", kind);
        // f16, bf16
        for (int v = 0; v < 2; v++) {
            uint16_t h[N];
            (v == 0 ? cb.f16 : cb.bf16)(x, h, N);
            for (int i = 0; i < N; i++) want[i] = v == 0 ? mxp_f16_to_f32(h[i]) : mxp_bf16_to_f32(h[i]);
            mxp_act_round_row(v == 0 ? MXP_ACT_F16 : MXP_ACT_BF16, x, got, N);
            if (memcmp(got, want, sizeof got) && bad[3 + v]++ < 3)
                fprintf(stderr, "%s activations, row kind %d differ\n", v == 0 ? "f16" : "bf16", kind);
        }
    }
    static const char *const what[] = {"q8_0", "q8_1", "q8_K", "f16", "bf16"};
    for (int k = 0; k < 5; k++)
        CHECK(bad[k] == 0, "%s activations differ from llama.cpp's CPU backend (%s) on %d rows", what[k], cb.name, bad[k]);
    dlclose(cb.lib);
}

int main(void) {
    test_traits();
    test_bytes();
    test_roundtrip();
    test_activations();
    CHECK_DONE();
}
