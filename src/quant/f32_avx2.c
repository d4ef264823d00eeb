// f32_avx2.c: f32 kernels, AVX2+FMA. Matmuls go to OpenBLAS; this dot exists for the table.
#include "quant/avx2_util.h"
#include "quant/quant_internal.h"

void mxp_quantize_f32_avx2(const float *x, void *q, int n) { memcpy(q, x, (size_t)n * 4); }

void mxp_dequantize_f32_avx2(const void *q, float *y, int n) { memcpy(y, q, (size_t)n * 4); }

float mxp_dot_f32_avx2(int n, const void *w_row, const void *x) {
    const float *w = w_row, *v = x;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(v + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(v + i + 8), a1);
    }
    float s = mxp_hsum256(_mm256_add_ps(a0, a1));
    for (; i < n; i++) s += w[i] * v[i];
    return s;
}
