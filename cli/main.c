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
        } else if (!strcmp(a, "--formats") && has_val) {
            o.formats = argv[++i];
        } else if (!strcmp(a, "--decode-tokens") && has_val) {
            if (!strcmp(argv[i + 1], "0")) {
                o.decode_tokens = -1;
                i++;
            } else if (!parse_pos_int(a, argv[++i], &o.decode_tokens)) {
                return 2;
            }
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
    printf("%zu samples x %d tokens (batch %d), %zu tokens scored\n", r.samples, r.seq_len, r.batch, r.tokens);
    printf("%-10s %10s %10s %14s %14s %12s\n", "model", "loss", "ppl", "prefill tok/s", "decode tok/s", "weights MB");
    printf("%-10s %10.4f %10.3f %14.1f %14.1f %12.2f\n", "f32", r.ref.loss, r.ref.perplexity,
           r.ref.prefill_tokens_per_s, r.ref.decode_tokens_per_s, r.ref.weight_bytes / 1e6);
    if (r.quantized) {
        printf("%-10s %10.4f %10.3f %14.1f %14.1f %12.2f\n", "formats", r.quant.loss, r.quant.perplexity,
               r.quant.prefill_tokens_per_s, r.quant.decode_tokens_per_s, r.quant.weight_bytes / 1e6);
        printf("vs f32: loss MSE %.4g (+- %.2g), KL %.4g nats/token, top-1 agreement %.2f%%, ppl %+.2f%%, "
               "prefill %.2fx, decode %.2fx\n",
               r.loss_mse, r.loss_mse_se, r.kl, 100 * r.top1, 100 * (r.quant.perplexity / r.ref.perplexity - 1),
               r.ref.prefill_tokens_per_s > 0 ? r.quant.prefill_tokens_per_s / r.ref.prefill_tokens_per_s : 0,
               r.ref.decode_tokens_per_s > 0 ? r.quant.decode_tokens_per_s / r.ref.decode_tokens_per_s : 0);
        printf("eval: loss=%.6f ppl=%.4f ref_loss=%.6f loss_mse=%.6g kl=%.6g top1=%.4f prefill_tps=%.1f decode_tps=%.1f\n",
               r.quant.loss, r.quant.perplexity, r.ref.loss, r.loss_mse, r.kl, r.top1, r.quant.prefill_tokens_per_s,
               r.quant.decode_tokens_per_s);
    } else {
        printf("eval: loss=%.6f ppl=%.4f prefill_tps=%.1f decode_tps=%.1f\n", r.ref.loss, r.ref.perplexity,
               r.ref.prefill_tokens_per_s, r.ref.decode_tokens_per_s);
    }
    return 0;
}

// Parse a number option: a finite double >= 0, or an integer >= 0 (u64), rejecting junk.
static int parse_nonneg_double(const char *opt, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0) || v > 1e6) {
        fprintf(stderr, "mixprec: %s expects a number >= 0, got '%s'\n", opt, s);
        return 0;
    }
    *out = v;
    return 1;
}

static int parse_u64(const char *opt, const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') {
        fprintf(stderr, "mixprec: %s expects a non-negative integer, got '%s'\n", opt, s);
        return 0;
    }
    *out = v;
    return 1;
}

static void print_piece(void *ctx, const char *bytes, size_t len) {
    fwrite(bytes, 1, len, (FILE *)ctx);
    fflush((FILE *)ctx);
}

static int cmd_generate(int argc, char **argv) {
    const char *model = NULL;
    mxp_generate_opts o = {.n_tokens = 64, .on_text = print_piece, .ctx = stdout};
    int have_prompt = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (!strcmp(a, "--prompt") && has_val) {
            o.prompt = argv[++i];
            have_prompt = 1;
        } else if (!strcmp(a, "--tokens") && has_val) {
            if (!parse_pos_int(a, argv[++i], &o.n_tokens)) return 2;
        } else if (!strcmp(a, "--temperature") && has_val) {
            if (!parse_nonneg_double(a, argv[++i], &o.temperature)) return 2;
        } else if (!strcmp(a, "--top-k") && has_val) {
            double k;
            if (!parse_nonneg_double(a, argv[++i], &k) || k != (int)k) return usage_error("--top-k expects an integer >= 0", "");
            o.top_k = (int)k;
        } else if (!strcmp(a, "--seed") && has_val) {
            if (!parse_u64(a, argv[++i], &o.seed)) return 2;
        } else if (a[0] == '-') {
            return usage_error("generate: unknown option or missing value: ", a);
        } else if (!model) {
            model = a;
        } else {
            return usage_error("generate: unexpected argument ", a);
        }
    }
    if (!model) return usage_error("generate needs a MODEL", "");
    if (!have_prompt) return usage_error("generate needs --prompt TEXT (may be \"\")", "");
    mxp_err err = {0};
    mxp_model *m;
    if (mxp_model_load(model, &m, &err)) return fail(&err);
    fputs(o.prompt, stdout);
    mxp_generate_result r;
    mxp_status st = mxp_generate(m, &o, &r, &err);
    mxp_model_free(m);
    putchar('\n');
    fflush(stdout);
    if (st) return fail(&err);
    fprintf(stderr, "generate: prompt_tokens=%zu tokens=%zu seconds=%.3f tokens_per_s=%.1f\n", r.prompt_tokens,
            r.n_ids, r.seconds, r.seconds > 0 ? (double)r.n_ids / r.seconds : 0);
    mxp_generate_result_free(&r);
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
    if (!strcmp(cmd, "generate")) return cmd_generate(argc - 2, argv + 2);
    return usage_error("unknown command: ", cmd);
}
