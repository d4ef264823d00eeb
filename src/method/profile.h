// profile.h: the hardware-aware time gain of docs/DESIGN.md 1.2, internal side. The public entry
// point is mxp_profile (include/mixprec.h); this header is what its parts share:
//  - profile.c       configuration spaces, the measurement loop, the whole-model check, the
//                    native timer (mixprec's executor)
//  - profile_ggml.c  the ggml timer (ggml's CPU backend, the engine llama.cpp runs)
//  - profile_json.c  the latency table as JSON (docs/FILES.md), its cache, reading it back
//
// A *configuration* of a sub-graph gives a format to each of its quantizable ops. Ops tied by
// the user (module names ending in members of one --tie list, inside one sub-graph) form one
// group and share a format; a group may take a candidate format only if every op in it can
// (width a multiple of the format's block). Configuration j is a mixed-radix number over
// the groups (the first group varies slowest), choice 0 of every group being the reference
// (f32), so j = 0 is the reference configuration.
//
// Measurement classes: sub-graphs with the same partition signature and the same grouping
// share one measurement, made on the first of them (the representative).
#ifndef MXP_PROFILE_H
#define MXP_PROFILE_H

#include <cJSON.h>

#include "arch/model.h"
#include "method/partition.h"
#include "quant/format.h"
#include "runtime/exec.h"
#include "runtime/ggml_graph.h"

typedef struct mxp_workload {
    int decode;   // 0: prefill of `tokens` tokens; 1: one token after `tokens` cached ones
    int tokens;
    int batch;
} mxp_workload;

// Parse "prefill:T" / "decode:L" (T >= 1, L >= 1; the positions used must fit max_pos when
// the model has a maximum). Errors name the argument.
mxp_status mxp_workload_parse(const char *s, int batch, int max_pos, mxp_workload *w, mxp_err *err);

typedef struct mxp_sg_space {
    int n_ops;
    int n_groups;
    int *group_of;           // (n_ops) group of each op; owned
    int *n_choices;          // (n_groups); owned
    mxp_format_id *choices;  // (n_groups * MXP_FMT_COUNT): choices of group q at [q * MXP_FMT_COUNT]
    int n_configs;           // product of n_choices (1 when the sub-graph has no ops)
} mxp_sg_space;

// Formats of the ops of configuration j (fmts: n_ops).
void mxp_sg_config_formats(const mxp_sg_space *s, int j, mxp_format_id *fmts);

typedef struct mxp_cfg_stat {
    double time_s;    // ref_time_s - gain_s
    double spread_s;  // (p90 - p10) / 2 of this configuration's own runs
    double gain_s;    // median over interleaved rounds of (reference run - configuration run)
    double ci_s;      // half-width of the 95% confidence interval of gain_s
    int repeats;      // rounds (each: one reference run and one configuration run)
    int capped;       // 1: stopped by the time cap before the CI reached its target
} mxp_cfg_stat;

typedef struct mxp_class_meas {
    int rep;              // representative sub-graph
    double ref_time_s;    // median of every reference run of the class
    double ref_spread_s;  // (p90 - p10) / 2 of those runs
    int ref_runs;
    mxp_cfg_stat *cfg;    // (n_configs) owned; cfg[0] is the reference (gain 0)
} mxp_class_meas;

// A distinct linear op shape: its ops are timed alone for the per-op and MAC predictors.
typedef struct mxp_op_shape {
    int O, I, has_b;
    int rep;                          // first linear node with this shape
    double macs;                      // per pass under the workload
    int ok[MXP_FMT_COUNT];            // the format can hold this width (and is a candidate)
    mxp_cfg_stat st[MXP_FMT_COUNT];   // time_s / gain_s vs f32 ([MXP_FMT_F32]: the reference)
} mxp_op_shape;

typedef struct mxp_check_row {
    int *cfg;                 // (n sub-graphs) configuration index per sub-graph; owned
    double measured_s, ci_s;  // end-to-end gain vs the reference, and its 95% CI half-width
    double ref_s;             // end-to-end reference time (median of this row's reference runs)
    int repeats;
    double pred_subgraph_s, pred_op_s, pred_mac_s;
} mxp_check_row;

typedef struct mxp_profile_table {
    mxp_workload wl;
    int n_formats;
    mxp_format_id formats[MXP_FMT_COUNT];  // candidates, formats[0] = MXP_FMT_F32
    int n_ties;
    char **ties;                           // (n_ties) comma lists, owned copies
    mxp_partition part;
    mxp_sg_space *space;                   // (part.n) per sub-graph
    int *cls;                              // (part.n) measurement class of each sub-graph
    int n_cls;
    mxp_class_meas *meas;                  // (n_cls)
    int n_shapes;
    mxp_op_shape *shapes;                  // (n_shapes)
    int *shape_of;                         // (n_nodes): shape of each linear node (others 0, unused)
    double rate[MXP_FMT_COUNT];            // MAC/s per format: best over the op shapes
    // how it was measured
    double rel_ci, budget_s, seconds;      // target CI fraction, budget, wall time spent
    size_t flush_max;                      // bytes read before each timed run at most
    char pinning[160];                     // how threads were placed
    char cpu[320];                         // CPU model and thread count
    char blas[256];                        // OpenBLAS build description
    const char *isa;                       // kernel set: "avx2" or "ref" (static string)
    int threads;                           // threads of the timed engine (OpenMP / ggml's pool)
    const char *backend;                   // "ggml" or "native" (static string)
    char engine[640];                      // what ran the graphs: ggml's version, commit, CPU
                                           // variant and features; or mixprec's kernels
    size_t llc_bytes;                      // last-level cache size as the system reports it
    int from_cache;                        // measurements read from a cached table
    double load_start, load_end;           // 1-minute load averages
    int n_check;
    mxp_check_row *check;                  // (n_check) owned
    double e2e_ref_s;                      // median end-to-end reference time over the check
} mxp_profile_table;

void mxp_profile_table_free(mxp_profile_table *t);

// What runs the graphs, in words (the table's machine.engine): ggml's version, commit, CPU
// variant, features and threads for gg; mixprec's executor, kernels, BLAS and threads for NULL.
void mxp_engine_describe(const mxp_ggml *gg, char *buf, size_t cap);

// Build partition, spaces, classes and op shapes for g (no measurement). Ties: n_ties comma
// lists. Errors: a tie list that matches no op (names it), MXP_ERR_NOMEM.
mxp_status mxp_profile_table_init(mxp_profile_table *t, const mxp_graph *g, const mxp_workload *wl,
                                  const mxp_format_id *formats, int n_formats, const char *const *ties, int n_ties,
                                  mxp_err *err);

// Weight bytes saved by configuration j of sub-graph k vs f32 (exact byte counts).
double mxp_profile_mem_gain(const mxp_profile_table *t, const mxp_graph *g, int k, int j);
// Theoretical gain of configuration j of sub-graph k from MACs and t->rate (seconds).
double mxp_profile_mac_gain(const mxp_profile_table *t, const mxp_graph *g, int k, int j);

// ---- timers: what runs a node range of the model (the seam between the measurement loop and
// an engine) ----
// A timer runs nodes [first, last) of the model's graph in the formats of the graph's slots, on
// the activations of the workload (an mxp_exec that has run the reference model once). Two
// implementations: native (mixprec's executor in real mode, profile.c) and ggml (ggml's CPU
// backend, profile_ggml.c).
typedef struct mxp_timer mxp_timer;
struct mxp_timer {
    // Make [first, last) runnable with the slots as they are now: quantize, build (untimed).
    // Errors name the op or the format.
    mxp_status (*ready)(mxp_timer *tm, int first, int last, mxp_err *err);
    // Read the range's inputs from outside it once (cache preparation); returns a sum.
    float (*touch)(mxp_timer *tm, int first, int last);
    // Evict the range's weights, in the formats it runs, from every cache level.
    void (*evict)(mxp_timer *tm, int first, int last);
    // Run the range once (after ready for the same range and slots); seconds of the compute alone.
    double (*run)(mxp_timer *tm, int first, int last);
    void (*free)(mxp_timer *tm);
};

// The ggml timer: ranges translated by mxp_ggml_sub_init as llama.cpp builds them (f16 KV cache,
// the logits of the last position of each sequence only), the two
// most recently used translations kept (a configuration and its reference). gg, ex and qc are
// borrowed and must outlive it. Errors: MXP_ERR_NOMEM.
mxp_status mxp_timer_ggml_new(mxp_ggml *gg, const mxp_exec *ex, mxp_qcache *qc, mxp_timer **out, mxp_err *err);

// ---- profile_json.c ----
// Key of the cache: machine, backend and engine (ggml version, commit, CPU variant and features;
// or kernels and BLAS), threads, workload, formats, ties, the partition's
// signatures and op names, and the measurement settings. "fnv1a64:<hex>".
void mxp_profile_cache_key(const mxp_profile_table *t, const mxp_graph *g, char out[32]);
// The latency table (docs/FILES.md). provenance is adopted (deleted with the result).
cJSON *mxp_profile_to_json(const mxp_profile_table *t, const mxp_graph *g, cJSON *provenance, const char *cache_key);
// Fill t's measurements from a table written by mxp_profile_to_json for the same key.
// Any mismatch (key, counts, names, formats) is MXP_ERR_FORMAT naming `label`.
mxp_status mxp_profile_from_json(mxp_profile_table *t, const mxp_graph *g, const cJSON *j, const char *cache_key,
                                 const char *label, mxp_err *err);

// llama.cpp's measured gain (llama-bench, `threads` threads) of every check row of t and of every
// uniform candidate format, into res->llama and res->llama_mae_* (profile_llama.c). t must hold
// the whole-model check. The GGUFs go to a private folder under $TMPDIR, removed on return.
mxp_status mxp_profile_check_llama(const mxp_model *m, const mxp_profile_table *t, const char *bench, int threads,
                                   mxp_profile_result *res, mxp_err *err);

#endif
