// ggml_formats.c: the formats whose numerics are ggml's own (llama.cpp's tensor library,
// linked as libggml-base.so): quantize with ggml_quantize_chunk, dequantize with the type
// traits' to_float, so the bytes and values are exactly those llama.cpp stores and runs.
// Also the q8_K activation rounding of the k-quants, and the version of the ggml library
// for provenance.
// Must not: hold state (ggml's quantizers without an importance matrix are pure functions;
// the tables they use are built once by ggml_quantize_init, called under a pthread_once).
#include "quant/quant_internal.h"

#include <ggml.h>

#include "mixprec.h"

const char *mxp_ggml_version(void) { return ggml_version(); }
const char *mxp_ggml_commit(void) { return ggml_commit(); }

// ggml_quantize_chunk of one row. n is a multiple of the block size (the caller's contract),
// so ggml's own asserts cannot fire; it needs no importance matrix for any type here
// (tests/test_quant_ggml.c checks ggml_quantize_requires_imatrix).
static void quantize_row(enum ggml_type t, const float *x, void *q, int n) {
    MXP_ASSERT(n > 0 && n % ggml_blck_size(t) == 0);
    size_t bytes = ggml_quantize_chunk(t, x, q, 0, 1, n, NULL);
    MXP_ASSERT(bytes == ggml_row_size(t, n));
}

static void dequantize_row(enum ggml_type t, const void *q, float *y, int n) {
    MXP_ASSERT(n > 0 && n % ggml_blck_size(t) == 0);
    ggml_get_type_traits(t)->to_float(q, y, n);
}

// One weight row (n elements, type t) . x (n floats, already rounded as the format's
// activations are): each block is dequantized into a small buffer and multiplied in 8 float
// lanes; lanes summed in a fixed order (thread-count independent, like every dot here).
// Speed is not llama.cpp's: its kernels dot the packed bytes with integer arithmetic.
static float dot_row(enum ggml_type t, int n, const void *w_row, const float *x) {
    const int bs = (int)ggml_blck_size(t);
    const size_t bb = ggml_type_size(t);
    MXP_ASSERT(bs <= 256 && n % bs == 0);
    float w[256], acc[8] = {0};
    const uint8_t *p = w_row;
    for (int i = 0; i < n; i += bs, p += bb) {
        ggml_get_type_traits(t)->to_float(p, w, bs);
        for (int j = 0; j < bs; j += 8)
            for (int l = 0; l < 8; l++) acc[l] += w[j + l] * x[i + j + l];
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

void mxp_quantize_q8_0_ggml(const float *x, void *q, int n) { quantize_row(GGML_TYPE_Q8_0, x, q, n); }
void mxp_quantize_q4_0_ggml(const float *x, void *q, int n) { quantize_row(GGML_TYPE_Q4_0, x, q, n); }

#define GGML_KERNELS(K, TYPE)                                                                           \
    void mxp_quantize_##K##_ggml(const float *x, void *q, int n) { quantize_row(TYPE, x, q, n); }      \
    void mxp_dequantize_##K##_ggml(const void *q, float *y, int n) { dequantize_row(TYPE, q, y, n); }  \
    float mxp_dot_##K##_ggml(int n, const void *w_row, const void *x) { return dot_row(TYPE, n, w_row, x); }

GGML_KERNELS(q4_1, GGML_TYPE_Q4_1)
GGML_KERNELS(q5_0, GGML_TYPE_Q5_0)
GGML_KERNELS(q5_1, GGML_TYPE_Q5_1)
GGML_KERNELS(q2_K, GGML_TYPE_Q2_K)
GGML_KERNELS(q3_K, GGML_TYPE_Q3_K)
GGML_KERNELS(q4_K, GGML_TYPE_Q4_K)
GGML_KERNELS(q5_K, GGML_TYPE_Q5_K)
GGML_KERNELS(q6_K, GGML_TYPE_Q6_K)
GGML_KERNELS(iq4_nl, GGML_TYPE_IQ4_NL)

// q8_K, the activations of the k-quants: ggml's quantize_row_q8_K_ref and
// dequantize_row_q8_K. Both are exported by libggml-base.so but declared only in
// ggml/src/ggml-quants.h, which is not installed; the type traits of GGML_TYPE_Q8_K carry
// neither. The block: f32 d, 256 int8 q, 16 int16 block sums (292 bytes).
typedef struct block_q8_K_bytes {
    uint8_t b[292];
} block_q8_K_bytes;
void quantize_row_q8_K_ref(const float *x, void *y, int64_t k);
void dequantize_row_q8_K(const void *x, float *y, int64_t k);

void mxp_act_round_q8_K(const float *x, float *y, int n) {
    MXP_ASSERT(n % 256 == 0 && ggml_type_size(GGML_TYPE_Q8_K) == sizeof(block_q8_K_bytes));
    block_q8_K_bytes blk;
    for (int i = 0; i < n; i += 256) {
        quantize_row_q8_K_ref(x + i, &blk, 256);
        dequantize_row_q8_K(&blk, y + i, 256);
    }
}
