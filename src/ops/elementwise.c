// elementwise.c: SwiGLU, GELU (tanh approximation), add and accumulate, forward and backward.
// Every output element depends on its own inputs only, so any thread split gives the same
// bits. Backward accumulates; a NULL gradient is skipped. Not for use inside a parallel region.
#include <math.h>
#include <stddef.h>

#include "ops/ops.h"

// out (n) = silu(gate) * up.
void mxp_swiglu_fwd(float *out, const float *gate, const float *up, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

// With s = sigmoid(g): d silu(g)/dg = s + g s (1 - s) = s (1 + g (1 - s)).
// dgate += dout * up * s (1 + g (1 - s));  dup += dout * g s.
void mxp_swiglu_bwd(float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                    int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        float s = 1.0f / (1.0f + expf(-g));
        if (dgate) dgate[i] += dout[i] * up[i] * s * (1.0f + g * (1.0f - s));
        if (dup) dup[i] += dout[i] * g * s;
    }
}

#define GELU_K 0.7978845608028654f  // sqrt(2 / pi)
#define GELU_A 0.044715f

// out (n) = 0.5 x (1 + tanh(k (x + a x^3))).
void mxp_gelu_fwd(float *out, const float *x, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        out[i] = 0.5f * v * (1.0f + tanhf(GELU_K * (v + GELU_A * v * v * v)));
    }
}

// u = k (x + a x^3), th = tanh(u): d/dx = 0.5 (1 + th) + 0.5 x (1 - th^2) k (1 + 3 a x^2).
void mxp_gelu_bwd(float *dx, const float *dout, const float *x, int64_t n) {
    if (!dx) return;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        float th = tanhf(GELU_K * (v + GELU_A * v * v * v));
        float d = 0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * GELU_K * (1.0f + 3.0f * GELU_A * v * v);
        dx[i] += dout[i] * d;
    }
}

// out (n) = a + b; out may alias a or b.
void mxp_add_fwd(float *out, const float *a, const float *b, int64_t n) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

// dst (n) += src.
void mxp_acc(float *dst, const float *src, int64_t n) {
    if (!dst) return;
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}
