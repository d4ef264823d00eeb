// quant_internal.h: the per-format kernels behind the table in format.c. Internal to
// src/quant; everything else goes through format.h. Each `_ref` kernel is the definition,
// each `_avx2` kernel (in *_avx2.c, built with -mavx2 -mfma -mf16c) must only be called when
// mxp_cpu_has_avx2() is true.
#ifndef MXP_QUANT_INTERNAL_H
#define MXP_QUANT_INTERNAL_H

#include <math.h>
#include <string.h>

#include "quant/format.h"

static inline uint32_t mxp_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float mxp_bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// max/min with the semantics of SSE maxps/minps: the second operand when either is NaN.
// (Not fmaxf/fminf: glibc's return NaN for a signalling NaN.) Used by every ref kernel so
// that the AVX2 kernels can match them bit for bit on any input.
static inline float mxp_maxf(float a, float b) { return a > b ? a : b; }
static inline float mxp_minf(float a, float b) { return a < b ? a : b; }

// Round half away from zero, NaN-safe, clamped to [-lim, lim]: the q8_0 rounding rule.
// NaN becomes -lim (mxp_maxf(NaN, -lim)), as max_ps(v, -lim) in the AVX2 version.
static inline int mxp_round_clamp(float v, float lim) {
    v = mxp_maxf(v, -lim);
    v = mxp_minf(v, lim);
    return (int)roundf(v);
}

// q8_0 activation block scale from the block's max |x| (llama.cpp's x86 CPU backend,
// quantize_row_q8_0): returns the f16 bits of d = amax/127 and sets the multiplier used for
// rounding, 127/amax (0 when amax is 0).
static inline uint16_t mxp_q8_act_scale(float amax, float *id) {
    *id = amax != 0.0f ? 127.0f / amax : 0.0f;
    return mxp_f32_to_f16(amax / 127.0f);
}
// f8_e4m3 row scale (stored as f32) and its guarded reciprocal. A scale whose reciprocal is
// not finite (amax below ~1.5e-36) is stored as 0 (the row reads back as zeros).
static inline float mxp_f8_scale(float amax, float *inv) {
    float s = amax / 448.0f;
    float r = s != 0.0f ? 1.0f / s : 0.0f;
    if (!(r <= 3.0e38f)) { s = 0.0f; r = 0.0f; }  // also catches r = inf
    if (isinf(s)) r = 0.0f;
    *inv = r;
    return s;
}

// f32 -> e4m3 code of v = x * inv (sign from x): |v| clamped to 448 (NaN -> 448),
// round-to-nearest-even. Subnormal range (|v| < 2^-6) via rint(|v| * 512).
static inline uint8_t mxp_e4m3_encode(float x, float v) {
    float a = mxp_minf(fabsf(v), 448.0f);
    uint32_t code;
    if (a < 0.015625f) {
        code = (uint32_t)(int)nearbyintf(a * 512.0f);
    } else {
        uint32_t b = mxp_f32_bits(a);
        b += 0x7FFFFu + ((b >> 20) & 1u);
        code = (b >> 20) - (120u << 3);
    }
    return (uint8_t)(code | ((mxp_f32_bits(x) >> 24) & 0x80u));
}

#define MXP_DECLARE_KERNELS(fmt, sfx)                                      \
    void mxp_quantize_##fmt##_##sfx(const float *x, void *q, int n);      \
    void mxp_dequantize_##fmt##_##sfx(const void *q, float *y, int n);    \
    float mxp_dot_##fmt##_##sfx(int n, const void *w_row, const void *x);

// q8_0 and q4_0 weights are quantized by ggml (ggml_formats.c); their own kernels read them.
#define MXP_DECLARE_READ_KERNELS(fmt, sfx)                                 \
    void mxp_dequantize_##fmt##_##sfx(const void *q, float *y, int n);    \
    float mxp_dot_##fmt##_##sfx(int n, const void *w_row, const void *x);

MXP_DECLARE_KERNELS(f32, ref)
MXP_DECLARE_KERNELS(bf16, ref)
MXP_DECLARE_KERNELS(f16, ref)
MXP_DECLARE_READ_KERNELS(q8_0, ref)
MXP_DECLARE_READ_KERNELS(q4_0, ref)
MXP_DECLARE_KERNELS(f8_e4m3, ref)
MXP_DECLARE_KERNELS(f32, avx2)
MXP_DECLARE_KERNELS(bf16, avx2)
MXP_DECLARE_KERNELS(f16, avx2)
MXP_DECLARE_READ_KERNELS(q8_0, avx2)
MXP_DECLARE_READ_KERNELS(q4_0, avx2)
MXP_DECLARE_KERNELS(f8_e4m3, avx2)

// ggml's kernels (ggml_formats.c): quantize with ggml_quantize_chunk, dequantize with the
// type traits' to_float, dot = dequantize a block, multiply by the f32 activations (already
// rounded by the caller), in a fixed order.
void mxp_quantize_q8_0_ggml(const float *x, void *q, int n);
void mxp_quantize_q4_0_ggml(const float *x, void *q, int n);
MXP_DECLARE_KERNELS(q4_1, ggml)
MXP_DECLARE_KERNELS(q5_0, ggml)
MXP_DECLARE_KERNELS(q5_1, ggml)
MXP_DECLARE_KERNELS(q2_K, ggml)
MXP_DECLARE_KERNELS(q3_K, ggml)
MXP_DECLARE_KERNELS(q4_K, ggml)
MXP_DECLARE_KERNELS(q5_K, ggml)
MXP_DECLARE_KERNELS(q6_K, ggml)
MXP_DECLARE_KERNELS(iq4_nl, ggml)

// Activation quantization to the unpacked q8 form: qs (n), d (n/32), the q8_0 activation
// rule of format.h (scale = the f16 scale widened to f32).
void mxp_quantize_act_q8_ref(const float *x, int8_t *qs, float *d, int n);
void mxp_quantize_act_q8_avx2(const float *x, int8_t *qs, float *d, int n);
// q8_K activation rounding (ggml's quantize_row_q8_K_ref, read back as d * q): y may alias x;
// n % 256 == 0.
void mxp_act_round_q8_K(const float *x, float *y, int n);

#endif
