// embed.c: token and learned-position embeddings, forward and backward (f32).
// Backward accumulates. Deterministic for any thread count: every gradient element is summed
// by one thread in token order (the scatter runs parallel over columns, never over tokens).
// Must not be called from inside an OpenMP parallel region.
#include <string.h>

#include "ops/ops.h"

// Columns per parallel work item of the scatters: 16 floats = one 64-byte cache line.
#define COL_BLOCK 16

// out (N, C) = wte (V, C) [tok (N)]. Token range is the caller's check.
void mxp_embed_fwd(float *out, const int32_t *tok, const float *wte, int N, int C) {
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= MXP_PAR_MIN)
    for (int n = 0; n < N; n++)
        memcpy(out + (size_t)n * C, wte + (size_t)tok[n] * C, (size_t)C * sizeof(float));
}

// dwte (V, C) += dout (N, C) scattered by tok (N). Repeated tokens are summed in n order.
void mxp_embed_bwd(float *dwte, const float *dout, const int32_t *tok, int N, int C) {
    if (!dwte) return;
    int nblk = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static)
    for (int cb = 0; cb < nblk; cb++) {
        int c0 = cb * COL_BLOCK, c1 = c0 + COL_BLOCK < C ? c0 + COL_BLOCK : C;
        for (int n = 0; n < N; n++) {
            float *dst = dwte + (size_t)tok[n] * C;
            const float *src = dout + (size_t)n * C;
            for (int c = c0; c < c1; c++) dst[c] += src[c];
        }
    }
}

// out (B*T, C) = x + wpe[pos0 + t]; out may alias x.
void mxp_posembed_fwd(float *out, const float *x, const float *wpe, int B, int T, int pos0, int C) {
#pragma omp parallel for schedule(static) if ((int64_t)B * T * C >= MXP_PAR_MIN)
    for (int r = 0; r < B * T; r++) {
        const float *p = wpe + (size_t)(pos0 + r % T) * C;
        const float *xr = x + (size_t)r * C;
        float *o = out + (size_t)r * C;
#pragma omp simd
        for (int c = 0; c < C; c++) o[c] = xr[c] + p[c];
    }
}

// dx (B*T, C) += dout; dwpe (maxpos, C) [pos0 + t] += sum_b dout[b, t] (summed in b order).
void mxp_posembed_bwd(float *dx, float *dwpe, const float *dout, int B, int T, int pos0, int C) {
    if (dx) mxp_acc(dx, dout, (int64_t)B * T * C);
    if (!dwpe) return;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        float *d = dwpe + (size_t)(pos0 + t) * C;
        for (int b = 0; b < B; b++) {
            const float *g = dout + ((size_t)b * T + t) * C;
#pragma omp simd
            for (int c = 0; c < C; c++) d[c] += g[c];
        }
    }
}
