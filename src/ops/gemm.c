// gemm.c: deterministic tiled sgemm/sgemv on top of OpenBLAS (see gemm.h for why).
// Tiling: the output is split along one dimension into at most MAX_TILES tiles whose size is a
// multiple of 16 (a whole number of micro-kernel panels); the count depends on the shape only.
//
// A weight operand (the _w entry points) may be kept in bf16 or f16 (core/graph.h): each tile
// widens the block of the weight its BLAS call reads (a block of rows, or of columns, of W)
// into the caller's scratch, one buffer per thread, and makes exactly the call the f32 weight
// would get, on the same values: the same bits. Only a product cut along the other operand's
// rows reads all of W in every tile; W is then widened once for the call, into the shared
// front of the scratch (mxp_ops_wscratch_floats sizes it for the cases a shape can take).
#include "ops/gemm.h"
#include "quant/format.h"  // before cblas.h, whose complex.h defines I

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>

#define MAX_TILES 4     // tiles per call: even (two cores), small (each tile repacks the other operand)
#define MIN_TILE 64     // never cut a dimension into pieces thinner than this
#define TILE_ALIGN 16

// Tile size for splitting a dimension of length dim.
static int tile_size(int dim) {
    int nt = dim / MIN_TILE;
    if (nt > MAX_TILES) nt = MAX_TILES;
    if (nt < 1) nt = 1;
    int ts = (dim + nt - 1) / nt;
    return (ts + TILE_ALIGN - 1) / TILE_ALIGN * TILE_ALIGN;
}

// The long-K rule of mxp_ops_sgemm (see sgemm_split_k).
static int split_k_shape(int M, int N, int K) { return K >= 4096 && K >= 8 * (M > N ? M : N); }

// A matrix operand: f32 in memory (p, ld), or a parameter read through the accessor.
typedef struct opnd {
    const float *p;
    int ld;
    const mxp_param *w;  // non-NULL: a parameter stored in bf16/f16 (p unused)
    float *scratch;      // w: per-thread blocks (slot_floats each) after `shared` floats
    size_t slot_floats, shared;
    int slots;
} opnd;

// The block rows [r0, r0 + nr), columns [c0, c0 + nc) of the stored matrix, as a pointer and a
// leading dimension: into the f32 operand itself, or widened into thread t's slot.
static const float *block(const opnd *o, int t, int r0, int nr, int c0, int nc, int *ld) {
    if (!o->w) {
        *ld = o->ld;
        return o->p + (size_t)r0 * o->ld + c0;
    }
    float *buf = o->scratch + o->shared + (size_t)t * o->slot_floats;
    MXP_ASSERT(t < o->slots && (size_t)nr * (size_t)nc <= o->slot_floats);
    mxp_param_widen(o->w, r0, nr, c0, nc, buf, nc);
    *ld = nc;
    return buf;
}

// All of a weight operand, widened once into the shared front of the scratch (rows split
// between the threads): the operand then reads as an f32 one.
static opnd widen_whole(const opnd *o) {
    if (!o->w) return *o;
    int R = (int)o->w->shape[0], C = (int)o->w->shape[1];
    MXP_ASSERT(o->shared >= (size_t)R * (size_t)C);
#pragma omp parallel for schedule(static)
    for (int r = 0; r < R; r += 16) mxp_param_widen(o->w, r, R - r < 16 ? R - r : 16, 0, C, o->scratch + (size_t)r * C, C);
    return (opnd){.p = o->scratch, .ld = C};
}

// The team of a tiled call: every thread, as without a weight operand (a team of one is not an
// active parallel region, and OpenBLAS would then thread itself and change the bits); fewer
// only when the weight's scratch has fewer slots than the threads that can hold a tile (a
// thread count raised after the scratch was sized).
static int tile_threads(const opnd *o, int nt) {
    int n = omp_get_max_threads(), busy = n < nt ? n : nt;
    return o->w && o->slots < busy ? o->slots : n;
}

// Long inner dimension (K much larger than M and N, e.g. the LM head's dx = dlogits W with
// K = vocab): cutting M or N would make every tile repack a whole K-long operand. Instead
// cut K into tiles, each writing a partial product into scratch, then add the partials into C
// in tile order (fixed, so still independent of the thread count). Returns 0 if the scratch
// could not be allocated (the caller then takes the ordinary path).
static int sgemm_split_k(enum CBLAS_TRANSPOSE TA, enum CBLAS_TRANSPOSE TB, int M, int N, int K,
                         float alpha, const float *A, int lda, const opnd *B, float beta,
                         float *C, int ldc) {
    int ts = tile_size(K), nt = (K + ts - 1) / ts;
    size_t mn = (size_t)M * N;
    float *part = malloc((size_t)nt * mn * sizeof(float));  // (nt, M, N)
    if (!part) return 0;
#pragma omp parallel for schedule(static) num_threads(tile_threads(B, nt))
    for (int t = 0; t < nt; t++) {
        int s = t * ts, len = K - s < ts ? K - s : ts, ldb;
        const float *At = TA == CblasTrans ? A + (size_t)s * lda : A + s;  // op(A)[:, s:s+len]
        const float *Bt = TB == CblasTrans ? block(B, omp_get_thread_num(), 0, N, s, len, &ldb)   // op(B)[s:s+len, :]
                                           : block(B, omp_get_thread_num(), s, len, 0, N, &ldb);
        cblas_sgemm(CblasRowMajor, TA, TB, M, N, len, alpha, At, lda, Bt, ldb, 0.0f,
                    part + (size_t)t * mn, N);
    }
#pragma omp parallel for schedule(static)
    for (int m = 0; m < M; m++) {
        float *c = C + (size_t)m * ldc;
        for (int n = 0; n < N; n++) {
            float acc = part[(size_t)m * N + n];
            for (int t = 1; t < nt; t++) acc += part[(size_t)t * mn + (size_t)m * N + n];
            c[n] = beta == 0.0f ? acc : beta * c[n] + acc;
        }
    }
    free(part);
    return 1;
}

static void sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                  const opnd *B0, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    enum CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    if (split_k_shape(M, N, K) && sgemm_split_k(TA, TB, M, N, K, alpha, A, lda, B0, beta, C, ldc))
        return;
    // Always a real parallel region, even for one tile: inside it OpenBLAS is single-threaded.
    // Split the output along N when B is the larger operand (each tile then packs only its
    // slice of B and all of A), else along M (every tile reads all of B).
    int along_n = N >= M;
    opnd B = along_n ? *B0 : widen_whole(B0);
    int dim = along_n ? N : M, ts = tile_size(dim), nt = (dim + ts - 1) / ts;
#pragma omp parallel for schedule(static) num_threads(tile_threads(&B, nt))
    for (int t = 0; t < nt; t++) {
        int s = t * ts, len = dim - s < ts ? dim - s : ts, ldb;
        if (along_n) {
            const float *Bt = tb ? block(&B, omp_get_thread_num(), s, len, 0, K, &ldb)  // rows s.. of (N, K)
                                 : block(&B, omp_get_thread_num(), 0, K, s, len, &ldb); // columns s.. of (K, N)
            cblas_sgemm(CblasRowMajor, TA, TB, M, len, K, alpha, A, lda, Bt, ldb, beta, C + s, ldc);
        } else {
            const float *At = ta ? A + s : A + (size_t)s * lda;
            cblas_sgemm(CblasRowMajor, TA, TB, len, N, K, alpha, At, lda, B.p, B.ld, beta,
                        C + (size_t)s * ldc, ldc);
        }
    }
}

static void sgemv(int ta, int M, int N, float alpha, const opnd *A, const float *x, float beta, float *y) {
    int dim = ta ? N : M;
    if (dim <= 0) return;
    int ts = tile_size(dim), nt = (dim + ts - 1) / ts;
#pragma omp parallel for schedule(static) num_threads(tile_threads(A, nt))
    for (int t = 0; t < nt; t++) {
        int s = t * ts, len = dim - s < ts ? dim - s : ts, lda;
        if (ta) {  // y[s:s+len] = A[:, s:s+len]^T x
            const float *At = block(A, omp_get_thread_num(), 0, M, s, len, &lda);
            cblas_sgemv(CblasRowMajor, CblasTrans, M, len, alpha, At, lda, x, 1, beta, y + s, 1);
        } else {   // y[s:s+len] = A[s:s+len, :] x
            const float *At = block(A, omp_get_thread_num(), s, len, 0, N, &lda);
            cblas_sgemv(CblasRowMajor, CblasNoTrans, len, N, alpha, At, lda, x, 1, beta, y + s, 1);
        }
    }
}

void mxp_ops_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc) {
    const opnd b = {.p = B, .ld = ldb};
    sgemm(ta, tb, M, N, K, alpha, A, lda, &b, beta, C, ldc);
}

void mxp_ops_sgemv(int ta, int M, int N, float alpha, const float *A, int lda, const float *x,
                   float beta, float *y) {
    const opnd a = {.p = A, .ld = lda};
    sgemv(ta, M, N, alpha, &a, x, beta, y);
}

// The largest block one tile reads of an (R, C) weight, and whether some product of at most
// M_max rows reads all of it in every tile (see mxp_ops_wscratch_floats).
static size_t slot_need(int R, int C) {
    size_t r = (size_t)(tile_size(R) < R ? tile_size(R) : R), c = (size_t)(tile_size(C) < C ? tile_size(C) : C);
    size_t a = r * (size_t)C, b = (size_t)R * c;
    return a > b ? a : b;
}

// Scratch layout of a weight operand: [shared: R * C when a whole widening may be needed]
// [slots x slot_need]. Every tile of sgemm/sgemv reads a block of whole rows or whole columns
// of at most tile_size rows / columns (split-K and along-N tiles, sgemv tiles), so slot_need
// bounds them all; only an along-M sgemm (the other operand has more rows than W's tiled
// dimension) reads all of W.
static opnd weight_opnd(const mxp_param *W, float *scratch, size_t floats, int M_max) {
    if (W->stored == MXP_FMT_F32) return (opnd){.p = W->data, .ld = (int)W->shape[1]};
    int R = (int)W->shape[0], C = (int)W->shape[1];
    size_t shared = M_max > (R < C ? R : C) ? (size_t)R * C : 0, slot = slot_need(R, C);
    MXP_ASSERT(scratch && floats >= shared + slot);
    int slots = (int)((floats - shared) / slot);
    return (opnd){.w = W, .scratch = scratch, .slot_floats = slot, .shared = shared, .slots = slots};
}

size_t mxp_ops_wscratch_floats(const mxp_param *W, int M_max) {
    if (W->stored == MXP_FMT_F32) return 0;
    int R = (int)W->shape[0], C = (int)W->shape[1];
    size_t shared = M_max > (R < C ? R : C) ? (size_t)R * C : 0;
    int slots = omp_get_max_threads();
    if (slots > MAX_TILES) slots = MAX_TILES;
    return shared + (size_t)slots * slot_need(R, C);
}

void mxp_ops_sgemm_w(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                     const mxp_param *W, float beta, float *C, int ldc, float *scratch, size_t floats) {
    MXP_ASSERT(W->ndim == 2 && W->shape[0] == (tb ? N : K) && W->shape[1] == (tb ? K : N));
    const opnd b = weight_opnd(W, scratch, floats, M);
    sgemm(ta, tb, M, N, K, alpha, A, lda, &b, beta, C, ldc);
}

void mxp_ops_sgemv_w(int ta, float alpha, const mxp_param *W, const float *x, float beta, float *y,
                     float *scratch, size_t floats) {
    MXP_ASSERT(W->ndim == 2);
    const opnd a = weight_opnd(W, scratch, floats, 1);
    sgemv(ta, (int)W->shape[0], (int)W->shape[1], alpha, &a, x, beta, y);
}
