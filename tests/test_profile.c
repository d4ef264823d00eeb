// test_profile.c: the latency table (mxp_profile) is complete and consistent. A small
// synthetic Llama (2 blocks; ffn 80, so q8_0 cannot take down_proj) is profiled under a
// decode and a prefill workload with q/k/v and gate/up tied, and the JSON is checked against
// figures computed here independently:
//  - every sub-graph is listed (embedding, attention and MLP per block, norm, head), their node
//    ranges tile the graph, their ops are the block's linear ops;
//  - every configuration is listed exactly once: the product of the groups' allowed formats
//    (ties respected, block-size exclusions applied), the reference first with gain 0;
//  - gain_s == ref_time_s - time_s; mem_gain_bytes equals the bytes saved by the layouts of
//    docs/DESIGN.md 2 (f32 4, bf16 2, q8_0 34/32 bytes per weight); mac_gain follows from op_times'
//    MAC counts and mac_rates;
//  - sub-graphs with equal signatures carry one shared measurement (in prefill, except the last
//    block's, which run past llama.cpp's output cut on the last position only);
//  - the whole-model check's sub-graph prediction is the sum of the table's gains of its
//    configurations; a second run with the same settings comes from the cache unchanged.
// Both engines: ggml (the default) and native; the backend is part of the cache key, and the
// bundled models/tiny gives a complete table on ggml.
// Timings themselves are not asserted (machine noise); budgets are tiny to keep it fast.
#include <cJSON.h>
#include <ggml.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "arch/model.h"
#include "check.h"
#include "io/jsonout.h"

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }
static double num(const cJSON *o, const char *k) {
    const cJSON *x = get(o, k);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

static double bytes_per_weight(const char *f) {
    if (!strcmp(f, "f32")) return 4;
    if (!strcmp(f, "bf16")) return 2;
    if (!strcmp(f, "q8_0")) return 34.0 / 32.0;
    return NAN;
}

static const char *suffix(const char *name) {
    const char *d = strrchr(name, '.');
    return d ? d + 1 : name;
}

// Width (in, out) of an op from the model config, by its name ending.
static void op_shape(const mxp_model_config *c, const char *name, int *O, int *I) {
    const char *s = suffix(name);
    int D = c->dim, q = c->n_heads * c->head_dim, kv = c->n_kv_heads * c->head_dim;
    *I = D;
    if (!strcmp(s, "q_proj")) *O = q;
    else if (!strcmp(s, "k_proj") || !strcmp(s, "v_proj")) *O = kv;
    else if (!strcmp(s, "o_proj")) *O = D, *I = q;
    else if (!strcmp(s, "gate_proj") || !strcmp(s, "up_proj")) *O = c->ffn;
    else if (!strcmp(s, "down_proj")) *O = D, *I = c->ffn;
    else *O = c->vocab;  // lm_head
}

static int tie_group(const char *name) {
    const char *s = suffix(name);
    if (!strcmp(s, "q_proj") || !strcmp(s, "k_proj") || !strcmp(s, "v_proj")) return 1;
    if (!strcmp(s, "gate_proj") || !strcmp(s, "up_proj")) return 2;
    return 0;
}

static void check_table(const char *label, const cJSON *j, const mxp_model *m, int K) {
    const mxp_model_config *c = &m->config;
    const char *formats[] = {"f32", "bf16", "q8_0"};
    CHECK(cJSON_IsString(get(j, "format")) && !strcmp(get(j, "format")->valuestring, "mixprec-latency"), "%s format", label);
    CHECK(num(j, "version") == 1, "%s version", label);
    CHECK(cJSON_IsObject(get(j, "provenance")) && cJSON_IsObject(get(j, "machine")) && cJSON_IsObject(get(j, "measurement")),
          "%s provenance/machine/measurement", label);
    // the ggml library the formats come from, as ggml itself reports it
    char ggml_want[128];
    snprintf(ggml_want, sizeof ggml_want, "%s (commit %s)", ggml_version(), ggml_commit());
    const cJSON *gv = get(get(j, "provenance"), "ggml");
    CHECK(cJSON_IsString(gv) && !strcmp(gv->valuestring, ggml_want), "%s provenance ggml: %s, want %s", label,
          cJSON_IsString(gv) ? gv->valuestring : "(missing)", ggml_want);
    CHECK(cJSON_IsString(get(get(j, "machine"), "isa")) && num(get(j, "machine"), "threads") >= 1, "%s machine fields", label);
    CHECK(cJSON_GetArraySize(get(j, "ties")) == 2, "%s ties", label);
    const cJSON *rates = get(j, "mac_rates"), *opt = get(j, "op_times"), *sga = get(j, "subgraphs");
    // MAC counts per op shape from op_times, keyed by (O, I)
    int n_sg = cJSON_GetArraySize(sga), L = c->n_layers;
    CHECK(n_sg == 2 * L + 3, "%s: %d sub-graphs, want %d", label, n_sg, 2 * L + 3);
    int next_first = 0;
    for (int k = 0; k < n_sg; k++) {
        const cJSON *sg = cJSON_GetArrayItem(sga, k);
        const cJSON *nodes = get(sg, "nodes"), *ops = get(sg, "ops"), *cfgs = get(sg, "configs");
        int first = (int)cJSON_GetArrayItem(nodes, 0)->valuedouble, last = (int)cJSON_GetArrayItem(nodes, 1)->valuedouble;
        CHECK(first == next_first && last > first, "%s sub-graph %d range [%d, %d)", label, k, first, last);
        next_first = last;
        int n_ops = cJSON_GetArraySize(ops);
        int want_ops = k == 0 || k == n_sg - 2 ? 0 : k == n_sg - 1 ? 1 : (k % 2 ? 4 : 3);
        CHECK(n_ops == want_ops, "%s sub-graph %d has %d ops, want %d", label, k, n_ops, want_ops);
        // expected number of configurations: product over groups of the formats every member takes
        int allowed[3] = {7, 7, 7};  // bit mask over formats[] per tie group (0: untied, per op)
        long want_cfg = 1;
        for (int o = 0; o < n_ops; o++) {
            const char *name = cJSON_GetArrayItem(ops, o)->valuestring;
            int O, I, mask = 0;
            op_shape(c, name, &O, &I);
            for (int f = 0; f < 3; f++)
                if (strcmp(formats[f], "q8_0") || I % 32 == 0) mask |= 1 << f;
            int gidx = tie_group(name);
            if (gidx) allowed[gidx] &= mask;
            else want_cfg *= __builtin_popcount(mask);
        }
        for (int gi = 1; gi < 3; gi++) {
            int present = 0;
            for (int o = 0; o < n_ops; o++) present |= tie_group(cJSON_GetArrayItem(ops, o)->valuestring) == gi;
            if (present) want_cfg *= __builtin_popcount(allowed[gi]);
        }
        CHECK(cJSON_GetArraySize(cfgs) == want_cfg, "%s sub-graph %d: %d configurations, want %ld", label, k,
              cJSON_GetArraySize(cfgs), want_cfg);
        double ref = num(sg, "ref_time_s");
        CHECK(ref > 0, "%s sub-graph %d reference time %g", label, k, ref);
        char seen[4096][16];
        int n_seen = 0;
        for (int q = 0; q < cJSON_GetArraySize(cfgs); q++) {
            const cJSON *co = cJSON_GetArrayItem(cfgs, q), *ff = get(co, "formats");
            CHECK(cJSON_GetArraySize(ff) == n_ops, "%s sg %d cfg %d formats length", label, k, q);
            double t = num(co, "time_s"), gain = num(co, "gain_s");
            CHECK(fabs(gain - (ref - t)) <= 1e-12 + 1e-9 * ref, "%s sg %d cfg %d: gain %g != ref %g - time %g", label, k, q,
                  gain, ref, t);
            CHECK(num(co, "spread_s") >= 0 && num(co, "ci_s") >= 0 && num(co, "repeats") >= 1, "%s stats", label);
            double mem = 0, mac = 0;
            char key[16] = {0};
            int tie_fmt[3] = {-1, -1, -1}, ties_ok = 1;
            for (int o = 0; o < n_ops; o++) {
                const char *name = cJSON_GetArrayItem(ops, o)->valuestring, *f = cJSON_GetArrayItem(ff, o)->valuestring;
                int O, I, fi = 0;
                op_shape(c, name, &O, &I);
                mem += (4 - bytes_per_weight(f)) * O * (double)I;
                while (fi < 3 && strcmp(formats[fi], f)) fi++;
                CHECK(fi < 3, "%s unknown format %s", label, f);
                key[o] = (char)('a' + fi);
                int gi = tie_group(name);
                if (gi) {
                    if (tie_fmt[gi] >= 0 && tie_fmt[gi] != fi) ties_ok = 0;
                    tie_fmt[gi] = fi;
                }
                // MAC model from the table's own figures
                double macs = NAN;
                for (int s = 0; s < cJSON_GetArraySize(opt); s++) {
                    const cJSON *sh = get(cJSON_GetArrayItem(opt, s), "shape");
                    if (cJSON_GetArrayItem(sh, 0)->valuedouble == O && cJSON_GetArrayItem(sh, 1)->valuedouble == I)
                        macs = num(cJSON_GetArrayItem(opt, s), "macs");
                }
                mac += macs / num(rates, "f32") - macs / num(rates, f);
            }
            CHECK(ties_ok, "%s sg %d cfg %d breaks a tie", label, k, q);
            CHECK(fabs(num(co, "mem_gain_bytes") - mem) < 0.5, "%s sg %d cfg %d: mem gain %g, want %g", label, k, q,
                  num(co, "mem_gain_bytes"), mem);
            CHECK(fabs(num(co, "mac_gain") - mac) <= 1e-9 * (fabs(mac) + 1e-9), "%s sg %d cfg %d: mac gain %g, want %g",
                  label, k, q, num(co, "mac_gain"), mac);
            if (q == 0) CHECK(strspn(key, "a") == strlen(key) && gain == 0, "%s sg %d: the first configuration is the reference", label, k);
            int dup = 0;
            for (int s = 0; s < n_seen; s++) dup |= !strcmp(seen[s], key);
            CHECK(!dup, "%s sg %d cfg %d listed twice", label, k, q);
            if (n_seen < 4096) memcpy(seen[n_seen++], key, 16);
        }
        // shared signatures: same measurement as the representative
        int rep = (int)num(sg, "measured_in");
        const cJSON *rs = cJSON_GetArrayItem(sga, rep);
        CHECK(rep <= k && !strcmp(get(rs, "signature")->valuestring, get(sg, "signature")->valuestring),
              "%s sg %d measured in %d with another signature", label, k, rep);
        CHECK(num(rs, "ref_time_s") == ref, "%s sg %d shares its reference time", label, k);
        for (int q = 0; q < cJSON_GetArraySize(cfgs); q++)
            CHECK(num(cJSON_GetArrayItem(get(rs, "configs"), q), "gain_s") == num(cJSON_GetArrayItem(cfgs, q), "gain_s"),
                  "%s sg %d cfg %d shares its gain", label, k, q);
        // prefill: the last block's sub-graphs run past llama.cpp's output cut (only the last
        // position goes on after the last o_proj), so they are measured on their own
        int prefill = !strcmp(cJSON_GetObjectItem(get(j, "workload"), "kind")->valuestring, "prefill");
        int last_block = k >= n_sg - 4 && k < n_sg - 2;
        if (k >= 3 && k < n_sg - 2)
            CHECK(rep == (prefill && last_block ? k : k % 2 ? 1 : 2), "%s block sub-graph %d measured in %d", label, k, rep);
    }
    CHECK(next_first == m->graph.n_nodes, "%s: sub-graphs cover every node", label);
    const cJSON *ck = get(j, "check");
    if (K) {
        const cJSON *rows = get(ck, "rows");
        CHECK(cJSON_GetArraySize(rows) == K && num(ck, "e2e_ref_time_s") > 0, "%s check rows", label);
        for (int r = 0; r < cJSON_GetArraySize(rows); r++) {
            const cJSON *row = cJSON_GetArrayItem(rows, r), *cf = get(row, "configs");
            double sum = 0;
            for (int k = 0; k < n_sg && cJSON_GetArraySize(cf) == n_sg; k++) {
                int q = (int)cJSON_GetArrayItem(cf, k)->valuedouble;
                sum += num(cJSON_GetArrayItem(get(cJSON_GetArrayItem(sga, k), "configs"), q), "gain_s");
            }
            CHECK(fabs(sum - num(row, "pred_subgraph_s")) <= 1e-12 + 1e-9 * fabs(sum), "%s check row %d: %g vs %g", label,
                  r, sum, num(row, "pred_subgraph_s"));
            CHECK(isfinite(num(row, "measured_gain_s")) && isfinite(num(row, "pred_op_s")), "%s check row %d", label, r);
        }
    } else {
        CHECK(!ck, "%s: no check section without --check", label);
    }
}

// backend: NULL (the default, ggml) or "native". Returns the cache path in key_path.
static void run(mxp_model *m, const char *workload, int K, const char *cache, const char *backend, char *key_path,
                size_t cap) {
    const char *ties[] = {"q_proj,k_proj,v_proj", "gate_proj,up_proj"};
    mxp_profile_opts o = {.workload = workload, .formats = "f32,bf16,q8_0", .ties = ties, .n_ties = 2, .seed = 3,
                          .budget_s = 2, .check = K, .check_budget_s = 1.5, .cache_dir = cache, .no_cache = 0,
                          .backend = backend};
    char out[256];
    snprintf(out, sizeof out, "%s/latency.json", cache);
    mxp_profile_result r;
    mxp_err err = {0};
    CHECK(mxp_profile(m, &o, out, &r, &err) == MXP_OK, "%s: %s", workload, err.msg);
    int want_cls = strncmp(workload, "prefill", 7) ? 5 : 7;  // prefill: the last block's two on their own
    CHECK(!r.from_cache && r.n_subgraphs == 2 * m->config.n_layers + 3 && r.n_classes == want_cls,
          "%s result counts: %d classes", workload, r.n_classes);
    CHECK(r.n_check == K, "%s check rows in the result", workload);
    for (int i = 0; i < m->graph.n_nodes; i++) CHECK(m->graph.nodes[i].fmt == 0, "slots back at f32");
    snprintf(key_path, cap, "%s", r.cache_path);
    cJSON *j = NULL;
    CHECK(mxp_read_json(out, &j, &err) == MXP_OK, "%s", err.msg);
    if (j) check_table(workload, j, m, K);
    // the engine that ran the graphs is on record
    const char *want = backend ? backend : "ggml";
    const cJSON *be = j ? get(get(j, "machine"), "backend") : NULL, *en = j ? get(get(j, "machine"), "engine") : NULL;
    CHECK(cJSON_IsString(be) && !strcmp(be->valuestring, want), "%s: machine.backend %s, want %s", workload,
          cJSON_IsString(be) ? be->valuestring : "(missing)", want);
    CHECK(cJSON_IsString(en) && strstr(en->valuestring, strcmp(want, "ggml") ? "mixprec executor" : "libggml-cpu-") &&
              (strcmp(want, "ggml") || strstr(en->valuestring, ggml_commit())),
          "%s: machine.engine '%s'", workload, cJSON_IsString(en) ? en->valuestring : "(missing)");
    // same settings again: the cache answers, with the same measurements
    o.check = 0;
    mxp_profile_result r2;
    CHECK(mxp_profile(m, &o, out, &r2, &err) == MXP_OK, "%s again: %s", workload, err.msg);
    CHECK(r2.from_cache && !strcmp(r.cache_path, r2.cache_path), "%s: second run from the cache (%s)", workload,
          r2.cache_path);
    cJSON *j2 = NULL;
    CHECK(mxp_read_json(out, &j2, &err) == MXP_OK, "%s", err.msg);
    if (j && j2) {
        check_table("cached", j2, m, 0);
        // cJSON prints 15 significant digits when they read back within DBL_EPSILON: compare
        // every configuration's numbers with a relative tolerance of 1e-12
        const cJSON *s1 = get(j, "subgraphs"), *s2 = get(j2, "subgraphs");
        int same = cJSON_GetArraySize(s1) == cJSON_GetArraySize(s2), fields = 0;
        const char *keys[] = {"time_s", "spread_s", "gain_s", "ci_s", "repeats", "mac_gain", "mem_gain_bytes"};
        for (int k = 0; same && k < cJSON_GetArraySize(s1); k++) {
            const cJSON *c1 = get(cJSON_GetArrayItem(s1, k), "configs"), *c2 = get(cJSON_GetArrayItem(s2, k), "configs");
            same = cJSON_GetArraySize(c1) == cJSON_GetArraySize(c2);
            for (int q = 0; same && q < cJSON_GetArraySize(c1); q++)
                for (int f = 0; f < 7; f++) {
                    double x = num(cJSON_GetArrayItem(c1, q), keys[f]), y = num(cJSON_GetArrayItem(c2, q), keys[f]);
                    same &= fabs(x - y) <= 1e-12 * fmax(fabs(x), fabs(y)) + 1e-300;
                    fields++;
                }
        }
        CHECK(same && fields > 0, "%s: cached sub-graph table identical", workload);
    }
    cJSON_Delete(j);
    cJSON_Delete(j2);
    mxp_profile_result_free(&r);
    mxp_profile_result_free(&r2);
}

// A cached table with an impossible entry (as a busy machine leaves: a configuration saving
// three times its sub-graph's reference time, with a narrow CI) is not used: the next run
// measures again, and the cache then holds a consistent table or none. The poisoned table is
// the run's own (-o writes the cache's JSON), placed in the cache whether or not the run cached
// it, so the check does not depend on how busy the machine was.
static void poisoned_cache(mxp_model *m, const char *dir) {
    mxp_profile_opts o = {.workload = "decode:24", .formats = "f32,bf16,q8_0", .seed = 3, .budget_s = 2,
                          .cache_dir = dir};
    char out[256];
    snprintf(out, sizeof out, "%s/poisoned.json", dir);
    mxp_profile_result r;
    mxp_err err = {0};
    CHECK(mxp_profile(m, &o, out, &r, &err) == MXP_OK, "%s", err.msg);
    cJSON *j = NULL;
    CHECK(r.cache_path[0] && mxp_read_json(out, &j, &err) == MXP_OK, "%s", err.msg);
    if (!j) {
        mxp_profile_result_free(&r);
        return;
    }
    cJSON *sg = get(j, "subgraphs")->child;
    while (sg && cJSON_GetArraySize(get(sg, "configs")) < 2) sg = sg->next;
    CHECK(sg != NULL, "a sub-graph with configurations");
    if (sg) {
        double ref = num(sg, "ref_time_s");
        cJSON *cf = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(sg, "configs"), 1);
        cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(cf, "gain_s"), 3 * ref);
        cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(cf, "ci_s"), 0.1 * ref);
        cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(cf, "time_s"), -2 * ref);
        CHECK(mxp_write_json_atomic(r.cache_path, j, &err) == MXP_OK, "%s", err.msg);
    }
    cJSON_Delete(j);
    mxp_profile_result r2;
    CHECK(mxp_profile(m, &o, out, &r2, &err) == MXP_OK, "after poisoning: %s", err.msg);
    CHECK(!r2.from_cache, "a cached table with a configuration saving 3x its reference time was used");
    j = NULL;
    if (access(r.cache_path, F_OK) == 0 && mxp_read_json(r.cache_path, &j, &err) == MXP_OK) {
        int good = 1;
        for (const cJSON *s = get(j, "subgraphs")->child; s; s = s->next)
            for (const cJSON *c = get(s, "configs")->child; c; c = c->next)
                good &= num(c, "time_s") + num(c, "ci_s") >= 0;
        CHECK(good, "the re-measured cached table is consistent");
    }
    cJSON_Delete(j);
    mxp_profile_result_free(&r);
    mxp_profile_result_free(&r2);
}

int main(void) {
    mxp_model_config c = {.arch = MXP_ARCH_LLAMA, .vocab = 128, .dim = 64, .n_layers = 2, .n_heads = 4,
                          .n_kv_heads = 2, .head_dim = 16, .ffn = 80, .max_pos = 64, .norm_eps = 1e-5f,
                          .rope_theta = 10000.0};
    mxp_model *m;
    mxp_err err = {0};
    CHECK(mxp_model_synthetic(&c, 7, &m, &err) == MXP_OK, "%s", err.msg);
    if (!m) CHECK_DONE();
    char dir[200];
    if (!check_tmpdir(dir, sizeof dir, "mxp_test_profile")) {
        mxp_model_free(m);
        CHECK_DONE();
    }
    char key_ggml[1024], key_native[1024], key_prefill[1024];
    run(m, "decode:24", 2, dir, NULL, key_ggml, sizeof key_ggml);
    run(m, "prefill:16", 0, dir, NULL, key_prefill, sizeof key_prefill);
    run(m, "decode:24", 0, dir, "native", key_native, sizeof key_native);
    poisoned_cache(m, dir);
    // the backend is part of the cache key: same settings, another table
    CHECK(key_ggml[0] && key_native[0] && strcmp(key_ggml, key_native), "cache key by backend: %s vs %s", key_ggml,
          key_native);
    // the bundled tiny model on ggml: a complete table
    {
        mxp_model *tm = NULL;
        CHECK(mxp_model_load("models/tiny", &tm, &err) == MXP_OK, "%s", err.msg);
        mxp_profile_opts o = {.workload = "decode:16", .formats = "f32,q8_0,q4_0", .budget_s = 2, .cache_dir = dir,
                              .no_cache = 1};
        char out[300];
        snprintf(out, sizeof out, "%s/tiny.json", dir);
        mxp_profile_result r;
        CHECK(tm && mxp_profile(tm, &o, out, &r, &err) == MXP_OK, "models/tiny on ggml: %s", err.msg);
        cJSON *j = NULL;
        CHECK(mxp_read_json(out, &j, &err) == MXP_OK, "%s", err.msg);
        int n = 0, good = 1;
        for (const cJSON *sg = j ? get(j, "subgraphs")->child : NULL; sg; sg = sg->next, n++)
            for (const cJSON *cf = get(sg, "configs")->child; cf; cf = cf->next)
                // time_s = reference median - paired gain: finite, but on a loaded machine a
                // capped configuration's noise can exceed a 10-microsecond reference
                good &= isfinite(num(cf, "time_s")) && num(cf, "spread_s") >= 0 && num(cf, "repeats") >= 1 &&
                        isfinite(num(cf, "gain_s"));
        CHECK(tm && n == r.n_subgraphs && n == 2 * tm->config.n_layers + 3 && good,
              "models/tiny table: %d sub-graphs (result %d), every configuration measured: %d", n, r.n_subgraphs, good);
        cJSON_Delete(j);
        mxp_profile_result_free(&r);
        mxp_model_free(tm);
    }
    // bad arguments are clean errors
    mxp_profile_opts bad = {.workload = "decode:64", .cache_dir = dir};
    mxp_profile_result r;
    CHECK(mxp_profile(m, &bad, NULL, &r, &err) == MXP_ERR_ARG && strstr(err.msg, "positions"), "decode beyond max_pos: %s",
          err.msg);
    const char *tie[] = {"nope_proj"};
    mxp_profile_opts bad2 = {.workload = "prefill:8", .ties = tie, .n_ties = 1, .cache_dir = dir};
    CHECK(mxp_profile(m, &bad2, NULL, &r, &err) == MXP_ERR_ARG && strstr(err.msg, "nope_proj"), "unknown tie: %s", err.msg);
    mxp_profile_opts bad3 = {.workload = "prefill:8", .formats = "f32,q9", .cache_dir = dir};
    CHECK(mxp_profile(m, &bad3, NULL, &r, &err) == MXP_ERR_ARG, "bad format: %s", err.msg);
    mxp_profile_opts bad4 = {.workload = "prefill:x", .cache_dir = dir};
    CHECK(mxp_profile(m, &bad4, NULL, &r, &err) == MXP_ERR_ARG, "bad workload: %s", err.msg);
    // ggml cannot run f8_e4m3 (no ggml type): refused by name; the native kernels can
    mxp_profile_opts bad5 = {.workload = "prefill:8", .formats = "f32,f8_e4m3", .cache_dir = dir};
    CHECK(mxp_profile(m, &bad5, NULL, &r, &err) == MXP_ERR_ARG && strstr(err.msg, "f8_e4m3"), "f8 on ggml: %s", err.msg);
    mxp_profile_opts bad6 = {.workload = "prefill:8", .backend = "cuda", .cache_dir = dir};
    CHECK(mxp_profile(m, &bad6, NULL, &r, &err) == MXP_ERR_ARG && strstr(err.msg, "cuda"), "bad backend: %s", err.msg);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "cleanup");
    mxp_model_free(m);
    CHECK_DONE();
}
