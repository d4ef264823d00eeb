// test_quant_util.h: helpers shared by tests/test_quant_*.c: a seeded RNG and data makers.
#ifndef MXP_TEST_QUANT_UTIL_H
#define MXP_TEST_QUANT_UTIL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

typedef struct tq_rng {
    uint64_t s;
} tq_rng;

static inline uint32_t tq_u32(tq_rng *r) {  // xorshift64*
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return (uint32_t)((r->s * 2685821657736338717ull) >> 32);
}
static inline float tq_unif(tq_rng *r) { return (float)(tq_u32(r) >> 8) * (1.0f / 16777216.0f); }
static inline float tq_normal(tq_rng *r) {
    float u = tq_unif(r) + 1e-7f, v = tq_unif(r);
    return sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
}
static inline float tq_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
// Random data with a spread of magnitudes per block (like real weights, plus outliers).
static inline void tq_fill(tq_rng *r, float *x, int n, float scale) {
    for (int i = 0; i < n; i++) {
        float v = tq_normal(r) * scale;
        if ((tq_u32(r) & 63) == 0) v *= 8.0f;
        x[i] = v;
    }
}

#endif
