// optimize.h: internal parts of `mixprec optimize` (optimize.c is the pipeline, report.c the
// HTML page, optimize_time.c the whole-model timing behind every "measured gain").
#ifndef MXP_METHOD_OPTIMIZE_H
#define MXP_METHOD_OPTIMIZE_H

#include "arch/model.h"
#include "method/profile.h"

typedef struct mxp_e2e_time {
    double time_s;    // median time of one workload unit (prefill pass / decode token)
    double gain_s;    // median over rounds of (reference time - this time), same round
    double ci_s;      // half-width of a 95% interval of gain_s (order statistics of the rounds)
    int rounds;
    int timed;        // 0: the engine cannot run this configuration (why says which format)
    char why[160];
} mxp_e2e_time;

// Time the whole model under workload wl for n_cfg configurations: cfg_fmt (n_cfg * n_nodes)
// gives each linear node's format (other entries ignored). backend "ggml" (or NULL): each
// configuration is the whole graph translated to ggml (ggml_graph.h, as llama.cpp builds it:
// f16 KV cache, repacked weights, logits of the last position), built once before the rounds;
// a configuration with a format that has no ggml type (f8_e4m3) is not timed (timed = 0, why
// names it); every graph holds its own copy of the weights (ggml's buffers, repacked), so the
// timing needs about one model's weights per configuration on top of the qcache's copies.
// "native": mixprec's executor with its real kernels. Rounds run the f32 reference
// and every configuration once each, in an order that rotates per round, so slow drifts of the
// machine hit all of them alike; each run repeats the unit enough times to last about 10 ms.
// Stops after max_rounds, or when budget_s is spent (at least 5 rounds). Decode: one token
// after wl->tokens cached positions (the cache is filled once and the timed token is rewritten
// at the same position). Prefill: one pass of wl->tokens tokens. ref (the reference, gain 0)
// and out (n_cfg) are filled; engine (engine_cap bytes, may be NULL) gets what ran, in words
// (mxp_engine_describe). The graph's slots are f32 on return.
mxp_status mxp_e2e_time_configs(mxp_model *m, const mxp_workload *wl, const char *backend, int n_cfg,
                                const unsigned char *cfg_fmt, int max_rounds, double budget_s, mxp_e2e_time *ref,
                                mxp_e2e_time *out, char *engine, size_t engine_cap, volatile int *stop, mxp_err *err);

#endif
