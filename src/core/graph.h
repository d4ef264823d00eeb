// graph.h: the one model graph every feature of mixprec walks (forward, backward,
// sensitivity, partition, profiling, evaluation).
//
// A graph is a list of nodes in topological order. Node i produces value i, a row-major
// (N, cols) f32 activation with N = B*T token rows. Inputs name earlier nodes only. The token
// ids are the graph's external input (read by MXP_OP_EMBED); the last node is the output
// (the logits). Parameters (weights) live in the graph's parameter table; a node points at
// them by index. Each quantizable node (MXP_OP_LINEAR, MXP_OP_EMBED) carries its Hugging Face
// module name and a format slot. A plan op is the last quantizable node reading its weight: a
// weight read by several nodes (a head tied to the token embedding) is one choice, one stored
// tensor, held in the slot of its op node (the head "lm_head"); the other nodes (the
// embedding) run in that op's format (mxp_graph_format).
//
// The graph owns its nodes, names, parameter table and derived constants (RoPE frequencies).
// Parameter data is owned by the model (mxp_model) that built the graph; see model.h.
//
// Stored types. A parameter keeps the type its file stores it in: f32, or for the weights of
// the quantizable nodes bf16 / f16 or a GGUF block format of the format table (q8_0, q4_K,
// ...), used in place from the file's read-only mapping: a bf16 model costs its file size, not
// twice it, a q8_0 GGUF a quarter of its f32 size. Only an f32 parameter has `data`; every
// reader of another goes through one accessor, mxp_param_widen (mxp_param_rows: whole rows, no
// copy for f32), which widens the rows (and columns) it is asked for into the caller's f32
// buffer, so that no whole f32 copy of such a weight is made. Widening is exact (bf16 and f16
// to f32 without rounding; a block format through its dequantizer, the f32 values a load
// converting the file would have made): a reader that widens the values it would have read
// from an f32 copy and does the same arithmetic on them gets the same bits.
#ifndef MXP_GRAPH_H
#define MXP_GRAPH_H

#include "core/base.h"

typedef enum mxp_op {
    MXP_OP_EMBED,      // tokens -> (N, C): rows of w (V, C). Quantizable: the rows in the format.
    MXP_OP_POSEMBED,   // in[0] (N, C) + w[pos]          (learned positions)
    MXP_OP_RMSNORM,    // in[0] (N, C), w (C), eps
    MXP_OP_LAYERNORM,  // in[0] (N, C), w (C), b (C), eps
    MXP_OP_LINEAR,     // in[0] (N, I) -> (N, O), w (O, I), optional b (O). Quantizable.
    MXP_OP_SLICE,      // in[0] (N, Cin) -> columns [slice_off, slice_off + cols)
    MXP_OP_ROPE,       // in[0] (N, heads*head_dim), rotary embedding
    MXP_OP_ATTENTION,  // in[0] q (N, H*D), in[1] k, in[2] v (N, Hkv*D) -> (N, H*D)
    MXP_OP_SWIGLU,     // in[0] gate, in[1] up -> silu(gate) * up
    MXP_OP_GELU,       // in[0] -> gelu_tanh(in[0])
    MXP_OP_ADD,        // in[0] + in[1]
    MXP_OP_COUNT
} mxp_op;

const char *mxp_op_name(mxp_op op);

#define MXP_MAX_NODE_INPUTS 3

typedef struct mxp_param {
    char *name;              // Hugging Face tensor name, e.g. "model.layers.0.self_attn.q_proj.weight"
    int ndim;                // 1 or 2
    int64_t shape[2];        // compute layout: linear weights (O, I); vectors (n)
    size_t nelem;
    int stored;              // the type the values are kept in, an mxp_format_id: MXP_FMT_F32 (0),
                             // or (then ndim is 2) a format without a row prefix: bf16, f16 or
                             // a block format, rows of mxp_row_bytes bytes
    const float *data;       // stored f32: (nelem) values in compute layout, owned by the model (may
                             // borrow an f32 mapping); otherwise NULL: read through mxp_param_widen
    const void *raw;         // the stored values: `data` for f32; else mxp_param_stored_bytes bytes
                             // in the stored format, 2-byte aligned, borrowed from the file's
                             // mapping or owned by the model
    int row_heads;           // > 0 (not f32): rows are stored in llama.cpp's rotary order
                             // (GGUF q/k): stored row h*hd + 2i + j holds compute row
                             // h*hd + j*hd/2 + i for row_heads heads of hd rows; the accessor maps them
    int file_transposed;     // 1 if the file stores the transpose (GPT-2 Conv1D: (I, O))
} mxp_param;

typedef struct mxp_node {
    mxp_op op;
    int n_in;
    int in[MXP_MAX_NODE_INPUTS];   // producing node indices, each < this node's index
    int cols;                      // output is (N, cols)
    int has_w, has_b;
    int w, b;                      // parameter indices (valid when has_w / has_b)
    char *name;                    // quantizable: HF module name (owned); others: NULL
    int fmt;                       // quantizable: format slot, an mxp_format_id (0 = f32 reference)
    // attributes
    float eps;                     // norms
    int heads, kv_heads, head_dim; // ROPE (heads = heads of this tensor), ATTENTION
    int window;                    // ATTENTION: sliding window (keys with i - j >= window are
                                   // masked), 0: none
    int slice_off;                 // SLICE
    const float *inv_freq;         // ROPE: (head_dim/2), owned by the graph
} mxp_node;

typedef struct mxp_graph {
    mxp_node *nodes;   // (n_nodes), topological
    int n_nodes, cap_nodes;
    mxp_param *params; // (n_params)
    int n_params, cap_params;
    float **owned;     // derived constants to free (RoPE tables)
    int n_owned, cap_owned;
    int vocab;         // token ids must lie in [0, vocab)
    int max_pos;       // longest sequence the model supports (0: no limit)
} mxp_graph;

void mxp_graph_free(mxp_graph *g);

// Builders' API. Each appends and writes the new index to *index (allocation failure only).
// add_node copies *proto (and duplicates proto->name).
mxp_status mxp_graph_add_param(mxp_graph *g, const char *name, int ndim, const int64_t *shape,
                               const float *data, int file_transposed, int *index, mxp_err *err);
// Same for a 2-D weight kept in another format (`stored`: bf16, f16 or a block format without a
// row prefix whose block divides shape[1]): raw holds its rows (compute layout, but for the row
// order row_heads > 0 names), 2-byte aligned.
mxp_status mxp_graph_add_param_stored(mxp_graph *g, const char *name, const int64_t *shape, int stored,
                                      const void *raw, int row_heads, int file_transposed, int *index,
                                      mxp_err *err);

// ---- reading parameter values: the one accessor ----
// Columns of a parameter's rows: shape[1] (2-D) or shape[0] (a vector: one row).
int64_t mxp_param_cols(const mxp_param *p);
// Bytes of the stored values (raw).
size_t mxp_param_stored_bytes(const mxp_param *p);
// Rows [r0, r0 + nr) and, of each, columns [c0, c0 + nc) of p (compute layout) as f32: row k
// of the block goes to out + k * ld (ld >= nc). Exact (bf16 and f16 widen without rounding; a
// block format is dequantized, a block cut by c0 or c0 + nc through a buffer of one block; f32
// is copied). Serial; callers split big blocks between threads.
void mxp_param_widen(const mxp_param *p, int64_t r0, int64_t nr, int64_t c0, int64_t nc, float *out, int64_t ld);
// Whole rows [r0, r0 + nr) as f32: p->data + r0 * cols itself when p is stored in f32 (no copy),
// else widened into buf (nr * cols floats), which is returned.
const float *mxp_param_rows(const mxp_param *p, int64_t r0, int64_t nr, float *buf);
mxp_status mxp_graph_add_node(mxp_graph *g, const mxp_node *proto, int *index, mxp_err *err);
// Keep `p` alive until the graph is freed (takes ownership).
mxp_status mxp_graph_own(mxp_graph *g, float *p, mxp_err *err);

// Check structural invariants (topological inputs, shapes agree between ops). Returns
// MXP_ERR_FORMAT naming the node on failure: builders call it before handing a graph out.
mxp_status mxp_graph_validate(const mxp_graph *g, mxp_err *err);

// Quantizable node: one that reads a weight matrix in a format (LINEAR, EMBED).
int mxp_node_quantizable(const mxp_node *n);
// The plan op that decides node i's format: the last quantizable node reading node i's weight
// (i itself unless the weight is shared); -1 when node i is not quantizable.
int mxp_graph_op_of(const mxp_graph *g, int i);
// Node i is a plan op (quantizable, and no later node reads its weight).
int mxp_graph_is_op(const mxp_graph *g, int i);
int mxp_graph_n_ops(const mxp_graph *g);
// The format node i runs in: its op's slot (f32 for nodes that are not quantizable).
int mxp_graph_format(const mxp_graph *g, int i);
// The shared weight's other reader of op i (the tied embedding of a head), -1 if none.
int mxp_graph_tied_node(const mxp_graph *g, int i);

// Find a plan op by module name: 1 and *index set if found, 0 if not.
int mxp_graph_find_op(const mxp_graph *g, const char *module, int *index);

// Multiply-accumulates of one forward pass for a batch of B sequences of T tokens.
double mxp_graph_macs(const mxp_graph *g, int B, int T);

#endif
