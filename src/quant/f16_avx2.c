// f16_avx2.c: f16 kernels with F16C (vcvtps2ph rounds to nearest even: bit-identical to
// mxp_f32_to_f16, tails use it directly).
#include "quant/avx2_util.h"
#include "quant/quant_internal.h"

void mxp_quantize_f16_avx2(const float *x, void *q, int n) {
    uint16_t *h = q;
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(h + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) h[i] = mxp_f32_to_f16(x[i]);
}

void mxp_dequantize_f16_avx2(const void *q, float *y, int n) {
    const uint16_t *h = q;
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    for (; i < n; i++) y[i] = mxp_f16_to_f32(h[i]);
}

float mxp_dot_f16_avx2(int n, const void *w_row, const void *x) {
    const uint16_t *h = w_row;
    const float *v = x;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
           a3 = _mm256_setzero_ps();
    int i = 0;
#define F16X8(k) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i + (k))))
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(F16X8(0), _mm256_loadu_ps(v + i), a0);
        a1 = _mm256_fmadd_ps(F16X8(8), _mm256_loadu_ps(v + i + 8), a1);
        a2 = _mm256_fmadd_ps(F16X8(16), _mm256_loadu_ps(v + i + 16), a2);
        a3 = _mm256_fmadd_ps(F16X8(24), _mm256_loadu_ps(v + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(F16X8(0), _mm256_loadu_ps(v + i), a0);
#undef F16X8
    float s = mxp_hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) s += mxp_f16_to_f32(h[i]) * v[i];
    return s;
}
