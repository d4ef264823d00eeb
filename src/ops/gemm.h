// gemm.h: internal to src/ops. Deterministic multi-threaded wrappers of OpenBLAS sgemm/sgemv.
//
// OpenBLAS's own threading does not give the same bits for different thread counts (its
// partition decides which micro-kernel computes which element; measured: 5-20% of the
// elements of a 256x768x768 sgemm differ between 1 and 2 threads). These wrappers cut the
// output into a fixed number of tiles that depends only on the shape, and run one
// single-threaded OpenBLAS call per tile from an OpenMP loop (the OpenMP build of OpenBLAS
// runs single-threaded inside a parallel region). Same input, same bits, any thread count.
// Must not be called from inside a parallel region; to call BLAS from inside one, call
// cblas_* directly (it is single-threaded there).
//
// The _w entry points take the weight operand as a parameter (core/graph.h), which may be
// kept in bf16 or f16: each tile widens the block it reads into the caller's scratch and makes
// the call an f32 weight would get, so the result is the f32 weight's, bit for bit.
#ifndef MXP_OPS_GEMM_H
#define MXP_OPS_GEMM_H

#include <stddef.h>

#include "core/graph.h"

// Row-major C (M, N) = alpha op(A) op(B) + beta C; op(A) (M, K), op(B) (K, N).
// ta / tb nonzero: A is stored (K, M) / B is stored (N, K).
void mxp_ops_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc);

// Row-major A (M, N). y = alpha op(A) x + beta y; op(A) = A (y has M) or A^T (y has N) if ta.
void mxp_ops_sgemv(int ta, int M, int N, float alpha, const float *A, int lda, const float *x,
                   float beta, float *y);

// mxp_ops_sgemm with B = W, a 2-D parameter: stored (N, K) when tb, else (K, N); ldb is its
// row length. scratch holds `floats` floats, at least mxp_ops_wscratch_floats(W, M_max) for
// an M_max >= M (unused, may be NULL, when W is stored in f32).
void mxp_ops_sgemm_w(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                     const mxp_param *W, float beta, float *C, int ldc, float *scratch, size_t floats);
// mxp_ops_sgemv with A = W (M, N) a 2-D parameter; scratch as above (M_max = 1 suffices).
void mxp_ops_sgemv_w(int ta, float alpha, const mxp_param *W, const float *x, float beta, float *y,
                     float *scratch, size_t floats);
// Scratch floats the _w calls on W need for products with at most M_max rows in the other
// operand, at the current OpenMP thread count: the largest block a tile reads (a quarter of
// W's rows or columns at most), per thread (at most 4), plus all of W when some product cuts
// along the other operand (M_max above W's rows or columns). 0 for a weight stored in f32.
size_t mxp_ops_wscratch_floats(const mxp_param *W, int M_max);

#endif
