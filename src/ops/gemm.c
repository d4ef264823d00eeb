// gemm.c: deterministic tiled sgemm/sgemv on top of OpenBLAS (see gemm.h for why).
// Tiling: the output is split along one dimension into at most MAX_TILES tiles whose size is a
// multiple of 16 (a whole number of micro-kernel panels); the count depends on the shape only.
#include "ops/gemm.h"

#include <cblas.h>

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

void mxp_ops_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    enum CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    // Always a real parallel region, even for one tile: inside it OpenBLAS is single-threaded.
    // Split the output along N when B is the larger operand (each tile then packs only its
    // slice of B and all of A), else along M.
    int along_n = N >= M;
    int dim = along_n ? N : M, ts = tile_size(dim), nt = (dim + ts - 1) / ts;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < nt; t++) {
        int s = t * ts, len = dim - s < ts ? dim - s : ts;
        if (along_n) {
            const float *Bt = tb ? B + (size_t)s * ldb : B + s;
            cblas_sgemm(CblasRowMajor, TA, TB, M, len, K, alpha, A, lda, Bt, ldb, beta, C + s, ldc);
        } else {
            const float *At = ta ? A + s : A + (size_t)s * lda;
            cblas_sgemm(CblasRowMajor, TA, TB, len, N, K, alpha, At, lda, B, ldb, beta,
                        C + (size_t)s * ldc, ldc);
        }
    }
}

void mxp_ops_sgemv(int ta, int M, int N, float alpha, const float *A, int lda, const float *x,
                   float beta, float *y) {
    int dim = ta ? N : M;
    if (dim <= 0) return;
    int ts = tile_size(dim), nt = (dim + ts - 1) / ts;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < nt; t++) {
        int s = t * ts, len = dim - s < ts ? dim - s : ts;
        if (ta)  // y[s:s+len] = A[:, s:s+len]^T x
            cblas_sgemv(CblasRowMajor, CblasTrans, M, len, alpha, A + s, lda, x, 1, beta, y + s, 1);
        else     // y[s:s+len] = A[s:s+len, :] x
            cblas_sgemv(CblasRowMajor, CblasNoTrans, len, N, alpha, A + (size_t)s * lda, lda, x, 1,
                        beta, y + s, 1);
    }
}
