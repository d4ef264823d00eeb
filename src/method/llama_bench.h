// llama_bench.h: the deployed speed of GGUF files, measured by llama.cpp's own llama-bench
// (an external program: mixprec runs it, it does not link llama.cpp).
#ifndef MXP_METHOD_LLAMA_BENCH_H
#define MXP_METHOD_LLAMA_BENCH_H

#include <stddef.h>

#include "core/base.h"

typedef struct mxp_llama_speed {
    double prefill_tps;   // median over rounds of llama-bench's pp<prefill> tokens/s
    double decode_tps;    // median over rounds of llama-bench's tg<decode> tokens/s
} mxp_llama_speed;

// Find llama-bench: `explicit_path` if given (it must be executable), else
// $MIXPREC_LLAMA_BENCH, else build-deps/bin/llama-bench beside the folder of the running
// executable (where scripts/deps.sh puts it), else llama-bench on PATH. Returns 1 and the path
// in out, or 0 when none is found.
int mxp_llama_bench_find(const char *explicit_path, char *out, size_t cap);

// Run `bench` on n GGUF files for `rounds` rounds (each round one llama-bench run over all
// files, so that slow drifts of the machine hit all of them alike): a prefill test of
// `prefill` tokens and a decode test of `decode` tokens, `threads` threads, 2 repetitions per
// run. out[i] gets the medians over rounds. Scratch files go to work_dir. Errors name the
// program and, when it failed, the last line it printed. build (build_cap bytes) gets the
// llama.cpp build llama-bench reports ("<commit> (<number>)").
mxp_status mxp_llama_bench_run(const char *bench, const char *const *gguf, int n, int prefill, int decode, int threads,
                               int rounds, const char *work_dir, mxp_llama_speed *out, char *build, size_t build_cap,
                               mxp_err *err);

#endif
