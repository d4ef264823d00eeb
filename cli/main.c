// main.c: the mixprec command line. A thin client of include/mixprec.h: parses arguments,
// calls the library, prints results on stdout and diagnostics on stderr. Exit status: 0 ok,
// 1 the library reported an error, 2 bad usage.
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char *const usage_text =
    "usage: mixprec COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  info MODEL                     architecture, parameter count, every tensor\n"
    "  eval MODEL --data FILE [--formats uniform:FMT|PLAN.json] [--seq T] [--batch B]\n"
    "       [--samples N] [--decode-tokens N]\n"
    "                                 loss, perplexity, prefill and decode tokens/s; with\n"
    "                                 --formats also the quantized model and its measured\n"
    "                                 loss MSE, KL divergence and top-1 agreement vs f32\n"
    "\n"
    "MODEL is a Hugging Face folder (config.json + *.safetensors) or a GGUF file.\n"
    "FILE is text (tokenized with the model's tokenizer) or a token-id file (first line\n"
    "\"mixprec-tokens 1\", then ids). FMT: f32 bf16 f16 q8_0 q4_0 f8_e4m3.\n"
    "  --version                      print the version\n";


int main(int argc, char **argv) {
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
        printf("mixprec %s\n", mxp_version());
        return 0;
    }
    if (!strcmp(cmd, "info")) return cmd_info(argc - 2, argv + 2);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 2, argv + 2);
    if (!strcmp(cmd, "generate")) return cmd_generate(argc - 2, argv + 2);
    return cli_usage_error("unknown command: ", cmd);
}