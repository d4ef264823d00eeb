// avx2_util.h: small AVX2 helpers shared by the *_avx2.c kernels. Include only from files
// compiled with -mavx2 -mfma -mf16c.
#ifndef MXP_AVX2_UTIL_H
#define MXP_AVX2_UTIL_H

#include <immintrin.h>

static inline float mxp_hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float mxp_hmax256(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// |v| with the sign bit cleared.
static inline __m256 mxp_abs256(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

// Max |x| over n floats (n % 8 == 0), NaN ignored like mxp_maxf: max_ps(a, b) returns b when
// a is NaN, so |x| goes first and the accumulator second.
static inline float mxp_amax_avx2(const float *x, int n) {
    __m256 m = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) m = _mm256_max_ps(mxp_abs256(_mm256_loadu_ps(x + i)), m);
    return mxp_hmax256(m);
}

// 4 x 8 int32 (each in -128..127 or 0..255 as `packs` says) -> 32 bytes in element order.
static inline __m256i mxp_pack_i32x32_s8(__m256i a, __m256i b, __m256i c, __m256i d) {
    __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
    __m256i r = _mm256_packs_epi16(ab, cd);
    return _mm256_permutevar8x32_epi32(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}
static inline __m256i mxp_pack_i32x32_u8(__m256i a, __m256i b, __m256i c, __m256i d) {
    __m256i ab = _mm256_packus_epi32(a, b), cd = _mm256_packus_epi32(c, d);
    __m256i r = _mm256_packus_epi16(ab, cd);
    return _mm256_permutevar8x32_epi32(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

#endif
