// f16.c: IEEE binary16 weights (GGML type 1); the dot takes f32 activations that matmul.c has
// already rounded to f16 values (format.h's `act`). Scalar conversions that
// define the rounding (round-to-nearest-even, identical to F16C's vcvtps2ph, NaN quieted with
// its top payload bits kept) and the reference kernels.
#include "quant/quant_internal.h"

float mxp_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    if (e == 0x1F)  // inf, or NaN made quiet (as vcvtph2ps does)
        return mxp_bits_f32(sign | 0x7F800000u | (m << 13) | (m ? 0x00400000u : 0u));
    if (e != 0) return mxp_bits_f32(sign | ((e + 112u) << 23) | (m << 13));
    // zero or subnormal: m * 2^-24, exact in f32
    const float v = (float)m * 5.9604644775390625e-8f;
    return sign ? -v : v;
}

uint16_t mxp_f32_to_f16(float f) {
    const uint32_t x = mxp_f32_bits(f);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    const uint32_t ax = x & 0x7FFFFFFFu;
    if (ax > 0x7F800000u) return (uint16_t)(sign | 0x7E00u | ((ax >> 13) & 0x3FFu));  // NaN
    if (ax >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);  // >= 65520 (or inf) -> inf
    if (ax >= 0x38800000u) {                                    // normal: >= 2^-14
        uint32_t r = ax + 0xFFFu + ((ax >> 13) & 1u);
        return (uint16_t)(sign | ((r - (112u << 23)) >> 13));
    }
    if (ax < 0x33000000u) return sign;  // < 2^-25: rounds to zero
    // subnormal result: round(m * 2^(e - 150 + 24)) = m >> (126 - e), nearest even
    const uint32_t e = ax >> 23, m = (ax & 0x7FFFFFu) | 0x800000u, s = 126u - e;
    uint32_t q = m >> s;
    const uint32_t rem = m & ((1u << s) - 1u), half = 1u << (s - 1u);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return (uint16_t)(sign | q);
}

void mxp_quantize_f16_ref(const float *x, void *q, int n) {
    uint16_t *h = q;
    for (int i = 0; i < n; i++) h[i] = mxp_f32_to_f16(x[i]);
}

void mxp_dequantize_f16_ref(const void *q, float *y, int n) {
    const uint16_t *h = q;
    for (int i = 0; i < n; i++) y[i] = mxp_f16_to_f32(h[i]);
}

float mxp_dot_f16_ref(int n, const void *w_row, const void *x) {
    const uint16_t *h = w_row;
    const float *v = x;
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += mxp_f16_to_f32(h[i]) * v[i];
    return s;
}
