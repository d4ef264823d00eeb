// main.c: the mixprec command line. A thin client of include/mixprec.h: parses arguments,
// calls the library, prints results on stdout and diagnostics on stderr. Exit status: 0 ok,
// 1 the library reported an error, 2 bad usage.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char *const usage_text =
    "usage: mixprec COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  info MODEL                     architecture, parameter count, every tensor\n"
    "  eval MODEL --data FILE [--formats uniform:FMT|PLAN.json] [--seq T] [--batch B]\n"
    "       [--samples N] [--decode-tokens N] [--backend ggml|native]\n"
    "                                 loss, perplexity, prefill and decode tokens/s; with\n"
    "                                 --formats also the quantized model and its measured\n"
    "                                 loss MSE, KL divergence and top-1 agreement vs f32;\n"
    "                                 speeds timed as ggml graphs (llama.cpp's engine,\n"
    "                                 default) or on mixprec's executor (native)\n"
    "  profile MODEL --workload prefill:T|decode:L -o LATENCY.json [--batch B]\n"
    "       [--formats f32,bf16,...] [--tie q_proj,k_proj,v_proj]... [--data FILE] [--seed S]\n"
    "       [--rel-ci X] [--budget S] [--check K [--check-budget S]] [--cache-dir D]\n"
    "       [--no-cache] [--no-pin] [--quiet] [--check-llama [--llama-bench PATH]]\n"
    "       [--backend ggml|native] [--threads N]\n"
    "                                 partition into sequential sub-graphs and time every\n"
    "                                 configuration of each, as ggml graphs on llama.cpp's CPU\n"
    "                                 backend (default) or with mixprec's kernels; --check K\n"
    "                                 times K random whole-model configurations against the\n"
    "                                 sub-graph, per-op and MAC predictions; --check-llama\n"
    "                                 also times them and every uniform format in llama.cpp\n"
    "  solve SENS.json LATENCY.json -o PLAN.json (--max-loss-mse X | --max-ppl-increase P% |\n"
    "       --min-gain G | --max-bytes B | --pareto N) [--objective time|memory|mac]\n"
    "       [--force 'GLOB=FMT'] [--forbid 'GLOB=FMT'] [--tensor-types FILE] [--csv FILE]\n"
    "       [--time-limit S] [--mip-gap G] [--no-prune]\n"
    "                                 the format per op that maximises the gain under the\n"
    "                                 predicted-loss budget (or the least loss for a gain or a\n"
    "                                 size budget), solved exactly (GLPK); --tensor-types writes\n"
    "                                 a llama.cpp llama-quantize --tensor-type-file\n"
    "  apply MODEL PLAN.json|uniform:FMT -o OUT.gguf\n"
    "                                 write the model with the plan's formats as GGUF (llama)\n"
    "  generate MODEL --prompt TEXT [--tokens N] [--temperature T] [--top-k K] [--seed S]\n"
    "       [--backend ggml|native]\n"
    "                                 continue a prompt (shows the model is real); ggml decodes\n"
    "                                 with a KV cache as llama.cpp (default), native recomputes\n"
    "                                 the context on mixprec's executor\n"
    "  calibrate MODEL --data FILE -o SENS.json [--samples N] [--seq T] [--batch B]\n"
    "       [--formats f32,bf16,...] [--metric taylor|fisher|noise] [--fisher] [--seed S]\n"
    "       [--resume] [--stop-after N] [--check K [--check-samples N] [--check-csv FILE]]\n"
    "       [--cache-mb M] [--stream auto|on|off] [--max-memory SIZE]\n"
    "                                 per-op, per-format loss-MSE sensitivities; --check K\n"
    "                                 measures single ops and K random configurations on\n"
    "                                 held-out data against the predictions; --stop-after N\n"
    "                                 leaves a partial table after N samples (--resume goes\n"
    "                                 on); under mpirun or srun the processes share the\n"
    "                                 samples and rank 0 writes the same table; --cache-mb M\n"
    "                                 keeps up to M MiB of quantized weights so the slow\n"
    "                                 quantizers run once, not once per batch (default: a\n"
    "                                 quarter of the weights' size, 64 to 1024 MiB;\n"
    "                                 0: none; the table is the same); --stream on runs each\n"
    "                                 batch block by block (block inputs kept, each block's\n"
    "                                 forward run again before its backward, its mapped weight\n"
    "                                 pages released after use: for models whose activations\n"
    "                                 exceed memory; the same table, bit for bit); auto (the\n"
    "                                 default) streams when the in-memory pass's activations\n"
    "                                 and buffers would exceed --max-memory SIZE (512M, 8G,\n"
    "                                 8GB or bytes; default: half of MemAvailable); --batch B\n"
    "                                 samples per pass (default 8: each batch forms every\n"
    "                                 format's weight errors once for its B samples)\n"
    "  optimize MODEL --data FILE --workload prefill:T|decode:L -o DIR\n"
    "       (--max-ppl-increase P% | --max-loss-mse X) [--samples N] [--seq T]\n"
    "       [--eval-samples N] [--pareto N] [--profile-budget S] [--formats f32,bf16,...]\n"
    "       [--no-baselines] [--no-cache] [--no-pin] [--seed S] [--quiet]\n"
    "       [--llama-bench PATH | --no-llama-bench] [--profile-backend ggml|native]\n"
    "                                 calibrate, profile, solve, apply, then measure the plan,\n"
    "                                 a sweep of budgets and the baselines on held-out data:\n"
    "                                 DIR/plan.json, model.gguf, report.html, report.json;\n"
    "                                 llama.cpp's llama-bench measures the GGUFs' speed\n"
    "  tokenize MODEL --data FILE -o OUT\n"
    "                                 the token ids the other commands read from FILE, as a\n"
    "                                 token-id file\n"
    "\n"
    "MODEL is a Hugging Face folder (config.json + *.safetensors) or a GGUF file.\n"
    "FILE is text (tokenized with the model's tokenizer) or a token-id file (first line\n"
    "\"mixprec-tokens 1\", then ids). FMT: f32 bf16 f16 q8_0 q4_0 q4_1 q5_0 q5_1 iq4_nl\n"
    "q2_K q3_K q4_K q5_K q6_K (GGUF's types, quantized by ggml); f8_e4m3 (no GGUF type:\n"
    "scored and evaluated, never exported nor in a default list).\n"
    "  --version                      print the version\n";


int main(int argc, char **argv) {
    // OpenMP threads that spin while waiting fight OpenBLAS and anything else on a busy
    // machine (measured: a calibration 7x slower under load). The runtime reads the policy
    // when it loads, before main, so set it and start again once; OMP_WAIT_POLICY=ACTIVE in
    // the environment keeps spinning.
    if (!getenv("OMP_WAIT_POLICY") && setenv("OMP_WAIT_POLICY", "PASSIVE", 1) == 0) {
        execv("/proc/self/exe", argv);
        // if the re-exec fails we simply go on with the default policy
    }
    if (argc < 2) {
        fputs(usage_text, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("mixprec %s\nggml %s (commit %s)\n", mxp_version(), mxp_ggml_version(), mxp_ggml_commit());
        return 0;
    }
    // Only calibrate shares its work over MPI processes; any other command started N times
    // would do the same work N times and write the same files at once.
    if (strcmp(cmd, "calibrate") && mxp_dist_env_size() > 1) {
        fprintf(stderr, "mixprec: %s runs in one process: start it without mpirun/srun (only calibrate shares its work "
                        "over MPI processes)\n", cmd);
        return 2;
    }
    if (!strcmp(cmd, "info")) return cmd_info(argc - 2, argv + 2);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 2, argv + 2);
    if (!strcmp(cmd, "generate")) return cmd_generate(argc - 2, argv + 2);
    if (!strcmp(cmd, "profile")) return cmd_profile(argc - 2, argv + 2);
    if (!strcmp(cmd, "calibrate")) return cmd_calibrate(argc - 2, argv + 2);
    if (!strcmp(cmd, "solve")) return cmd_solve(argc - 2, argv + 2);
    if (!strcmp(cmd, "apply")) return cmd_apply(argc - 2, argv + 2);
    if (!strcmp(cmd, "optimize")) return cmd_optimize(argc - 2, argv + 2);
    if (!strcmp(cmd, "tokenize")) return cmd_tokenize(argc - 2, argv + 2);
    return cli_usage_error("unknown command: ", cmd);
}