// fuzz_latency.c: libFuzzer target for the latency table readers: the input is a
// latency.json image, read (1) by mxp_profile_from_json into a fresh profile table of the
// fixed model with the key that table computes (what `profile` does with its cache) and (2)
// by mxp_solve_problem_build against a valid sensitivity table of the same model (what
// `solve` does). Every input must give MXP_OK or a clean error whose message names the
// file's label; an accepted problem must be consistent (every group has a configuration,
// every number finite).
#include <math.h>

#include "fuzz_tables.h"
#include "method/solve.h"

static fuzz_tables T;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_tables_init(&T, 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cJSON *j;
    mxp_err err = {0};
    if (mxp_parse_json(data, size, "fuzz-latency.json", &j, &err)) {
        MXP_ASSERT(strstr(err.msg, "fuzz-latency.json"));
        return 0;
    }
    mxp_profile_table lat;
    fuzz_latency_table(&T, &lat);
    char key[32];
    mxp_profile_cache_key(&lat, &T.model->graph, key);
    MXP_ASSERT(strcmp(key, T.key) == 0);
    if (mxp_profile_from_json(&lat, &T.model->graph, j, key, "fuzz-latency.json", &err)) {
        MXP_ASSERT(strstr(err.msg, "fuzz-latency.json"));
    } else {
        for (int c = 0; c < lat.n_cls; c++) {
            const mxp_class_meas *cm = &lat.meas[c];
            MXP_ASSERT(isfinite(cm->ref_time_s) && cm->ref_runs >= 0);
            for (int k = 0; k < lat.space[cm->rep].n_configs; k++)
                MXP_ASSERT(isfinite(cm->cfg[k].gain_s) && isfinite(cm->cfg[k].ci_s) && cm->cfg[k].repeats >= 0);
        }
        for (int k = 0; k < lat.part.n; k++)
            for (int c = 0; c < lat.space[k].n_configs; c++) {
                double mg = mxp_profile_mac_gain(&lat, &T.model->graph, k, c);
                MXP_ASSERT(!isnan(mg));
            }
    }
    mxp_profile_table_free(&lat);
    mxp_solve_problem p;
    memset(&err, 0, sizeof err);
    mxp_status st = mxp_solve_problem_build(&p, T.sens, "sens.json", j, "fuzz-latency.json", NULL, &err);
    if (st) {
        MXP_ASSERT(strstr(err.msg, "fuzz-latency.json") || strstr(err.msg, "sens.json"));
        MXP_ASSERT(p.ops == NULL && p.n_cfg == 0);
    } else {
        MXP_ASSERT(p.n_groups >= 1 && p.gstart[p.n_groups] == p.n_cfg);
        for (int g = 0; g < p.n_groups; g++) MXP_ASSERT(p.gstart[g + 1] > p.gstart[g]);
        for (int c = 0; c < p.n_cfg; c++)
            for (int k = 0; k < MXP_OBJ_COUNT; k++) MXP_ASSERT(isfinite(p.gain[k][c]) && isfinite(p.loss[c]));
        mxp_solve_problem_free(&p);
    }
    cJSON_Delete(j);
    return 0;
}
