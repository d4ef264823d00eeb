// rng.h: the one seeded random number generator of mixprec (xoshiro256** seeded through
// splitmix64). Caller-owned state; same seed, same stream, on every machine.
#ifndef MXP_RNG_H
#define MXP_RNG_H

#include <stdint.h>

typedef struct mxp_rng {
    uint64_t s[4];
} mxp_rng;

void mxp_rng_seed(mxp_rng *r, uint64_t seed);
uint64_t mxp_rng_u64(mxp_rng *r);
// Uniform in [0, 1) with 53 random bits.
double mxp_rng_uniform(mxp_rng *r);
// Uniform integer in [0, n), n > 0, without modulo bias.
uint64_t mxp_rng_below(mxp_rng *r, uint64_t n);
// Standard normal (Box-Muller; one value per call).
double mxp_rng_normal(mxp_rng *r);

#endif
