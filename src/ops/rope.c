// rope.c: rotary position embedding, Hugging Face "rotate_half" convention (pairs i, i + D/2).
// Angles are (pos0 + t) * inv_freq[i] in f32 as Hugging Face computes them. Rows are
// independent (parallel over rows); out may alias x. Backward rotates by the negative angle
// and accumulates. Not for use inside an OpenMP parallel region.
#include <math.h>
#include <stddef.h>

#include "ops/ops.h"

// Rotate one row x (H*D) of position pos by sign * angle into out (may alias); accumulate adds.
static void rope_row(float *out, const float *x, const float *inv_freq, int pos, int H, int D,
                     float sign, int accumulate) {
    int half = D / 2;
    for (int i = 0; i < half; i++) {
        float ang = (float)pos * inv_freq[i];
        float c = cosf(ang), s = sign * sinf(ang);
        for (int h = 0; h < H; h++) {
            const float *xh = x + (size_t)h * D;
            float *oh = out + (size_t)h * D;
            float a = xh[i], b = xh[i + half];
            float ra = a * c - b * s, rb = b * c + a * s;
            if (accumulate) {
                oh[i] += ra;
                oh[i + half] += rb;
            } else {
                oh[i] = ra;
                oh[i + half] = rb;
            }
        }
    }
}

// out, x (B*T, H*D); inv_freq (D/2).
void mxp_rope_fwd(float *out, const float *x, const float *inv_freq, int B, int T, int pos0, int H, int D) {
    size_t row = (size_t)H * D;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < B * T; r++)
        rope_row(out + r * row, x + r * row, inv_freq, pos0 + r % T, H, D, 1.0f, 0);
}

// dx (B*T, H*D) += R(-angle) dout: out_i = d_i c + d_{i+h} s, out_{i+h} = d_{i+h} c - d_i s.
void mxp_rope_bwd(float *dx, const float *dout, const float *inv_freq, int B, int T, int pos0, int H, int D) {
    if (!dx) return;
    size_t row = (size_t)H * D;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < B * T; r++)
        rope_row(dx + r * row, dout + r * row, inv_freq, pos0 + r % T, H, D, -1.0f, 1);
}
