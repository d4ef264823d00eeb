// xent.c: next-token cross-entropy over logits (N, V), forward (per-row losses) and backward.
// Rows are independent and each belongs to one thread: any thread count gives the same bits.
// Softmax uses max subtraction, the vectorizable exp of vexp.h (about 2 ulp) and a double
// accumulator for the row sum. A NaN logit makes the row's loss / gradient NaN.
// Backward accumulates into dlogits. Not for use inside an OpenMP parallel region. No
// allocation.
#include <math.h>

#include "core/base.h"
#include "ops/ops.h"
#include "ops/vexp.h"

// Max of l (V); NaN if any element is NaN (the vexp clamps would otherwise hide it).
static float row_max(const float *l, int V) {
    float mx = -INFINITY;
    int nan = 0;
#pragma omp simd reduction(max : mx) reduction(| : nan)
    for (int j = 0; j < V; j++) {
        mx = l[j] > mx ? l[j] : mx;
        nan |= l[j] != l[j];
    }
    return nan ? NAN : mx;
}

// sum_j exp(l_j - mx) in double.
static double row_expsum(const float *l, float mx, int V) {
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < V; j++) sum += (double)mxp_vexpf(l[j] - mx);
    return sum;
}

// losses (N) = log(sum_j exp(l_j - max)) + max - l[target].
void mxp_xent_fwd(float *losses, const float *logits, const int32_t *targets, int N, int V) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *l = logits + (size_t)n * V;
        float mx = row_max(l, V);
        double sum = row_expsum(l, mx, V);
        losses[n] = (float)(log(sum) + (double)mx - (double)l[targets[n]]);
    }
}

// dlogits (N, V) += scale[n] * (softmax(l) - onehot(target)). The exps are computed twice
// (for the sum, then for the gradient) rather than kept: no scratch, the same bits.
void mxp_xent_bwd(float *dlogits, const float *logits, const int32_t *targets, const float *scale,
                  int N, int V) {
    if (!dlogits) return;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *l = logits + (size_t)n * V;
        float *d = dlogits + (size_t)n * V;
        float mx = row_max(l, V);
        double sum = row_expsum(l, mx, V);
        float k = scale[n] * (float)(1.0 / sum) + (mx - mx);  // NaN row -> NaN gradient
#pragma omp simd
        for (int j = 0; j < V; j++) d[j] += k * mxp_vexpf(l[j] - mx);
        d[targets[n]] -= scale[n];
    }
}
