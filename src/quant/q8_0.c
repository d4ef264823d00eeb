// q8_0.c: q8_0 weights and activations (GGML type 8), reference kernels.
// Block (34 bytes, 8.5 bpw): f16 d = amax/127, then 32 int8 q = round-half-away(x * (1/d)),
// with 1/d taken from the f32 d before its rounding to f16 (ggml's reference rule) and the
// block stored as zeros when the f16 d is 0. Values read back as q * f16(d).
// Also the activation quantizer (unpacked form) every integer-dot format uses.
#include "quant/quant_internal.h"

// One block: returns the f16 scale bits, writes 32 values.
static uint16_t q8_block_ref(const float *x, int8_t *qs) {
    float amax = 0.0f;
    for (int j = 0; j < MXP_QK; j++) amax = mxp_maxf(fabsf(x[j]), amax);  // NaN ignored
    float id;
    const uint16_t dh = mxp_q8_scale(amax, &id);
    for (int j = 0; j < MXP_QK; j++) qs[j] = (int8_t)mxp_round_clamp(x[j] * id, 127.0f);
    return dh;
}

void mxp_quantize_q8_0_ref(const float *x, void *q, int n) {
    MXP_ASSERT(n % MXP_QK == 0);
    mxp_block_q8_0 *b = q;
    for (int i = 0; i < n / MXP_QK; i++) b[i].d = q8_block_ref(x + i * MXP_QK, b[i].qs);
}

void mxp_dequantize_q8_0_ref(const void *q, float *y, int n) {
    MXP_ASSERT(n % MXP_QK == 0);
    const mxp_block_q8_0 *b = q;
    for (int i = 0; i < n / MXP_QK; i++) {
        const float d = mxp_f16_to_f32(b[i].d);
        for (int j = 0; j < MXP_QK; j++) y[i * MXP_QK + j] = (float)b[i].qs[j] * d;
    }
}

void mxp_quantize_act_q8_ref(const float *x, int8_t *qs, float *d, int n) {
    MXP_ASSERT(n % MXP_QK == 0);
    for (int i = 0; i < n / MXP_QK; i++)
        d[i] = mxp_f16_to_f32(q8_block_ref(x + i * MXP_QK, qs + i * MXP_QK));
}

// Per block: exact integer sum, then one float multiply-add by d_w * d_x.
float mxp_dot_q8_0_ref(int n, const void *w_row, const void *x) {
    MXP_ASSERT(n % MXP_QK == 0);
    const mxp_block_q8_0 *b = w_row;
    const mxp_q8_row *a = x;
    float s = 0.0f;
    for (int i = 0; i < n / MXP_QK; i++) {
        int32_t is = 0;
        for (int j = 0; j < MXP_QK; j++) is += (int32_t)b[i].qs[j] * a->qs[i * MXP_QK + j];
        s += (float)is * (mxp_f16_to_f32(b[i].d) * a->d[i]);
    }
    return s;
}
