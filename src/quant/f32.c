// f32.c: the f32 "format" (no quantization) reference kernels. Matmuls in f32 go to
// OpenBLAS (matmul.c); these exist so the table is uniform (fake-quant, dot tests).
#include "quant/quant_internal.h"

void mxp_quantize_f32_ref(const float *x, void *q, int n) { memcpy(q, x, (size_t)n * 4); }

void mxp_dequantize_f32_ref(const void *q, float *y, int n) { memcpy(y, q, (size_t)n * 4); }

float mxp_dot_f32_ref(int n, const void *w_row, const void *x) {
    const float *w = w_row, *v = x;
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += w[i] * v[i];
    return s;
}
