// norm.c: RMSNorm and LayerNorm over the last dimension, forward and backward (f32).
// Rows are independent: forward and dx run parallel over rows. dw and db sum over rows, so
// they run parallel over column blocks, each column summed by one thread in row order: the
// result does not depend on the thread count. Backward accumulates; NULL gradients are skipped.
// Not for use inside an OpenMP parallel region.
#include <math.h>
#include <stddef.h>

#include "ops/ops.h"

#define COL_BLOCK 16  // columns per work item of the dw/db sums (one cache line)

// out (N, C) = x * rstd * w;  rstd (N) = 1 / sqrt(mean(x^2) + eps).
void mxp_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, int N, int C, float eps) {
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= MXP_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C;
        float *o = out + (size_t)n * C;
        float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
        for (int c = 0; c < C; c++) ss += xr[c] * xr[c];
        float r = 1.0f / sqrtf(ss / (float)C + eps);
        if (rstd) rstd[n] = r;
#pragma omp simd
        for (int c = 0; c < C; c++) o[c] = xr[c] * r * w[c];
    }
}

// Sums over rows of dout * xhat (into dw) and of dout (into db), xhat = (x - mean) * rstd
// (mean NULL for RMSNorm). Parallel over column blocks, rows in order.
static void norm_param_grads(float *dw, float *db, const float *dout, const float *x,
                             const float *mean, const float *rstd, int N, int C) {
    if (!dw && !db) return;
    int nblk = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static)
    for (int cb = 0; cb < nblk; cb++) {
        int c0 = cb * COL_BLOCK, len = C - c0 < COL_BLOCK ? C - c0 : COL_BLOCK;
        float aw[COL_BLOCK] = {0}, ab[COL_BLOCK] = {0};
        for (int n = 0; n < N; n++) {
            const float *g = dout + (size_t)n * C + c0, *xr = x + (size_t)n * C + c0;
            float m = mean ? mean[n] : 0.0f, r = rstd[n];
            for (int j = 0; j < len; j++) {
                aw[j] += g[j] * ((xr[j] - m) * r);
                ab[j] += g[j];
            }
        }
        for (int j = 0; j < len; j++) {
            if (dw) dw[c0 + j] += aw[j];
            if (db) db[c0 + j] += ab[j];
        }
    }
}

// xhat = x rstd, out = xhat w, dxhat = dout w.
// d rstd / dx_j = -rstd^3 x_j / C, so dx = rstd (dxhat - xhat mean(dxhat xhat)).
// dw += sum_n dout xhat.
void mxp_rmsnorm_bwd(float *dx, float *dw, const float *dout, const float *x, const float *w,
                     const float *rstd, int N, int C) {
    if (dx) {
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= MXP_PAR_MIN)
        for (int n = 0; n < N; n++) {
            const float *g = dout + (size_t)n * C, *xr = x + (size_t)n * C;
            float *d = dx + (size_t)n * C;
            float r = rstd[n], dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (int c = 0; c < C; c++) dot += g[c] * w[c] * (xr[c] * r);
            float k = dot / (float)C;
#pragma omp simd
            for (int c = 0; c < C; c++) d[c] += r * (g[c] * w[c] - xr[c] * r * k);
        }
    }
    norm_param_grads(dw, NULL, dout, x, NULL, rstd, N, C);
}

// out (N, C) = (x - mean) rstd w + b; mean, rstd (N); variance is the biased one (PyTorch).
void mxp_layernorm_fwd(float *out, float *mean, float *rstd, const float *x, const float *w,
                       const float *b, int N, int C, float eps) {
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= MXP_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C;
        float *o = out + (size_t)n * C;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int c = 0; c < C; c++) s += xr[c];
        float m = s / (float)C, v = 0.0f;
#pragma omp simd reduction(+ : v)
        for (int c = 0; c < C; c++) v += (xr[c] - m) * (xr[c] - m);
        float r = 1.0f / sqrtf(v / (float)C + eps);
        if (mean) mean[n] = m;
        if (rstd) rstd[n] = r;
        if (b) {
#pragma omp simd
            for (int c = 0; c < C; c++) o[c] = (xr[c] - m) * r * w[c] + b[c];
        } else {
#pragma omp simd
            for (int c = 0; c < C; c++) o[c] = (xr[c] - m) * r * w[c];
        }
    }
}

// xhat = (x - mean) rstd, dxhat = dout w:
// dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat));  dw += sum dout xhat; db += sum dout.
void mxp_layernorm_bwd(float *dx, float *dw, float *db, const float *dout, const float *x,
                       const float *w, const float *mean, const float *rstd, int N, int C) {
    if (dx) {
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= MXP_PAR_MIN)
        for (int n = 0; n < N; n++) {
            const float *g = dout + (size_t)n * C, *xr = x + (size_t)n * C;
            float *d = dx + (size_t)n * C;
            float m = mean[n], r = rstd[n], s1 = 0.0f, s2 = 0.0f;
#pragma omp simd reduction(+ : s1, s2)
            for (int c = 0; c < C; c++) {
                float gh = g[c] * w[c];
                s1 += gh;
                s2 += gh * ((xr[c] - m) * r);
            }
            s1 /= (float)C;
            s2 /= (float)C;
#pragma omp simd
            for (int c = 0; c < C; c++) d[c] += r * (g[c] * w[c] - s1 - (xr[c] - m) * r * s2);
        }
    }
    norm_param_grads(dw, db, dout, x, mean, rstd, N, C);
}
