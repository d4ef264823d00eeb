// fuzz_sens.c: libFuzzer target for the sensitivity table readers: the input is a sens.json
// image, read (1) by mxp_sens_restore into a fresh table of the fixed model (what
// `calibrate --resume` does) and (2) by mxp_solve_problem_build against a valid latency table
// of the same model (what `solve` does). Every input must give MXP_OK or a clean error whose
// message names the file's label; an accepted problem must be consistent (every group has a
// configuration, every loss finite and >= 0).
#include <math.h>

#include "fuzz_tables.h"
#include "method/solve.h"

static fuzz_tables T;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_tables_init(&T, 0);
    return 0;
}

static void check_problem(const mxp_solve_problem *p) {
    MXP_ASSERT(p->n_groups >= 1 && p->gstart[0] == 0 && p->gstart[p->n_groups] == p->n_cfg);
    for (int g = 0; g < p->n_groups; g++) {
        MXP_ASSERT(p->gstart[g + 1] > p->gstart[g]);
        MXP_ASSERT(p->gops_start[g + 1] > p->gops_start[g]);
    }
    for (int c = 0; c < p->n_cfg; c++) {
        MXP_ASSERT(isfinite(p->loss[c]) && p->loss[c] >= 0 && isfinite(p->bytes[c]));
        for (int k = 0; k < MXP_OBJ_COUNT; k++) MXP_ASSERT(isfinite(p->gain[k][c]));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cJSON *j;
    mxp_err err = {0};
    if (mxp_parse_json(data, size, "fuzz-sens.json", &j, &err)) {
        MXP_ASSERT(strstr(err.msg, "fuzz-sens.json"));
        return 0;
    }
    mxp_sens s;
    if (mxp_sens_init(&s, &T.model->graph, fuzz_formats, 3, FUZZ_SEQ, &err)) fuzz_die("sensitivity table", &err);
    if (mxp_sens_restore(&s, j, "fuzz-sens.json", &err)) {
        MXP_ASSERT(strstr(err.msg, "fuzz-sens.json"));
    } else {
        for (int i = 0; i < s.n_ops; i++) {
            double se = mxp_sens_se(&s, i, MXP_FMT_Q8_0);
            MXP_ASSERT(!isnan(se));
        }
    }
    mxp_sens_free(&s);
    mxp_solve_problem p;
    memset(&err, 0, sizeof err);
    mxp_status st = mxp_solve_problem_build(&p, j, "fuzz-sens.json", T.latj, "latency.json", NULL, &err);
    if (st) {
        MXP_ASSERT(strstr(err.msg, "fuzz-sens.json") || strstr(err.msg, "latency.json"));
        MXP_ASSERT(p.ops == NULL && p.n_cfg == 0);
    } else {
        check_problem(&p);
        mxp_solve_problem_free(&p);
    }
    cJSON_Delete(j);
    return 0;
}
