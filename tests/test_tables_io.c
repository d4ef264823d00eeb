// test_tables_io.c: the sensitivity and latency tables read back (mxp_sens_restore for
// `calibrate --resume`, mxp_profile_from_json for the latency cache): a written table reads
// back to the same numbers, and hand-corrupted tables fail cleanly with a message naming the
// file and the field (never an assertion, a crash or a silently clamped count).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "arch/model.h"
#include "check.h"
#include "method/profile.h"
#include "method/sens_io.h"

static const mxp_format_id FMTS[] = {MXP_FMT_F32, MXP_FMT_BF16, MXP_FMT_Q8_0};

static mxp_model *model(void) {
    static const mxp_model_config c = {.arch = MXP_ARCH_LLAMA, .vocab = 64, .dim = 32, .n_layers = 1, .n_heads = 2,
                                       .n_kv_heads = 1, .head_dim = 16, .ffn = 64, .max_pos = 32,
                                       .norm_eps = 1e-5f, .rope_theta = 10000.0};
    mxp_model *m = NULL;
    mxp_err err = {0};
    CHECK(mxp_model_synthetic(&c, 5, &m, &err) == MXP_OK, "%s", err.msg);
    return m;
}

// Restore a (possibly edited) copy of j; returns the status, message in err.
static mxp_status restore(const mxp_graph *g, const cJSON *j, mxp_sens *out, mxp_err *err) {
    mxp_sens s;
    CHECK(mxp_sens_init(&s, g, FMTS, 3, 16, err) == MXP_OK, "%s", err->msg);
    mxp_status st = mxp_sens_restore(&s, j, "part.json", err);
    if (out && !st) *out = s;
    else mxp_sens_free(&s);
    return st;
}

static void test_sens(const mxp_graph *g) {
    mxp_sens s;
    mxp_err err = {0};
    CHECK(mxp_sens_init(&s, g, FMTS, 3, 16, &err) == MXP_OK, "%s", err.msg);
    s.samples = 3;
    s.loss_sum = 12.25;
    for (int i = 0; i < s.n_ops; i++)
        for (int f = 0; f < MXP_FMT_COUNT; f++) {
            s.ops[i].sum[MXP_METRIC_TAYLOR][f] = 1e-5 * (i + 1) + 1e-7 * f;
            s.ops[i].sum_d4[f] = 1e-11 * (i + 2);
            s.ops[i].sum_w[f] = 3e-6 * (f + 1);
            s.ops[i].sum_a[f] = 2e-6 * (i + 1);
        }
    // through text, as calibrate writes the table and --resume reads it (the exact sums are
    // raw number text in the tree the writer builds)
    cJSON *tree = mxp_sens_to_json(&s, MXP_METRIC_TAYLOR, NULL, 0);
    CHECK(tree != NULL, "to JSON");
    char *text = tree ? cJSON_PrintUnformatted(tree) : NULL;
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    CHECK(j != NULL, "the table's text parses");
    free(text);
    cJSON_Delete(tree);
    mxp_sens back;
    CHECK(restore(g, j, &back, &err) == MXP_OK, "round trip: %s", err.msg);
    if (!err.msg[0]) {
        CHECK(back.samples == 3 && back.loss_sum == 12.25, "samples %zu loss %g", back.samples, back.loss_sum);
        int same = 1;
        for (int i = 0; i < s.n_ops; i++)
            same &= !memcmp(back.ops[i].sum, s.ops[i].sum, sizeof s.ops[i].sum) &&
                    !memcmp(back.ops[i].sum_w, s.ops[i].sum_w, sizeof s.ops[i].sum_w);
        CHECK(same, "accumulators differ after the round trip");
        mxp_sens_free(&back);
    }
    // corrupt copies: (field to set, value as JSON, words the message must hold)
    static const struct {
        const char *field, *value, *want;
    } bad[] = {
        {"samples", "1e300", "\"samples\""},   // once a float-to-integer overflow
        {"samples", "2.5", "\"samples\""},     // once truncated to 2
        {"samples", "-1", "\"samples\""},
        {"samples", "\"3\"", "\"samples\""},
        {"seq_len", "17", "--seq"},
        {"version", "2", "version-1"},
        {"formats", "[\"f32\", \"bf16\", \"q4_0\"]", "--formats"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        cJSON *c = cJSON_Duplicate(j, 1);
        cJSON_ReplaceItemInObjectCaseSensitive(c, bad[k].field, cJSON_Parse(bad[k].value));
        memset(&err, 0, sizeof err);
        CHECK(restore(g, c, NULL, &err) != MXP_OK && strstr(err.msg, "part.json") && strstr(err.msg, bad[k].want),
              "%s = %s: %s", bad[k].field, bad[k].value, err.msg);
        cJSON_Delete(c);
    }
    // an op's accumulators: wrong length, a negative or non-number entry, another op's name
    cJSON *c = cJSON_Duplicate(j, 1);
    cJSON *op = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(c, "ops"), 1);
    cJSON *acc = cJSON_GetObjectItemCaseSensitive(op, "acc");
    cJSON_ReplaceItemInObjectCaseSensitive(acc, "w", cJSON_Parse("[1, 2]"));
    CHECK(restore(g, c, NULL, &err) == MXP_ERR_FORMAT && strstr(err.msg, "part.json") && strstr(err.msg, "\"w\""), "%s",
          err.msg);
    cJSON_ReplaceItemInObjectCaseSensitive(acc, "w", cJSON_Parse("[0, 0, 0, -1, 0, 0]"));
    CHECK(restore(g, c, NULL, &err) == MXP_ERR_FORMAT && strstr(err.msg, "\"w\""), "%s", err.msg);
    cJSON_ReplaceItemInObjectCaseSensitive(op, "name", cJSON_CreateString("model.layers.7.mlp.up_proj"));
    CHECK(restore(g, c, NULL, &err) == MXP_ERR_ARG && strstr(err.msg, "op 1"), "%s", err.msg);
    cJSON_Delete(c);
    cJSON_Delete(j);
    mxp_sens_free(&s);
}

static void test_latency(const mxp_graph *g) {
    mxp_profile_table t;
    mxp_err err = {0};
    mxp_workload wl = {.tokens = 4, .batch = 1};
    CHECK(mxp_profile_table_init(&t, g, &wl, FMTS, 3, NULL, 0, &err) == MXP_OK, "%s", err.msg);
    t.isa = "ref";
    for (int c = 0; c < t.n_cls; c++) {
        t.meas[c].ref_time_s = 2e-3;
        for (int k = 0; k < t.space[t.meas[c].rep].n_configs; k++)
            t.meas[c].cfg[k] = (mxp_cfg_stat){.time_s = 2e-3 - 1e-5 * k, .gain_s = 1e-5 * k, .repeats = 7};
    }
    for (int f = 0; f < MXP_FMT_COUNT; f++) t.rate[f] = 1e9 * (f + 1);
    char key[32];
    mxp_profile_cache_key(&t, g, key);
    cJSON *j = mxp_profile_to_json(&t, g, cJSON_CreateObject(), key);
    CHECK(j != NULL, "to JSON");
    mxp_profile_table b;
    CHECK(mxp_profile_table_init(&b, g, &wl, FMTS, 3, NULL, 0, &err) == MXP_OK, "%s", err.msg);
    CHECK(mxp_profile_from_json(&b, g, j, key, "lat.json", &err) == MXP_OK, "round trip: %s", err.msg);
    int same = b.n_cls == t.n_cls;
    for (int c = 0; same && c < t.n_cls; c++)
        for (int k = 0; k < t.space[t.meas[c].rep].n_configs; k++)
            same &= b.meas[c].cfg[k].gain_s == t.meas[c].cfg[k].gain_s && b.meas[c].cfg[k].repeats == 7;
    CHECK(same, "measurements differ after the round trip");
    mxp_profile_table_free(&b);
    // corrupt copies fail naming the file
    static const struct {
        const char *field, *value, *want;
    } bad[] = {
        {"cache_key", "\"fnv1a64:0000000000000000\"", "cache key"},
        {"op_times", "[]", "op_times"},
        {"subgraphs", "{}", "subgraphs"},
        {"mac_rates", "{\"f32\": 1}", "mac_rates"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        cJSON *c = cJSON_Duplicate(j, 1);
        cJSON_ReplaceItemInObjectCaseSensitive(c, bad[k].field, cJSON_Parse(bad[k].value));
        CHECK(mxp_profile_table_init(&b, g, &wl, FMTS, 3, NULL, 0, &err) == MXP_OK, "%s", err.msg);
        memset(&err, 0, sizeof err);
        CHECK(mxp_profile_from_json(&b, g, c, key, "lat.json", &err) == MXP_ERR_FORMAT && strstr(err.msg, "lat.json") &&
                  strstr(err.msg, bad[k].want),
              "%s = %s: %s", bad[k].field, bad[k].value, err.msg);
        mxp_profile_table_free(&b);
        cJSON_Delete(c);
    }
    // a repeat count out of range in one configuration
    cJSON *c = cJSON_Duplicate(j, 1);
    cJSON *cfg = cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(c, "subgraphs"), 1), "configs"),
        1);
    cJSON_ReplaceItemInObjectCaseSensitive(cfg, "repeats", cJSON_CreateNumber(1e300));
    CHECK(mxp_profile_table_init(&b, g, &wl, FMTS, 3, NULL, 0, &err) == MXP_OK, "%s", err.msg);
    CHECK(mxp_profile_from_json(&b, g, c, key, "lat.json", &err) == MXP_ERR_FORMAT && strstr(err.msg, "configuration 1"),
          "%s", err.msg);
    mxp_profile_table_free(&b);
    cJSON_Delete(c);
    cJSON_Delete(j);
    mxp_profile_table_free(&t);
}

int main(void) {
    mxp_model *m = model();
    if (!m) CHECK_DONE();
    test_sens(&m->graph);
    test_latency(&m->graph);
    mxp_model_free(m);
    CHECK_DONE();
}
