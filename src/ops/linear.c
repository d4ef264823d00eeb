// linear.c: y = x W^T + b through OpenBLAS (OpenMP build), forward and backward.
// Every product is one sgemm (or sgemv / sger for a single row) reading the row-major
// operands in place: no transposed copies. OpenBLAS splits the output, never the inner
// dimension, so results do not depend on the thread count (checked in tests/test_ops_grad.c).
// Backward accumulates (beta = 1). Not for use inside an OpenMP parallel region.
#include <cblas.h>
// cblas.h pulls in <complex.h>, whose macro I would clash with the parameter name I below.
#undef I
#include <string.h>

#include "ops/ops.h"

// out (N, O) = x (N, I) @ w (O, I)^T + b (O); b may be NULL.
void mxp_linear_fwd(float *out, const float *x, const float *w, const float *b, int N, int I, int O) {
    float beta = 0.0f;
    if (b) {
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * O, b, (size_t)O * sizeof(float));
        beta = 1.0f;
    }
    if (N == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, O, I, 1.0f, w, I, x, 1, beta, out, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, O, I, 1.0f, x, I, w, I, beta, out, O);
}

// dx (N, I) += dout (N, O) @ w (O, I);  dw (O, I) += dout^T @ x (N, I);  db (O) += sum_n dout.
void mxp_linear_bwd(float *dx, float *dw, float *db, const float *dout, const float *x,
                    const float *w, int N, int I, int O) {
    if (dx) {
        if (N == 1)
            cblas_sgemv(CblasRowMajor, CblasTrans, O, I, 1.0f, w, I, dout, 1, 1.0f, dx, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, I, O, 1.0f, dout, O, w, I,
                        1.0f, dx, I);
    }
    if (dw) {
        if (N == 1)
            cblas_sger(CblasRowMajor, O, I, 1.0f, dout, 1, x, 1, dw, I);
        else
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, O, I, N, 1.0f, dout, O, x, I,
                        1.0f, dw, I);
    }
    if (db) {
        // Parallel over output columns; each column summed in row order.
#pragma omp parallel for schedule(static) if (O >= 1024)
        for (int o = 0; o < O; o++) {
            float s = 0.0f;
            for (int n = 0; n < N; n++) s += dout[(size_t)n * O + o];
            db[o] += s;
        }
    }
}
