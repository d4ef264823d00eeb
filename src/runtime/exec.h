// exec.h: the executor. Runs a graph (all of it or any contiguous range of nodes) forward,
// and backward, in f32, on a batch of B sequences of T tokens.
//
// Memory: one (N, cols) buffer per node value (N = B*T), the tiles of weights stored in
// bf16/f16 the f32 products widen (a quarter of the largest such weight per thread, at most
// four threads; all of it when N exceeds its rows or columns), plus with MXP_EXEC_BACKWARD the
// saved statistics the backward needs (norm rstd/mean, attention probabilities) and a pool of
// gradient buffers: a node's gradient exists from the moment a consumer first writes it until
// the node's own backward has run, so only about a block's worth of gradients is alive at once. Parameter gradients are kept only with MXP_EXEC_PARAM_GRADS;
// otherwise a linear op's weight gradient is never formed by the executor: a hook receives
// the op's input and output gradient and forms what it needs (the sensitivity pass does).
//
// Streaming (mxp_exec_init_stream), for passes whose values would not fit in memory: the graph
// is cut at its cut nodes (method/partition.h: the nodes every path passes through, e.g. the
// residual adds of a transformer) into segments run one at a time. Only the cut values that a
// later segment reads (the segments' inputs) get buffers of their own; the values and saved
// statistics of every other node live in one arena that all segments share, so memory is the
// kept segment inputs plus the largest segment's working set, not the whole graph's. A pass
// then runs each segment forward in turn (each reads only its own nodes and the cut before it),
// and backward from the last segment to the first, running each segment's forward again from
// its kept input just before its backward (the last one's values are still there): only the
// nodes whose values or saved statistics the segment's backward reads, and what they need (in
// a transformer block all but the output projections, which only the residual adds read, and
// the adds; every linear op with MXP_EXEC_LINEAR_OUT). The gradient of a cut is a gradient
// like any other: it is alive from the moment the segment after it first writes it until its
// own segment's backward, so the sequence of kernel calls, and every value a hook sees, is that
// of mxp_exec_backward over the whole graph.
#ifndef MXP_EXEC_H
#define MXP_EXEC_H

#include "core/graph.h"
#include "runtime/qcache.h"

enum {
    MXP_EXEC_BACKWARD = 1,     // allocate what backward needs
    MXP_EXEC_PARAM_GRADS = 2,  // keep a gradient per parameter (implies BACKWARD)
    MXP_EXEC_KV_CACHE = 8,     // keep keys/values of past positions: mxp_exec_step (forward only)
    MXP_EXEC_WGRAD_SCRATCH = 4,// form each linear op's weight gradient in one reused scratch
                               // buffer and hand it to the hook (implies BACKWARD; memory: the
                               // largest weight once, not one gradient per parameter)
    MXP_EXEC_LINEAR_OUT = 16,  // the hook reads each linear op's output (mxp_linear_event.y); a
                               // streamed pass (mxp_exec_pass) then runs those ops again too
};

// What a hook sees of one LINEAR node during backward. The hook is called twice per node:
// phase MXP_HOOK_PRE once its output gradient is final, before it is propagated, and
// MXP_HOOK_POST after the op has added its share to the input gradient. So
// dx(POST) - dx(PRE) = dy @ W, the input gradient through this op alone.
// An EMBED node (quantizable too) is seen once, phase MXP_HOOK_EMBED, with its output
// gradient dy (N, C); x, dx and dw are NULL (the rows read are those of the batch's tokens).
enum { MXP_HOOK_PRE, MXP_HOOK_POST, MXP_HOOK_EMBED };
typedef struct mxp_linear_event {
    int node, phase;  // phase: MXP_HOOK_*
    const float *x;   // (N, I) the op's input
    const float *dy;  // (N, O) dLoss/d(output)
    const float *dx;  // (N, I) the gradient of the input node accumulated so far
    const float *dw;  // (O, I) dLoss/dW over the batch with MXP_EXEC_WGRAD_SCRATCH, else NULL
    const float *y;   // (N, O) the op's output with MXP_EXEC_LINEAR_OUT, else NULL
} mxp_linear_event;
// Pointers are valid only during the call.
typedef void (*mxp_linear_hook)(void *ctx, const mxp_linear_event *e);

typedef struct mxp_exec {
    const mxp_graph *g;
    int B, T, N;         // batch, sequence capacity, rows of a full pass (N = B*T)
    int Tq, pos0;        // the current pass: Tq tokens per sequence at positions pos0...
    unsigned flags;
    float **val;         // (n_nodes) -> (N, cols)
    float **grad;        // (n_nodes) -> (N, cols) while alive, else NULL (see mxp_exec_grad)
    float **pool;        // free gradient buffers (n_pool), pool_cols[k] = width of pool[k]
    int *pool_cols;
    int n_pool, cap_pool;
    float **aux;         // (n_nodes) -> saved statistics, or NULL
    float **pgrad;       // (n_params) -> (nelem), or NULL without PARAM_GRADS
    int32_t *tokens;     // (N) input token ids
    int32_t *targets;    // (N) next-token targets
    float *losses;       // (N) per-position cross-entropy, filled by mxp_exec_loss
    float *row_scale;    // (N) scratch for the loss gradient
    float *wscratch;     // (largest linear weight) with MXP_EXEC_WGRAD_SCRATCH, else NULL
    float *wtile;        // (wtile_floats) tiles of bf16/f16-stored weights widened for the f32
    size_t wtile_floats; // products (mxp_linear_scratch_floats); NULL / 0 for an f32 model
    float *att_scratch;  // (att_slots, T, T) attention work space, one matrix per thread
    int att_slots;
    // formats (mxp_exec_use_formats): linear ops whose node->fmt is not f32 read qc's copies
    mxp_qcache *qc;      // borrowed, or NULL: every op runs in f32
    mxp_qmode qmode;
    float *xq;           // (N, widest linear input) fake-quantized activations
    mxp_quant_scratch qs;// real-kernel scratch
    // KV cache (MXP_EXEC_KV_CACHE): per attention node, keys and values (B, T, kv width)
    float **kc, **vc;
    int cached;          // positions already in the cache
    // streaming (mxp_exec_init_stream), else NULL / 0
    int n_seg;           // segments, in graph order
    int *seg;            // (n_seg + 1) segment k is nodes [seg[k], seg[k + 1]); seg[n_seg] = n_nodes
    int *seg_of;         // (n_nodes) the segment of each node
    char *refwd;         // (n_nodes) 1: run again before its segment's backward (mxp_exec_pass)
    float *arena;        // (arena_floats) the values and saved statistics of one segment at a time
    size_t arena_floats;
} mxp_exec;

// Allocate everything for batches of B sequences of T tokens. T must not exceed the model's
// maximum positions (when it has one).
mxp_status mxp_exec_init(mxp_exec *ex, const mxp_graph *g, int B, int T, unsigned flags, mxp_err *err);
void mxp_exec_free(mxp_exec *ex);

// Streaming (see the top of this file): as mxp_exec_init (never with MXP_EXEC_KV_CACHE), with
// the graph cut at cuts[0 .. n_cuts) (ascending, the last the output: mxp_graph_cut_nodes).
// Only cuts[0 .. n_cuts-1) keep their values; mxp_exec_forward over segment k (ex->seg[k] ..
// ex->seg[k+1]) needs segment k-1's output and overwrites the values and saved statistics of
// whichever segment ran before; mxp_exec_backward over segment k needs segment k's values (its
// forward the last one run) and the gradients the later segments left.
mxp_status mxp_exec_init_stream(mxp_exec *ex, const mxp_graph *g, int B, int T, unsigned flags, const int *cuts,
                                int n_cuts, mxp_err *err);

// Bytes mxp_exec_init (cuts NULL) or mxp_exec_init_stream (cuts given) allocates for these
// arguments: values, saved statistics, the gradient pool, attention and weight-tile scratch
// (the KV cache and the buffers of mxp_exec_use_formats not counted). Allocates nothing but
// a few node-sized index arrays; SIZE_MAX if even those fail.
size_t mxp_exec_bytes(const mxp_graph *g, int B, int T, unsigned flags, const int *cuts, int n_cuts);

// Run linear ops in the formats of their graph slots (node->fmt), taking weight copies from
// qc (borrowed; prepared here, quantizing what is missing) in `mode`. Slots may later be
// changed to formats whose copies are already in qc (mxp_qcache_prepare), else call this
// again. Backward always uses the f32 weights (the parameters, tile by tile). Errors name the module.
mxp_status mxp_exec_use_formats(mxp_exec *ex, mxp_qcache *qc, mxp_qmode mode, mxp_err *err);

// KV-cache inference (MXP_EXEC_KV_CACHE): run n new tokens per sequence (tokens (B, n)) at
// positions cached .. cached+n-1; the logits of those positions are then in
// ex->val[n_nodes-1], rows (b*n + i). MXP_ERR_ARG if the cache would exceed T or an id is
// outside the vocabulary.
mxp_status mxp_exec_step(mxp_exec *ex, const int32_t *tokens, int n, mxp_err *err);
void mxp_exec_reset_cache(mxp_exec *ex);

// Copy the batch in: seq (B, T+1) token ids per sequence; inputs are seq[:, :T] and targets
// seq[:, 1:]. Ids outside [0, vocab) are an MXP_ERR_ARG naming the position.
mxp_status mxp_exec_set_batch(mxp_exec *ex, const int32_t *seq, mxp_err *err);

// Run nodes [first, last) forward. Values of nodes before `first` that the range reads must
// already be in ex->val (set them to run a sub-graph alone).
void mxp_exec_forward(mxp_exec *ex, int first, int last);

// Cross-entropy of the output (last node) against the targets: fills ex->losses (N) and
// returns the mean over all N positions. seq_loss (B), if not NULL, gets each sequence's mean.
double mxp_exec_loss(mxp_exec *ex, double *seq_loss);

// Drop every node gradient (back to the pool) and zero the parameter gradients when kept.
void mxp_exec_zero_grads(mxp_exec *ex);

// The gradient buffer of node i, (N, cols), created zeroed if it is not alive. Use it to seed
// the gradient flowing into a sub-graph before mxp_exec_backward on a range, or to read the
// gradient of a node before the range after it. The pool made at init holds what a full
// backward needs; beyond that a buffer is allocated, and NULL means that failed.
float *mxp_exec_grad(mxp_exec *ex, int node);

// Backward over nodes [first, last) in reverse. When last == n_nodes, the output gradient is
// seeded from the cross-entropy with weight `loss_scale` per position (1/N: the mean loss;
// 1/T: the sum over sequences of each sequence's mean loss); otherwise the caller has set
// mxp_exec_grad(ex, last-1) (and any other gradient flowing into the range). Gradients
// accumulate: call mxp_exec_zero_grads first. The gradients of nodes in the range are dropped
// once used; those of nodes before `first` stay readable. hook may be NULL.
// MXP_ERR_NOMEM if a gradient buffer beyond the pool could not be allocated (not after
// mxp_exec_zero_grads and a full range); the gradients are then incomplete.
mxp_status mxp_exec_backward(mxp_exec *ex, int first, int last, float loss_scale, mxp_linear_hook hook, void *ctx,
                             mxp_err *err);

// A whole training-style pass over the batch (mxp_exec_pass). Called with nodes [first, last)
// of one segment (the whole graph when the executor is not streaming): after the segment's
// forward (backward = 0; every segment but the last, whose backward follows at once) and after
// its backward (backward = 1). A non-OK return ends the pass with that status; *err is then the
// callback's to fill. Streaming callers release the segment's mapped weights here
// (mxp_model_release_nodes); a hook that cannot return an error reports it here.
typedef mxp_status (*mxp_segment_done)(void *ctx, int first, int last, int backward, mxp_err *err);

// One pass over the batch set by mxp_exec_set_batch: forward over the whole graph, the
// cross-entropy (each sequence's mean loss to seq_loss (B) when not NULL, the mean over all
// positions to *loss when not NULL), mxp_exec_zero_grads, then backward seeded with
// `loss_scale` per position (mxp_exec_backward), calling hook(ctx, ...) on the linear and
// embedding ops and done(ctx, ...) after each segment. Streaming (ex->n_seg > 0; see the top of
// this file): each segment forward in turn, keeping only the segment inputs; then from the last
// segment to the first, the segment's forward again from its kept input (what its backward
// reads: ex->refwd) and its backward. The kernel calls, on the same values in the same order,
// are those of the whole-graph pass (the
// gradient of each cut, the residual skip's share included, is complete when its segment's
// backward starts: only the segment after it reads it), so the hook, the parameter gradients
// and the loss are the same bit for bit. hook and done may be NULL. Returns MXP_ERR_NOMEM from
// the backward, or done's status.
mxp_status mxp_exec_pass(mxp_exec *ex, float loss_scale, double *seq_loss, double *loss, mxp_linear_hook hook,
                         mxp_segment_done done, void *ctx, mxp_err *err);

#endif
