// ops.h: f32 forward and backward kernels of the ops the model graph uses.
//
// Layout: activations are row-major (N, C) with N = B*T rows (tokens), sequence-major
// (row b*T + t). Weights are row-major as in PyTorch: a linear weight is (O, I).
// Backward functions ACCUMULATE (+=) into every gradient they are given; callers zero.
// A NULL gradient pointer means "not needed" and is skipped.
// Kernels use OpenMP internally; none may be called from inside an OpenMP parallel region
// (BLAS is the OpenMP build and shares the same thread pool).
// Same input, same output, for any thread count (no reductions whose order depends on it;
// OpenBLAS's own threading is not used because its results change with the thread count:
// products are cut into tiles fixed by the shape, one single-threaded BLAS call per tile).
// Kernels never allocate: the attention kernels take their work space from the caller, so
// that none of them can fail (void signatures).
#ifndef MXP_OPS_H
#define MXP_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "core/graph.h"

// Loops over fewer elements than this run on one thread: waking the OpenMP team costs more
// than the work (decode steps of small models). Results do not depend on it (each element is
// computed by one thread in a fixed order either way).
#define MXP_PAR_MIN 32768

// ---- embedding ----
// out (N, C) = wte[tok[n]]; tokens must be in [0, V) (checked by the caller).
void mxp_embed_fwd(float *out, const int32_t *tok, const float *wte, int N, int C);
// dwte (V, C) += rows of dout scattered by token.
void mxp_embed_bwd(float *dwte, const float *dout, const int32_t *tok, int N, int C);
// Learned positions: out (B*T, C) = x + wpe[pos0 + t]. (out may alias x)
void mxp_posembed_fwd(float *out, const float *x, const float *wpe, int B, int T, int pos0, int C);
// dx += dout; dwpe[pos0+t] += sum_b dout[b,t]
void mxp_posembed_bwd(float *dx, float *dwpe, const float *dout, int B, int T, int pos0, int C);

// ---- normalization ----
// RMSNorm: out = x * rstd * w, rstd (N) = 1/sqrt(mean(x^2) + eps) (saved for backward).
void mxp_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, int N, int C, float eps);
void mxp_rmsnorm_bwd(float *dx, float *dw, const float *dout, const float *x, const float *w,
                     const float *rstd, int N, int C);
// LayerNorm: out = (x - mean) * rstd * w + b; mean, rstd (N) saved. b may be NULL.
void mxp_layernorm_fwd(float *out, float *mean, float *rstd, const float *x, const float *w,
                       const float *b, int N, int C, float eps);
void mxp_layernorm_bwd(float *dx, float *dw, float *db, const float *dout, const float *x,
                       const float *w, const float *mean, const float *rstd, int N, int C);

// ---- linear (OpenBLAS sgemm; sgemv when N == 1) ----
// out (N, Out) = x (N, In) @ w(Out, In)^T + b (Out). b may be NULL. (Not "I": complex.h, pulled in
// by cblas.h, defines a macro I.)
void mxp_linear_fwd(float *out, const float *x, const float *w, const float *b, int N, int In, int Out);
// dx (N, I) += dout @ w;  dw (O, I) += dout^T @ x;  db (O) += sum_n dout.
void mxp_linear_bwd(float *dx, float *dw, float *db, const float *dout, const float *x,
                    const float *w, int N, int In, int Out);
// The same with W a parameter (Out, In), stored in f32 (then exactly the calls above), bf16 or
// f16: tiles of W are widened into `scratch` (`floats` floats, at least
// mxp_linear_scratch_floats(w, N_max) for an N_max >= N), never a whole f32 copy unless a
// product with more rows than W's Out or In cuts along the rows (gemm.h). Same bits as an f32 W.
size_t mxp_linear_scratch_floats(const mxp_param *w, int N_max);
void mxp_linear_fwd_w(float *out, const float *x, const mxp_param *w, const float *b, int N, int In, int Out,
                      float *scratch, size_t floats);
void mxp_linear_bwd_w(float *dx, float *dw, float *db, const float *dout, const float *x, const mxp_param *w,
                      int N, int In, int Out, float *scratch, size_t floats);

// ---- rotary position embedding (Hugging Face "rotate_half" convention) ----
// x (B*T, H*D): for each head, pairs (i, i + D/2), i < D/2, rotate by angle
// (pos0 + t) * inv_freq[i]:  out_i = x_i cos - x_{i+D/2} sin ; out_{i+D/2} = x_{i+D/2} cos + x_i sin.
// inv_freq (D/2) is computed by the builder (rope_theta, rope_scaling). out may alias x.
void mxp_rope_fwd(float *out, const float *x, const float *inv_freq, int B, int T, int pos0, int H, int D);
// dx += R^T dout (rotation by the negative angle).
void mxp_rope_bwd(float *dx, const float *dout, const float *inv_freq, int B, int T, int pos0, int H, int D);

// ---- causal self-attention with grouped-query heads ----
// q (B*Tq, H*D); k, v (B*Tk, Hkv*D); H % Hkv == 0, query head h uses kv head h / (H/Hkv).
// Query i of a sequence sits at position p = Tk - Tq + i and attends to keys 0 .. p, or with
// a sliding window (window > 0) to keys p - window + 1 .. p (Hugging Face Mistral: key j is
// masked when p - j >= window). Scale 1/sqrt(D). out (B*Tq, H*D). att (B, H, Tq, Tk): softmax
// probabilities, written (zero for keys not attended to); saved for backward. att may be NULL when no backward follows;
// the scores then go to scratch (slots, Tq, Tk), one (Tq, Tk) matrix per thread, and the
// kernel runs on at most `slots` threads (scratch is unused, and may be NULL, with att).
void mxp_attention_fwd(float *out, float *att, float *scratch, int slots, const float *q, const float *k,
                       const float *v, int B, int Tq, int Tk, int H, int Hkv, int D, int window);
// Backward for Tq == Tk == T. dq (B*T, H*D), dk, dv (B*T, Hkv*D) accumulate. scratch
// (slots, T, T) holds each thread's dP / dS (unused, and may be NULL, when dq and dk are NULL);
// the kernel runs on at most `slots` threads.
void mxp_attention_bwd(float *dq, float *dk, float *dv, float *scratch, int slots, const float *dout,
                       const float *q, const float *k, const float *v, const float *att, int B, int T,
                       int H, int Hkv, int D, int window);

// ---- elementwise ----
// SwiGLU: out = silu(gate) * up, silu(x) = x / (1 + exp(-x)). n elements.
void mxp_swiglu_fwd(float *out, const float *gate, const float *up, int64_t n);
void mxp_swiglu_bwd(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n);
// GELU, tanh approximation (GPT-2 "gelu_new"): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
void mxp_gelu_fwd(float *out, const float *x, int64_t n);
void mxp_gelu_bwd(float *dx, const float *dout, const float *x, int64_t n);
// out = a + b (out may alias a or b).
void mxp_add_fwd(float *out, const float *a, const float *b, int64_t n);
// dst += src
void mxp_acc(float *dst, const float *src, int64_t n);

// ---- loss ----
// Next-token cross-entropy. logits (N, V); targets (N) in [0, V).
// losses (N) = -log softmax(logits)[target]. Returns nothing; callers average.
void mxp_xent_fwd(float *losses, const float *logits, const int32_t *targets, int N, int V);
// dlogits (N, V) += scale[n] * (softmax(logits[n]) - onehot(target[n])).
// scale (N) lets callers weight rows (1/N for a mean loss). 
void mxp_xent_bwd(float *dlogits, const float *logits, const int32_t *targets, const float *scale,
                  int N, int V);

#endif
