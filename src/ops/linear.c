// linear.c: y = x W^T + b, forward and backward, through the deterministic tiled OpenBLAS
// wrappers of gemm.h (sgemm; sgemv when N == 1). Operands are read in place, row-major, with
// BLAS transpose flags: no transposed copies. Backward accumulates (beta = 1); NULL gradients
// are skipped. Not for use inside an OpenMP parallel region.
// The _w versions take W as a parameter, which may be stored in bf16 or f16: the same calls,
// each tile of W widened into the caller's scratch (gemm.h), so the same bits as an f32 W.
#include <string.h>

#include "ops/gemm.h"
#include "ops/ops.h"
#include "quant/format.h"

// out (N, O) = x (N, I) @ w (O, I)^T + b (O); b may be NULL.
void mxp_linear_fwd(float *out, const float *x, const float *w, const float *b, int N, int I, int O) {
    float beta = 0.0f;
    if (b) {
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * O, b, (size_t)O * sizeof(float));
        beta = 1.0f;
    }
    if (N == 1)
        mxp_ops_sgemv(0, O, I, 1.0f, w, I, x, beta, out);
    else
        mxp_ops_sgemm(0, 1, N, O, I, 1.0f, x, I, w, I, beta, out, O);
}

// dx (N, I) += dout (N, O) @ w (O, I);  dw (O, I) += dout^T @ x (N, I);  db (O) += sum_n dout.
void mxp_linear_bwd(float *dx, float *dw, float *db, const float *dout, const float *x,
                    const float *w, int N, int I, int O) {
    if (dx) {
        if (N == 1)
            mxp_ops_sgemv(1, O, I, 1.0f, w, I, dout, 1.0f, dx);
        else
            mxp_ops_sgemm(0, 0, N, I, O, 1.0f, dout, O, w, I, 1.0f, dx, I);
    }
    if (dw) {
        if (N == 1) {  // rank-1 update, memory bound: dw[o, :] += dout[o] * x
#pragma omp parallel for schedule(static)
            for (int o = 0; o < O; o++) {
                float *d = dw + (size_t)o * I, g = dout[o];
#pragma omp simd
                for (int i = 0; i < I; i++) d[i] += g * x[i];
            }
        } else {
            mxp_ops_sgemm(1, 0, O, I, N, 1.0f, dout, O, x, I, 1.0f, dw, I);
        }
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

size_t mxp_linear_scratch_floats(const mxp_param *w, int N) { return mxp_ops_wscratch_floats(w, N); }

void mxp_linear_fwd_w(float *out, const float *x, const mxp_param *w, const float *b, int N, int I, int O,
                      float *scratch, size_t floats) {
    if (w->stored == MXP_FMT_F32) {
        mxp_linear_fwd(out, x, w->data, b, N, I, O);
        return;
    }
    MXP_ASSERT(w->shape[0] == O && w->shape[1] == I);
    float beta = 0.0f;
    if (b) {
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * O, b, (size_t)O * sizeof(float));
        beta = 1.0f;
    }
    if (N == 1)
        mxp_ops_sgemv_w(0, 1.0f, w, x, beta, out, scratch, floats);
    else
        mxp_ops_sgemm_w(0, 1, N, O, I, 1.0f, x, I, w, beta, out, O, scratch, floats);
}

void mxp_linear_bwd_w(float *dx, float *dw, float *db, const float *dout, const float *x, const mxp_param *w, int N,
                      int I, int O, float *scratch, size_t floats) {
    if (w->stored == MXP_FMT_F32) {
        mxp_linear_bwd(dx, dw, db, dout, x, w->data, N, I, O);
        return;
    }
    MXP_ASSERT(w->shape[0] == O && w->shape[1] == I);
    if (dx) {
        if (N == 1)
            mxp_ops_sgemv_w(1, 1.0f, w, dout, 1.0f, dx, scratch, floats);
        else
            mxp_ops_sgemm_w(0, 0, N, I, O, 1.0f, dout, O, w, 1.0f, dx, I, scratch, floats);
    }
    mxp_linear_bwd(NULL, dw, db, dout, x, NULL, N, I, O);  // dw and db do not read W
}
