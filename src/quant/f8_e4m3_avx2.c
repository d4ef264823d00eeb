// f8_e4m3_avx2.c: f8_e4m3 kernels, AVX2+F16C. The encoder is mxp_e4m3_encode on 8 lanes
// (bit-identical). Decoding moves each code into an f16 bit pattern worth code/256
// (sign -> bit 15, exponent and mantissa -> bits 13..7; E4M3 subnormals become f16
// subnormals) and widens it with vcvtph2ps; the factor 256 is applied exactly afterwards.
#include "quant/avx2_util.h"
#include "quant/quant_internal.h"

static inline __m256i e4m3_lanes(const float *x, __m256 inv) {
    const __m256 xv = _mm256_loadu_ps(x);
    const __m256 a = _mm256_min_ps(mxp_abs256(_mm256_mul_ps(xv, inv)), _mm256_set1_ps(448.0f));
    const __m256i sub = _mm256_cvtps_epi32(_mm256_mul_ps(a, _mm256_set1_ps(512.0f)));  // RNE
    __m256i bits = _mm256_castps_si256(a);
    bits = _mm256_add_epi32(bits, _mm256_add_epi32(_mm256_set1_epi32(0x7FFFF),
                                                   _mm256_and_si256(_mm256_srli_epi32(bits, 20), _mm256_set1_epi32(1))));
    const __m256i nrm = _mm256_sub_epi32(_mm256_srli_epi32(bits, 20), _mm256_set1_epi32(120 << 3));
    const __m256i issub = _mm256_castps_si256(_mm256_cmp_ps(a, _mm256_set1_ps(0.015625f), _CMP_LT_OQ));
    const __m256i code = _mm256_blendv_epi8(nrm, sub, issub);
    const __m256i sign = _mm256_and_si256(_mm256_srli_epi32(_mm256_castps_si256(xv), 24), _mm256_set1_epi32(0x80));
    return _mm256_or_si256(code, sign);
}

void mxp_quantize_f8_e4m3_avx2(const float *x, void *q, int n) {
    int i = 0;
    float amax = 0.0f;
    if (n >= 8) amax = mxp_amax_avx2(x, n & ~7);
    for (i = n & ~7; i < n; i++) amax = mxp_maxf(fabsf(x[i]), amax);
    float inv;
    const float s = mxp_f8_scale(amax, &inv);
    uint8_t *out = q;
    memcpy(out, &s, 4);
    const __m256 iv = _mm256_set1_ps(inv);
    for (i = 0; i + 32 <= n; i += 32) {
        const __m256i r = mxp_pack_i32x32_u8(e4m3_lanes(x + i, iv), e4m3_lanes(x + i + 8, iv),
                                             e4m3_lanes(x + i + 16, iv), e4m3_lanes(x + i + 24, iv));
        _mm256_storeu_si256((__m256i *)(out + 4 + i), r);
    }
    for (; i < n; i++) out[4 + i] = mxp_e4m3_encode(x[i], x[i] * inv);
}

// 16 codes -> 16 f16 bit patterns (value / 256).
static inline __m256i e4m3_to_h16(const uint8_t *c) {
    const __m256i v = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)c));
    return _mm256_or_si256(_mm256_and_si256(_mm256_slli_epi16(v, 7), _mm256_set1_epi16(0x3F80)),
                           _mm256_and_si256(_mm256_slli_epi16(v, 8), _mm256_set1_epi16((short)0x8000)));
}

void mxp_dequantize_f8_e4m3_avx2(const void *q, float *y, int n) {
    const uint8_t *in = q;
    float s;
    memcpy(&s, in, 4);
    const __m256 k256 = _mm256_set1_ps(256.0f), sv = _mm256_set1_ps(s);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256i h = e4m3_to_h16(in + 4 + i);
        const __m256 f0 = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
        const __m256 f1 = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(f0, k256), sv));
        _mm256_storeu_ps(y + i + 8, _mm256_mul_ps(_mm256_mul_ps(f1, k256), sv));
    }
    for (; i < n; i++) y[i] = s * mxp_e4m3_to_f32(in[4 + i]);
}

float mxp_dot_f8_e4m3_avx2(int n, const void *w_row, const void *x) {
    const uint8_t *in = w_row;
    const float *v = x;
    float s;
    memcpy(&s, in, 4);
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
           a3 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256i h0 = e4m3_to_h16(in + 4 + i), h1 = e4m3_to_h16(in + 4 + i + 16);
        a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(h0)), _mm256_loadu_ps(v + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(h0, 1)), _mm256_loadu_ps(v + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(h1)), _mm256_loadu_ps(v + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(h1, 1)), _mm256_loadu_ps(v + i + 24), a3);
    }
    float acc = mxp_hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3))) * 256.0f;
    for (; i < n; i++) acc += mxp_e4m3_to_f32(in[4 + i]) * v[i];
    return acc * s;
}
