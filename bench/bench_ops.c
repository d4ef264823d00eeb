// bench_ops.c: times every f32 op of src/ops forward and backward at the shapes of a
// 100M-parameter Llama (dim 768, 12 heads of 64, ffn 2048, vocab 32000), T = 256, B = 1
// (override with: bench_ops [T] [B]). Prints the best-of-9 ms of each op and GFLOP/s for the
// matrix products, then the per-step total those ops add up to for 12 layers.
// Run with OMP_WAIT_POLICY=PASSIVE (the OpenMP threads share cores with OpenBLAS calls).
// Data on stdout; the last line is a grep-able summary.
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "ops/ops.h"

#define DIM 768
#define HEADS 12
#define HD 64
#define FFN 2048
#define VOCAB 32000
#define LAYERS 12
#define REPS 9

static float *buf(long n, uint64_t *seed) {
    float *p = mxp_aligned_alloc((size_t)n * sizeof(float));
    if (!p) {
        fprintf(stderr, "bench_ops: out of memory\n");
        abort();
    }
    for (long i = 0; i < n; i++) {
        *seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (float)((int)(*seed >> 41) - (1 << 22)) / (float)(1 << 22) * 0.5f;  // [-0.5, 0.5)
    }
    return p;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// Wall time in ms of REPS runs (after one warm-up) of the statement: the minimum (the
// machine may be shared; the minimum is the least disturbed run) and the median.
#define TIME_MS(out, stmt)                                  \
    do {                                                    \
        double ts_[REPS];                                   \
        stmt;                                               \
        for (int r_ = 0; r_ < REPS; r_++) {                 \
            double t0_ = mxp_now();                         \
            stmt;                                           \
            ts_[r_] = (mxp_now() - t0_) * 1e3;              \
        }                                                   \
        qsort(ts_, REPS, sizeof(double), cmp_d);            \
        (out) = ts_[0];                                     \
        last_median = ts_[REPS / 2];                        \
    } while (0)

static void row(const char *name, double fwd_ms, double bwd_ms, double fwd_flop, double bwd_flop) {
    printf("%-26s fwd %8.3f ms", name, fwd_ms);
    if (fwd_flop > 0) printf(" %6.1f GF/s", fwd_flop / fwd_ms / 1e6);
    else printf("            ");
    if (bwd_ms >= 0) {
        printf("   bwd %8.3f ms", bwd_ms);
        if (bwd_flop > 0) printf(" %6.1f GF/s", bwd_flop / bwd_ms / 1e6);
    }
    printf("\n");
}

int main(int argc, char **argv) {
    int T = argc > 1 ? atoi(argv[1]) : 256, B = argc > 2 ? atoi(argv[2]) : 1;
    if (T < 1 || B < 1 || T > 8192 || B > 64) {
        fprintf(stderr, "usage: bench_ops [T (1..8192)] [B (1..64)]\n");
        return 2;
    }
    int N = B * T;
    uint64_t seed = 42;
    printf("bench_ops: B=%d T=%d dim=%d heads=%d ffn=%d vocab=%d, %d OpenMP threads, best of %d runs\n",
           B, T, DIM, HEADS, FFN, VOCAB, omp_get_max_threads(), REPS);
    float *x = buf((long)N * DIM, &seed), *x2 = buf((long)N * DIM, &seed), *dx = buf((long)N * DIM, &seed);
    float *dout = buf((long)N * DIM, &seed), *w = buf(DIM, &seed), *dw = buf(DIM, &seed);
    float *st = buf(N, &seed), *st2 = buf(N, &seed);
    float *big_w = buf((long)VOCAB * DIM, &seed), *big_dw = buf((long)VOCAB * DIM, &seed);
    float *h1 = buf((long)N * FFN, &seed), *h2 = buf((long)N * FFN, &seed), *h3 = buf((long)N * FFN, &seed);
    float *dh1 = buf((long)N * FFN, &seed), *dh2 = buf((long)N * FFN, &seed);
    float *logits = buf((long)N * VOCAB, &seed), *dlogits = buf((long)N * VOCAB, &seed);
    float *att = buf((long)B * HEADS * T * T, &seed);
    float *k = buf((long)N * DIM, &seed), *v = buf((long)N * DIM, &seed);
    float *dk = buf((long)N * DIM, &seed), *dv = buf((long)N * DIM, &seed);
    int32_t *tok = malloc(sizeof(int32_t) * N);
    float *scale = malloc(sizeof(float) * N);
    if (!tok || !scale) return 1;
    for (int n = 0; n < N; n++) {
        tok[n] = (int32_t)((n * 7919) % VOCAB);
        scale[n] = 1.0f / N;
    }
    float inv_freq[HD / 2];
    for (int i = 0; i < HD / 2; i++) inv_freq[i] = powf(10000.0f, -2.0f * i / HD);

    double f, b, fm, bm, layer_ms = 0, once_ms = 0, layer_med = 0, once_med = 0, last_median = 0;
    // embedding (once per step)
    TIME_MS(f, mxp_embed_fwd(x, tok, big_w, N, DIM));
    fm = last_median;
    TIME_MS(b, mxp_embed_bwd(big_dw, dout, tok, N, DIM));
    bm = last_median;
    row("embed", f, b, 0, 0);
    once_ms += f + b;
    once_med += fm + bm;
    // RMSNorm (2 per layer + final)
    TIME_MS(f, mxp_rmsnorm_fwd(x2, st, x, w, N, DIM, 1e-5f));
    fm = last_median;
    TIME_MS(b, mxp_rmsnorm_bwd(dx, dw, dout, x, w, st, N, DIM));
    bm = last_median;
    row("rmsnorm", f, b, 0, 0);
    layer_ms += 2 * (f + b);
    layer_med += 2 * (fm + bm);
    once_ms += f + b;
    once_med += fm + bm;
    TIME_MS(f, mxp_layernorm_fwd(x2, st, st2, x, w, w, N, DIM, 1e-5f));
    fm = last_median;
    TIME_MS(b, mxp_layernorm_bwd(dx, dw, dw, dout, x, w, st, st2, N, DIM));
    bm = last_median;
    row("layernorm (+b)", f, b, 0, 0);
    // linear layers: q, k, v, o (768 -> 768), gate, up (768 -> 2048), down (2048 -> 768)
    struct { const char *name; int I, O, per_layer; } lin[] = {
        {"linear 768->768 (x4)", DIM, DIM, 4},
        {"linear 768->2048 (x2)", DIM, FFN, 2},
        {"linear 2048->768", FFN, DIM, 1},
        {"lm head 768->32000", DIM, VOCAB, 0},
    };
    for (int l = 0; l < 4; l++) {
        int I = lin[l].I, O = lin[l].O;
        const float *in = I == DIM ? x : h1;
        float *out = O == VOCAB ? logits : (O == FFN ? h2 : x2);
        float *din = I == DIM ? dx : dh1;
        const float *dy = O == VOCAB ? dlogits : (O == FFN ? h3 : dout);
        double fl = 2.0 * N * I * O;
        TIME_MS(f, mxp_linear_fwd(out, in, big_w, NULL, N, I, O));
        fm = last_median;
        TIME_MS(b, mxp_linear_bwd(din, big_dw, NULL, dy, in, big_w, N, I, O));
        bm = last_median;
        row(lin[l].name, f, b, fl, 2 * fl);
        if (lin[l].per_layer) {
            layer_ms += lin[l].per_layer * (f + b);
            layer_med += lin[l].per_layer * (fm + bm);
        } else {
            once_ms += f + b;
            once_med += fm + bm;
        }
    }
    // single-token linear (decode): sgemv path, forward only
    TIME_MS(f, mxp_linear_fwd(h2, x, big_w, NULL, 1, DIM, FFN));
    fm = last_median;
    row("linear N=1 768->2048", f, -1, 2.0 * DIM * FFN, 0);
    // RoPE on q and k (2 per layer)
    TIME_MS(f, mxp_rope_fwd(x2, x, inv_freq, B, T, 0, HEADS, HD));
    fm = last_median;
    TIME_MS(b, mxp_rope_bwd(dx, dout, inv_freq, B, T, 0, HEADS, HD));
    bm = last_median;
    row("rope (q)", f, b, 0, 0);
    layer_ms += 2 * (f + b);
    layer_med += 2 * (fm + bm);
    // attention (causal: useful flops only)
    double afl = 2.0 * 2.0 * HEADS * HD * B * (double)T * (T + 1) / 2;
    int slots = omp_get_max_threads();
    float *ws = malloc(sizeof(float) * (size_t)slots * T * T);
    if (!ws) return 1;
    TIME_MS(f, mxp_attention_fwd(x2, att, NULL, 0, x, k, v, B, T, T, HEADS, HEADS, HD, 0));
    fm = last_median;
    TIME_MS(b, mxp_attention_bwd(dx, dk, dv, ws, slots, dout, x, k, v, att, B, T, HEADS, HEADS, HD, 0));
    bm = last_median;
    row("attention MHA", f, b, afl, 2 * afl);
    layer_ms += f + b;
    layer_med += fm + bm;
    TIME_MS(f, mxp_attention_fwd(x2, NULL, ws, slots, x, k, v, B, T, T, HEADS, HEADS, HD, 0));
    fm = last_median;
    row("attention MHA att=NULL", f, -1, afl, 0);
    TIME_MS(f, mxp_attention_fwd(x2, NULL, ws, slots, x + (size_t)(T - 1) * DIM, k, v, 1, 1, T, HEADS, HEADS, HD, 0));
    fm = last_median;
    row("attention decode Tq=1", f, -1, 2.0 * 2.0 * HEADS * HD * T, 0);
    // SwiGLU
    TIME_MS(f, mxp_swiglu_fwd(h3, h1, h2, (int64_t)N * FFN));
    fm = last_median;
    TIME_MS(b, mxp_swiglu_bwd(dh1, dh2, h3, h1, h2, (int64_t)N * FFN));
    bm = last_median;
    row("swiglu", f, b, 0, 0);
    layer_ms += f + b;
    layer_med += fm + bm;
    TIME_MS(f, mxp_gelu_fwd(h3, h1, (int64_t)N * FFN));
    fm = last_median;
    TIME_MS(b, mxp_gelu_bwd(dh1, h3, h1, (int64_t)N * FFN));
    bm = last_median;
    row("gelu (n=T*2048)", f, b, 0, 0);
    // residual adds (2 per layer) and gradient accumulation (2 per layer)
    TIME_MS(f, mxp_add_fwd(x2, x, x2, (int64_t)N * DIM));
    fm = last_median;
    TIME_MS(b, mxp_acc(dx, dout, (int64_t)N * DIM));
    bm = last_median;
    row("add / acc", f, b, 0, 0);
    layer_ms += 2 * (f + b);
    layer_med += 2 * (fm + bm);
    // cross-entropy
    for (long i = 0; i < (long)N * VOCAB; i++) logits[i] *= 8.0f;
    TIME_MS(f, mxp_xent_fwd(st, logits, tok, N, VOCAB));
    fm = last_median;
    TIME_MS(b, mxp_xent_bwd(dlogits, logits, tok, scale, N, VOCAB));
    bm = last_median;
    row("xent V=32000", f, b, 0, 0);
    once_ms += f + b;
    once_med += fm + bm;

    double step = LAYERS * layer_ms + once_ms, step_med = LAYERS * layer_med + once_med;
    (void)fm;
    (void)bm;
    printf("from the medians instead of the minima: step %.1f ms\n", step_med);
    printf("per layer %.2f ms; step (12 layers + embed, final norm, head, xent) %.1f ms\n", layer_ms, step);
    printf("summary: bench_ops B=%d T=%d threads=%d step_ms=%.1f tokens_per_s=%.1f\n", B, T,
           omp_get_max_threads(), step, N / (step / 1e3));
    free(x); free(x2); free(dx); free(dout); free(w); free(dw); free(st); free(st2); free(big_w);
    free(big_dw); free(h1); free(h2); free(h3); free(dh1); free(dh2); free(logits); free(dlogits);
    free(ws); free(att); free(k); free(v); free(dk); free(dv); free(tok); free(scale);
    return 0;
}
