// q8_0_avx2.c: q8_0 kernels, AVX2. The quantizer reproduces q8_0.c bit for bit: the same
// NaN-ignoring max, the same scalar scale code, the same clamp (max_ps(v, -127) maps NaN to
// -127 like mxp_maxf) and an exact round-half-away-from-zero (truncate, then add the sign where
// the exact remainder is >= 0.5). The dot sums exact int32 block products in float lanes.
#include "quant/avx2_util.h"
#include "quant/quant_internal.h"

// roundf() of 8 lanes that are already clamped to [-127, 127] (no NaN).
static inline __m256i round_away8(__m256 v) {
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 frac = mxp_abs256(_mm256_sub_ps(v, t));  // exact
    const __m256 one = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(v, _mm256_set1_ps(-0.0f)));
    const __m256 up = _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ), one);
    return _mm256_cvttps_epi32(_mm256_add_ps(t, up));
}

static inline __m256i q8_lanes(const float *x, __m256 id) {
    __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x), id);
    v = _mm256_max_ps(v, _mm256_set1_ps(-127.0f));  // NaN -> -127 (second operand)
    v = _mm256_min_ps(v, _mm256_set1_ps(127.0f));
    return round_away8(v);
}

static inline uint16_t q8_block_avx2(const float *x, int8_t *qs) {
    float id;
    const uint16_t dh = mxp_q8_scale(mxp_amax_avx2(x, MXP_QK), &id);
    const __m256 idv = _mm256_set1_ps(id);
    const __m256i r = mxp_pack_i32x32_s8(q8_lanes(x, idv), q8_lanes(x + 8, idv),
                                         q8_lanes(x + 16, idv), q8_lanes(x + 24, idv));
    _mm256_storeu_si256((__m256i *)qs, r);
    return dh;
}

void mxp_quantize_q8_0_avx2(const float *x, void *q, int n) {
    MXP_ASSERT(n % MXP_QK == 0);
    mxp_block_q8_0 *b = q;
    for (int i = 0; i < n / MXP_QK; i++) b[i].d = q8_block_avx2(x + i * MXP_QK, b[i].qs);
}

void mxp_quantize_act_q8_avx2(const float *x, int8_t *qs, float *d, int n) {
    MXP_ASSERT(n % MXP_QK == 0);
    for (int i = 0; i < n / MXP_QK; i++)
        d[i] = _cvtsh_ss(q8_block_avx2(x + i * MXP_QK, qs + i * MXP_QK));
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
