// q8_0_avx2.c: q8_0 kernels, AVX2. The activation quantizer reproduces q8_0.c bit for bit:
// the same NaN-ignoring max, the same scalar scale code, the same clamp (max_ps(v, -127) maps
// NaN to -127 like mxp_maxf) and round-half-to-even (_mm256_round_ps, as llama.cpp's x86
// quantize_row_q8_0). The dot sums exact int32 block products in float lanes.
#include "quant/avx2_util.h"
#include "quant/quant_internal.h"

static inline __m256i q8_lanes(const float *x, __m256 id) {
    __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x), id);
    v = _mm256_max_ps(v, _mm256_set1_ps(-127.0f));  // NaN -> -127 (second operand)
    v = _mm256_min_ps(v, _mm256_set1_ps(127.0f));
    return _mm256_cvtps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

void mxp_quantize_act_q8_avx2(const float *x, int8_t *qs, float *d, int n) {
    MXP_ASSERT(n % MXP_QK == 0);
    for (int i = 0; i < n / MXP_QK; i++) {
        const float *xb = x + i * MXP_QK;
        float id;
        d[i] = _cvtsh_ss(mxp_q8_act_scale(mxp_amax_avx2(xb, MXP_QK), &id));
        const __m256 idv = _mm256_set1_ps(id);
        const __m256i r = mxp_pack_i32x32_s8(q8_lanes(xb, idv), q8_lanes(xb + 8, idv), q8_lanes(xb + 16, idv),
                                             q8_lanes(xb + 24, idv));
        _mm256_storeu_si256((__m256i *)(qs + i * MXP_QK), r);
    }
}

void mxp_dequantize_q8_0_avx2(const void *q, float *y, int n) {
    MXP_ASSERT(n % MXP_QK == 0);
    const mxp_block_q8_0 *b = q;
    for (int i = 0; i < n / MXP_QK; i++) {
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(b[i].d));
        for (int k = 0; k < 4; k++) {
            const __m128i q8 = _mm_loadl_epi64((const __m128i *)(b[i].qs + 8 * k));
            _mm256_storeu_ps(y + i * MXP_QK + 8 * k,
                             _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8)), d));
        }
    }
}

// 8 int32 partial sums of w . x over one block (|w|, |x| <= 127: no int16 saturation;
// w = -128 from a foreign file also fits: 128 * 127 * 2 < 32767).
static inline __m256i q8_block_dot(const int8_t *w, const int8_t *x) {
    const __m256i wv = _mm256_loadu_si256((const __m256i *)w);
    const __m256i xv = _mm256_loadu_si256((const __m256i *)x);
    const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

float mxp_dot_q8_0_avx2(int n, const void *w_row, const void *x) {
    MXP_ASSERT(n % MXP_QK == 0);
    const mxp_block_q8_0 *b = w_row;
    const mxp_q8_row *a = x;
    const int nb = n / MXP_QK;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 2 <= nb; i += 2) {
        const __m256i s0 = q8_block_dot(b[i].qs, a->qs + i * MXP_QK);
        const __m256i s1 = q8_block_dot(b[i + 1].qs, a->qs + (i + 1) * MXP_QK);
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[i].d) * a->d[i]), _mm256_cvtepi32_ps(s0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[i + 1].d) * a->d[i + 1]),
                               _mm256_cvtepi32_ps(s1), acc1);
    }
    for (; i < nb; i++) {
        const __m256i s0 = q8_block_dot(b[i].qs, a->qs + i * MXP_QK);
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[i].d) * a->d[i]), _mm256_cvtepi32_ps(s0), acc0);
    }
    return mxp_hsum256(_mm256_add_ps(acc0, acc1));
}
