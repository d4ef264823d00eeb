// cmd_apply.c: mixprec apply MODEL PLAN.json|uniform:FMT -o OUT.gguf (library: mxp_apply).
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_apply(int argc, char **argv) {
    const char *pos[2] = {0}, *out = NULL;
    int npos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && i + 1 < argc) {
            out = argv[++i];
        } else if (a[0] == '-') {
            return cli_usage_error("apply: unknown option or missing value: ", a);
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            return cli_usage_error("apply: unexpected argument ", a);
        }
    }
    if (npos != 2) return cli_usage_error("apply needs MODEL and PLAN.json (or uniform:FMT)", "");
    if (!out) return cli_usage_error("apply needs -o OUT.gguf", "");
    mxp_err err = {0};
    mxp_apply_report r;
    if (mxp_apply(pos[0], pos[1], out, &r, &err)) return cli_fail(&err);
    printf("op weights:");
    for (int f = 0; mxp_format_name(f); f++)
        if (r.n_by_format[f]) printf(" %d %s", r.n_by_format[f], mxp_format_name(f));
    printf("\ntokenizer: %s\n", r.tokenizer_desc);
    printf("apply: tensors=%d bytes=%.0f out=%s\n", r.n_tensors, r.file_bytes, out);
    return 0;
}
