// test_ops_grad.c: checks every f32 op of src/ops against independent computations.
//  1. Forward: against naive double-precision references written here (no shared code).
//  2. Backward: central finite differences of the scalar objective L = sum(dout * fwd(x)),
//     accumulated in double, on small seeded random shapes. Pass: relative L2 error of the
//     whole gradient vector below FD_TOL; the worst element is printed.
//  3. Accumulate contract: a backward into pre-filled buffers adds exactly what it writes
//     into zeroed buffers.
//  4. Attention with Tq < Tk (KV cache) equals the last rows of the full Tq == Tk forward.
//  5. Every op gives bit-identical results with 1 and 2 OpenMP threads (shapes large enough
//     for OpenBLAS and the OpenMP loops to split).
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ops/ops.h"
#include "ops/vexp.h"

#define FD_TOL 1e-3  // relative L2 error of a finite-difference gradient
#define FD_H 1e-2f   // finite-difference step
#define STR(x) #x
#define XSTR(x) STR(x)

// ---- helpers ----

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng_next(void) {  // splitmix64
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static float rng_unif(void) { return (float)((rng_next() >> 40) * (1.0 / 16777216.0)); }  // [0,1)
static float rng_normal(void) {
    float u1 = rng_unif() + 1e-7f, u2 = rng_unif();
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}
static float *rnd(long n, float scale) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!p) abort();
    for (long i = 0; i < n; i++) p[i] = scale * rng_normal();
    return p;
}
static float *zeros(long n) {
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (!p) abort();
    return p;
}
static double dot_f(const float *a, const float *b, long n) {
    double s = 0;
    for (long i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

// A test case: obj() runs the forward on the current inputs and returns sum(dout * out) in
// double; bwd() runs the backward, accumulating into the param grad buffers.
typedef struct param {
    const char *name;
    float *x;  // (n) input, perturbed in place by the FD
    float *g;  // (n) gradient buffer handed to bwd
    long n;
} param;
typedef double (*obj_fn)(void *ctx);
typedef void (*bwd_fn)(void *ctx);

static void check_grads(const char *name, obj_fn obj, bwd_fn bwd, void *ctx, param *ps, int np) {
    // Analytic gradient into zeroed buffers.
    float *g0[8];
    for (int p = 0; p < np; p++) memset(ps[p].g, 0, (size_t)ps[p].n * sizeof(float));
    bwd(ctx);
    for (int p = 0; p < np; p++) {
        g0[p] = zeros(ps[p].n);
        memcpy(g0[p], ps[p].g, (size_t)ps[p].n * sizeof(float));
    }
    // Accumulate contract: pre-filled buffers get +=.
    float *pre[8];
    for (int p = 0; p < np; p++) {
        pre[p] = rnd(ps[p].n, 1.0f);
        memcpy(ps[p].g, pre[p], (size_t)ps[p].n * sizeof(float));
    }
    bwd(ctx);
    for (int p = 0; p < np; p++) {
        float *diff = zeros(ps[p].n);
        for (long i = 0; i < ps[p].n; i++) diff[i] = ps[p].g[i] - pre[p][i];
        char what[128];
        snprintf(what, sizeof what, "%s: accumulate d%s", name, ps[p].name);
        CHECK_CLOSE(what, diff, g0[p], ps[p].n, 1e-5, 1e-5);
        free(diff);
        free(pre[p]);
    }
    // Central finite differences in double.
    for (int p = 0; p < np; p++) {
        double num = 0, den = 0, worst = -1;
        long wi = 0;
        double wfd = 0;
        for (long i = 0; i < ps[p].n; i++) {
            float x0 = ps[p].x[i], xp = x0 + FD_H, xm = x0 - FD_H;
            ps[p].x[i] = xp;
            double lp = obj(ctx);
            ps[p].x[i] = xm;
            double lm = obj(ctx);
            ps[p].x[i] = x0;
            double fd = (lp - lm) / ((double)xp - (double)xm);
            double d = fabs(fd - g0[p][i]);
            num += d * d;
            den += fd * fd;
            if (d > worst) { worst = d; wi = i; wfd = fd; }
        }
        double rel = sqrt(num / (den > 0 ? den : 1e-300));
        CHECK(rel < FD_TOL && den > 0, "%s: d%s rel L2 err %.3g (|fd| %.3g), worst element %ld: analytic %.7g fd %.7g",
              name, ps[p].name, rel, sqrt(den), wi, (double)g0[p][wi], wfd);
        fprintf(stderr, "  %-28s d%-5s n=%-5ld rel L2 err %.2e  worst |diff| %.2e at %ld\n", name,
                ps[p].name, ps[p].n, rel, worst, wi);
        free(g0[p]);
    }
}

// ---- embedding ----
typedef struct { float *wte, *dwte, *out, *dout; int32_t *tok; int N, C; } embed_ctx;
static double embed_obj(void *c) {
    embed_ctx *e = c;
    mxp_embed_fwd(e->out, e->tok, e->wte, e->N, e->C);
    return dot_f(e->out, e->dout, (long)e->N * e->C);
}
static void embed_bwd(void *c) { embed_ctx *e = c; mxp_embed_bwd(e->dwte, e->dout, e->tok, e->N, e->C); }

static void test_embed(void) {
    int V = 7, C = 5, N = 9;
    int32_t tok[9] = {3, 1, 3, 0, 6, 3, 1, 2, 3};  // repeated tokens, token 4 and 5 unused
    embed_ctx e = {rnd(V * C, 1), zeros(V * C), zeros(N * C), rnd(N * C, 1), tok, N, C};
    mxp_embed_fwd(e.out, tok, e.wte, N, C);
    int ok = 1;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) ok &= e.out[n * C + c] == e.wte[tok[n] * C + c];
    CHECK(ok, "embed_fwd does not copy rows");
    param ps[] = {{"wte", e.wte, e.dwte, V * C}};
    check_grads("embed", embed_obj, embed_bwd, &e, ps, 1);
    free(e.wte); free(e.dwte); free(e.out); free(e.dout);
}

typedef struct { float *x, *wpe, *dx, *dwpe, *out, *dout; int B, T, pos0, C; } pos_ctx;
static double pos_obj(void *c) {
    pos_ctx *e = c;
    mxp_posembed_fwd(e->out, e->x, e->wpe, e->B, e->T, e->pos0, e->C);
    return dot_f(e->out, e->dout, (long)e->B * e->T * e->C);
}
static void pos_bwd(void *c) {
    pos_ctx *e = c;
    mxp_posembed_bwd(e->dx, e->dwpe, e->dout, e->B, e->T, e->pos0, e->C);
}
static void test_posembed(void) {
    int B = 2, T = 3, pos0 = 2, C = 4, P = 6;
    pos_ctx e = {rnd(B * T * C, 1), rnd(P * C, 1), zeros(B * T * C), zeros(P * C), zeros(B * T * C),
                 rnd(B * T * C, 1), B, T, pos0, C};
    pos_obj(&e);
    float *ref = zeros(B * T * C);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++)
                ref[(b * T + t) * C + c] = e.x[(b * T + t) * C + c] + e.wpe[(pos0 + t) * C + c];
    CHECK_CLOSE("posembed fwd", e.out, ref, B * T * C, 0, 0);
    // out aliasing x
    float *xa = zeros(B * T * C);
    memcpy(xa, e.x, sizeof(float) * B * T * C);
    mxp_posembed_fwd(xa, xa, e.wpe, B, T, pos0, C);
    CHECK_CLOSE("posembed fwd in place", xa, ref, B * T * C, 0, 0);
    param ps[] = {{"x", e.x, e.dx, B * T * C}, {"wpe", e.wpe, e.dwpe, P * C}};
    check_grads("posembed", pos_obj, pos_bwd, &e, ps, 2);
    // rows of wpe outside [pos0, pos0 + T) untouched
    memset(e.dwpe, 0, sizeof(float) * P * C);
    pos_bwd(&e);
    CHECK(e.dwpe[0] == 0 && e.dwpe[(pos0 + T) * C] == 0 && e.dwpe[pos0 * C] != 0, "posembed_bwd rows");
    free(ref); free(xa); free(e.x); free(e.wpe); free(e.dx); free(e.dwpe); free(e.out); free(e.dout);
}

// ---- norms ----
typedef struct {
    float *x, *w, *b, *dx, *dw, *db, *out, *dout, *mean, *rstd;
    int N, C, layer;
    float eps;
} norm_ctx;
static double norm_obj(void *c) {
    norm_ctx *e = c;
    if (e->layer)
        mxp_layernorm_fwd(e->out, e->mean, e->rstd, e->x, e->w, e->b, e->N, e->C, e->eps);
    else
        mxp_rmsnorm_fwd(e->out, e->rstd, e->x, e->w, e->N, e->C, e->eps);
    return dot_f(e->out, e->dout, (long)e->N * e->C);
}
static void norm_bwd(void *c) {
    norm_ctx *e = c;
    norm_obj(e);  // refresh saved stats for the unperturbed input
    if (e->layer)
        mxp_layernorm_bwd(e->dx, e->dw, e->db, e->dout, e->x, e->w, e->mean, e->rstd, e->N, e->C);
    else
        mxp_rmsnorm_bwd(e->dx, e->dw, e->dout, e->x, e->w, e->rstd, e->N, e->C);
}
static void test_norm(int layer, int bias) {
    int N = 3, C = 8;
    float eps = 1e-5f;
    norm_ctx e = {rnd(N * C, 1), rnd(C, 1), bias ? rnd(C, 1) : NULL, zeros(N * C), zeros(C),
                  bias ? zeros(C) : NULL, zeros(N * C), rnd(N * C, 1), zeros(N), zeros(N), N, C, layer, eps};
    for (int i = 0; i < N * C; i++) e.x[i] += 0.5f;  // nonzero mean
    norm_obj(&e);
    float *ref = zeros(N * C);
    for (int n = 0; n < N; n++) {
        double m = 0, v = 0;
        for (int c = 0; c < C; c++) m += e.x[n * C + c];
        m = layer ? m / C : 0;
        for (int c = 0; c < C; c++) v += (e.x[n * C + c] - m) * (e.x[n * C + c] - m);
        double r = 1 / sqrt(v / C + eps);
        for (int c = 0; c < C; c++)
            ref[n * C + c] = (float)((e.x[n * C + c] - m) * r * e.w[c] + (bias ? e.b[c] : 0));
    }
    const char *nm = layer ? (bias ? "layernorm+b" : "layernorm") : "rmsnorm";
    char what[64];
    snprintf(what, sizeof what, "%s fwd", nm);
    CHECK_CLOSE(what, e.out, ref, N * C, 1e-5, 1e-5);
    param ps[] = {{"x", e.x, e.dx, N * C}, {"w", e.w, e.dw, C}, {"b", e.b, e.db, C}};
    check_grads(nm, norm_obj, norm_bwd, &e, ps, bias ? 3 : 2);
    free(ref); free(e.x); free(e.w); free(e.b); free(e.dx); free(e.dw); free(e.db);
    free(e.out); free(e.dout); free(e.mean); free(e.rstd);
}

// ---- linear ----
typedef struct { float *x, *w, *b, *dx, *dw, *db, *out, *dout; int N, I, O; } lin_ctx;
static double lin_obj(void *c) {
    lin_ctx *e = c;
    mxp_linear_fwd(e->out, e->x, e->w, e->b, e->N, e->I, e->O);
    return dot_f(e->out, e->dout, (long)e->N * e->O);
}
static void lin_bwd(void *c) {
    lin_ctx *e = c;
    mxp_linear_bwd(e->dx, e->dw, e->db, e->dout, e->x, e->w, e->N, e->I, e->O);
}
static void test_linear(int N, int I, int O, int bias) {
    lin_ctx e = {rnd(N * I, 1), rnd(O * I, 1), bias ? rnd(O, 1) : NULL, zeros(N * I), zeros(O * I),
                 bias ? zeros(O) : NULL, zeros(N * O), rnd(N * O, 1), N, I, O};
    lin_obj(&e);
    float *ref = zeros(N * O);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++) {
            double s = bias ? e.b[o] : 0;
            for (int i = 0; i < I; i++) s += (double)e.x[n * I + i] * e.w[o * I + i];
            ref[n * O + o] = (float)s;
        }
    char nm[64];
    snprintf(nm, sizeof nm, "linear N=%d %d->%d%s", N, I, O, bias ? " +b" : "");
    CHECK_CLOSE(nm, e.out, ref, N * O, 1e-5, 1e-5);
    param ps[] = {{"x", e.x, e.dx, N * I}, {"w", e.w, e.dw, O * I}, {"b", e.b, e.db, O}};
    check_grads(nm, lin_obj, lin_bwd, &e, ps, bias ? 3 : 2);
    free(ref); free(e.x); free(e.w); free(e.b); free(e.dx); free(e.dw); free(e.db); free(e.out); free(e.dout);
}

// ---- rope ----
typedef struct { float *x, *dx, *out, *dout, *inv_freq; int B, T, pos0, H, D; } rope_ctx;
static double rope_obj(void *c) {
    rope_ctx *e = c;
    mxp_rope_fwd(e->out, e->x, e->inv_freq, e->B, e->T, e->pos0, e->H, e->D);
    return dot_f(e->out, e->dout, (long)e->B * e->T * e->H * e->D);
}
static void rope_bwd(void *c) {
    rope_ctx *e = c;
    mxp_rope_bwd(e->dx, e->dout, e->inv_freq, e->B, e->T, e->pos0, e->H, e->D);
}
// D beyond the kernel's cos/sin chunk (64 pairs), and not a multiple of it, covers the chunking.
static void test_rope(int B, int T, int H, int D) {
    int pos0 = 5, n = B * T * H * D;
    float *invf = zeros(D / 2);
    for (int i = 0; i < D / 2; i++) invf[i] = (float)pow(100.0, -2.0 * i / D);
    rope_ctx e = {rnd(n, 1), zeros(n), zeros(n), rnd(n, 1), invf, B, T, pos0, H, D};
    rope_obj(&e);
    float *ref = zeros(n);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++) {
                const float *x = e.x + ((b * T + t) * H + h) * D;
                float *o = ref + ((b * T + t) * H + h) * D;
                for (int i = 0; i < D / 2; i++) {
                    double a = (double)(pos0 + t) * invf[i];
                    o[i] = (float)(x[i] * cos(a) - x[i + D / 2] * sin(a));
                    o[i + D / 2] = (float)(x[i + D / 2] * cos(a) + x[i] * sin(a));
                }
            }
    char nm[64];
    snprintf(nm, sizeof nm, "rope D%d fwd", D);
    CHECK_CLOSE(nm, e.out, ref, n, 1e-5, 1e-5);
    float *xa = zeros(n);
    memcpy(xa, e.x, sizeof(float) * n);
    mxp_rope_fwd(xa, xa, invf, B, T, pos0, H, D);
    CHECK_CLOSE("rope fwd in place", xa, e.out, n, 0, 0);
    param ps[] = {{"x", e.x, e.dx, n}};
    snprintf(nm, sizeof nm, "rope D%d", D);
    check_grads(nm, rope_obj, rope_bwd, &e, ps, 1);
    free(invf); free(ref); free(xa); free(e.x); free(e.dx); free(e.out); free(e.dout);
}

// ---- attention ----
// Naive double reference: out (B*Tq, H*D), att (B, H, Tq, Tk). With window > 0, key j is
// visible from position p only when p - j < window (explicit test per key, as HF masks).
static void attention_ref(float *out, float *att, const float *q, const float *k, const float *v,
                          int B, int Tq, int Tk, int H, int Hkv, int D, int window) {
    double *s = malloc(sizeof(double) * Tk);
    if (!s) abort();
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int hk = h / (H / Hkv);
            for (int i = 0; i < Tq; i++) {
                int lim = Tk - Tq + i;
                const float *qi = q + ((size_t)(b * Tq + i) * H + h) * D;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < Tk; j++) {
                    const float *kj = k + ((size_t)(b * Tk + j) * Hkv + hk) * D;
                    double d = 0;
                    for (int c = 0; c < D; c++) d += (double)qi[c] * kj[c];
                    int masked = j > lim || (window > 0 && lim - j >= window);
                    s[j] = masked ? -INFINITY : d / sqrt((double)D);
                    if (s[j] > mx) mx = s[j];
                }
                for (int j = 0; j < Tk; j++) sum += (s[j] = exp(s[j] - mx));  // exp(-inf) = 0
                float *a = att + (((size_t)b * H + h) * Tq + i) * Tk;
                for (int j = 0; j < Tk; j++) a[j] = (float)(s[j] / sum);
                float *o = out + ((size_t)(b * Tq + i) * H + h) * D;
                for (int c = 0; c < D; c++) {
                    double acc = 0;
                    for (int j = 0; j < Tk; j++)
                        acc += s[j] / sum * v[((size_t)(b * Tk + j) * Hkv + hk) * D + c];
                    o[c] = (float)acc;
                }
            }
        }
    free(s);
}

// Attention work space for the current thread count: (omp_get_max_threads(), Tq, Tk).
static float *att_scratch(int Tq, int Tk) {
    float *s = malloc(sizeof(float) * (size_t)omp_get_max_threads() * Tq * Tk);
    if (!s) abort();
    return s;
}

typedef struct { float *q, *k, *v, *dq, *dk, *dv, *out, *att, *dout; int B, T, H, Hkv, D, W; } att_ctx;
static double att_obj(void *c) {
    att_ctx *e = c;
    mxp_attention_fwd(e->out, e->att, NULL, 0, e->q, e->k, e->v, e->B, e->T, e->T, e->H, e->Hkv, e->D, e->W);
    return dot_f(e->out, e->dout, (long)e->B * e->T * e->H * e->D);
}
static void att_bwd(void *c) {
    att_ctx *e = c;
    att_obj(e);
    float *ws = att_scratch(e->T, e->T);
    mxp_attention_bwd(e->dq, e->dk, e->dv, ws, omp_get_max_threads(), e->dout, e->q, e->k, e->v, e->att, e->B,
                      e->T, e->H, e->Hkv, e->D, e->W);
    free(ws);
}
static void test_attention(int B, int T, int H, int Hkv, int D, int W) {
    long nq = (long)B * T * H * D, nk = (long)B * T * Hkv * D, na = (long)B * H * T * T;
    att_ctx e = {rnd(nq, 1), rnd(nk, 1), rnd(nk, 1), zeros(nq), zeros(nk), zeros(nk),
                 zeros(nq), zeros(na), rnd(nq, 1), B, T, H, Hkv, D, W};
    char nm[64];
    snprintf(nm, sizeof nm, "attention B%d T%d H%d/%d D%d W%d", B, T, H, Hkv, D, W);
    att_obj(&e);
    float *ro = zeros(nq), *ra = zeros(na);
    attention_ref(ro, ra, e.q, e.k, e.v, B, T, T, H, Hkv, D, W);
    CHECK_CLOSE(nm, e.out, ro, nq, 1e-5, 1e-4);
    CHECK_CLOSE(nm, e.att, ra, na, 1e-6, 1e-4);
    long outside = 0;  // probabilities of keys not attended to are exactly zero
    for (long r = 0; r < (long)B * H * T; r++)
        for (int j = 0; j < T; j++) {
            int i = (int)(r % T);
            if ((j > i || (W > 0 && i - j >= W)) && e.att[r * T + j] != 0.0f) outside++;
        }
    CHECK(outside == 0, "%s: %ld probabilities outside the visible keys are not zero", nm, outside);
    // att == NULL path gives the same output
    float *o2 = zeros(nq), *ws = att_scratch(T, T);
    mxp_attention_fwd(o2, NULL, ws, omp_get_max_threads(), e.q, e.k, e.v, B, T, T, H, Hkv, D, W);
    CHECK_CLOSE("attention att=NULL", o2, e.out, nq, 0, 0);
    memset(o2, 0, sizeof(float) * (size_t)nq);  // one scratch slot: one thread, the same values
    mxp_attention_fwd(o2, NULL, ws, 1, e.q, e.k, e.v, B, T, T, H, Hkv, D, W);
    CHECK_CLOSE("attention att=NULL, one slot", o2, e.out, nq, 0, 0);
    free(ws);
    // KV-cache case: the last Tq queries against all Tk = T keys equal the last rows.
    for (int Tq = 1; Tq <= 3 && Tq < T; Tq++) {
        float *qs = zeros((long)B * Tq * H * D), *os = zeros((long)B * Tq * H * D);
        float *as = zeros((long)B * H * Tq * T);
        for (int b = 0; b < B; b++)
            memcpy(qs + (size_t)b * Tq * H * D, e.q + ((size_t)b * T + T - Tq) * H * D,
                   sizeof(float) * Tq * H * D);
        mxp_attention_fwd(os, as, NULL, 0, qs, e.k, e.v, B, Tq, T, H, Hkv, D, W);
        float *want = zeros((long)B * Tq * H * D), *wanta = zeros((long)B * H * Tq * T);
        for (int b = 0; b < B; b++) {
            memcpy(want + (size_t)b * Tq * H * D, e.out + ((size_t)b * T + T - Tq) * H * D,
                   sizeof(float) * Tq * H * D);
            for (int h = 0; h < H; h++)
                memcpy(wanta + (((size_t)b * H + h) * Tq) * T, e.att + (((size_t)b * H + h) * T + T - Tq) * T,
                       sizeof(float) * Tq * T);
        }
        char w2[96];
        snprintf(w2, sizeof w2, "%s Tq=%d out", nm, Tq);
        CHECK_CLOSE(w2, os, want, (long)B * Tq * H * D, 1e-5, 1e-4);
        snprintf(w2, sizeof w2, "%s Tq=%d att", nm, Tq);
        CHECK_CLOSE(w2, as, wanta, (long)B * H * Tq * T, 1e-6, 1e-4);
        free(qs); free(os); free(as); free(want); free(wanta);
    }
    param ps[] = {{"q", e.q, e.dq, nq}, {"k", e.k, e.dk, nk}, {"v", e.v, e.dv, nk}};
    if (W != 1) {
        check_grads(nm, att_obj, att_bwd, &e, ps, 3);
    } else {  // each position sees itself only: out = v, and q, k get no gradient at all
        check_grads(nm, att_obj, att_bwd, &e, ps + 2, 1);
        memset(e.dq, 0, sizeof(float) * (size_t)nq);
        memset(e.dk, 0, sizeof(float) * (size_t)nk);
        att_bwd(&e);
        float *z = zeros(nq);
        CHECK_CLOSE("attention W1 dq", e.dq, z, nq, 0, 0);
        CHECK_CLOSE("attention W1 dk", e.dk, z, nk, 0, 0);
        free(z);
    }
    free(ro); free(ra); free(o2);
    free(e.q); free(e.k); free(e.v); free(e.dq); free(e.dk); free(e.dv); free(e.out); free(e.att); free(e.dout);
}

// ---- elementwise ----
typedef struct { float *a, *b, *da, *db, *out, *dout; long n; int kind; } ew_ctx;  // kind 0 swiglu, 1 gelu
static double ew_obj(void *c) {
    ew_ctx *e = c;
    if (e->kind == 0) mxp_swiglu_fwd(e->out, e->a, e->b, e->n);
    else mxp_gelu_fwd(e->out, e->a, e->n);
    return dot_f(e->out, e->dout, e->n);
}
static void ew_bwd(void *c) {
    ew_ctx *e = c;
    if (e->kind == 0) mxp_swiglu_bwd(e->da, e->db, e->dout, e->a, e->b, e->n);
    else mxp_gelu_bwd(e->da, e->dout, e->a, e->n);
}
static void test_elementwise(void) {
    long n = 40;
    ew_ctx e = {rnd(n, 2), rnd(n, 1), zeros(n), zeros(n), zeros(n), rnd(n, 1), n, 0};
    float *ref = zeros(n);
    ew_obj(&e);
    for (long i = 0; i < n; i++) ref[i] = (float)(e.a[i] / (1 + exp(-(double)e.a[i])) * e.b[i]);
    CHECK_CLOSE("swiglu fwd", e.out, ref, n, 1e-6, 1e-5);
    param ps[] = {{"gate", e.a, e.da, n}, {"up", e.b, e.db, n}};
    check_grads("swiglu", ew_obj, ew_bwd, &e, ps, 2);
    e.kind = 1;
    ew_obj(&e);
    for (long i = 0; i < n; i++) {
        double x = e.a[i];
        ref[i] = (float)(0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))));
    }
    CHECK_CLOSE("gelu fwd", e.out, ref, n, 1e-6, 1e-5);
    check_grads("gelu", ew_obj, ew_bwd, &e, ps, 1);
    // add / acc
    mxp_add_fwd(e.out, e.a, e.b, n);
    for (long i = 0; i < n; i++) ref[i] = e.a[i] + e.b[i];
    CHECK_CLOSE("add", e.out, ref, n, 0, 0);
    memcpy(e.out, e.a, sizeof(float) * n);
    mxp_acc(e.out, e.b, n);
    CHECK_CLOSE("acc", e.out, ref, n, 0, 0);
    free(ref); free(e.a); free(e.b); free(e.da); free(e.db); free(e.out); free(e.dout);
}

// ---- cross-entropy: objective sum_n scale[n] * loss[n] ----
typedef struct { float *logits, *dlogits, *losses, *scale; int32_t *tgt; int N, V; } xent_ctx;
static double xent_obj(void *c) {
    xent_ctx *e = c;
    mxp_xent_fwd(e->losses, e->logits, e->tgt, e->N, e->V);
    return dot_f(e->losses, e->scale, e->N);
}
static void xent_bwd(void *c) {
    xent_ctx *e = c;
    mxp_xent_bwd(e->dlogits, e->logits, e->tgt, e->scale, e->N, e->V);
}
static void test_xent(void) {
    int N = 3, V = 11;
    int32_t tgt[3] = {4, 0, 10};
    float scale[3] = {0.5f, 1.5f, 1.0f / 3};
    xent_ctx e = {rnd(N * V, 2), zeros(N * V), zeros(N), scale, tgt, N, V};
    e.logits[V + 3] += 30.0f;  // a dominant logit: max subtraction must keep this finite
    xent_obj(&e);
    float ref[3];
    for (int n = 0; n < N; n++) {
        double mx = -INFINITY, s = 0;
        for (int j = 0; j < V; j++) mx = fmax(mx, e.logits[n * V + j]);
        for (int j = 0; j < V; j++) s += exp(e.logits[n * V + j] - mx);
        ref[n] = (float)(log(s) + mx - e.logits[n * V + tgt[n]]);
    }
    CHECK_CLOSE("xent fwd", e.losses, ref, N, 1e-5, 1e-5);
    param ps[] = {{"logits", e.logits, e.dlogits, N * V}};
    check_grads("xent", xent_obj, xent_bwd, &e, ps, 1);
    free(e.logits); free(e.dlogits); free(e.losses);
}

// ---- the vectorizable exp (ops/vexp.h) and NaN propagation through its users ----
static void test_vexp(void) {
    double maxulp = 0;
    float worst = 0;
    for (float x = -87.0f; x < 88.0f; x += 0.00731f) {
        double ref = exp((double)x);
        float rf = (float)ref;
        double ulp = fabs((double)mxp_vexpf(x) - ref) / ((double)nextafterf(rf, INFINITY) - rf);
        if (ulp > maxulp) { maxulp = ulp; worst = x; }
    }
    CHECK(maxulp <= 3.0, "vexp: %.2f ulp at %.9g", maxulp, (double)worst);
    fprintf(stderr, "  vexp: max %.2f ulp over [-87, 88]\n", maxulp);
    CHECK(mxp_vexpf(-INFINITY) == 0.0f && mxp_vexpf(-200.0f) == 0.0f && mxp_vexpf(0.0f) == 1.0f,
          "vexp edges: %g %g %g", mxp_vexpf(-INFINITY), mxp_vexpf(-200.0f), mxp_vexpf(0.0f));
    CHECK(isfinite(mxp_vexpf(INFINITY)) && mxp_vexpf(INFINITY) > 1e38f, "vexp(+inf) = %g", mxp_vexpf(INFINITY));
    // A NaN logit / score must not vanish in the clamps.
    int V = 5;
    float logits[5] = {0.1f, NAN, 0.3f, -1.0f, 2.0f}, loss = 0, dl[5] = {0};
    int32_t t = 0;
    float sc = 1.0f;
    mxp_xent_fwd(&loss, logits, &t, 1, V);
    mxp_xent_bwd(dl, logits, &t, &sc, 1, V);
    CHECK(isnan(loss) && isnan(dl[2]), "xent with a NaN logit: loss %g, dlogits[2] %g", loss, dl[2]);
    float q[8] = {1, 2, 3, 4, 5, 6, 7, 8}, k[8] = {1, 0, 0, 1, 0, NAN, 1, 0}, v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    float o[8], att[4];
    mxp_attention_fwd(o, att, NULL, 0, q, k, v, 1, 2, 2, 1, 1, 4, 0);
    CHECK(!isnan(o[0]) && isnan(o[4]), "attention with a NaN key: row 0 %g (finite), row 1 %g (NaN)", o[0], o[4]);
}

// ---- determinism across thread counts ----
// Runs every op forward and backward at shapes large enough to be split, appending all
// outputs to res (a buffer of at least DET_MAX floats). Returns the number of floats written.
#define DET_MAX (1L << 23)
#define DET_LABELS 64
static const char *det_name[DET_LABELS];  // which op wrote res[det_off[i] ..]
static long det_off[DET_LABELS];
static int det_n;
static long run_all(float *res, int nthreads) {
    omp_set_num_threads(nthreads);
    rng_state = 12345;
    long w = 0;
    det_n = 0;
#define EMIT(p, n) do { if (det_n < DET_LABELS) { det_name[det_n] = #p " after line " XSTR(__LINE__); det_off[det_n++] = w; } memcpy(res + w, p, sizeof(float) * (size_t)(n)); w += (n); if (w > DET_MAX) abort(); } while (0)
    int N = 67, C = 200, V = 300;
    int32_t *tok = malloc(sizeof(int32_t) * N);
    if (!tok) abort();
    for (int n = 0; n < N; n++) tok[n] = (int32_t)(rng_next() % 20);  // many repeats
    float *x = rnd(N * C, 1), *wte = rnd(V * C, 1), *dout = rnd(N * C, 1), *g = zeros(V * C);
    float *out = zeros(N * C), *w1 = rnd(C, 1), *b1 = rnd(C, 1), *st1 = zeros(N), *st2 = zeros(N);
    mxp_embed_fwd(out, tok, wte, N, C); EMIT(out, N * C);
    mxp_embed_bwd(g, dout, tok, N, C); EMIT(g, V * C);
    memset(g, 0, sizeof(float) * V * C);
    mxp_posembed_fwd(out, x, wte, 1, N, 3, C); EMIT(out, N * C);
    mxp_posembed_bwd(g, g + N * C, dout, 1, N / 2, 3, C); EMIT(g, V * C);
    memset(g, 0, sizeof(float) * V * C);
    mxp_rmsnorm_fwd(out, st1, x, w1, N, C, 1e-6f); EMIT(out, N * C); EMIT(st1, N);
    mxp_rmsnorm_bwd(g, g + N * C, dout, x, w1, st1, N, C); EMIT(g, N * C + C);
    memset(g, 0, sizeof(float) * V * C);
    mxp_layernorm_fwd(out, st1, st2, x, w1, b1, N, C, 1e-5f); EMIT(out, N * C);
    mxp_layernorm_bwd(g, g + N * C, g + N * C + C, dout, x, w1, st1, st2, N, C); EMIT(g, N * C + 2 * C);
    memset(g, 0, sizeof(float) * V * C);
    mxp_swiglu_fwd(out, x, dout, N * C); EMIT(out, N * C);
    mxp_swiglu_bwd(g, g + N * C, dout, x, wte, N * C); EMIT(g, 2 * N * C);
    memset(g, 0, sizeof(float) * V * C);
    mxp_gelu_fwd(out, x, N * C); EMIT(out, N * C);
    mxp_gelu_bwd(g, dout, x, N * C); EMIT(g, N * C);
    memset(g, 0, sizeof(float) * V * C);
    int32_t *tgt = tok;
    float *sc = rnd(N, 1);
    mxp_xent_fwd(st1, wte, tgt, N, V * C / N); EMIT(st1, N);
    mxp_xent_bwd(g, wte, tgt, sc, N, V * C / N); EMIT(g, V * C / N * N);
    memset(g, 0, sizeof(float) * V * C);
    float invf[32];
    for (int i = 0; i < 32; i++) invf[i] = (float)pow(10000.0, -i / 32.0);
    mxp_rope_fwd(out, x, invf, 1, N, 7, 2, 64); EMIT(out, N * 128);
    mxp_rope_bwd(g, dout, invf, 1, N, 7, 2, 64); EMIT(g, N * 128);
    free(tok); free(x); free(wte); free(dout); free(g); free(out); free(w1); free(b1); free(st1); free(st2); free(sc);
    // linear: big enough for OpenBLAS to thread; also the N == 1 (gemv/ger) path.
    int LN[3] = {96, 1, 40}, LI[3] = {384, 384, 100}, LO[3] = {640, 640, 5000};  // last: split K
    for (int t = 0; t < 3; t++) {
        int n = LN[t], I = LI[t], O = LO[t];
        float *lx = rnd(n * I, 1), *lw = rnd(O * I, 1), *lb = rnd(O, 1), *lo = zeros(n * O), *ld = rnd(n * O, 1);
        float *gx = rnd(n * I, 1), *gw = rnd(O * I, 1), *gb = rnd(O, 1);
        mxp_linear_fwd(lo, lx, lw, lb, n, I, O); EMIT(lo, n * O);
        mxp_linear_bwd(gx, gw, gb, ld, lx, lw, n, I, O); EMIT(gx, n * I); EMIT(gw, O * I); EMIT(gb, O);
        free(lx); free(lw); free(lb); free(lo); free(ld); free(gx); free(gw); free(gb);
    }
    // attention: several causal blocks, GQA.
    int B = 2, T = 150, H = 4, Hkv = 2, D = 64;
    long nq = (long)B * T * H * D, nk = (long)B * T * Hkv * D;
    float *q = rnd(nq, 1), *k = rnd(nk, 1), *v = rnd(nk, 1), *ao = zeros(nq), *att = zeros((long)B * H * T * T);
    float *ad = rnd(nq, 1), *dq = rnd(nq, 1), *dk = rnd(nk, 1), *dv = rnd(nk, 1);
    float *ws = att_scratch(T, T);
    mxp_attention_fwd(ao, att, NULL, 0, q, k, v, B, T, T, H, Hkv, D, 0); EMIT(ao, nq); EMIT(att, (long)B * H * T * T);
    mxp_attention_bwd(dq, dk, dv, ws, nthreads, ad, q, k, v, att, B, T, H, Hkv, D, 0); EMIT(dq, nq); EMIT(dk, nk); EMIT(dv, nk);
    mxp_attention_fwd(ao, NULL, ws, nthreads, q + (T - 1) * H * D, k, v, 1, 1, T, H, Hkv, D, 0); EMIT(ao, H * D);
    mxp_attention_fwd(ao, att, NULL, 0, q, k, v, B, T, T, H, Hkv, D, 70); EMIT(ao, nq);
    mxp_attention_bwd(dq, dk, dv, ws, nthreads, ad, q, k, v, att, B, T, H, Hkv, D, 70); EMIT(dq, nq); EMIT(dk, nk); EMIT(dv, nk);
    free(ws);
    free(q); free(k); free(v); free(ao); free(att); free(ad); free(dq); free(dk); free(dv);
#undef EMIT
    return w;
}

static void test_determinism(void) {
    float *r1 = malloc(sizeof(float) * DET_MAX), *r2 = malloc(sizeof(float) * DET_MAX);
    if (!r1 || !r2) abort();
    long n1 = run_all(r1, 1);
    for (int nt = 2; nt <= 3; nt++) {
        long n2 = run_all(r2, nt);
        CHECK(n1 == n2, "run_all sizes differ");
        long first = -1;
        for (long i = 0; i < n1 && i < n2; i++)
            if (memcmp(&r1[i], &r2[i], sizeof(float)) != 0) { first = i; break; }
        const char *op = "?";
        for (int l = 0; l < det_n; l++)
            if (first >= det_off[l]) op = det_name[l];
        CHECK(first < 0, "1 vs %d threads differ at float %ld of %ld (%s): %.9g vs %.9g", nt, first, n1,
              op, first >= 0 ? r1[first] : 0.0, first >= 0 ? r2[first] : 0.0);
        fprintf(stderr, "  determinism: %ld floats compared, 1 vs %d threads %s\n", n1, nt,
                first < 0 ? "identical" : "DIFFER");
    }
    omp_set_num_threads(2);
    free(r1); free(r2);
}

int main(void) {
    test_embed();
    test_posembed();
    test_norm(0, 0);
    test_norm(1, 0);
    test_norm(1, 1);
    test_linear(3, 5, 4, 0);
    test_linear(3, 5, 4, 1);
    test_linear(1, 5, 4, 0);
    test_linear(1, 5, 4, 1);
    test_linear(4, 6, 4100, 0);  // dx has a long inner dimension: the split-K path of gemm.c
    test_rope(2, 3, 3, 8);
    test_rope(1, 2, 2, 1034);
    test_attention(2, 5, 2, 2, 8, 0);
    test_attention(2, 5, 4, 2, 8, 0);
    test_attention(2, 5, 4, 1, 8, 0);
    test_attention(1, 70, 2, 1, 4, 0);  // crosses a causal block boundary (ATT_BLOCK = 64)
    // sliding windows: shorter than the sequence, of one key, inside and across blocks, and
    // one at least as long as the sequence (the same as none)
    test_attention(2, 9, 4, 2, 8, 3);
    test_attention(1, 6, 2, 1, 4, 1);
    test_attention(1, 150, 2, 1, 4, 40);
    test_attention(1, 150, 2, 1, 4, 70);
    test_attention(2, 5, 2, 1, 8, 5);
    test_elementwise();
    test_xent();
    test_vexp();
    test_determinism();
    CHECK_DONE();
}
