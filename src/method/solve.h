// solve.h: the integer program of docs/DESIGN.md 1.3 (a multiple-choice knapsack) and the problem
// it is built from.
//
// Two layers:
//  - mxp_mckp / mxp_mckp_solve (solve.c, the only file that includes glpk.h): groups (one per
//    sequential sub-graph), each with configurations carrying a gain, a loss (predicted loss
//    MSE, sum of the sensitivities of the group's ops) and weight bytes. Pick exactly one
//    configuration per group to maximise the total gain subject to loss <= tau (and optional
//    bytes <= B, gain >= G), or, the dual, minimise the loss subject to gain >= G and/or
//    bytes <= B. Dominance pruning runs first; the MIP is solved exactly by GLPK branch and
//    cut (glp_intopt with presolve); status and gap come back with the choice.
//  - mxp_solve_problem (solve_io.c): sens.json + latency.json (docs/FILES.md) read into named
//    groups of ops with per-configuration formats, after --force/--forbid and the latency
//    table's ties have removed configurations; plan JSON / llama.cpp tensor-type file / CSV
//    writers for a choice.
#ifndef MXP_SOLVE_H
#define MXP_SOLVE_H

#include <cJSON.h>

#include "core/base.h"
#include "quant/format.h"

// ---- the integer program ----

typedef struct mxp_mckp {
    int n_groups;
    const int *start;      // (n_groups + 1): group g owns configurations [start[g], start[g+1])
    const double *gain;    // (n_cfg) what the objective maximises (seconds, bytes or MACs)
    const double *loss;    // (n_cfg) predicted loss MSE, >= 0
    const double *bytes;   // (n_cfg) weight bytes; may be NULL when no bytes budget is set
} mxp_mckp;

typedef enum mxp_solve_sense {
    MXP_SOLVE_MAX_GAIN,    // maximise gain (needs has_max_loss or other constraints)
    MXP_SOLVE_MIN_LOSS,    // minimise loss (the dual)
} mxp_solve_sense;

typedef struct mxp_mckp_opts {
    mxp_solve_sense sense;
    int has_max_loss;  double max_loss;    // sum loss <= max_loss
    int has_min_gain;  double min_gain;    // sum gain >= min_gain
    int has_max_bytes; double max_bytes;   // sum bytes <= max_bytes
    int no_prune;                          // 1: skip dominance pruning (tests)
    double time_limit_s;                   // 0: 60 s
    double mip_gap;                        // relative gap at which GLPK may stop (0: exact)
} mxp_mckp_opts;

typedef enum mxp_solve_status {
    MXP_SOLVE_OPTIMAL,     // proven optimal (within mip_gap when it is > 0)
    MXP_SOLVE_FEASIBLE,    // time limit: a feasible plan, gap reported
    MXP_SOLVE_INFEASIBLE,  // no choice satisfies the constraints
} mxp_solve_status;

const char *mxp_solve_status_name(mxp_solve_status s);  // "optimal", "feasible", "infeasible"

typedef struct mxp_mckp_result {
    mxp_solve_status status;
    int *choice;        // (n_groups) chosen configuration index (global, in [start[g], start[g+1])),
                        // owned; NULL when infeasible
    double gain, loss, bytes;  // totals of the choice
    double bound;       // best bound on the objective GLPK proved (gain or loss)
    double gap;         // |objective - bound| / (|objective| + 1e-300); 0 when proven optimal
    double seconds;     // wall time of pruning + solve
    int n_cfg, n_kept;  // configurations before and after pruning
} mxp_mckp_result;

// Solve. r->choice is allocated (free with mxp_mckp_result_free). Returns MXP_OK also when the
// problem is infeasible (r->status says so); errors: MXP_ERR_ARG (bad sizes, non-finite
// numbers, negative loss), MXP_ERR_NOMEM, MXP_ERR_UNSUPPORTED (GLPK failed).
mxp_status mxp_mckp_solve(const mxp_mckp *p, const mxp_mckp_opts *o, mxp_mckp_result *r, mxp_err *err);
void mxp_mckp_result_free(mxp_mckp_result *r);

// Dominance pruning: keep[j] = 0 for every configuration j that another configuration k of
// the same group beats or equals on every criterion (gain >=, loss <=, and bytes <= when
// use_bytes); of exactly equal configurations the first is kept. Returns how many are kept.
int mxp_mckp_prune(const mxp_mckp *p, int use_bytes, unsigned char *keep /*(n_cfg)*/);

// ---- the problem from sens.json + latency.json ----

typedef enum mxp_objective { MXP_OBJ_TIME, MXP_OBJ_MEMORY, MXP_OBJ_MAC, MXP_OBJ_COUNT } mxp_objective;
mxp_status mxp_objective_parse(const char *s, mxp_objective *out, mxp_err *err);
const char *mxp_objective_name(mxp_objective o);

typedef struct mxp_solve_op {
    char *name;                     // module name (owned)
    int64_t in, out;                // weight (out, in)
    double s[MXP_FMT_COUNT];        // sensitivity per format
    unsigned char has[MXP_FMT_COUNT];  // format allowed (present in the sens map)
} mxp_solve_op;

typedef struct mxp_solve_problem {
    int n_ops;
    mxp_solve_op *ops;              // (n_ops) every op of the sensitivity table
    int *by_name;                   // (n_ops) op indices in name order (lookups)
    int n_groups;
    int *group_id;                  // (n_groups) sub-graph id from latency.json (profiled only)
    unsigned char *profiled;        // (n_groups) 0: an op the latency table does not list, in a
                                    // group of its own (time and MAC gains 0, memory computed)
    int *gstart;                    // (n_groups + 1) configurations of group g
    int *gops_start;                // (n_groups + 1) ops of group g: gops[gops_start[g] ..]
    int *gops;                      // op indices
    int n_cfg;
    unsigned char *cfg_fmt;         // (sum over configs of the group's op count) format ids:
                                    // config c's formats start at cfg_fmt_off[c]
    int *cfg_fmt_off;               // (n_cfg)
    double *gain[MXP_OBJ_COUNT];    // (n_cfg) each: time_s, memory bytes saved, MACs
    double *loss, *bytes;           // (n_cfg)
    int n_dropped_input;            // configurations dropped: format not allowed by sens
    int n_dropped_user;             // dropped by --force/--forbid/ties
    cJSON *sens_prov, *lat_prov;    // copies of the input files' provenance (may be NULL)
    char sens_hash[32], lat_hash[32];
} mxp_solve_problem;

typedef struct mxp_solve_filter {
    const char *const *force;  int n_force;    // "GLOB=FMT": ops matching GLOB must take FMT
    const char *const *forbid; int n_forbid;   // "GLOB=FMT": ops matching GLOB must not take FMT
} mxp_solve_filter;

// Read both files and build the problem (ties from the latency table, filters applied).
// Errors name the file and the entry. Owned by *p; free with mxp_solve_problem_free.
mxp_status mxp_solve_problem_load(mxp_solve_problem *p, const char *sens_path, const char *lat_path,
                                  const mxp_solve_filter *f, mxp_err *err);
// The same from parsed JSON (labels name them in errors).
mxp_status mxp_solve_problem_build(mxp_solve_problem *p, const cJSON *sens, const char *sens_label,
                                   const cJSON *lat, const char *lat_label, const mxp_solve_filter *f,
                                   mxp_err *err);
void mxp_solve_problem_free(mxp_solve_problem *p);

// The mckp view of the problem for an objective (pointers into p).
mxp_mckp mxp_solve_problem_mckp(const mxp_solve_problem *p, mxp_objective obj);

// One solved point as a plan JSON object of docs/FILES.md (without "format"/"provenance"):
// "objective", "budget", "solver", "predicted", "ops" (every op of the sensitivity table).
cJSON *mxp_solve_plan_body(const mxp_solve_problem *p, mxp_objective obj, const mxp_mckp_opts *o,
                           const mxp_mckp_result *r);
// Per-op format of a choice: fmt_out (n_ops) (ops outside every group: f32).
void mxp_solve_choice_formats(const mxp_solve_problem *p, const int *choice, unsigned char *fmt_out);

// Write a llama.cpp llama-quantize --tensor-type-file: one "gguf_tensor_name=type" token per
// line (whitespace-separated tokens, no comments: llama-quantize reads every token as an
// override; it lower-cases the name and uses it as a regular expression, so full tensor names
// such as "blk.0.attn_q.weight" match exactly one tensor). Only ops with a llama.cpp name
// (llama family); f8_e4m3 has no GGML type: MXP_ERR_UNSUPPORTED.
mxp_status mxp_solve_write_tensor_types(const char *path, const mxp_solve_problem *p, const unsigned char *fmt,
                                        mxp_err *err);

#endif
