// format.h: the numeric formats mixprec can give a matrix product, in one table, and the
// kernels that use them (quantize, dequantize, fake-quant, dot, matmul). Every format with a
// GGML type stores ggml's bytes: the format library is ggml (llama.cpp's tensor library), so
// the weights scored here are bit for bit the weights llama.cpp runs.
//
// Contract, for the runtime, calibration and the GGUF writer:
//  - A weight (O, I) in format f is O rows stored back to back; each row is
//    mxp_row_bytes(fmt, I) bytes: `row_prefix_bytes` of per-row header, then I / block_size
//    blocks of block_bytes each. Rows of the block formats need I % block_size == 0.
//  - Quantizers: q8_0, q4_0 and every format after f8_e4m3 in the table quantize with ggml's
//    ggml_quantize_chunk (no importance matrix); the later ones also dequantize with ggml's
//    type traits (to_float). f32, bf16 and f16 use mixprec's own kernels, whose bytes equal
//    ggml's (tests/test_quant_ggml.c checks all of them against ggml).
//  - Byte layouts (little-endian, as GGUF/ggml for every format that has a GGML type):
//      f32      4 bytes per weight, IEEE binary32.                          (32 bpw)
//      bf16     upper 16 bits of the f32, round-to-nearest-even; NaN stays NaN (quieted). (16 bpw)
//      f16      IEEE binary16, round-to-nearest-even (= F16C vcvtps2ph).       (16 bpw)
//      q8_0     blocks of 32: f16 d = amax/127, then 32 x int8 q; x ~ q * d.   (8.5 bpw)
//      q4_0     blocks of 32: f16 d = m/-8 (m: the signed element of largest |x|), then 16
//               bytes: byte j holds element j in its low nibble and element j+16 in its high
//               nibble, q in 0..15; x ~ (q - 8) * d.                          (4.5 bpw)
//      f8_e4m3  per row: f32 scale s = amax/448 (4 bytes, little-endian, possibly unaligned:
//               read with memcpy), then I bytes, each an OCP FP8 E4M3FN code (1 sign, 4
//               exponent bits with bias 7, 3 mantissa bits, subnormals, max 448, no inf);
//               x ~ s * e4m3(code). Codes 0x7F/0xFF (NaN) are never written; decoders read
//               them as +-480.  (8 + 32/I bpw)
//               NOT A GGUF FORMAT: no GGML type, `apply` refuses it and llama.cpp cannot
//               run it. It is the weight format of another target, FP8 accelerators
//               (per-channel-scaled E4M3 weights, as FP8 serving stacks run them), kept so
//               that `calibrate --formats f8_e4m3` and `eval` can say what such a target
//               would lose, beside the GGUF formats. Never in a default format list.
//      q4_1, q5_0, q5_1 (blocks of 32), iq4_nl (blocks of 32), q2_K, q3_K, q4_K, q5_K, q6_K
//               (super-blocks of 256): ggml's layouts (ggml-common.h), 5.0, 5.5, 6.0, 4.5,
//               2.625, 3.4375, 4.5, 5.5 and 6.5625 bpw. Rows need I % 256 == 0 for the k-quants.
//  - Rounding: ggml's reference quantizers: q8_0 q = round-half-away-from-zero(x * (1/d)),
//    q4_0 q = min(15, (int)(x * (1/d) + 8.5)), both with the reciprocal of the f32 d before
//    it is rounded to f16 (0 when that f32 d is 0). A block whose f32 d is non-zero but rounds
//    to an f16 0 keeps its q values and reads back as zeros.
//  - Non-finite input: quantizers never crash or hit undefined behaviour, and the ref and
//    AVX2 versions agree bit for bit, but the values they produce are meaningless (NaN is
//    ignored by the scale, inf makes the block's scale inf). mxp_quantize_matrix rejects
//    non-finite weights and scales that overflow f16 with MXP_ERR_ARG.
//  - Activations (`act`): what llama.cpp's CPU backend does to the input of a matrix product
//    before its dot products (type_traits_cpu[type].vec_dot_type in ggml-cpu.c, converted with
//    that type's from_float on x86):
//      f32      none (f32 and f8_e4m3 weights)
//      f16      rounded to f16, nearest even (f16 weights)
//      bf16     rounded to bf16, nearest even (bf16 weights)
//      q8_0     blocks of 32: f16 d = amax/127, q = nearest-even(x * (127/amax)) (q8_0, q4_0,
//               q5_0, iq4_nl weights); values q * f16(d). This is the x86 CPU backend's
//               quantize_row_q8_0, not ggml's reference quantizer (1/d, round half away).
//      q8_1     the same values as q8_0 (q4_1, q5_1 weights). llama.cpp also stores the block
//               sum s = f16(d * sum(q)) for the min term of the dot; its f16 rounding of s
//               is not modelled here.
//      q8_K     blocks of 256: m = the first signed element of largest magnitude, f32
//               iscale = -127/m, q = min(127, nearest-even(x * iscale)) (f32 product), f32
//               d = 1/iscale, values f32(q * d) (all zeros when m is 0): ggml's
//               quantize_row_q8_K_ref and dequantize_row_q8_K, which the x86 CPU backend uses
//               as is (the k-quants).
//    q8_0 and q4_0 use integer dots on the unpacked q8 activation (`int_dot`); every other
//    format multiplies the rounded activations in f32. The fake-quant helpers reproduce
//    exactly the values the kernels use.
//  - Block-size rule: an op (O, I) can take a format iff I % block_size == 0 (the activation
//    format's block divides the weight's). mxp_format_matrix_bytes is the one check; the
//    sensitivity pass, the profiler and the solver offer a format only where it passes.
//  - Kernels: every entry point has a scalar `_ref` version (defines the result) and an
//    `_avx2` version (AVX2+FMA+F16C). Quantizers and dequantizers match `_ref` bit for bit;
//    dots and matmuls match within float-summation rounding (see tests/test_quant*.c).
//    mxp_format_get picks the AVX2 table when the CPU has avx2, fma and f16c, unless the
//    environment variable MXP_FORCE_REF=1 is set; decided once, at the first call.
//  - Why mixprec has kernels of its own beside ggml's. mixprec links ggml's base library
//    (libggml-base: quantizers, to_float; no dot or matrix product, those live in the CPU
//    backend llama.cpp loads at run time). Each own piece serves what that library does not:
//      f32      the f32 products (OpenBLAS) of mixprec's executor: every forward pass,
//               calibration's gradients, eval.
//      bf16, f16  the scalar conversions (the definitions every kernel and the f16/bf16
//               activation rounding use; bytes equal to ggml's) and dots that convert inside
//               the dot: the real kernels of the executor (eval, generate, profile's timings).
//      q8_0, q4_0  the integer dot on q8_0 activations, the arithmetic of llama.cpp's CPU
//               vec_dot_q8_0_q8_0 / vec_dot_q4_0_q8_0 (integer block sums scaled by
//               d_w * d_x), for the executor's decode path; AVX2 dequantizers for its sgemm
//               tiles (ggml-base's to_float is scalar); and the x86 q8_0 activation rounding
//               (127/amax, ties to even), which is in the CPU backend, not in ggml-base (its
//               quantize_row_q8_0_ref takes 1/d and rounds half away from zero).
//      f8_e4m3  the one non-GGUF format (see above).
//      `_ref` / `_avx2`  `_ref` defines each result, `_avx2` is the executor's speed;
//               MXP_FORCE_REF=1 runs `_ref` (the tests check that they agree).
//    The other formats take ggml's quantizer and to_float; their dot dequantizes a block at
//    a time (ggml_formats.c): their values are llama.cpp's, their speed is not (llama-bench
//    times them).
//  - No state but the once-per-process dispatch decision: the tables are const; every
//    function is reentrant.
#ifndef MXP_QUANT_FORMAT_H
#define MXP_QUANT_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base.h"

typedef enum mxp_format_id {
    MXP_FMT_F32,
    MXP_FMT_BF16,
    MXP_FMT_F16,
    MXP_FMT_Q8_0,
    MXP_FMT_Q4_0,
    MXP_FMT_F8_E4M3,
    MXP_FMT_Q4_1,
    MXP_FMT_Q5_0,
    MXP_FMT_Q5_1,
    MXP_FMT_Q2_K,
    MXP_FMT_Q3_K,
    MXP_FMT_Q4_K,
    MXP_FMT_Q5_K,
    MXP_FMT_Q6_K,
    MXP_FMT_IQ4_NL,
    MXP_FMT_COUNT,
} mxp_format_id;

// How activations are rounded before the dot products (see the contract above).
typedef enum mxp_act_id {
    MXP_ACT_F32,
    MXP_ACT_F16,
    MXP_ACT_BF16,
    MXP_ACT_Q8_0,
    MXP_ACT_Q8_1,
    MXP_ACT_Q8_K,
    MXP_ACT_COUNT,
} mxp_act_id;

#define MXP_QK 32  // elements per q8_0 / q4_0 block
#define MXP_MAX_BLOCK 256  // the largest block_size of the table (the k-quants)

// q8_0 block: 8.5 bits per weight; f16 scale first, then 32 int8 values.
typedef struct mxp_block_q8_0 {
    uint16_t d;        // f16 bits
    int8_t qs[MXP_QK];
} mxp_block_q8_0;
_Static_assert(sizeof(mxp_block_q8_0) == 34, "q8_0 block must be 34 bytes");

// q4_0 block: 4.5 bits per weight; f16 scale first, then 16 bytes of nibble pairs.
typedef struct mxp_block_q4_0 {
    uint16_t d;            // f16 bits
    uint8_t qs[MXP_QK / 2];  // low nibble: element j, high nibble: element j + 16
} mxp_block_q4_0;
_Static_assert(sizeof(mxp_block_q4_0) == 18, "q4_0 block must be 18 bytes");

// An activation row quantized to q8_0 for the integer-dot kernels. Same values as q8_0
// blocks (q, and the f16 scale widened to f32), unpacked for speed; lives in the matmul
// scratch. Not a file layout.
typedef struct mxp_q8_row {
    const int8_t *qs;  // (n) quantized values
    const float *d;    // (n / 32) block scales (exactly the f16 scale values)
} mxp_q8_row;

// Quantize n elements of x into a row of this format (q: row_bytes(n) bytes).
// n must be a multiple of block_size (programmer bug otherwise). For f8_e4m3 the row is the
// unit of scaling: pass whole weight rows.
typedef void (*mxp_quantize_row_fn)(const float *x /*(n)*/, void *q, int n);
// Dequantize one row of n elements (q as written by quantize_row) into y (n).
typedef void (*mxp_dequantize_row_fn)(const void *q, float *y /*(n)*/, int n);
// Dot product of one weight row (n elements) with one activation row: for act_format F32,
// x is `const float *` (n); for act_format Q8_0, x is `const mxp_q8_row *`.
typedef float (*mxp_dot_fn)(int n, const void *w_row, const void *x);
// Quantize an activation row (n, multiple of 32) to the unpacked q8 form of mxp_q8_row:
// qs (n), d (n / 32): the q8_0 activation rule of the contract above.
typedef void (*mxp_quantize_act_fn)(const float *x /*(n)*/, int8_t *qs, float *d, int n);

typedef struct mxp_format {
    mxp_format_id id;
    const char *name;            // ggml's type name ("f32", "q8_0", "q4_K", ...); "f8_e4m3"
    int block_size;              // elements per block (1 for the element formats, 256 k-quants)
    int block_bytes;             // bytes per block
    int row_prefix_bytes;        // bytes of per-row header before the blocks (f8: 4)
    double bits_per_weight;      // incl. block scales; excl. the row prefix (f8: add 32/I)
    mxp_act_id act;              // how activations are rounded (llama.cpp's vec_dot_type)
    bool int_dot;                // dot takes a `const mxp_q8_row *` (q8_0, q4_0); else f32
    bool has_ggml_type;          // false for f8_e4m3
    uint32_t ggml_type;          // GGML type number when has_ggml_type (= GGUF's tensor type)
    bool has_fallback;           // llama.cpp's tensor_type_fallback for rows the block does
    mxp_format_id fallback;      // not divide (k-quants only; see mxp_format_fit)
    int sgemm_min_T;             // matmul: T >= this dequantizes W tiles and calls sgemm
                                 // (measured on the dev machine; f32 always uses BLAS)
    const char *impl;            // "ref" or "avx2": which kernel table this entry is from
    mxp_quantize_row_fn quantize_row;
    mxp_dequantize_row_fn dequantize_row;
    mxp_dot_fn dot;
    mxp_quantize_act_fn quantize_act;  // set iff int_dot
} mxp_format;

typedef enum mxp_impl {
    MXP_IMPL_AUTO,  // AVX2 when the CPU has it and MXP_FORCE_REF is not 1
    MXP_IMPL_REF,   // scalar reference kernels
    MXP_IMPL_AVX2,  // AVX2 kernels; the caller must check mxp_cpu_has_avx2() first
} mxp_impl;

// Static entry of the table for `id` (asserts id is valid). MXP_IMPL_AUTO dispatch.
const mxp_format *mxp_format_get(mxp_format_id id);
// Same, with an explicit kernel set (tests and benchmarks).
const mxp_format *mxp_format_get_impl(mxp_format_id id, mxp_impl impl);
// Does this CPU have AVX2, FMA and F16C (what the _avx2 kernels need)?
bool mxp_cpu_has_avx2(void);
// "avx2" or "ref": what MXP_IMPL_AUTO picks now (for provenance in JSON outputs).
const char *mxp_kernel_impl_name(void);

// Parse a format name ("q8_0", "q4_K"; case-insensitive). On failure returns MXP_ERR_ARG with
// a message naming the bad name and listing the valid ones.
mxp_status mxp_format_parse(const char *name, mxp_format_id *out, mxp_err *err);
// Name of an activation rounding ("f32", "f16", "bf16", "q8_0", "q8_1", "q8_K").
const char *mxp_act_name(mxp_act_id a);
// The format an op with rows of I elements gets when `want` is asked for, by llama.cpp's rule
// (tensor_type_fallback in src/llama-quant.cpp): `want` when I % block_size == 0; else its
// fallback (q2_K, q3_K -> q4_0, q4_K -> q5_0, q5_K -> q5_1, q6_K -> q8_0); else, when that
// does not fit either or there is none, f16 (block 1: always fits).
// Returns true when the result is `want` itself.
bool mxp_format_fit(mxp_format_id want, int64_t I, mxp_format_id *out);

// Bytes of one row of n elements (prefix + blocks). Asserts n % block_size == 0 and n > 0
// (use mxp_format_row_bytes_checked on untrusted sizes).
size_t mxp_row_bytes(const mxp_format *fmt, int n);
// Checked: n > 0, n % block_size == 0, no overflow. Errors name the format and n.
mxp_status mxp_format_row_bytes_checked(mxp_format_id id, int64_t n, size_t *out, mxp_err *err);
// Checked bytes of an (O, I) matrix.
mxp_status mxp_format_matrix_bytes(mxp_format_id id, int64_t O, int64_t I, size_t *out,
                                   mxp_err *err);

// Quantize a whole weight w (O, I) into out (out_bytes >= mxp_format_matrix_bytes). Rows
// are quantized in parallel (OpenMP); the result does not depend on the thread count.
// Errors (MXP_ERR_ARG, message naming `name`, the format and the size): I not a multiple of
// the block size, O or I <= 0, out too small, a non-finite weight (gives its row and column),
// a block scale that overflows f16 (|w| >= ~8.3e6 for q8_0, ~5.2e5 for q4_0), a weight that
// rounds to inf (|w| >= 65520 for f16, >= 0x1.ffp+127 ~ 3.396e38 for bf16).
mxp_status mxp_quantize_matrix(mxp_format_id id, const float *w /*(O, I)*/, int O, int I,
                               void *out, size_t out_bytes, const char *name, mxp_err *err);

// The output-size check of mxp_quantize_matrix alone: out_bytes holds O rows of I in format
// id; errors name the tensor.
mxp_status mxp_quantize_out_check(mxp_format_id id, int O, int I, size_t out_bytes, const char *name, mxp_err *err);
// The input checks of mxp_quantize_matrix alone (non-finite weights, weights that round to
// inf in f16 / bf16), for callers that quantize a matrix piece by piece. The f16 scale
// overflow of the block formats shows only after quantizing: such callers check the values
// read back themselves.
mxp_status mxp_quantize_check_values(mxp_format_id id, const float *w /*(O, I)*/, int O, int I,
                                     const char *name, mxp_err *err);
// The same for rows row0 .. row0 + O - 1 of a larger matrix (messages name those rows).
mxp_status mxp_quantize_check_values_at(mxp_format_id id, const float *w /*(O, I)*/, int O, int I, int64_t row0,
                                        const char *name, mxp_err *err);
// The quantizing part of mxp_quantize_matrix, for callers that quantize a matrix a chunk of
// rows at a time after checking its values: rows quantized into out (O rows of
// mxp_row_bytes), *bad_row the last row whose block scale overflows f16 (-1: none; always -1
// for the element formats). MXP_ERR_NOMEM only.
mxp_status mxp_quantize_rows(mxp_format_id id, const float *w /*(O, I)*/, int O, int I, void *out, int *bad_row,
                             const char *name, mxp_err *err);

// ---- fake quantization: exactly the values the kernels use ----
// Weight: y = dequantize(quantize(x)) for one whole weight row of n elements (f8_e4m3's
// scale is per row, so pass whole rows). y may alias x. Asserts n % block_size == 0.
// `scratch` must hold mxp_row_bytes(fmt, n) bytes.
void mxp_fake_quant_weight_row(const mxp_format *fmt, const float *x /*(n)*/, float *y /*(n)*/,
                               int n, void *scratch);
// Activation: the format's activation rounding (fmt->act) on one activation row of n
// elements. y may alias x. Asserts n % (the activation's block) == 0 (32 for q8_0/q8_1, 256
// for q8_K).
void mxp_fake_quant_act_row(const mxp_format *fmt, const float *x /*(n)*/, float *y /*(n)*/,
                            int n);
// The same for an activation rounding named directly.
void mxp_act_round_row(mxp_act_id a, const float *x /*(n)*/, float *y /*(n)*/, int n);

// ---- matrix product ----
// Scratch owned by the caller, reused across calls; grow with mxp_quant_scratch_reserve.
typedef struct mxp_quant_scratch {
    void *buf;     // owned, 64-byte aligned
    size_t bytes;  // capacity
} mxp_quant_scratch;

// Scratch bytes mxp_matmul needs for this format and shape (0 when none), sized for the
// current OpenMP thread count (omp_get_max_threads()); a scratch sized for fewer threads
// still works, the sgemm path then uses fewer threads.
size_t mxp_matmul_scratch_bytes(mxp_format_id id, int T, int I, int O);
// Make s hold at least `bytes` (keeps it if large enough). MXP_ERR_NOMEM on failure.
mxp_status mxp_quant_scratch_reserve(mxp_quant_scratch *s, size_t bytes, mxp_err *err);
void mxp_quant_scratch_free(mxp_quant_scratch *s);  // s is zeroed

// y (T, O) = x (T, I) @ W^T, W (O, I) quantized in fmt (O rows of mxp_row_bytes(fmt, I)).
// For q8_0/q4_0 every activation row is quantized to q8_0 once per call and shared by all
// output rows (integer dots), or, for T >= fmt->sgemm_min_T, fake-quantized and multiplied
// by f32 tiles of the dequantized W with OpenBLAS sgemm (same values, float rounding only).
// Other formats round the activation rows (fmt->act) once per call and use f32 products.
// f32: OpenBLAS sgemv (T == 1) / sgemm. Threads (OpenMP) split output rows into chunks
// fixed by (I, O), BLAS runs single-threaded per chunk: the result does not depend on the
// thread count. Must not be called inside an OpenMP parallel region.
// Asserts: I % block_size == 0, T, I, O > 0, s->bytes >= mxp_matmul_scratch_bytes(...)
// (s may be NULL when that is 0). y must not alias x or W.
void mxp_matmul_fmt(float *y /*(T, O)*/, const mxp_format *fmt, const void *w /*(O rows)*/,
                    const float *x /*(T, I)*/, int T, int I, int O, mxp_quant_scratch *s);
// Same with the MXP_IMPL_AUTO kernels of format id.
void mxp_matmul(float *y /*(T, O)*/, mxp_format_id id, const void *w, const float *x /*(T, I)*/,
                int T, int I, int O, mxp_quant_scratch *s);

// ---- scalar conversions (exact definitions used by every kernel) ----
float mxp_f16_to_f32(uint16_t h);
uint16_t mxp_f32_to_f16(float f);   // round-to-nearest-even, = F16C vcvtps2ph
float mxp_bf16_to_f32(uint16_t h);
uint16_t mxp_f32_to_bf16(float f);  // round-to-nearest-even; NaN -> quiet NaN
float mxp_e4m3_to_f32(uint8_t code);

#endif
