// vexp.h: internal to src/ops. exp(x) in f32 written so that `#pragma omp simd` loops
// vectorize it (no libm call, no branches): Cody-Waite reduction x = n ln2 + r,
// |r| <= ln2/2, degree-7 Taylor polynomial for e^r (truncation < 6e-9 relative), 2^n built in
// the exponent bits. Error about 2 ulp against correctly rounded expf over the whole range.
// Inputs below -87.3 (and -inf) give 0 (subnormal results are flushed), inputs above 88.3
// (and +inf) give exp(88.3); NaN inputs give 0 or exp(88.3), not NaN: callers that must
// propagate NaN need another path (softmax and cross-entropy propagate it through the max). Only plain IEEE operations: the same bits whether a lane is
// computed vectorized or scalar.
#ifndef MXP_OPS_VEXP_H
#define MXP_OPS_VEXP_H

#include <stdint.h>


static inline float mxp_vexpf(float x) {
    // Clamps and the final select compare the IEEE bit patterns as integers: float compares
    // may trap (-ftrapping-math is on), which stops GCC from if-converting and vectorizing.
    // Positive floats order like their bits as int32; "x < -87.3" is, for negative x, "bits
    // above those of -87.3 as uint32" (also true for -inf and negative NaNs, giving 0).
    union { float f; int32_t i; uint32_t u; } v = {x}, c;
    const int32_t hi_bits = 0x42B0999A;    // 88.3f
    const uint32_t lo_bits = 0xC2AE999Au;  // -87.3f
    int under = v.u > lo_bits;
    c.u = v.u > lo_bits ? lo_bits : v.u;   // min as uint32: below -87.3 becomes -87.3
    c.i = c.i > hi_bits ? hi_bits : c.i;   // min as int32: +inf and positive NaNs become 88.3
    float xc = c.f;
    // n = round(x / ln2) with the 1.5 * 2^23 trick (round to nearest, default rounding mode).
    // t's low mantissa bits then hold n (as bits(t) - bits(shifter)): no float->int conversion.
    const float shifter = 12582912.0f;
    union { float f; int32_t i; } t = {xc * 1.44269504088896341f + shifter};
    float n = t.f - shifter;
    float r = xc - n * 0.693145751953125f;  // ln2 high part: 16 significant bits, n * it exact
    r = r - n * 1.42860682030941723e-6f;    // ln2 low part
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    // 2^n = (n + 127) << 23, n in [-126, 127]; 0 below the range. Selecting the scale, not
    // the result, keeps GCC from moving the arithmetic under a branch it could not vectorize.
    union { float f; int32_t i; } s;
    s.i = (t.i - 0x4B400000 + 127) * 8388608;
    s.i = under ? 0 : s.i;
    return p * s.f;
}

#endif
