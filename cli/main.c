// main.c: the mixprec command line. A thin client of include/mixprec.h: parses arguments,
// calls the library, prints results on stdout and diagnostics on stderr. Exit status: 0 ok,
// 1 the library reported an error, 2 bad usage.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixprec.h"

static const char *const usage_text =
    "usage: mixprec COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  info MODEL                     architecture, parameter count, every tensor\n"
    "  eval MODEL --data FILE [--seq T] [--batch B] [--samples N]\n"
    "                                 loss, perplexity and tokens/s on held-out data\n"
    "\n"
    "MODEL is a Hugging Face folder (config.json + *.safetensors) or a GGUF file.\n"
    "FILE is a token-id file (first line \"mixprec-tokens 1\", then ids).\n"
    "  --version                      print the version\n";

static int usage_error(const char *msg, const char *arg) {
    fprintf(stderr, "mixprec: %s%s\n(run 'mixprec --help' for usage)\n", msg, arg);
    return 2;
}

// Parse a positive int option value; rejects junk, overflow and values < 1.
static int parse_pos_int(const char *opt, const char *s, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > 1 << 30) {
        fprintf(stderr, "mixprec: %s expects a positive integer, got '%s'\n", opt, s);
        return 0;
    }
    *out = (int)v;
    return 1;
}

static int fail(const mxp_err *err) {
    fprintf(stderr, "mixprec: error: %s\n", err->msg);
    return 1;
}

static int cmd_info(int argc, char **argv) {
    if (argc != 1) return usage_error("info takes exactly one MODEL", "");
    mxp_err err = {0};
    mxp_model *m;
    if (mxp_model_load(argv[0], &m, &err)) return fail(&err);
    mxp_model_print_info(m, stdout);
    mxp_model_free(m);
    return 0;
}

static int cmd_eval(int argc, char **argv) {
    const char *model = NULL;
    mxp_eval_opts o = {.progress = 1};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (!strcmp(a, "--data") && has_val) {
            o.data_path = argv[++i];
        } else if (!strcmp(a, "--seq") && has_val) {
            if (!parse_pos_int(a, argv[++i], &o.seq_len)) return 2;
        } else if (!strcmp(a, "--batch") && has_val) {
            if (!parse_pos_int(a, argv[++i], &o.batch)) return 2;
        } else if (!strcmp(a, "--samples") && has_val) {
            if (!parse_pos_int(a, argv[++i], &o.max_samples)) return 2;
        } else if (a[0] == '-') {
            return usage_error("eval: unknown option or missing value: ", a);
        } else if (!model) {
            model = a;
        } else {
            return usage_error("eval: unexpected argument ", a);
        }
    }
    if (!model) return usage_error("eval needs a MODEL", "");
    if (!o.data_path) return usage_error("eval needs --data FILE", "");
    mxp_err err = {0};
    mxp_model *m;
    if (mxp_model_load(model, &m, &err)) return fail(&err);
    mxp_eval_result r;
    mxp_status st = mxp_eval(m, &o, &r, &err);
    mxp_model_free(m);
    if (st) return fail(&err);
    printf("samples %zu  tokens %zu  loss %.4f  perplexity %.3f  tokens/s %.1f\n", r.samples, r.tokens, r.loss,
           r.perplexity, r.tokens_per_s);
    printf("eval: loss=%.6f ppl=%.4f tokens_per_s=%.1f\n", r.loss, r.perplexity, r.tokens_per_s);
    return 0;
}

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
    return usage_error("unknown command: ", cmd);
}
