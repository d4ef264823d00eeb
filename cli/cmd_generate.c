// cmd_generate.c: mixprec generate MODEL --prompt TEXT [...].
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void print_piece(void *ctx, const char *bytes, size_t len) {
    fwrite(bytes, 1, len, (FILE *)ctx);
    fflush((FILE *)ctx);
}

int cmd_generate(int argc, char **argv) {
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
            if (!cli_parse_pos_int(a, argv[++i], &o.n_tokens)) return 2;
        } else if (!strcmp(a, "--temperature") && has_val) {
            if (!cli_parse_nonneg_double(a, argv[++i], &o.temperature)) return 2;
        } else if (!strcmp(a, "--top-k") && has_val) {
            double k;
            if (!cli_parse_nonneg_double(a, argv[++i], &k) || k != (int)k) return cli_usage_error("--top-k expects an integer >= 0", "");
            o.top_k = (int)k;
        } else if (!strcmp(a, "--seed") && has_val) {
            if (!cli_parse_u64(a, argv[++i], &o.seed)) return 2;
        } else if (!strcmp(a, "--backend") && has_val) {
            o.backend = argv[++i];
            if (strcmp(o.backend, "ggml") && strcmp(o.backend, "native"))
                return cli_usage_error("generate: --backend must be ggml or native, not ", o.backend);
        } else if (a[0] == '-') {
            return cli_usage_error("generate: unknown option or missing value: ", a);
        } else if (!model) {
            model = a;
        } else {
            return cli_usage_error("generate: unexpected argument ", a);
        }
    }
    if (!model) return cli_usage_error("generate needs a MODEL", "");
    if (!have_prompt) return cli_usage_error("generate needs --prompt TEXT (may be \"\")", "");
    mxp_err err = {0};
    mxp_model *m;
    if (mxp_model_load(model, &m, &err)) return cli_fail(&err);
    fputs(o.prompt, stdout);
    mxp_generate_result r;
    mxp_status st = mxp_generate(m, &o, &r, &err);
    mxp_model_free(m);
    putchar('\n');
    fflush(stdout);
    if (st) return cli_fail(&err);
    if (r.note) fprintf(stderr, "generate: note: %s\n", r.note);
    fprintf(stderr, "generate: prompt_tokens=%zu tokens=%zu seconds=%.3f tokens_per_s=%.1f backend=%s\n", r.prompt_tokens,
            r.n_ids, r.seconds, r.seconds > 0 ? (double)r.n_ids / r.seconds : 0, r.backend);
    mxp_generate_result_free(&r);
    return 0;
}
