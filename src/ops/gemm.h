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
#ifndef MXP_OPS_GEMM_H
#define MXP_OPS_GEMM_H

// Row-major C (M, N) = alpha op(A) op(B) + beta C; op(A) (M, K), op(B) (K, N).
// ta / tb nonzero: A is stored (K, M) / B is stored (N, K).
void mxp_ops_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc);

// Row-major A (M, N). y = alpha op(A) x + beta y; op(A) = A (y has M) or A^T (y has N) if ta.
void mxp_ops_sgemv(int ta, int M, int N, float alpha, const float *A, int lda, const float *x,
                   float beta, float *y);

#endif
