// rope.c: rotary position embedding, Hugging Face "rotate_half" convention (pairs i, i + D/2).
// Angles are (pos0 + t) * inv_freq[i] in f32 as Hugging Face computes them. Rows are
// independent (parallel over rows); out may alias x. Backward rotates by the negative angle
// and accumulates. Not for use inside an OpenMP parallel region.
#include <math.h>
#include <stddef.h>

#include "core/base.h"
#include "ops/ops.h"

#define ROPE_CHUNK 64  // pairs per cos/sin table: any head dimension works, in chunks

// Rotate one row x (H*D) of position pos by sign * angle into out (may alias); accumulate adds.
// The pairs go in chunks of ROPE_CHUNK: one cos/sin table per chunk, shared by every head.
static void rope_row(float *out, const float *x, const float *inv_freq, int pos, int H, int D,
                     float sign, int accumulate) {
    int half = D / 2;
    float cs[ROPE_CHUNK], sn[ROPE_CHUNK];
    for (int i0 = 0; i0 < half; i0 += ROPE_CHUNK) {
        int m = half - i0 < ROPE_CHUNK ? half - i0 : ROPE_CHUNK;
        for (int i = 0; i < m; i++) {
            float ang = (float)pos * inv_freq[i0 + i];
            cs[i] = cosf(ang);
            sn[i] = sign * sinf(ang);
        }
        for (int h = 0; h < H; h++) {
            const float *xa = x + (size_t)h * D + i0, *xb = xa + half;
            float *oa = out + (size_t)h * D + i0, *ob = oa + half;
            if (accumulate) {
#pragma omp simd
                for (int i = 0; i < m; i++) {
                    float a = xa[i], b = xb[i];
                    oa[i] += a * cs[i] - b * sn[i];
                    ob[i] += b * cs[i] + a * sn[i];
                }
            } else {  // out may alias x: each pair is read before it is written
#pragma omp simd
                for (int i = 0; i < m; i++) {
                    float a = xa[i], b = xb[i];
                    oa[i] = a * cs[i] - b * sn[i];
                    ob[i] = b * cs[i] + a * sn[i];
                }
            }
        }
    }
}

// out, x (B*T, H*D); inv_freq (D/2).
void mxp_rope_fwd(float *out, const float *x, const float *inv_freq, int B, int T, int pos0, int H, int D) {
    MXP_ASSERT(D % 2 == 0);
    size_t row = (size_t)H * D;
#pragma omp parallel for schedule(static) if ((int64_t)B * T * H * D >= MXP_PAR_MIN)
    for (int r = 0; r < B * T; r++)
        rope_row(out + r * row, x + r * row, inv_freq, pos0 + r % T, H, D, 1.0f, 0);
}

// dx (B*T, H*D) += R(-angle) dout: out_i = d_i c + d_{i+h} s, out_{i+h} = d_{i+h} c - d_i s.
void mxp_rope_bwd(float *dx, const float *dout, const float *inv_freq, int B, int T, int pos0, int H, int D) {
    if (!dx) return;
    MXP_ASSERT(D % 2 == 0);
    size_t row = (size_t)H * D;
#pragma omp parallel for schedule(static) if ((int64_t)B * T * H * D >= MXP_PAR_MIN)
    for (int r = 0; r < B * T; r++)
        rope_row(dx + r * row, dout + r * row, inv_freq, pos0 + r % T, H, D, -1.0f, 1);
}
