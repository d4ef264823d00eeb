// profile_json.c: the latency table as JSON (schema: docs/FILES.md), the key of its cache,
// and reading a cached table back. Reading treats the file as hostile: every count, name and
// number is checked against the table the current model and options define.
#include <math.h>
#include <string.h>

#include "io/jsonout.h"
#include "method/profile.h"

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}
static uint64_t fnv_str(uint64_t h, const char *s) { return fnv(h, s, strlen(s) + 1); }
static uint64_t fnv_int(uint64_t h, long long v) { return fnv(h, &v, sizeof v); }

void mxp_profile_cache_key(const mxp_profile_table *t, const mxp_graph *g, char out[32]) {
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv_str(h, "mixprec-latency 2");  // the measuring method (2: weights evicted before each run)
    h = fnv_str(h, mxp_version());
    h = fnv_str(h, mxp_ggml_version());
    h = fnv_str(h, mxp_ggml_commit());
    h = fnv_str(h, t->cpu);
    h = fnv_str(h, t->blas);
    h = fnv_str(h, t->isa);
    h = fnv_str(h, t->backend ? t->backend : "native");
    h = fnv_str(h, t->engine);
    h = fnv_int(h, t->threads);
    h = fnv_int(h, t->wl.decode);
    h = fnv_int(h, t->wl.tokens);
    h = fnv_int(h, t->wl.batch);
    for (int i = 0; i < t->n_formats; i++) h = fnv_int(h, t->formats[i]);
    for (int i = 0; i < t->n_ties; i++) h = fnv_str(h, t->ties[i]);
    h = fnv_int(h, (long long)llround(t->rel_ci * 1e6));
    h = fnv_int(h, (long long)llround(t->budget_s * 1e3));
    for (int k = 0; k < t->part.n; k++) {
        h = fnv_str(h, t->part.sg[k].signature);
        for (int o = 0; o < t->part.sg[k].n_ops; o++) h = fnv_str(h, g->nodes[t->part.sg[k].ops[o]].name);
    }
    snprintf(out, 32, "fnv1a64:%016llx", (unsigned long long)h);
}

static const char *fname(mxp_format_id f) { return mxp_format_get(f)->name; }

// cJSON_Add* return NULL on OOM; collect failures in *ok.
static void add_num(cJSON *o, const char *k, double v, int *ok) {
    if (!cJSON_AddNumberToObject(o, k, isfinite(v) ? v : 0)) *ok = 0;
}
static void add_str(cJSON *o, const char *k, const char *v, int *ok) {
    if (!cJSON_AddStringToObject(o, k, v)) *ok = 0;
}
static void add_item(cJSON *o, const char *k, cJSON *v, int *ok) {
    if (!v || !cJSON_AddItemToObject(o, k, v)) {
        cJSON_Delete(v);
        *ok = 0;
    }
}
static void push(cJSON *a, cJSON *v, int *ok) {
    if (!v || !cJSON_AddItemToArray(a, v)) {
        cJSON_Delete(v);
        *ok = 0;
    }
}

static cJSON *stat_json(const mxp_cfg_stat *s, int *ok) {
    cJSON *o = cJSON_CreateObject();
    if (!o) {
        *ok = 0;
        return NULL;
    }
    add_num(o, "time_s", s->time_s, ok);
    add_num(o, "spread_s", s->spread_s, ok);
    add_num(o, "gain_s", s->gain_s, ok);
    add_num(o, "ci_s", s->ci_s, ok);
    add_num(o, "repeats", s->repeats, ok);
    if (s->capped && !cJSON_AddTrueToObject(o, "capped")) *ok = 0;
    return o;
}

static double median_of(double *x, int n) {
    for (int i = 1; i < n; i++)  // insertion sort: n is small
        for (int j = i; j > 0 && x[j] < x[j - 1]; j--) {
            double tmp = x[j];
            x[j] = x[j - 1];
            x[j - 1] = tmp;
        }
    return n ? (n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2])) : 0;
}

cJSON *mxp_profile_to_json(const mxp_profile_table *t, const mxp_graph *g, cJSON *provenance, const char *cache_key) {
    int ok = 1;
    cJSON *j = cJSON_CreateObject();
    if (!j) {
        cJSON_Delete(provenance);
        return NULL;
    }
    add_str(j, "format", "mixprec-latency", &ok);
    add_num(j, "version", 1, &ok);
    add_item(j, "provenance", provenance, &ok);
    cJSON *wl = cJSON_CreateObject();
    if (wl) {
        add_str(wl, "kind", t->wl.decode ? "decode" : "prefill", &ok);
        add_num(wl, "tokens", t->wl.tokens, &ok);
        add_num(wl, "batch", t->wl.batch, &ok);
    }
    add_item(j, "workload", wl, &ok);
    cJSON *fa = cJSON_CreateArray();
    for (int i = 0; fa && i < t->n_formats; i++) push(fa, cJSON_CreateString(fname(t->formats[i])), &ok);
    add_item(j, "formats", fa, &ok);
    cJSON *ta = cJSON_CreateArray();
    for (int i = 0; ta && i < t->n_ties; i++) {
        cJSON *one = cJSON_CreateArray();
        for (const char *p = t->ties[i]; one && *p;) {
            size_t len = strcspn(p, ",");
            char buf[256];
            snprintf(buf, sizeof buf, "%.*s", (int)(len < 255 ? len : 255), p);
            if (len) push(one, cJSON_CreateString(buf), &ok);
            p += len;
            if (*p == ',') p++;
        }
        push(ta, one, &ok);
    }
    add_item(j, "ties", ta, &ok);
    add_str(j, "cache_key", cache_key, &ok);
    // the machine and how it was measured
    cJSON *mc = cJSON_CreateObject();
    if (mc) {
        add_str(mc, "cpu", t->cpu, &ok);
        add_str(mc, "backend", t->backend ? t->backend : "native", &ok);
        add_str(mc, "engine", t->engine, &ok);
        add_str(mc, "isa", t->isa, &ok);
        add_num(mc, "threads", t->threads, &ok);
        add_str(mc, "blas", t->blas, &ok);
        add_num(mc, "llc_bytes", (double)t->llc_bytes, &ok);
        add_str(mc, "pinning", t->pinning, &ok);
        const char *wp = getenv("OMP_WAIT_POLICY");
        add_str(mc, "omp_wait_policy", wp ? wp : "(unset)", &ok);
    }
    add_item(j, "machine", mc, &ok);
    // noise: how far the measurements are from their targets
    int nrel = 0, capped = 0, nconf = 0, total = 0;
    for (int c = 0; c < t->n_cls; c++) total += t->space[t->meas[c].rep].n_configs;
    double *rel = malloc(sizeof(double) * (size_t)(total + 1));
    double max_rel = 0, ref_spread_rel = 0;
    for (int c = 0; c < t->n_cls; c++) {
        const mxp_class_meas *cm = &t->meas[c];
        int nc = t->space[cm->rep].n_configs;
        if (cm->ref_time_s > 0) ref_spread_rel = fmax(ref_spread_rel, cm->ref_spread_s / cm->ref_time_s);
        for (int k = 1; k < nc; k++) {
            double r = cm->ref_time_s > 0 ? cm->cfg[k].ci_s / cm->ref_time_s : 0;
            if (rel) rel[nrel++] = r;
            max_rel = fmax(max_rel, r);
            capped += cm->cfg[k].capped;
            nconf++;
        }
    }
    cJSON *nz = cJSON_CreateObject();
    if (nz) {
        add_num(nz, "rel_ci_target", t->rel_ci, &ok);
        add_num(nz, "budget_s", t->budget_s, &ok);
        add_num(nz, "seconds", t->seconds, &ok);
        add_num(nz, "configs", nconf, &ok);
        add_num(nz, "configs_capped", capped, &ok);
        add_num(nz, "median_rel_ci", rel ? median_of(rel, nrel) : 0, &ok);
        add_num(nz, "max_rel_ci", max_rel, &ok);
        add_num(nz, "max_ref_rel_spread", ref_spread_rel, &ok);
        add_num(nz, "load_avg_start", t->load_start, &ok);
        add_num(nz, "load_avg_end", t->load_end, &ok);
        add_num(nz, "flush_max_bytes", (double)t->flush_max, &ok);
    }
    free(rel);
    add_item(j, "measurement", nz, &ok);
    cJSON *rates = cJSON_CreateObject();
    for (int i = 0; rates && i < t->n_formats; i++) add_num(rates, fname(t->formats[i]), t->rate[t->formats[i]], &ok);
    add_item(j, "mac_rates", rates, &ok);
    // ops alone
    cJSON *opa = cJSON_CreateArray();
    for (int s = 0; opa && s < t->n_shapes; s++) {
        const mxp_op_shape *sh = &t->shapes[s];
        cJSON *o = cJSON_CreateObject(), *times = cJSON_CreateObject();
        if (!o || !times) {
            cJSON_Delete(o);
            cJSON_Delete(times);
            ok = 0;
            break;
        }
        cJSON *shp = cJSON_CreateArray();
        if (shp) {
            push(shp, cJSON_CreateNumber(sh->O), &ok);
            push(shp, cJSON_CreateNumber(sh->I), &ok);
        }
        add_item(o, "shape", shp, &ok);
        if (!cJSON_AddBoolToObject(o, "bias", sh->has_b)) ok = 0;
        add_str(o, "example", g->nodes[sh->rep].name, &ok);
        add_num(o, "macs", sh->macs, &ok);
        for (int i = 0; i < t->n_formats; i++)
            if (sh->ok[t->formats[i]]) add_item(times, fname(t->formats[i]), stat_json(&sh->st[t->formats[i]], &ok), &ok);
        add_item(o, "formats", times, &ok);
        push(opa, o, &ok);
    }
    add_item(j, "op_times", opa, &ok);
    // sub-graphs
    cJSON *sga = cJSON_CreateArray();
    mxp_format_id fm[256];
    for (int k = 0; sga && k < t->part.n && ok; k++) {
        const mxp_subgraph *sg = &t->part.sg[k];
        const mxp_class_meas *cm = &t->meas[t->cls[k]];
        const mxp_sg_space *sp = &t->space[k];
        cJSON *o = cJSON_CreateObject();
        if (!o) {
            ok = 0;
            break;
        }
        add_num(o, "id", k, &ok);
        add_str(o, "signature", sg->signature, &ok);
        cJSON *nr = cJSON_CreateArray();
        if (nr) {
            push(nr, cJSON_CreateNumber(sg->first), &ok);
            push(nr, cJSON_CreateNumber(sg->last), &ok);
        }
        add_item(o, "nodes", nr, &ok);
        add_num(o, "measured_in", cm->rep, &ok);
        cJSON *ops = cJSON_CreateArray();
        for (int q = 0; ops && q < sg->n_ops; q++) push(ops, cJSON_CreateString(g->nodes[sg->ops[q]].name), &ok);
        add_item(o, "ops", ops, &ok);
        add_num(o, "ref_time_s", cm->ref_time_s, &ok);
        add_num(o, "ref_spread_s", cm->ref_spread_s, &ok);
        cJSON *cfgs = cJSON_CreateArray();
        for (int c = 0; cfgs && c < sp->n_configs; c++) {
            mxp_sg_config_formats(sp, c, fm);
            cJSON *co = stat_json(&cm->cfg[c], &ok);
            if (!co) break;
            cJSON *ff = cJSON_CreateArray();
            for (int q = 0; ff && q < sg->n_ops; q++) push(ff, cJSON_CreateString(fname(fm[q])), &ok);
            if (ff && !cJSON_AddItemToObject(co, "formats", ff)) {
                cJSON_Delete(ff);
                ok = 0;
            } else if (!ff) {
                ok = 0;
            }
            add_num(co, "mac_gain", mxp_profile_mac_gain(t, g, k, c), &ok);
            add_num(co, "mem_gain_bytes", mxp_profile_mem_gain(t, g, k, c), &ok);
            push(cfgs, co, &ok);
        }
        add_item(o, "configs", cfgs, &ok);
        push(sga, o, &ok);
    }
    add_item(j, "subgraphs", sga, &ok);
    if (t->n_check) {
        cJSON *ck = cJSON_CreateObject(), *rows = cJSON_CreateArray();
        if (ck) add_num(ck, "e2e_ref_time_s", t->e2e_ref_s, &ok);
        for (int r = 0; rows && r < t->n_check; r++) {
            const mxp_check_row *cr = &t->check[r];
            cJSON *o = cJSON_CreateObject();
            if (!o) {
                ok = 0;
                break;
            }
            cJSON *cf = cJSON_CreateArray();
            for (int k = 0; cf && k < t->part.n; k++) push(cf, cJSON_CreateNumber(cr->cfg[k]), &ok);
            add_item(o, "configs", cf, &ok);
            add_num(o, "measured_gain_s", cr->measured_s, &ok);
            add_num(o, "measured_ci_s", cr->ci_s, &ok);
            add_num(o, "ref_time_s", cr->ref_s, &ok);
            add_num(o, "repeats", cr->repeats, &ok);
            add_num(o, "pred_subgraph_s", cr->pred_subgraph_s, &ok);
            add_num(o, "pred_op_s", cr->pred_op_s, &ok);
            add_num(o, "pred_mac_s", cr->pred_mac_s, &ok);
            push(rows, o, &ok);
        }
        if (ck) add_item(ck, "rows", rows, &ok);
        else cJSON_Delete(rows);
        add_item(j, "check", ck, &ok);
    }
    if (!ok) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

// ---- reading a cached table back ----

static int get_num(const cJSON *o, const char *k, double *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble)) return 0;
    *v = x->valuedouble;
    return 1;
}

static int read_stat(const cJSON *o, mxp_cfg_stat *s) {
    double rep;
    if (!cJSON_IsObject(o) || !get_num(o, "time_s", &s->time_s) || !get_num(o, "spread_s", &s->spread_s) ||
        !get_num(o, "gain_s", &s->gain_s) || !get_num(o, "ci_s", &s->ci_s) || !get_num(o, "repeats", &rep) || rep < 0 ||
        rep > 1e9)
        return 0;
    s->repeats = (int)rep;
    s->capped = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "capped"));
    return 1;
}

mxp_status mxp_profile_from_json(mxp_profile_table *t, const mxp_graph *g, const cJSON *j, const char *cache_key,
                                 const char *label, mxp_err *err) {
#define BAD(...) return mxp_fail(err, MXP_ERR_FORMAT, __VA_ARGS__)
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(j, "cache_key");
    double ver;
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "mixprec-latency") || !get_num(j, "version", &ver) || ver != 1)
        BAD("%s: not a mixprec-latency version 1 file", label);
    if (!cJSON_IsString(key) || strcmp(key->valuestring, cache_key)) BAD("%s: cache key differs", label);
    const cJSON *rates = cJSON_GetObjectItemCaseSensitive(j, "mac_rates");
    for (int i = 0; i < t->n_formats; i++)
        if (!get_num(rates, fname(t->formats[i]), &t->rate[t->formats[i]])) BAD("%s: mac_rates incomplete", label);
    const cJSON *opa = cJSON_GetObjectItemCaseSensitive(j, "op_times");
    if (!cJSON_IsArray(opa) || cJSON_GetArraySize(opa) != t->n_shapes) BAD("%s: op_times has the wrong length", label);
    for (int s = 0; s < t->n_shapes; s++) {
        mxp_op_shape *sh = &t->shapes[s];
        const cJSON *o = cJSON_GetArrayItem(opa, s);
        const cJSON *shp = cJSON_GetObjectItemCaseSensitive(o, "shape");
        const cJSON *ff = cJSON_GetObjectItemCaseSensitive(o, "formats");
        if (!cJSON_IsArray(shp) || cJSON_GetArraySize(shp) != 2 || !cJSON_IsNumber(cJSON_GetArrayItem(shp, 0)) ||
            !cJSON_IsNumber(cJSON_GetArrayItem(shp, 1)) || cJSON_GetArrayItem(shp, 0)->valuedouble != sh->O ||
            cJSON_GetArrayItem(shp, 1)->valuedouble != sh->I)
            BAD("%s: op_times[%d] shape differs", label, s);
        sh->ok[MXP_FMT_F32] = 1;
        for (int i = 0; i < t->n_formats; i++) {
            mxp_format_id f = t->formats[i];
            if (!sh->ok[f]) continue;
            if (!read_stat(cJSON_GetObjectItemCaseSensitive(ff, fname(f)), &sh->st[f]))
                BAD("%s: op_times[%d] lacks a valid %s entry", label, s, fname(f));
        }
    }
    const cJSON *sga = cJSON_GetObjectItemCaseSensitive(j, "subgraphs");
    if (!cJSON_IsArray(sga) || cJSON_GetArraySize(sga) != t->part.n) BAD("%s: subgraphs has the wrong length", label);
    mxp_format_id fm[256];
    for (int c = 0; c < t->n_cls; c++) {
        mxp_class_meas *cm = &t->meas[c];
        int k = cm->rep;
        const mxp_subgraph *sg = &t->part.sg[k];
        const mxp_sg_space *sp = &t->space[k];
        const cJSON *o = cJSON_GetArrayItem(sga, k);
        const cJSON *sig = cJSON_GetObjectItemCaseSensitive(o, "signature");
        const cJSON *cfgs = cJSON_GetObjectItemCaseSensitive(o, "configs");
        if (!cJSON_IsString(sig) || strcmp(sig->valuestring, sg->signature)) BAD("%s: sub-graph %d signature differs", label, k);
        if (!get_num(o, "ref_time_s", &cm->ref_time_s) || !get_num(o, "ref_spread_s", &cm->ref_spread_s))
            BAD("%s: sub-graph %d lacks its reference time", label, k);
        if (!cJSON_IsArray(cfgs) || cJSON_GetArraySize(cfgs) != sp->n_configs)
            BAD("%s: sub-graph %d has the wrong number of configurations", label, k);
        for (int q = 0; q < sp->n_configs; q++) {
            const cJSON *co = cJSON_GetArrayItem(cfgs, q);
            const cJSON *ff = cJSON_GetObjectItemCaseSensitive(co, "formats");
            if (!read_stat(co, &cm->cfg[q]) || !cJSON_IsArray(ff) || cJSON_GetArraySize(ff) != sg->n_ops)
                BAD("%s: sub-graph %d configuration %d is incomplete", label, k, q);
            mxp_sg_config_formats(sp, q, fm);
            for (int op = 0; op < sg->n_ops; op++) {
                const cJSON *name = cJSON_GetArrayItem(ff, op);
                if (!cJSON_IsString(name) || strcmp(name->valuestring, fname(fm[op])))
                    BAD("%s: sub-graph %d configuration %d lists other formats", label, k, q);
            }
        }
        cm->ref_runs = cm->cfg[0].repeats;
    }
    const cJSON *nz = cJSON_GetObjectItemCaseSensitive(j, "measurement");
    double v;
    if (get_num(nz, "seconds", &v)) t->seconds = v;
    if (get_num(nz, "load_avg_start", &v)) t->load_start = v;
    if (get_num(nz, "load_avg_end", &v)) t->load_end = v;
    return MXP_OK;
#undef BAD
}
