// f8_e4m3.c: OCP FP8 E4M3FN weights with one f32 scale per row, f32 activations; reference
// kernels. Row layout: f32 scale s = amax/448 (4 bytes, little-endian, read with memcpy),
// then n codes. Encoding: v = x * (1/s), |v| clamped to 448, round to nearest even (see
// mxp_e4m3_encode). Values read back as s * e4m3(code). Not a GGUF type: the weight format of
// FP8 accelerators, scored and evaluated here, never exported (format.h).
#include "quant/quant_internal.h"

float mxp_e4m3_to_f32(uint8_t c) {
    const int e = (c >> 3) & 0xF, m = c & 7;
    const float v = e ? ldexpf(1.0f + (float)m / 8.0f, e - 7) : ldexpf((float)m / 8.0f, -6);
    return (c & 0x80) ? -v : v;
}

void mxp_quantize_f8_e4m3_ref(const float *x, void *q, int n) {
    float amax = 0.0f;
    for (int i = 0; i < n; i++) amax = mxp_maxf(fabsf(x[i]), amax);
    float inv;
    const float s = mxp_f8_scale(amax, &inv);
    uint8_t *out = q;
    memcpy(out, &s, 4);
    for (int i = 0; i < n; i++) out[4 + i] = mxp_e4m3_encode(x[i], x[i] * inv);
}

void mxp_dequantize_f8_e4m3_ref(const void *q, float *y, int n) {
    const uint8_t *in = q;
    float s;
    memcpy(&s, in, 4);
    for (int i = 0; i < n; i++) y[i] = s * mxp_e4m3_to_f32(in[4 + i]);
}

float mxp_dot_f8_e4m3_ref(int n, const void *w_row, const void *x) {
    const uint8_t *in = w_row;
    const float *v = x;
    float s;
    memcpy(&s, in, 4);
    float acc = 0.0f;
    for (int i = 0; i < n; i++) acc += mxp_e4m3_to_f32(in[4 + i]) * v[i];
    return acc * s;
}
