// bf16.c: bfloat16 weights (GGML type 30); the dot takes f32 activations that matmul.c has
// already rounded to bf16 values (format.h's `act`). The conversion rounds to
// nearest even; NaN stays NaN (quiet bit set, sign and top payload kept). Reference kernels.
#include "quant/quant_internal.h"

float mxp_bf16_to_f32(uint16_t h) { return mxp_bits_f32((uint32_t)h << 16); }

uint16_t mxp_f32_to_bf16(float f) {
    const uint32_t x = mxp_f32_bits(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x40u);
    return (uint16_t)((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

void mxp_quantize_bf16_ref(const float *x, void *q, int n) {
    uint16_t *h = q;
    for (int i = 0; i < n; i++) h[i] = mxp_f32_to_bf16(x[i]);
}

void mxp_dequantize_bf16_ref(const void *q, float *y, int n) {
    const uint16_t *h = q;
    for (int i = 0; i < n; i++) y[i] = mxp_bf16_to_f32(h[i]);
}

float mxp_dot_bf16_ref(int n, const void *w_row, const void *x) {
    const uint16_t *h = w_row;
    const float *v = x;
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += mxp_bf16_to_f32(h[i]) * v[i];
    return s;
}
