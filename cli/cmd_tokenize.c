// cmd_tokenize.c: mixprec tokenize MODEL --data FILE -o OUT: the token ids every command
// reads from FILE (the model's tokenizer and its BOS/EOS defaults), as a token-id file.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *data = NULL, *out = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (!strcmp(a, "--data") && has_val) data = argv[++i];
        else if (!strcmp(a, "-o") && has_val) out = argv[++i];
        else if (a[0] == '-') return cli_usage_error("tokenize: unknown option or missing value: ", a);
        else if (!model) model = a;
        else return cli_usage_error("tokenize: unexpected argument ", a);
    }
    if (!model) return cli_usage_error("tokenize needs a MODEL", "");
    if (!data) return cli_usage_error("tokenize needs --data FILE", "");
    if (!out) return cli_usage_error("tokenize needs -o OUT", "");
    mxp_err err = {0};
    mxp_model *m;
    if (mxp_model_load(model, &m, &err)) return cli_fail(&err);
    int32_t *ids = NULL;
    size_t n = 0;
    mxp_status st = mxp_tokenize_file(m, data, &ids, &n, &err);
    mxp_model_free(m);
    if (!st) st = mxp_write_tokens(out, ids, n, &err);
    free(ids);
    if (st) return cli_fail(&err);
    printf("tokenize: tokens=%zu out=%s\n", n, out);
    return 0;
}
