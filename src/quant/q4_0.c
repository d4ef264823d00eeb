// q4_0.c: q4_0 weights (GGML type 2; quantized by ggml, see ggml_formats.c) with q8_0
// activations, reference kernels.
// Block (18 bytes, 4.5 bpw): f16 d, then 16 bytes: byte j = q[j] | q[j + 16] << 4, q in
// 0..15. Values read back as (q - 8) * f16(d).
#include "quant/quant_internal.h"

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
