// llama_bench.h: the deployed speed of GGUF files, measured by llama.cpp's own llama-bench
// (an external program: mixprec runs it, it does not link llama.cpp).
#ifndef MXP_METHOD_LLAMA_BENCH_H
#define MXP_METHOD_LLAMA_BENCH_H

#include <stddef.h>

#include "core/base.h"

typedef struct mxp_llama_speed {
    double prefill_tps;   // median over rounds of llama-bench's pp<prefill> tokens/s (0: not run)
    double decode_tps;    // median over rounds of llama-bench's tg<decode> tokens/s (0: not run)
} mxp_llama_speed;

typedef struct mxp_llama_bench_opts {
    int prefill;          // tokens of the prefill test (0: none)
    int decode;           // tokens of the decode test (0: none)
    int depth;            // tokens already in the KV cache before each test (0: none)
    int threads;
    int rounds;
} mxp_llama_bench_opts;

// Find llama-bench: `explicit_path` if given (it must be executable), else
// $MIXPREC_LLAMA_BENCH, else build-deps/bin/llama-bench in one of the three folders above the
// running executable's (where scripts/deps.sh puts it for build/ and build-ci/NAME/), else
// llama-bench on PATH. Returns 1 and the path
// in out, or 0 when none is found.
int mxp_llama_bench_find(const char *explicit_path, char *out, size_t cap);

// llama-quantize in the folder of llama-bench `bench` (scripts/deps.sh installs both): 1 and
// its path in out, or 0.
int mxp_llama_quantize_find(const char *bench, char *out, size_t cap);

// llama-quantize IN OUT TYPE (a llama.cpp mix, e.g. "Q4_K_M"), its output to log_path.
mxp_status mxp_llama_quantize_run(const char *quantize, const char *in, const char *out, const char *type,
                                  const char *log_path, mxp_err *err);

// Run `bench` on n GGUF files for o->rounds rounds (each round one llama-bench run over all
// files, so that slow drifts of the machine hit all of them alike, each round starting at the
// next file, since the first model of a run pays for the cold start): the prefill and/or decode
// test o asks for, 2 repetitions per run. out[i] gets the medians over rounds. Scratch files
// go to work_dir. Errors name the program and, when it failed, the last line it printed.
// build (build_cap bytes) gets the llama.cpp build llama-bench reports ("<commit> (<number>)").
mxp_status mxp_llama_bench_run(const char *bench, const char *const *gguf, int n, const mxp_llama_bench_opts *o,
                               const char *work_dir, mxp_llama_speed *out, char *build, size_t build_cap, mxp_err *err);

#endif
