// attention.c: causal scaled-dot-product self-attention with grouped-query heads (f32),
// optionally limited to a sliding window (Mistral: query position i sees keys j with
// 0 <= i - j < window, as Hugging Face masks them).
//
// Strategy: one OpenMP loop over independent tasks; each task runs single-threaded OpenBLAS
// calls (the OpenMP build of OpenBLAS is single-threaded inside a parallel region) plus the
// row-wise softmax on its own rows. Forward tasks are (batch, query head): S = scale Q K^T,
// softmax, O = P V. Backward tasks are (batch, kv head), looping over that kv head's query
// heads in order, so the GQA sums into dk/dv have one owner and a fixed order:
// dP = dO V^T, dS = P (dP - rowsum(P dP)) scale, dV += P^T dO, dQ += dS K, dK += dS^T Q.
// Causality (and the window) is exploited by blocking: a block of ATT_BLOCK query rows
// multiplies only the keys it can see (and a block of keys only the queries that see it);
// probabilities outside a row's visible keys are exactly zero.
// Determinism: every output element has one owning task and the tasks do not depend on the
// thread count. Must not be called from inside an OpenMP parallel region. Scratch (one
// (Tq, Tk) matrix per thread) comes from the caller: the kernels never allocate.
#include <cblas.h>
// cblas.h pulls in <complex.h>; its macro I would clash with ops.h parameter names.
#undef I
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "core/base.h"
#include "ops/ops.h"
#include "ops/vexp.h"

#define ATT_BLOCK 64  // query (or key) rows per causal block

static int imin(int a, int b) { return a < b ? a : b; }

// First key visible from position p (window 0: no window).
static int first_key(int p, int window) { return window > 0 && p - window + 1 > 0 ? p - window + 1 : 0; }

// Rows S (Tq, Tk) of one head: on entry raw scores, on return softmax probabilities. Row i
// (position p = Tk - Tq + i) sees keys first_key(p) .. p; everything else becomes zero (only
// the visible scores need to be valid on entry). exp from vexp.h (vectorized).
static void softmax_head(float *S, int Tq, int Tk, int window) {
    for (int i = 0; i < Tq; i++) {
        float *s = S + (size_t)i * Tk;
        int lim = Tk - Tq + i + 1, lo = first_key(lim - 1, window);  // keys lo .. lim-1 visible
        float mx = -INFINITY;
        int nan = 0;
#pragma omp simd reduction(max : mx) reduction(| : nan)
        for (int j = lo; j < lim; j++) {
            mx = s[j] > mx ? s[j] : mx;
            nan |= s[j] != s[j];
        }
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int j = lo; j < lim; j++) {
            float e = mxp_vexpf(s[j] - mx);
            s[j] = e;
            sum += e;
        }
        float inv = nan ? NAN : 1.0f / sum;  // a NaN score poisons its row instead of vanishing
#pragma omp simd
        for (int j = lo; j < lim; j++) s[j] *= inv;
        for (int j = 0; j < lo; j++) s[j] = 0.0f;
        for (int j = lim; j < Tk; j++) s[j] = 0.0f;
    }
}

// Threads for a kernel whose thread t uses scratch slot t (slots of them), or any number
// without scratch.
static int team_size(int uses_scratch, int slots) {
    int nt = omp_get_max_threads();
    return uses_scratch && nt > slots ? slots : nt;
}

// q (B*Tq, H*D); k, v (B*Tk, Hkv*D); out (B*Tq, H*D); att (B, H, Tq, Tk) or NULL.
void mxp_attention_fwd(float *out, float *att, float *scratch, int slots, const float *q, const float *k,
                       const float *v, int B, int Tq, int Tk, int H, int Hkv, int D, int window) {
    MXP_ASSERT(Tq >= 1 && Tq <= Tk && Hkv >= 1 && H % Hkv == 0 && D >= 1 && window >= 0);
    MXP_ASSERT(att || (scratch && slots >= 1));
    const int grp = H / Hkv, qs = H * D, ks = Hkv * D, off = Tk - Tq;
    const float scale = 1.0f / sqrtf((float)D);
    const int nt = team_size(!att, slots);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int task = 0; task < B * H; task++) {
        int b = task / H, h = task % H;
        const float *qb = q + (size_t)b * Tq * qs + (size_t)h * D;
        const float *kb = k + (size_t)b * Tk * ks + (size_t)(h / grp) * D;
        const float *vb = v + (size_t)b * Tk * ks + (size_t)(h / grp) * D;
        float *ob = out + (size_t)b * Tq * qs + (size_t)h * D;
        float *S = att ? att + (size_t)task * Tq * Tk                          // (Tq, Tk)
                       : scratch + (size_t)omp_get_thread_num() * Tq * Tk;
        if (Tq == 1) {  // one query (decode): matrix-vector products over the visible keys
            int lo = first_key(Tk - 1, window), n = Tk - lo;
            cblas_sgemv(CblasRowMajor, CblasNoTrans, n, D, scale, kb + (size_t)lo * ks, ks, qb, 1, 0.0f, S + lo, 1);
            softmax_head(S, 1, Tk, window);
            cblas_sgemv(CblasRowMajor, CblasTrans, n, D, 1.0f, vb + (size_t)lo * ks, ks, S + lo, 1, 0.0f, ob, 1);
            continue;
        }
        // block rows i0 .. i0+m-1 see keys kst .. kend-1 (the first row's first key .. the last row)
        for (int i0 = 0; i0 < Tq; i0 += ATT_BLOCK) {  // S[i0:i1, kst:kend] = scale Q[i0:i1] K[kst:kend]^T
            int m = imin(ATT_BLOCK, Tq - i0), kend = off + i0 + m, kst = first_key(off + i0, window);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, kend - kst, D, scale,
                        qb + (size_t)i0 * qs, qs, kb + (size_t)kst * ks, ks, 0.0f, S + (size_t)i0 * Tk + kst, Tk);
        }
        softmax_head(S, Tq, Tk, window);
        for (int i0 = 0; i0 < Tq; i0 += ATT_BLOCK) {  // O[i0:i1] = P[i0:i1, kst:kend] V[kst:kend]
            int m = imin(ATT_BLOCK, Tq - i0), kend = off + i0 + m, kst = first_key(off + i0, window);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, D, kend - kst, 1.0f,
                        S + (size_t)i0 * Tk + kst, Tk, vb + (size_t)kst * ks, ks, 0.0f, ob + (size_t)i0 * qs, qs);
        }
    }
}

// Tq == Tk == T. dq (B*T, H*D); dk, dv (B*T, Hkv*D); att (B, H, T, T) from the forward.
void mxp_attention_bwd(float *dq, float *dk, float *dv, float *scratch, int slots, const float *dout,
                       const float *q, const float *k, const float *v, const float *att, int B, int T,
                       int H, int Hkv, int D, int window) {
    MXP_ASSERT(T >= 1 && Hkv >= 1 && H % Hkv == 0 && D >= 1 && window >= 0);
    const int grp = H / Hkv, qs = H * D, ks = Hkv * D;
    const float scale = 1.0f / sqrtf((float)D);
    const int need_ds = dq || dk;
    MXP_ASSERT(!need_ds || (scratch && slots >= 1));
    const int nt = team_size(need_ds, slots);
    // rows that see any key of the block j0 .. j0+n-1: j0 .. last_row(j0, n) - 1
#define LAST_ROW(j0, n) (window > 0 && (j0) + (n) - 1 + window < T ? (j0) + (n) - 1 + window : T)
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int task = 0; task < B * Hkv; task++) {
        int b = task / Hkv, g = task % Hkv;
        const float *kb = k + (size_t)b * T * ks + (size_t)g * D;
        const float *vb = v + (size_t)b * T * ks + (size_t)g * D;
        float *dkb = dk ? dk + (size_t)b * T * ks + (size_t)g * D : NULL;
        float *dvb = dv ? dv + (size_t)b * T * ks + (size_t)g * D : NULL;
        float *dS = need_ds ? scratch + (size_t)omp_get_thread_num() * T * T : NULL;  // (T, T): dP, then dS
        for (int h = g * grp; h < (g + 1) * grp; h++) {
            const float *P = att + ((size_t)b * H + h) * T * T;  // (T, T)
            const float *qb = q + (size_t)b * T * qs + (size_t)h * D;
            const float *gb = dout + (size_t)b * T * qs + (size_t)h * D;
            // dV[j0:j1] += P[j0:ie, j0:j1]^T dO[j0:ie]  (P is zero outside each row's keys)
            if (dvb)
                for (int j0 = 0; j0 < T; j0 += ATT_BLOCK) {
                    int n = imin(ATT_BLOCK, T - j0), ie = LAST_ROW(j0, n);
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, D, ie - j0, 1.0f,
                                P + (size_t)j0 * T + j0, T, gb + (size_t)j0 * qs, qs, 1.0f, dvb + (size_t)j0 * ks, ks);
                }
            if (!need_ds) continue;
            // dP[i0:i1, kst:i1] = dO[i0:i1] V[kst:i1]^T
            for (int i0 = 0; i0 < T; i0 += ATT_BLOCK) {
                int m = imin(ATT_BLOCK, T - i0), kst = first_key(i0, window);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, i0 + m - kst, D, 1.0f,
                            gb + (size_t)i0 * qs, qs, vb + (size_t)kst * ks, ks, 0.0f, dS + (size_t)i0 * T + kst, T);
            }
            // Softmax backward, row i: dS_ij = P_ij (dP_ij - sum_l P_il dP_il) * scale for the
            // visible keys lo <= j <= i (scale folded in since S = scale Q K^T), zero elsewhere.
            for (int i = 0; i < T; i++) {
                float *d = dS + (size_t)i * T;
                const float *p = P + (size_t)i * T;
                int lo = first_key(i, window);
                float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
                for (int j = lo; j <= i; j++) dot += p[j] * d[j];
#pragma omp simd
                for (int j = lo; j <= i; j++) d[j] = p[j] * (d[j] - dot) * scale;
                for (int j = 0; j < lo; j++) d[j] = 0.0f;
                for (int j = i + 1; j < T; j++) d[j] = 0.0f;
            }
            // dQ[i0:i1] += dS[i0:i1, kst:i1] K[kst:i1]
            if (dq)
                for (int i0 = 0; i0 < T; i0 += ATT_BLOCK) {
                    int m = imin(ATT_BLOCK, T - i0), kst = first_key(i0, window);
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, D, i0 + m - kst, 1.0f,
                                dS + (size_t)i0 * T + kst, T, kb + (size_t)kst * ks, ks, 1.0f,
                                dq + (size_t)b * T * qs + (size_t)h * D + (size_t)i0 * qs, qs);
                }
            // dK[j0:j1] += dS[j0:ie, j0:j1]^T Q[j0:ie]
            if (dkb)
                for (int j0 = 0; j0 < T; j0 += ATT_BLOCK) {
                    int n = imin(ATT_BLOCK, T - j0), ie = LAST_ROW(j0, n);
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, D, ie - j0, 1.0f,
                                dS + (size_t)j0 * T + j0, T, qb + (size_t)j0 * qs, qs, 1.0f, dkb + (size_t)j0 * ks, ks);
                }
        }
    }
#undef LAST_ROW
}
