// ggml_graph.h: mixprec's graph run by ggml's CPU backend, the engine llama.cpp runs.
//
// Two parts:
//  - mxp_ggml: the CPU backend as llama.cpp loads it: the best libggml-cpu-<variant>.so for
//    this CPU from ggml's backend folder (ggml_backend_load_all_from_path), a thread pool of
//    llama.cpp's default size (common_cpu_get_num_math: the physical cores), and the extra
//    buffer types the backend offers (CPU_REPACK: weights repacked for its fastest matrix
//    kernels), used for a weight exactly when llama.cpp's loader would use them.
//  - mxp_ggml_sub: a contiguous node range [first, last) of an mxp_graph translated to a ggml
//    graph with the ops llama.cpp's graph builds for these architectures (llm_build_llama,
//    llm_build_qwen2, llm_build_gpt2 in llama.cpp's src/models):
//      EMBED      get_rows(token_embd, tokens)
//      POSEMBED   add(x, get_rows(position_embd, positions))
//      RMSNORM    mul(rms_norm(x, eps), w)
//      LAYERNORM  add(mul(norm(x, eps), w), b)
//      LINEAR     mul_mat(W in the ggml type of the node's format slot, x) [+ add(b)]
//      SLICE      a view
//      ROPE       rope_ext, NEOX rotation (Hugging Face rotate_half; the weights are in Hugging
//                 Face row order), freq_factors when the node's frequencies are not a plain
//                 power law (llama3 scaling)
//      ATTENTION  the new keys and values copied into a KV cache (f16 as llama.cpp's default,
//                 or f32), then flash_attn_ext over the cached positions with a causal (and
//                 sliding-window) f16 mask: llama.cpp resolves flash_attn=auto to on for the
//                 CPU backend
//      SWIGLU     swiglu_split(gate, up)        GELU  gelu (ggml's tanh form)     ADD  add
//    The range's state comes from an mxp_exec (borrowed at init, copied): the values of nodes
//    before `first` that the range reads, the tokens, the pass (B sequences of Tq tokens at
//    positions pos0...) and, for a pass after cached positions, the keys and values of those
//    positions. Weights are copied into ggml buffers at init (quantized ones from the qcache,
//    which holds ggml's bytes), so compute touches nothing of mixprec's.
//
// Must not: change the graph, the exec or the qcache's contents (it may add copies to qc).
#ifndef MXP_GGML_GRAPH_H
#define MXP_GGML_GRAPH_H

#include "runtime/exec.h"
#include "runtime/qcache.h"

struct ggml_backend;
struct ggml_backend_device;
struct ggml_backend_buffer_type;
struct ggml_threadpool;

typedef struct mxp_ggml {
    struct ggml_backend *be;                     // the CPU backend (owned)
    struct ggml_backend_device *dev;             // its device (the registry's)
    struct ggml_backend_buffer_type *extra[8];   // extra buffer types, in llama.cpp's order
    int n_extra;
    struct ggml_threadpool *tp;                  // owned
    void (*tp_free)(struct ggml_threadpool *);
    int threads;
    struct ggml_context *wake_ctx;               // a one-op graph that wakes the pool (owned)
    struct ggml_backend_buffer *wake_buf;
    struct ggml_cgraph *wake_gf;
    char variant[64];    // the CPU library loaded, e.g. "zen4" (libggml-cpu-zen4.so)
    char features[512];  // the backend's feature list ("AVX2 AVX512 ...")
} mxp_ggml;

// The number of threads llama.cpp (llama-bench, llama-cli) uses by default on this machine:
// common_cpu_get_num_math(), on x86 Linux the physical cores (distinct thread_siblings).
int mxp_ggml_default_threads(void);

// Load the CPU backend (once per process; from $MXP_GGML_BACKEND_DIR, else the folder fixed at
// build time) and start it with `threads` threads (0: mxp_ggml_default_threads()). Errors
// name the folder; after an error mxp_ggml_free releases what was made. no_extra: keep every
// weight in plain CPU memory (no repacking).
mxp_status mxp_ggml_init(mxp_ggml *gg, int threads, int no_extra, mxp_err *err);
void mxp_ggml_free(mxp_ggml *gg);
// Compute a one-op graph on every thread of the pool, so that its workers are awake (polling for
// work, as between llama.cpp's tokens) when the next graph starts rather than asleep after the
// cache flush that precedes a timed run.
void mxp_ggml_wake(mxp_ggml *gg);

// Flags of mxp_ggml_sub_init. Without any, the graph is llama.cpp's: an f16 KV cache, and after
// the last attention block's output projection only the rows whose logits are wanted go on
// (get_rows: the last position of each sequence, as llama_batch_get_one asks for), so the last
// MLP, the final norm and the head run on B rows, not B*Tq.
enum {
    MXP_GGML_KV_F32 = 1,    // KV cache in f32 (tests: the executor's numerics)
    MXP_GGML_ALL_ROWS = 2,  // every position goes through to the logits (as for a loss)
};

// llama.cpp's output cut: the output projection of the last attention (the LINEAR reading the
// last ATTENTION node), after which only the output rows go on; -1 when there is no attention.
int mxp_ggml_output_cut(const mxp_graph *g);

typedef struct mxp_ggml_sub {
    int first, last;
    struct ggml_context *ctx_w, *ctx_x, *ctx_in, *ctx_g;  // weights (CPU, extra), inputs, graph
    struct ggml_backend_buffer *buf_w, *buf_x, *buf_in;
    struct ggml_gallocr *galloc;
    struct ggml_cgraph *gf;
    struct ggml_tensor *out;          // (cols of node last-1, rows)
    int rows;                         // rows of the output: N, or B when only the last
                                      // position of each sequence is output (see flags)
    struct ggml_tensor **inputs;      // tensors holding data read by the graph (n_inputs)
    int n_inputs;
    struct ggml_backend *be;          // borrowed from the mxp_ggml
    size_t weight_bytes;              // bytes of the weights copied in
    // inputs a decode loop rewrites (mxp_ggml_sub_decode); NULL when the range has none
    struct ggml_tensor *tokens, *pos, *mask;
    int mask_window;                  // sliding window of the attention that made the mask (0: none)
    struct ggml_tensor **kv;          // (n_kv) the K and V cache of each attention, in pairs
    int n_kv;
} mxp_ggml_sub;

// Translate nodes [first, last) of ex->g with every LINEAR in the format of its slot (node->fmt)
// for ex's current pass; flags: MXP_GGML_* above. Copies of quantized weights are made in qc (MXP_QMODE_REAL) when
// missing. Errors: a format without a ggml type (f8_e4m3) or anything ggml cannot run
// (MXP_ERR_UNSUPPORTED, naming the node), MXP_ERR_NOMEM.
mxp_status mxp_ggml_sub_init(mxp_ggml_sub *s, mxp_ggml *gg, const mxp_exec *ex, mxp_qcache *qc, int first, int last,
                             unsigned flags, mxp_err *err);
// Run the graph (ggml_backend_graph_compute, nothing else). MXP_ERR_UNSUPPORTED if ggml fails.
mxp_status mxp_ggml_sub_compute(mxp_ggml_sub *s, mxp_err *err);
// Read every input tensor once (cache preparation before a timed run); returns a sum.
float mxp_ggml_sub_touch(const mxp_ggml_sub *s);
// Evict the weights (both buffers) from every cache level (mxp_evict), so that the next run
// reads them from memory.
void mxp_ggml_sub_evict(const mxp_ggml_sub *s);
// Copy the output (value of node last-1) to y (s->rows, cols), row-major like exec values: all
// N rows, or row b*Tq + Tq-1 of each sequence b.
void mxp_ggml_sub_output(const mxp_ggml_sub *s, float *y);
void mxp_ggml_sub_free(mxp_ggml_sub *s);

// Token-by-token decoding on one graph, as llama.cpp's decode loop does with its KV cache: s is
// the whole model (nodes [0, n_nodes), flags without MXP_GGML_ALL_ROWS) built for B = 1, Tq = 1
// at pos0 = Tk - 1, so its cache holds Tk slots. One step runs `token` at position p (0 <= p <
// Tk) with slots 0..p-1 as its context: the token's keys and values are computed into slot
// Tk - 1 (the graph's fixed write slot), the mask admits slots 0..p-1 and Tk - 1, and after
// the compute they are moved to slot p. Attention does not depend on the order of the cached
// slots, so this is the same computation as a graph built for position p. The logits are
// then mxp_ggml_sub_output's single row. MXP_ERR_ARG for p out of range or a graph not built
// this way; MXP_ERR_UNSUPPORTED if ggml fails.
mxp_status mxp_ggml_sub_decode(mxp_ggml_sub *s, int32_t token, int p, mxp_err *err);

#endif
