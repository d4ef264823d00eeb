// xent.c: next-token cross-entropy over logits (N, V), forward (per-row losses) and backward.
// Rows are independent and each belongs to one thread: any thread count gives the same bits.
// Softmax uses max subtraction, expf, and a double accumulator for the row sum.
// Backward accumulates into dlogits. Not for use inside an OpenMP parallel region; the
// backward allocates one row of scratch per thread and aborts if that fails.
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "core/base.h"
#include "ops/ops.h"

static float row_max(const float *l, int V) {
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int j = 0; j < V; j++) mx = l[j] > mx ? l[j] : mx;
    return mx;
}

// losses (N) = log(sum_j exp(l_j - max)) + max - l[target].
void mxp_xent_fwd(float *losses, const float *logits, const int32_t *targets, int N, int V) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *l = logits + (size_t)n * V;
        float mx = row_max(l, V);
        double sum = 0.0;
        for (int j = 0; j < V; j++) sum += expf(l[j] - mx);
        losses[n] = (float)(log(sum) + (double)mx - (double)l[targets[n]]);
    }
}

// dlogits (N, V) += scale[n] * (softmax(l) - onehot(target)).
void mxp_xent_bwd(float *dlogits, const float *logits, const int32_t *targets, const float *scale,
                  int N, int V) {
    if (!dlogits) return;
    int nt = omp_get_max_threads();
    float *scratch = malloc((size_t)nt * V * sizeof(float));  // (nt, V) exps per thread
    MXP_ASSERT(scratch != NULL);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *l = logits + (size_t)n * V;
        float *d = dlogits + (size_t)n * V;
        float *e = scratch + (size_t)omp_get_thread_num() * V;
        float mx = row_max(l, V);
        double sum = 0.0;
        for (int j = 0; j < V; j++) {
            e[j] = expf(l[j] - mx);
            sum += e[j];
        }
        float k = scale[n] * (float)(1.0 / sum);
#pragma omp simd
        for (int j = 0; j < V; j++) d[j] += k * e[j];
        d[targets[n]] -= scale[n];
    }
    free(scratch);
}
