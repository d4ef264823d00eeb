// sensitivity.h: per-op, per-format contributions to the loss MSE (docs/DESIGN.md 1.1), from one
// f32 forward and backward pass per calibration sample.
//
// For op l (y = W x + b), format p and sample n with mean next-token loss L_n:
//   Ew = fq_w(W) - W, Ea = fq_a(A_n) - A_n  (exactly the runtime's quantizers, src/quant)
//   dw = <dL_n/dW, Ew>       dL_n/dW = sum_t g_t a_t^T, formed one op at a time and dropped
//   da = <dL_n/dA, Ea>       dL_n/dA = g W, the input gradient through this op alone
//   d  = dw + da;  s_l(p) = mean_n d^2;  weight part mean dw^2, activation part mean da^2.
// The token embedding E is an op too (a lookup, no activation rounding): dw = sum_t
// <dL_n/dY_t, fq_w(E)[tok_t] - E[tok_t]>, da = 0; a head tied to it is one op whose d adds
// both uses before squaring (docs/DESIGN.md 1.1).
// Comparison metrics, accumulated in the same pass:
//   fisher: mean_n sum_{t,o} (g_to * dY_to)^2, dY = fq forward - f32 forward of the op
//           (costs one extra product per format and op: only with want_fisher)
//   noise:  mean_n (var_w(p) ||dL_n/dW||^2 + var_a(p, n) ||dL_n/dA||^2), the errors replaced
//           by white noise of each format's measured mean squared error.
// Memory: the model, one forward's activations (an embedding's error rows are formed per
// batch, for its tokens only, from the cache's bytes when it holds them; streaming, run->stream: the segment inputs and one
// segment's values and statistics, runtime/exec.h) and the largest op's weight gradient (one per
// sample held at once: up to the batch, within 1 GiB); with want_fisher one more weight-sized
// buffer; and at most run->cache_bytes of quantized weights. Nothing else per format: the
// weight errors fq_w(W) - W are formed chunk by chunk where they are used (a few tens of KiB
// per thread) and dropped, so beyond that cap the memory does not grow with the number of
// formats. Time: each batch quantizes every weight in every format once, except the
// (op, format) pairs kept in the cache, which are dequantized (ggml's block quantizers, the
// k-quants' above all, are slow; dequantizing is cheap).
#ifndef MXP_SENSITIVITY_H
#define MXP_SENSITIVITY_H

#include "arch/model.h"
#include "quant/format.h"
#include "runtime/qcache.h"

typedef enum mxp_metric { MXP_METRIC_TAYLOR, MXP_METRIC_FISHER, MXP_METRIC_NOISE, MXP_METRIC_COUNT } mxp_metric;
const char *mxp_metric_name(mxp_metric m);  // "taylor", "fisher", "noise"
mxp_status mxp_metric_parse(const char *s, mxp_metric *out, mxp_err *err);

typedef struct mxp_sens_op {
    char *name;                           // module name (owned)
    int node, in, out;                    // the op's node; its weight is (out, in)
    int embed;                            // the EMBED node reading the weight (the op, or the
                                          // embedding tied to a head), -1 if none
    unsigned char ok[MXP_FMT_COUNT];      // the op can take this format (width fits its block)
    double sum[MXP_METRIC_COUNT][MXP_FMT_COUNT];  // sums over samples of each metric's score
    double sum_d4[MXP_FMT_COUNT];         // taylor: sum of d^4 (standard error)
    double sum_w[MXP_FMT_COUNT];          // taylor: sum of dw^2
    double sum_a[MXP_FMT_COUNT];          // taylor: sum of da^2
} mxp_sens_op;

typedef struct mxp_sens {
    mxp_sens_op *ops;   // (n_ops) every plan op (mxp_graph_is_op) in graph order
    int n_ops;
    int n_formats;
    mxp_format_id formats[MXP_FMT_COUNT];
    int seq_len;
    size_t samples;     // samples accumulated
    double loss_sum;    // sum of the reference L_n
    int has_fisher;
} mxp_sens;

mxp_status mxp_sens_init(mxp_sens *s, const mxp_graph *g, const mxp_format_id *fmts, int n_fmts, int seq_len,
                         mxp_err *err);
void mxp_sens_free(mxp_sens *s);

// Called with the table so far (to save a checkpoint); non-OK stops.
typedef mxp_status (*mxp_sens_checkpoint_fn)(void *ctx, const mxp_sens *s, mxp_err *err);

typedef struct mxp_sens_run {
    int batch;              // samples per forward/backward pass (B; < 1: 1)
    int want_fisher;        // also the fisher metric
    size_t cache_bytes;     // at most this many bytes of quantized weights kept (0: none)
    int progress;           // progress with ETA on stderr
    volatile int *stop;     // checked between rounds, and after each streamed segment with one rank (may be NULL)
    size_t stop_after;      // stop as *stop does once this many samples are done (0: never)
    size_t every;           // call checkpoint each time another `every` samples are done (0: never)
    mxp_sens_checkpoint_fn checkpoint;  // called on rank 0 only (may be NULL)
    void *ctx;
    const mxp_dist *dist;   // the processes sharing the samples (NULL: this one alone)
    int stream;             // run each batch segment by segment (runtime/exec.h, streaming) and
                            // release the model's mapped weights of each segment once used; the
                            // table is the same bit for bit
} mxp_sens_run;

// Accumulate n samples (seq: (n, seq_len+1) token windows) in batches of B. The batches are
// the same for any number of processes: in round r, rank q runs batch r*size + q; rank 0
// gathers every sample's terms and adds them in sample order, so the sums are the same bit
// for bit whether one process or many ran them. Only rank 0's s changes (the other ranks'
// tables stay as they were). A stop (*stop on any rank, or stop_after) is agreed on by all
// ranks between rounds: MXP_ERR_INTERRUPTED on every rank, with the whole rounds done so far
// in rank 0's table.
// qc: where the pass keeps quantized weights (MXP_QMODE_REAL copies, within
// run->cache_bytes) while it runs; it drops every MXP_QMODE_REAL copy of the ops before it
// returns. The table does not depend on what was kept.
mxp_status mxp_sens_accumulate(mxp_sens *s, mxp_model *m, mxp_qcache *qc, const int32_t *seq, size_t n,
                               const mxp_sens_run *run, mxp_err *err);

// Bytes of activations and buffers a pass over batches of `batch` samples allocates (the
// executor's values, saved statistics, gradients and scratch, and the hook's buffers; not the
// model, nor the cache of quantized weights): *in_memory for the whole graph at once,
// *streaming for run->stream (the kept segment inputs plus one segment's working set).
mxp_status mxp_sens_memory(const mxp_sens *s, const mxp_graph *g, int batch, int want_fisher, size_t *in_memory,
                           size_t *streaming, mxp_err *err);

// Mean over samples of metric `mt` for op i and format f (0 for f32).
double mxp_sens_mean(const mxp_sens *s, int op, mxp_format_id f, mxp_metric mt);
// Standard error of the taylor score over samples.
double mxp_sens_se(const mxp_sens *s, int op, mxp_format_id f);
// Index of format f in s->formats, 0 if absent (then it is not in the table).
int mxp_sens_has_format(const mxp_sens *s, mxp_format_id f);

#endif
