// q4_0_avx2.c: q4_0 kernels, AVX2. The quantizer matches q4_0.c bit for bit (same NaN-
// ignoring max, first index of the largest |x|, scalar scale code, v + 8.5 without FMA,
// max_ps(t, 0) mapping NaN to 0 like mxp_maxf, truncation). The dot unpacks nibbles to bytes
// 0..15 and forms exact (q - 8) * x pair sums as maddubs(q, x) - maddubs(8, x).
#include "quant/avx2_util.h"
#include "quant/quant_internal.h"

static inline __m256i q4_lanes(const float *x, __m256 id) {
    __m256 t = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x), id), _mm256_set1_ps(8.5f));
    t = _mm256_max_ps(t, _mm256_setzero_ps());
    t = _mm256_min_ps(t, _mm256_set1_ps(15.0f));
    return _mm256_cvttps_epi32(t);
}

void mxp_quantize_q4_0_avx2(const float *x, void *q, int n) {
    MXP_ASSERT(n % MXP_QK == 0);
    mxp_block_q4_0 *b = q;
    for (int i = 0; i < n / MXP_QK; i++) {
        const float *xb = x + i * MXP_QK;
        const float amax = mxp_amax_avx2(xb, MXP_QK);
        float maxv = 0.0f;
        if (amax > 0.0f) {
            const __m256 am = _mm256_set1_ps(amax);
            uint32_t mask = 0;
            for (int k = 0; k < 4; k++) {
                const __m256 eq = _mm256_cmp_ps(mxp_abs256(_mm256_loadu_ps(xb + 8 * k)), am, _CMP_EQ_OQ);
                mask |= (uint32_t)_mm256_movemask_ps(eq) << (8 * k);
            }
            maxv = xb[__builtin_ctz(mask)];  // amax came from one of them: mask != 0
        }
        float id;
        b[i].d = mxp_q4_scale(maxv, &id);
        const __m256 idv = _mm256_set1_ps(id);
        const __m256i c0 = _mm256_or_si256(q4_lanes(xb, idv), _mm256_slli_epi32(q4_lanes(xb + 16, idv), 4));
        const __m256i c1 = _mm256_or_si256(q4_lanes(xb + 8, idv), _mm256_slli_epi32(q4_lanes(xb + 24, idv), 4));
        const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(c0, c1), 0xD8);  // 16 x u16
        const __m128i bytes = _mm_packus_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
        _mm_storeu_si128((__m128i *)b[i].qs, bytes);
    }
}

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
