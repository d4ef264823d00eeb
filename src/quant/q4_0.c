// q4_0.c: q4_0 weights (GGML type 2) with q8_0 activations, reference kernels.
// Block (18 bytes, 4.5 bpw): f16 d = m / -8 where m is the block's signed element of largest
// magnitude (the first one on ties), then 16 bytes: byte j = q[j] | q[j + 16] << 4, with
// q = min(15, floor(x * (1/d) + 8.5)) (1/d from the f32 d; 0 when the f16 d is 0, which
// stores q = 8). Values read back as (q - 8) * f16(d).
#include "quant/quant_internal.h"

static inline int q4_round(float v) {
    float t = v + 8.5f;
    t = mxp_maxf(t, 0.0f);  // NaN -> 0, as max_ps(t, 0)
    t = mxp_minf(t, 15.0f);
    return (int)t;       // t >= 0: truncation is floor
}

void mxp_quantize_q4_0_ref(const float *x, void *q, int n) {
    MXP_ASSERT(n % MXP_QK == 0);
    mxp_block_q4_0 *b = q;
    for (int i = 0; i < n / MXP_QK; i++) {
        const float *xb = x + i * MXP_QK;
        float amax = 0.0f, maxv = 0.0f;
        for (int j = 0; j < MXP_QK; j++) {
            if (fabsf(xb[j]) > amax) {
                amax = fabsf(xb[j]);
                maxv = xb[j];
            }
        }
        float id;
        b[i].d = mxp_q4_scale(maxv, &id);
        for (int j = 0; j < MXP_QK / 2; j++) {
            const int lo = q4_round(xb[j] * id), hi = q4_round(xb[j + 16] * id);
            b[i].qs[j] = (uint8_t)(lo | (hi << 4));
        }
    }
}

void mxp_dequantize_q4_0_ref(const void *q, float *y, int n) {
    MXP_ASSERT(n % MXP_QK == 0);
    const mxp_block_q4_0 *b = q;
    for (int i = 0; i < n / MXP_QK; i++) {
        const float d = mxp_f16_to_f32(b[i].d);
        for (int j = 0; j < MXP_QK / 2; j++) {
            y[i * MXP_QK + j] = (float)((b[i].qs[j] & 0x0F) - 8) * d;
            y[i * MXP_QK + j + 16] = (float)((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

float mxp_dot_q4_0_ref(int n, const void *w_row, const void *x) {
    MXP_ASSERT(n % MXP_QK == 0);
    const mxp_block_q4_0 *b = w_row;
    const mxp_q8_row *a = x;
    float s = 0.0f;
    for (int i = 0; i < n / MXP_QK; i++) {
        const int8_t *xq = a->qs + i * MXP_QK;
        int32_t is = 0;
        for (int j = 0; j < MXP_QK / 2; j++) {
            is += ((b[i].qs[j] & 0x0F) - 8) * xq[j];
            is += ((b[i].qs[j] >> 4) - 8) * xq[j + 16];
        }
        s += (float)is * (mxp_f16_to_f32(b[i].d) * a->d[i]);
    }
    return s;
}
