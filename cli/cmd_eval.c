// cmd_eval.c: mixprec eval MODEL --data FILE [--formats ...].
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

// A speed for the table: "n/a" when it was not timed (NaN).
static const char *tps(double v, char *buf, size_t cap) {
    if (isfinite(v)) snprintf(buf, cap, "%.1f", v);
    else snprintf(buf, cap, "n/a");
    return buf;
}

int cmd_eval(int argc, char **argv) {
    const char *model = NULL;
    mxp_eval_opts o = {.progress = 1};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (!strcmp(a, "--data") && has_val) {
            o.data_path = argv[++i];
        } else if (!strcmp(a, "--seq") && has_val) {
            if (!cli_parse_pos_int(a, argv[++i], &o.seq_len)) return 2;
        } else if (!strcmp(a, "--batch") && has_val) {
            if (!cli_parse_pos_int(a, argv[++i], &o.batch)) return 2;
        } else if (!strcmp(a, "--samples") && has_val) {
            if (!cli_parse_pos_int(a, argv[++i], &o.max_samples)) return 2;
        } else if (!strcmp(a, "--backend") && has_val) {
            o.backend = argv[++i];
            if (strcmp(o.backend, "ggml") && strcmp(o.backend, "native"))
                return cli_usage_error("eval: --backend must be ggml or native, not ", o.backend);
        } else if (!strcmp(a, "--formats") && has_val) {
            o.formats = argv[++i];
        } else if (!strcmp(a, "--decode-tokens") && has_val) {
            if (!strcmp(argv[i + 1], "0")) {
                o.decode_tokens = -1;
                i++;
            } else if (!cli_parse_pos_int(a, argv[++i], &o.decode_tokens)) {
                return 2;
            }
        } else if (a[0] == '-') {
            return cli_usage_error("eval: unknown option or missing value: ", a);
        } else if (!model) {
            model = a;
        } else {
            return cli_usage_error("eval: unexpected argument ", a);
        }
    }
    if (!model) return cli_usage_error("eval needs a MODEL", "");
    if (!o.data_path) return cli_usage_error("eval needs --data FILE", "");
    mxp_err err = {0};
    mxp_model *m;
    if (mxp_model_load(model, &m, &err)) return cli_fail(&err);
    mxp_eval_result r;
    mxp_status st = mxp_eval(m, &o, &r, &err);
    mxp_model_free(m);
    if (st) return cli_fail(&err);
    printf("%zu samples x %d tokens (batch %d), %zu tokens scored\n", r.samples, r.seq_len, r.batch, r.tokens);
    printf("speeds timed on: %s\n", r.speed_engine);
    if (r.speed_note[0]) printf("formats: %s\n", r.speed_note);
    printf("%-10s %10s %10s %14s %14s %12s\n", "model", "loss", "ppl", "prefill tok/s", "decode tok/s", "weights MB");
    char b1[32], b2[32], b3[32], b4[32];
    printf("%-10s %10.4f %10.3f %14s %14s %12.2f\n", "f32", r.ref.loss, r.ref.perplexity,
           tps(r.ref.prefill_tokens_per_s, b1, sizeof b1), tps(r.ref.decode_tokens_per_s, b2, sizeof b2),
           r.ref.weight_bytes / 1e6);
    if (r.quantized) {
        printf("%-10s %10.4f %10.3f %14s %14s %12.2f\n", "formats", r.quant.loss, r.quant.perplexity,
               tps(r.quant.prefill_tokens_per_s, b1, sizeof b1), tps(r.quant.decode_tokens_per_s, b2, sizeof b2),
               r.quant.weight_bytes / 1e6);
        double pf = r.ref.prefill_tokens_per_s > 0 ? r.quant.prefill_tokens_per_s / r.ref.prefill_tokens_per_s : 0;
        double dc = r.ref.decode_tokens_per_s > 0 ? r.quant.decode_tokens_per_s / r.ref.decode_tokens_per_s : 0;
        snprintf(b3, sizeof b3, isfinite(pf) ? "%.2fx" : "n/a", pf);
        snprintf(b4, sizeof b4, isfinite(dc) ? "%.2fx" : "n/a", dc);
        printf("vs f32: loss MSE %.4g (+- %.2g), KL %.4g nats/token, top-1 agreement %.2f%%, ppl %+.2f%%, "
               "prefill %s, decode %s\n",
               r.loss_mse, r.loss_mse_se, r.kl, 100 * r.top1, 100 * (r.quant.perplexity / r.ref.perplexity - 1), b3, b4);
        printf("eval: loss=%.6f ppl=%.4f ref_loss=%.6f loss_mse=%.6g kl=%.6g top1=%.4f prefill_tps=%.1f decode_tps=%.1f\n",
               r.quant.loss, r.quant.perplexity, r.ref.loss, r.loss_mse, r.kl, r.top1, r.quant.prefill_tokens_per_s,
               r.quant.decode_tokens_per_s);
    } else {
        printf("eval: loss=%.6f ppl=%.4f prefill_tps=%.1f decode_tps=%.1f\n", r.ref.loss, r.ref.perplexity,
               r.ref.prefill_tokens_per_s, r.ref.decode_tokens_per_s);
    }
    return 0;
}
