// matmul.c: y (T, O) = x (T, I) @ W^T for a W in any format, and its scratch.
// Two paths, chosen per format by T (fmt->sgemm_min_T, measured):
//  - dot path: OpenMP threads split the output rows; each (o, t) is one fmt->dot call, so
//    every y element is computed by one thread in a fixed order (thread-count independent).
//    Integer-dot formats quantize each activation row to q8 once, shared by all rows of W.
//  - sgemm path: each thread dequantizes fixed chunks of W rows into f32 and multiplies them
//    with single-threaded OpenBLAS sgemm; integer-dot formats multiply the q8-fake-quantized
//    activations, so the result equals the dot path's up to float rounding.
// Every other format first rounds the activations as llama.cpp does (fmt->act: f16, bf16,
// q8_0/q8_1 or q8_K values, in f32) and then takes either path with f32 activations. For
// the formats whose kernels are ggml's dequantizer (q4_1 ... iq4_nl) this is mixprec's way of
// getting llama.cpp's values, not its speed: llama.cpp dots the packed bytes directly.
// f32 always calls OpenBLAS (sgemv for T == 1) on the same fixed chunks. Must not run inside
// an OpenMP region.
#include "quant/quant_internal.h"

#include <cblas.h>
#include <omp.h>
#undef I  // openblas_config.h pulls in <complex.h>, whose I would clash with our dimension names

#define ALIGN64(n) (((n) + (size_t)63) & ~(size_t)63)

// The output rows are cut into fixed chunks that depend only on (I, O), never on the thread
// count; each chunk is computed by one thread with single-threaded BLAS calls (OpenBLAS runs
// on one thread inside an OpenMP region). That makes every path, f32 included, give the
// same bits for any thread count (OpenBLAS's own threading does not).
// Chunk rows: ~2 MB of f32 per chunk (a multiple of 16, at least 16) for sgemm tiles; 64
// rows for sgemv.
static int chunk_rows(int I, int O) {
    int r = (int)((1u << 19) / (unsigned)I) & ~15;
    if (r < 16) r = 16;
    return r < O ? r : O;
}

static bool use_sgemm(const mxp_format *f, int T) {
    return f->id == MXP_FMT_F32 ? T > 1 : T >= f->sgemm_min_T;
}

// Scratch layout (each part 64-byte aligned): [q8 act: qs (T, I) int8, d (T, I/32) f32]
// [rounded act (T, I) f32] [per-thread W tiles: slots x (chunk_rows, I) f32];
// parts a path does not use are absent.
typedef struct layout {
    size_t qs, d, xf, tile, tile_bytes, total;
} layout;

static layout scratch_layout(const mxp_format *f, int T, int I, int O, int slots) {
    layout L = {0};
    size_t off = 0;
    const bool sg = use_sgemm(f, T);
    if (f->id == MXP_FMT_F32) return L;
    if (f->int_dot) {
        L.qs = off;
        off += ALIGN64((size_t)T * I);
        L.d = off;
        off += ALIGN64((size_t)T * (I / MXP_QK) * sizeof(float));
    }
    if ((f->int_dot && sg) || (!f->int_dot && f->act != MXP_ACT_F32)) {
        L.xf = off;
        off += ALIGN64((size_t)T * I * sizeof(float));
    }
    if (sg) {
        L.tile = off;
        L.tile_bytes = ALIGN64((size_t)chunk_rows(I, O) * I * sizeof(float));
        off += L.tile_bytes * (size_t)slots;
    }
    L.total = off;
    return L;
}

size_t mxp_matmul_scratch_bytes(mxp_format_id id, int T, int I, int O) {
    MXP_ASSERT(T > 0 && I > 0 && O > 0);
    return scratch_layout(mxp_format_get(id), T, I, O, omp_get_max_threads()).total;
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

static void matmul_f32(float *y, const float *w, const float *x, int T, int I, int O) {
    const int cr = T == 1 ? (O < 64 ? O : 64) : chunk_rows(I, O);
    const int nch = (O + cr - 1) / cr;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < nch; c++) {
        const int o0 = c * cr, n = O - o0 < cr ? O - o0 : cr;
        if (T == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, n, I, 1.0f, w + (size_t)o0 * I, I, x, 1, 0.0f, y + o0, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, n, I, 1.0f, x, I, w + (size_t)o0 * I, I, 0.0f,
                        y + o0, O);
    }
}

void mxp_matmul_fmt(float *y, const mxp_format *f, const void *w, const float *x, int T, int I,
                    int O, mxp_quant_scratch *s) {
    MXP_ASSERT(T > 0 && I > 0 && O > 0 && I % f->block_size == 0);
    if (f->id == MXP_FMT_F32) {
        matmul_f32(y, w, x, T, I, O);
        return;
    }
    const layout L1 = scratch_layout(f, T, I, O, 1);
    MXP_ASSERT(L1.total == 0 || (s && s->buf && s->bytes >= L1.total));
    // Tile slots the caller's scratch holds (>= 1): caps the threads of the sgemm path.
    const int slots = L1.tile_bytes ? (int)((s->bytes - L1.tile) / L1.tile_bytes) : 1;
    const layout L = scratch_layout(f, T, I, O, slots);
    uint8_t *sb = L.total ? s->buf : NULL;
    const size_t rb = mxp_row_bytes(f, I);
    const uint8_t *w8 = w;

    const bool q8act = f->int_dot;
    int8_t *qs = q8act ? (int8_t *)(sb + L.qs) : NULL;  // (T, I)
    float *qd = q8act ? (float *)(sb + L.d) : NULL;     // (T, I/32)
    const int nb = I / MXP_QK;
    if (q8act) {
#pragma omp parallel for schedule(static) if (T > 1)
        for (int t = 0; t < T; t++)
            f->quantize_act(x + (size_t)t * I, qs + (size_t)t * I, qd + (size_t)t * nb, I);
    }

    const float *xa = x;  // (T, I) activations as the kernels see them (non-integer dots)
    if (!q8act && f->act != MXP_ACT_F32) {
        float *xf = (float *)(sb + L.xf);
#pragma omp parallel for schedule(static) if (T > 1)
        for (int t = 0; t < T; t++) mxp_act_round_row(f->act, x + (size_t)t * I, xf + (size_t)t * I, I);
        xa = xf;
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
                    y[(size_t)t * O + o] = f->dot(I, wr, xa + (size_t)t * I);
                }
            }
        }
        return;
    }

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
    const int cr = chunk_rows(I, O), nch = (O + cr - 1) / cr;
    int nthr = omp_get_max_threads();
    if (nthr > slots) nthr = slots;
#pragma omp parallel num_threads(nthr)
    {
        float *tile = (float *)(sb + L.tile + L.tile_bytes * (size_t)omp_get_thread_num());  // (cr, I)
#pragma omp for schedule(static)
        for (int c = 0; c < nch; c++) {
            const int o0 = c * cr, n = O - o0 < cr ? O - o0 : cr;
            for (int r = 0; r < n; r++) f->dequantize_row(w8 + (size_t)(o0 + r) * rb, tile + (size_t)r * I, I);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, n, I, 1.0f, xa, I, tile, I, 0.0f, y + o0, O);
        }
    }
}

void mxp_matmul(float *y, mxp_format_id id, const void *w, const float *x, int T, int I, int O,
                mxp_quant_scratch *s) {
    mxp_matmul_fmt(y, mxp_format_get(id), w, x, T, I, O, s);
}
