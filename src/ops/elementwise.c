// elementwise.c: SwiGLU, GELU (tanh approximation), add and accumulate, forward and backward.
// Every output element depends on its own inputs only, so any thread split gives the same
// bits. exp is the vectorizable one of vexp.h (about 2 ulp); tanh is written through it. Backward accumulates; a NULL gradient is skipped. Not for use inside a parallel region.
#include <math.h>
#include <stddef.h>

#include "ops/ops.h"
#include "ops/vexp.h"

// out (n) = silu(gate) * up.
void mxp_swiglu_fwd(float *out, const float *gate, const float *up, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= MXP_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + mxp_vexpf(-g)) * up[i];
    }
}

// With s = sigmoid(g): d silu(g)/dg = s + g s (1 - s) = s (1 + g (1 - s)).
// dgate += dout * up * s (1 + g (1 - s));  dup += dout * g s.
void mxp_swiglu_bwd(float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                    int64_t n) {
    if (dgate && dup) {
#pragma omp parallel for simd schedule(static) if (n >= MXP_PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            float g = gate[i], s = 1.0f / (1.0f + mxp_vexpf(-g));
            dgate[i] += dout[i] * up[i] * s * (1.0f + g * (1.0f - s));
            dup[i] += dout[i] * g * s;
        }
    } else if (dgate) {
#pragma omp parallel for simd schedule(static) if (n >= MXP_PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            float g = gate[i], s = 1.0f / (1.0f + mxp_vexpf(-g));
            dgate[i] += dout[i] * up[i] * s * (1.0f + g * (1.0f - s));
        }
    } else if (dup) {
#pragma omp parallel for simd schedule(static) if (n >= MXP_PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            float g = gate[i];
            dup[i] += dout[i] * g / (1.0f + mxp_vexpf(-g));
        }
    }
}

#define GELU_K 0.7978845608028654f  // sqrt(2 / pi)
#define GELU_A 0.044715f

// out (n) = 0.5 x (1 + tanh(u)), u = k (x + a x^3); computed as x sigmoid(2u), the same
// function, since 0.5 (1 + tanh(u)) = 1 / (1 + exp(-2u)).
void mxp_gelu_fwd(float *out, const float *x, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= MXP_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        out[i] = v / (1.0f + mxp_vexpf(-2.0f * GELU_K * (v + GELU_A * v * v * v)));
    }
}

// With s = sigmoid(2u): d/dx [x s] = s + x s (1 - s) 2 u',  u' = k (1 + 3 a x^2).
void mxp_gelu_bwd(float *dx, const float *dout, const float *x, int64_t n) {
    if (!dx) return;
#pragma omp parallel for simd schedule(static) if (n >= MXP_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        float s = 1.0f / (1.0f + mxp_vexpf(-2.0f * GELU_K * (v + GELU_A * v * v * v)));
        float d = s + v * s * (1.0f - s) * 2.0f * GELU_K * (1.0f + 3.0f * GELU_A * v * v);
        dx[i] += dout[i] * d;
    }
}

// out (n) = a + b; out may alias a or b.
void mxp_add_fwd(float *out, const float *a, const float *b, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= MXP_PAR_MIN)
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

// dst (n) += src.
void mxp_acc(float *dst, const float *src, int64_t n) {
    if (!dst) return;
#pragma omp parallel for simd schedule(static) if (n >= MXP_PAR_MIN)
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}
