// q8_0.c: q8_0 weights (GGML type 8; quantized by ggml, see ggml_formats.c) and the q8_0
// activation quantizer, reference kernels.
// Block (34 bytes, 8.5 bpw): f16 d, then 32 int8 q. Values read back as q * f16(d).
// Activations (the unpacked form every integer-dot format uses), as llama.cpp's x86 CPU
// backend quantizes them (quantize_row_q8_0): d = amax/127 rounded to f16, q =
// round-half-to-even(x * (127/amax)), 0 when amax is 0.
#include "quant/quant_internal.h"

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
    for (int i = 0; i < n / MXP_QK; i++) {
        const float *xb = x + i * MXP_QK;
        float amax = 0.0f;
        for (int j = 0; j < MXP_QK; j++) amax = mxp_maxf(fabsf(xb[j]), amax);  // NaN ignored
        float id;
        d[i] = mxp_f16_to_f32(mxp_q8_act_scale(amax, &id));
        for (int j = 0; j < MXP_QK; j++) {
            float v = mxp_minf(mxp_maxf(xb[j] * id, -127.0f), 127.0f);  // NaN -> -127
            qs[i * MXP_QK + j] = (int8_t)(int)nearbyintf(v);               // nearest even
        }
    }
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
