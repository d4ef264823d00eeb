// q4_0_avx2.c: q4_0 kernels, AVX2 (the weights are quantized by ggml, ggml_formats.c). The
// dot unpacks nibbles to bytes 0..15 and forms exact (q - 8) * x pair sums as
// maddubs(q, x) - maddubs(8, x).
#include "quant/avx2_util.h"
#include "quant/quant_internal.h"

// 32 unsigned nibble values 0..15 of one block, in element order.
static inline __m256i q4_unpack(const uint8_t *qs) {
    const __m128i raw = _mm_loadu_si128((const __m128i *)qs);
    const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(raw), _mm_srli_epi16(raw, 4), 1);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

void mxp_dequantize_q4_0_avx2(const void *q, float *y, int n) {
    MXP_ASSERT(n % MXP_QK == 0);
    const mxp_block_q4_0 *b = q;
    const __m256i eight = _mm256_set1_epi8(8);
    for (int i = 0; i < n / MXP_QK; i++) {
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(b[i].d));
        const __m256i v = _mm256_sub_epi8(q4_unpack(b[i].qs), eight);
        const __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
        float *o = y + i * MXP_QK;
        _mm256_storeu_ps(o, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), d));
        _mm256_storeu_ps(o + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), d));
        _mm256_storeu_ps(o + 16, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), d));
        _mm256_storeu_ps(o + 24, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), d));
    }
}

// 8 int32 partial sums of (q - 8) . x over one block, exact.
static inline __m256i q4_block_dot(const uint8_t *qs, const int8_t *x) {
    const __m256i xv = _mm256_loadu_si256((const __m256i *)x);
    const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q4_unpack(qs), xv),
                                       _mm256_maddubs_epi16(_mm256_set1_epi8(8), xv));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

float mxp_dot_q4_0_avx2(int n, const void *w_row, const void *x) {
    MXP_ASSERT(n % MXP_QK == 0);
    const mxp_block_q4_0 *b = w_row;
    const mxp_q8_row *a = x;
    const int nb = n / MXP_QK;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 2 <= nb; i += 2) {
        const __m256i s0 = q4_block_dot(b[i].qs, a->qs + i * MXP_QK);
        const __m256i s1 = q4_block_dot(b[i + 1].qs, a->qs + (i + 1) * MXP_QK);
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[i].d) * a->d[i]), _mm256_cvtepi32_ps(s0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[i + 1].d) * a->d[i + 1]),
                               _mm256_cvtepi32_ps(s1), acc1);
    }
    for (; i < nb; i++) {
        const __m256i s0 = q4_block_dot(b[i].qs, a->qs + i * MXP_QK);
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[i].d) * a->d[i]), _mm256_cvtepi32_ps(s0), acc0);
    }
    return mxp_hsum256(_mm256_add_ps(acc0, acc1));
}
