// bf16_avx2.c: bf16 kernels, AVX2. The quantizer is the integer round-to-nearest-even of
// mxp_f32_to_bf16 done on 8 lanes (NaN lanes: quieted truncation), so it is bit-identical.
#include "quant/avx2_util.h"
#include "quant/quant_internal.h"

static inline __m256i bf16_round8(__m256 v) {
    const __m256i u = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7FFF)), lsb);
    r = _mm256_srli_epi32(r, 16);
    const __m256i nanv = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    const __m256i isnan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    return _mm256_blendv_epi8(r, nanv, isnan);
}

void mxp_quantize_bf16_avx2(const float *x, void *q, int n) {
    uint16_t *h = q;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i p = _mm256_packus_epi32(bf16_round8(_mm256_loadu_ps(x + i)),
                                        bf16_round8(_mm256_loadu_ps(x + i + 8)));
        _mm256_storeu_si256((__m256i *)(h + i), _mm256_permute4x64_epi64(p, 0xD8));
    }
    for (; i < n; i++) h[i] = mxp_f32_to_bf16(x[i]);
}

static inline __m256 bf16x8(const uint16_t *h) {
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)h)), 16));
}

void mxp_dequantize_bf16_avx2(const void *q, float *y, int n) {
    const uint16_t *h = q;
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, bf16x8(h + i));
    for (; i < n; i++) y[i] = mxp_bf16_to_f32(h[i]);
}

float mxp_dot_bf16_avx2(int n, const void *w_row, const void *x) {
    const uint16_t *h = w_row;
    const float *v = x;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
           a3 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(bf16x8(h + i), _mm256_loadu_ps(v + i), a0);
        a1 = _mm256_fmadd_ps(bf16x8(h + i + 8), _mm256_loadu_ps(v + i + 8), a1);
        a2 = _mm256_fmadd_ps(bf16x8(h + i + 16), _mm256_loadu_ps(v + i + 16), a2);
        a3 = _mm256_fmadd_ps(bf16x8(h + i + 24), _mm256_loadu_ps(v + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(bf16x8(h + i), _mm256_loadu_ps(v + i), a0);
    float s = mxp_hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) s += mxp_bf16_to_f32(h[i]) * v[i];
    return s;
}
