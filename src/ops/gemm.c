// gemm.c: deterministic tiled sgemm/sgemv on top of OpenBLAS (see gemm.h for why).
// Tiling: the output is split along one dimension into at most MAX_TILES tiles whose size is a
// multiple of 16 (a whole number of micro-kernel panels); the count depends on the shape only.
#include "ops/gemm.h"

#include <cblas.h>
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

// Long inner dimension (K much larger than M and N, e.g. the LM head's dx = dlogits W with
// K = vocab): cutting M or N would make every tile repack a whole K-long operand. Instead
// cut K into tiles, each writing a partial product into scratch, then add the partials into C
// in tile order (fixed, so still independent of the thread count). Returns 0 if the scratch
// could not be allocated (the caller then takes the ordinary path).
static int sgemm_split_k(enum CBLAS_TRANSPOSE TA, enum CBLAS_TRANSPOSE TB, int M, int N, int K,
                         float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                         float *C, int ldc) {
    int ts = tile_size(K), nt = (K + ts - 1) / ts;
    size_t mn = (size_t)M * N;
    float *part = malloc((size_t)nt * mn * sizeof(float));  // (nt, M, N)
    if (!part) return 0;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < nt; t++) {
        int s = t * ts, len = K - s < ts ? K - s : ts;
        const float *At = TA == CblasTrans ? A + (size_t)s * lda : A + s;  // op(A)[:, s:s+len]
        const float *Bt = TB == CblasTrans ? B + s : B + (size_t)s * ldb;  // op(B)[s:s+len, :]
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

void mxp_ops_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    enum CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    if (K >= 4096 && K >= 8 * (M > N ? M : N) &&
        sgemm_split_k(TA, TB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc))
        return;
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
