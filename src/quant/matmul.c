// matmul.c: y (T, O) = x (T, I) @ W^T for a W in any format, and its scratch.
// Two paths, chosen per format by T (fmt->sgemm_min_T, measured):
//  - dot path: OpenMP threads split the output rows; each (o, t) is one fmt->dot call, so
//    every y element is computed by one thread in a fixed order (thread-count independent).
//    Integer-dot formats quantize each activation row to q8 once, shared by all rows of W.
//  - sgemm path: W is dequantized tile by tile (rows split across threads) into f32 and
//    multiplied with OpenBLAS sgemm; integer-dot formats multiply the q8-fake-quantized
//    activations, so the result equals the dot path's up to float rounding.
// f32 always calls OpenBLAS (sgemv for T == 1). Must not run inside an OpenMP region.
#include "quant/quant_internal.h"

#include <cblas.h>
#undef I  // openblas_config.h pulls in <complex.h>, whose I would clash with our dimension names

#define ALIGN64(n) (((n) + (size_t)63) & ~(size_t)63)

// Rows of W dequantized per sgemm tile: ~4 MB of f32, a multiple of 16, at least 16.
static int tile_rows(int I, int O) {
    int r = (int)((1u << 20) / (unsigned)I) & ~15;
    if (r < 16) r = 16;
    return r < O ? r : O;
}

static bool use_sgemm(const mxp_format *f, int T) {
    return f->id == MXP_FMT_F32 ? T > 1 : T >= f->sgemm_min_T;
}

// Scratch layout (each part 64-byte aligned): [q8 act: qs (T, I) int8, d (T, I/32) f32]
// [fake-quant act (T, I) f32] [W tile (tile_rows, I) f32]; parts a path does not use are absent.
typedef struct layout {
    size_t qs, d, xf, tile, total;
} layout;

static layout scratch_layout(const mxp_format *f, int T, int I, int O) {
    layout L = {0};
    size_t off = 0;
    const bool sg = use_sgemm(f, T);
    if (f->id == MXP_FMT_F32) return L;
    if (f->act_format == MXP_FMT_Q8_0) {
        L.qs = off;
        off += ALIGN64((size_t)T * I);
        L.d = off;
        off += ALIGN64((size_t)T * (I / MXP_QK) * sizeof(float));
        if (sg) {
            L.xf = off;
            off += ALIGN64((size_t)T * I * sizeof(float));
        }
    }
    if (sg) {
        L.tile = off;
        off += ALIGN64((size_t)tile_rows(I, O) * I * sizeof(float));
    }
    L.total = off;
    return L;
}

size_t mxp_matmul_scratch_bytes(mxp_format_id id, int T, int I, int O) {
    MXP_ASSERT(T > 0 && I > 0 && O > 0);
    return scratch_layout(mxp_format_get(id), T, I, O).total;
}

mxp_status mxp_quant_scratch_reserve(mxp_quant_scratch *s, size_t bytes, mxp_err *err) {
    if (s->bytes >= bytes && s->buf) return MXP_OK;
    void *p = mxp_aligned_alloc(bytes);
    if (!p) return mxp_fail(err, MXP_ERR_NOMEM, "matmul scratch: cannot allocate %zu bytes", bytes);
    free(s->buf);
    s->buf = p;
    s->bytes = bytes;
    return MXP_OK;
}

void mxp_quant_scratch_free(mxp_quant_scratch *s) {
    free(s->buf);
    s->buf = NULL;
    s->bytes = 0;
}

void mxp_matmul_fmt(float *y, const mxp_format *f, const void *w, const float *x, int T, int I,
                    int O, mxp_quant_scratch *s) {
    MXP_ASSERT(T > 0 && I > 0 && O > 0 && I % f->block_size == 0);
    const layout L = scratch_layout(f, T, I, O);
    MXP_ASSERT(L.total == 0 || (s && s->buf && s->bytes >= L.total));
    uint8_t *sb = L.total ? s->buf : NULL;
    const size_t rb = mxp_row_bytes(f, I);
    const uint8_t *w8 = w;

    if (f->id == MXP_FMT_F32) {
        if (T == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, O, I, 1.0f, w, I, x, 1, 0.0f, y, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, O, I, 1.0f, x, I, w, I, 0.0f, y, O);
        return;
    }

    const bool q8act = f->act_format == MXP_FMT_Q8_0;
    int8_t *qs = q8act ? (int8_t *)(sb + L.qs) : NULL;  // (T, I)
    float *qd = q8act ? (float *)(sb + L.d) : NULL;     // (T, I/32)
    const int nb = I / MXP_QK;
    if (q8act) {
#pragma omp parallel for schedule(static) if (T > 1)
        for (int t = 0; t < T; t++)
            f->quantize_act(x + (size_t)t * I, qs + (size_t)t * I, qd + (size_t)t * nb, I);
    }

    if (!use_sgemm(f, T)) {
#pragma omp parallel for schedule(static)
        for (int o = 0; o < O; o++) {
            const void *wr = w8 + (size_t)o * rb;
            for (int t = 0; t < T; t++) {
                if (q8act) {
                    const mxp_q8_row a = {qs + (size_t)t * I, qd + (size_t)t * nb};
                    y[(size_t)t * O + o] = f->dot(I, wr, &a);
                } else {
                    y[(size_t)t * O + o] = f->dot(I, wr, x + (size_t)t * I);
                }
            }
        }
        return;
    }

    const float *xa = x;  // (T, I) activations as the kernels see them
    if (q8act) {
        float *xf = (float *)(sb + L.xf);
#pragma omp parallel for schedule(static)
        for (int t = 0; t < T; t++) {
            for (int b = 0; b < nb; b++) {
                const float d = qd[(size_t)t * nb + b];
                const int8_t *q = qs + (size_t)t * I + (size_t)b * MXP_QK;
                float *o = xf + (size_t)t * I + (size_t)b * MXP_QK;
                for (int j = 0; j < MXP_QK; j++) o[j] = (float)q[j] * d;
            }
        }
        xa = xf;
    }
    float *tile = (float *)(sb + L.tile);  // (tr, I)
    const int tr = tile_rows(I, O);
    for (int o0 = 0; o0 < O; o0 += tr) {
        const int n = O - o0 < tr ? O - o0 : tr;
#pragma omp parallel for schedule(static)
        for (int r = 0; r < n; r++) f->dequantize_row(w8 + (size_t)(o0 + r) * rb, tile + (size_t)r * I, I);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, n, I, 1.0f, xa, I, tile, I, 0.0f,
                    y + o0, O);
    }
}

void mxp_matmul(float *y, mxp_format_id id, const void *w, const float *x, int T, int I, int O,
                mxp_quant_scratch *s) {
    mxp_matmul_fmt(y, mxp_format_get(id), w, x, T, I, O, s);
}
