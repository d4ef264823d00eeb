// attention.c: causal scaled-dot-product self-attention with grouped-query heads (f32).
//
// Strategy: the four products per head (S = Q K^T, O = P V and, backward, dP = dO V^T,
// dV = P^T dO, dQ = dS K, dK = dS^T Q) are OpenBLAS sgemm calls made one (batch, head) at a
// time from serial code, each using every thread; the row-wise softmax and its backward run
// in one OpenMP region over all B*H*Tq rows between the products. BLAS is never called from
// inside a parallel region. Causality is exploited by blocking: a block of ATT_BLOCK query
// rows only multiplies the keys it can see.
// Determinism: each softmax row belongs to one thread; sgemm splits outputs, not sums; the
// query heads of one kv head add into dk/dv one after another in head order.
// Must not be called from inside an OpenMP parallel region. Allocates scratch when att is
// NULL (forward) and for dP/dS (backward); aborts if that allocation fails.
#include <cblas.h>
// cblas.h pulls in <complex.h>, whose macro I would clash with the parameter name I below.
#undef I
#include <math.h>
#include <stdlib.h>

#include "core/base.h"
#include "ops/ops.h"

#define ATT_BLOCK 64  // query (or key) rows per causal block

static int imin(int a, int b) { return a < b ? a : b; }

// att (B, H, Tq, Tk): on entry raw scores, on return softmax probabilities with the causal
// limit applied (row i of a sequence sees keys 0 .. Tk - Tq + i; zero beyond).
static void softmax_rows(float *att, int B, int H, int Tq, int Tk) {
    long rows = (long)B * H * Tq;
#pragma omp parallel for schedule(static, 8)
    for (long r = 0; r < rows; r++) {
        float *s = att + r * Tk;
        int lim = Tk - Tq + (int)(r % Tq) + 1;  // keys visible
        float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
        for (int j = 0; j < lim; j++) mx = s[j] > mx ? s[j] : mx;
        float sum = 0.0f;
        for (int j = 0; j < lim; j++) {
            float e = expf(s[j] - mx);
            s[j] = e;
            sum += e;
        }
        float inv = 1.0f / sum;
#pragma omp simd
        for (int j = 0; j < lim; j++) s[j] *= inv;
        for (int j = lim; j < Tk; j++) s[j] = 0.0f;
    }
}

// q (B*Tq, H*D); k, v (B*Tk, Hkv*D); out (B*Tq, H*D); att (B, H, Tq, Tk) or NULL.
void mxp_attention_fwd(float *out, float *att, const float *q, const float *k, const float *v,
                       int B, int Tq, int Tk, int H, int Hkv, int D) {
    MXP_ASSERT(Tq >= 1 && Tq <= Tk && Hkv >= 1 && H % Hkv == 0 && D >= 1);
    float *P = att, *scratch = NULL;
    if (!P) {
        scratch = malloc((size_t)B * H * Tq * Tk * sizeof(float));
        MXP_ASSERT(scratch != NULL);
        P = scratch;
    }
    const int grp = H / Hkv, qs = H * D, ks = Hkv * D, off = Tk - Tq;
    const float scale = 1.0f / sqrtf((float)D);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const float *qb = q + (size_t)b * Tq * qs + (size_t)h * D;
            const float *kb = k + (size_t)b * Tk * ks + (size_t)(h / grp) * D;
            float *S = P + ((size_t)b * H + h) * Tq * Tk;  // (Tq, Tk)
            if (Tq == 1) {
                cblas_sgemv(CblasRowMajor, CblasNoTrans, Tk, D, scale, kb, ks, qb, 1, 0.0f, S, 1);
                continue;
            }
            for (int i0 = 0; i0 < Tq; i0 += ATT_BLOCK) {
                int m = imin(ATT_BLOCK, Tq - i0), kend = off + i0 + m;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, kend, D, scale,
                            qb + (size_t)i0 * qs, qs, kb, ks, 0.0f, S + (size_t)i0 * Tk, Tk);
            }
        }
    softmax_rows(P, B, H, Tq, Tk);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const float *vb = v + (size_t)b * Tk * ks + (size_t)(h / grp) * D;
            const float *Pb = P + ((size_t)b * H + h) * Tq * Tk;
            float *ob = out + (size_t)b * Tq * qs + (size_t)h * D;
            if (Tq == 1) {
                cblas_sgemv(CblasRowMajor, CblasTrans, Tk, D, 1.0f, vb, ks, Pb, 1, 0.0f, ob, 1);
                continue;
            }
            for (int i0 = 0; i0 < Tq; i0 += ATT_BLOCK) {
                int m = imin(ATT_BLOCK, Tq - i0), kend = off + i0 + m;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, D, kend, 1.0f,
                            Pb + (size_t)i0 * Tk, Tk, vb, ks, 0.0f, ob + (size_t)i0 * qs, qs);
            }
        }
    free(scratch);
}

// Softmax backward per row, in place on dP (B, H, T, T):
// dS_ij = P_ij (dP_ij - sum_l P_il dP_il) * scale  (scale folded in: S = scale Q K^T).
static void softmax_bwd_rows(float *dP, const float *att, int B, int H, int T, float scale) {
    long rows = (long)B * H * T;
#pragma omp parallel for schedule(static, 8)
    for (long r = 0; r < rows; r++) {
        float *d = dP + r * T;
        const float *p = att + r * T;
        int lim = (int)(r % T) + 1;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int j = 0; j < lim; j++) dot += p[j] * d[j];
#pragma omp simd
        for (int j = 0; j < lim; j++) d[j] = p[j] * (d[j] - dot) * scale;
        for (int j = lim; j < T; j++) d[j] = 0.0f;
    }
}

// Tq == Tk == T. dq (B*T, H*D); dk, dv (B*T, Hkv*D); att (B, H, T, T) from the forward.
void mxp_attention_bwd(float *dq, float *dk, float *dv, const float *dout, const float *q,
                       const float *k, const float *v, const float *att, int B, int T, int H,
                       int Hkv, int D) {
    MXP_ASSERT(T >= 1 && Hkv >= 1 && H % Hkv == 0 && D >= 1);
    const int grp = H / Hkv, qs = H * D, ks = Hkv * D;
    const float scale = 1.0f / sqrtf((float)D);
    // dV[j0:j1] += P[j0:T, j0:j1]^T dO[j0:T]  (key blocks; P is zero above the diagonal).
    if (dv) {
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++) {
                const float *Pb = att + ((size_t)b * H + h) * T * T;
                const float *gb = dout + (size_t)b * T * qs + (size_t)h * D;
                float *dvb = dv + (size_t)b * T * ks + (size_t)(h / grp) * D;
                for (int j0 = 0; j0 < T; j0 += ATT_BLOCK) {
                    int n = imin(ATT_BLOCK, T - j0);
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, D, T - j0, 1.0f,
                                Pb + (size_t)j0 * T + j0, T, gb + (size_t)j0 * qs, qs, 1.0f,
                                dvb + (size_t)j0 * ks, ks);
                }
            }
    }
    if (!dq && !dk) return;
    float *dS = malloc((size_t)B * H * T * T * sizeof(float));  // (B, H, T, T)
    MXP_ASSERT(dS != NULL);
    // dP[i0:i1, 0:i1] = dO[i0:i1] V[0:i1]^T
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const float *gb = dout + (size_t)b * T * qs + (size_t)h * D;
            const float *vb = v + (size_t)b * T * ks + (size_t)(h / grp) * D;
            float *d = dS + ((size_t)b * H + h) * T * T;
            for (int i0 = 0; i0 < T; i0 += ATT_BLOCK) {
                int m = imin(ATT_BLOCK, T - i0);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, i0 + m, D, 1.0f,
                            gb + (size_t)i0 * qs, qs, vb, ks, 0.0f, d + (size_t)i0 * T, T);
            }
        }
    softmax_bwd_rows(dS, att, B, H, T, scale);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const float *d = dS + ((size_t)b * H + h) * T * T;
            const float *qb = q + (size_t)b * T * qs + (size_t)h * D;
            const float *kb = k + (size_t)b * T * ks + (size_t)(h / grp) * D;
            // dQ[i0:i1] += dS[i0:i1, 0:i1] K[0:i1]
            if (dq)
                for (int i0 = 0; i0 < T; i0 += ATT_BLOCK) {
                    int m = imin(ATT_BLOCK, T - i0);
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, D, i0 + m, 1.0f,
                                d + (size_t)i0 * T, T, kb, ks, 1.0f,
                                dq + (size_t)b * T * qs + (size_t)h * D + (size_t)i0 * qs, qs);
                }
            // dK[j0:j1] += dS[j0:T, j0:j1]^T Q[j0:T]
            if (dk)
                for (int j0 = 0; j0 < T; j0 += ATT_BLOCK) {
                    int n = imin(ATT_BLOCK, T - j0);
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, D, T - j0, 1.0f,
                                d + (size_t)j0 * T + j0, T, qb + (size_t)j0 * qs, qs, 1.0f,
                                dk + (size_t)b * T * ks + (size_t)(h / grp) * D + (size_t)j0 * ks, ks);
                }
        }
    free(dS);
}
