// cmd_info.c: mixprec info MODEL.
#include <stdio.h>

#include "cli.h"

int cmd_info(int argc, char **argv) {
    if (argc != 1) return cli_usage_error("info takes exactly one MODEL", "");
    mxp_err err = {0};
    mxp_model *m;
    if (mxp_model_load(argv[0], &m, &err)) return cli_fail(&err);
    mxp_model_print_info(m, stdout);
    mxp_model_free(m);
    return 0;
}
