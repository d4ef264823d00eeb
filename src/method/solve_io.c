// solve_io.c: the integer program's inputs and outputs. Reads a sensitivity table and a
// latency table (docs/FILES.md) into groups of configurations (solve.h), applying the
// latency table's ties and the user's --force/--forbid patterns; writes plan bodies, the
// llama.cpp tensor-type file and runs the whole `mixprec solve` (mxp_solve, mixprec.h).
//
// Input rules (files are hostile): "format"/"version" checked; every op of a sub-graph must be
// in the sensitivity table and in at most one sub-graph; formats are known names; numbers are
// finite, sensitivities >= 0; a configuration that gives an op a format its sensitivity map
// lacks is dropped (counted), as is one a tie or a user pattern rules out. Ops the latency
// table does not list get a group of their own (time and MAC gain 0, memory gain computed).
//
// Must not: include glpk.h (solve.c only), write to stdout.
#include "method/solve.h"

#include <fnmatch.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "arch/gguf_names.h"
#include "io/jsonout.h"
#include "io/tensors.h"

static const char *const obj_names[MXP_OBJ_COUNT] = {"time", "memory", "mac"};

const char *mxp_objective_name(mxp_objective o) { return (unsigned)o < MXP_OBJ_COUNT ? obj_names[o] : "unknown"; }

mxp_status mxp_objective_parse(const char *s, mxp_objective *out, mxp_err *err) {
    for (int i = 0; i < MXP_OBJ_COUNT; i++)
        if (!strcmp(s, obj_names[i])) {
            *out = (mxp_objective)i;
            return MXP_OK;
        }
    return mxp_fail(err, MXP_ERR_ARG, "--objective \"%s\" is not one of time, memory, mac", s);
}

void mxp_solve_problem_free(mxp_solve_problem *p) {
    if (!p) return;
    for (int i = 0; i < p->n_ops; i++) free(p->ops[i].name);
    free(p->ops);
    free(p->by_name);
    free(p->group_id);
    free(p->profiled);
    free(p->gstart);
    free(p->gops_start);
    free(p->gops);
    free(p->cfg_fmt);
    free(p->cfg_fmt_off);
    for (int k = 0; k < MXP_OBJ_COUNT; k++) free(p->gain[k]);
    free(p->loss);
    free(p->bytes);
    cJSON_Delete(p->sens_prov);
    cJSON_Delete(p->lat_prov);
    memset(p, 0, sizeof *p);
}

// Op index by name, by bisection over p->by_name; -1 when absent.
static int find_op(const mxp_solve_problem *p, const char *name) {
    int lo = 0, hi = p->n_ops;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2, k = p->by_name[mid];
        int c = strcmp(p->ops[k].name, name);
        if (c == 0) return k;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

typedef struct named {
    const char *name;
    int idx;
} named;
static int cmp_named(const void *a, const void *b) {
    return strcmp(((const named *)a)->name, ((const named *)b)->name);
}

static mxp_status check_header(const cJSON *j, const char *want, const char *label, mxp_err *err) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "format");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "version");
    if (!cJSON_IsObject(j) || !cJSON_IsString(f) || strcmp(f->valuestring, want))
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: not a %s file (\"format\": \"%s\" missing)", label, want, want);
    if (!cJSON_IsNumber(v) || v->valuedouble != 1)
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: %s version is not 1", label, want);
    return MXP_OK;
}

static int json_pos_int(const cJSON *v, int64_t *out) {
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 1 && v->valuedouble <= 1e12) || v->valuedouble != floor(v->valuedouble))
        return 0;
    *out = (int64_t)v->valuedouble;
    return 1;
}

static mxp_status read_sens(mxp_solve_problem *p, const cJSON *sens, const char *label, mxp_err *err) {
    mxp_status st = check_header(sens, "mixprec-sensitivity", label, err);
    if (st) return st;
    const cJSON *ops = cJSON_GetObjectItemCaseSensitive(sens, "ops");
    const cJSON *complete = cJSON_GetObjectItemCaseSensitive(sens, "complete");
    if (cJSON_IsFalse(complete))
        return mxp_fail(err, MXP_ERR_ARG, "%s: a partial sensitivity table (\"complete\": false): finish it with "
                        "mixprec calibrate --resume first", label);
    if (!cJSON_IsArray(ops)) return mxp_fail(err, MXP_ERR_FORMAT, "%s: \"ops\" must be an array", label);
    int n = cJSON_GetArraySize(ops);
    if (n > (1 << 20)) return mxp_fail(err, MXP_ERR_FORMAT, "%s: too many ops (%d)", label, n);
    p->ops = mxp_calloc((size_t)n + 1, sizeof *p->ops);
    p->by_name = mxp_calloc((size_t)n + 1, sizeof *p->by_name);
    named *sorted = mxp_calloc((size_t)n + 1, sizeof *sorted);
    if (!p->ops || !p->by_name || !sorted) {
        free(sorted);
        return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    }
    // names first: sorted, so that duplicates are found and lookups are by bisection
    int i = 0;
    for (const cJSON *o = ops->child; o; o = o->next, i++) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
        if (!cJSON_IsString(name) || !name->valuestring[0]) {
            free(sorted);
            return mxp_fail(err, MXP_ERR_FORMAT, "%s: ops[%d] has no \"name\" string", label, i);
        }
        sorted[i] = (named){name->valuestring, i};
    }
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_named);
    for (i = 0; i < n; i++) {
        if (i && !strcmp(sorted[i - 1].name, sorted[i].name)) {
            st = mxp_fail(err, MXP_ERR_FORMAT, "%s: op \"%.200s\" is listed twice", label, sorted[i].name);
            free(sorted);
            return st;
        }
        p->by_name[i] = sorted[i].idx;
    }
    free(sorted);
    i = 0;
    for (const cJSON *o = ops->child; o; o = o->next, i++) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "s");
        mxp_solve_op *op = &p->ops[i];
        size_t f32_bytes;
        if (!json_pos_int(cJSON_GetObjectItemCaseSensitive(o, "in"), &op->in) ||
            !json_pos_int(cJSON_GetObjectItemCaseSensitive(o, "out"), &op->out))
            return mxp_fail(err, MXP_ERR_FORMAT, "%s: op \"%s\": \"in\" and \"out\" must be positive integers", label,
                            name->valuestring);
        if (mxp_format_matrix_bytes(MXP_FMT_F32, op->out, op->in, &f32_bytes, NULL))
            return mxp_fail(err, MXP_ERR_FORMAT, "%s: op \"%s\": a (%lld, %lld) weight (\"out\", \"in\") is too large",
                            label, name->valuestring, (long long)op->out, (long long)op->in);
        if (!cJSON_IsObject(s))
            return mxp_fail(err, MXP_ERR_FORMAT, "%s: op \"%s\": \"s\" must be an object of format: value", label,
                            name->valuestring);
        op->name = mxp_strdup(name->valuestring);
        if (!op->name) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        p->n_ops = i + 1;
        for (const cJSON *e = s->child; e; e = e->next) {
            mxp_format_id f;
            if (mxp_format_parse(e->string, &f, err))
                return mxp_fail_prefix(err, "%s: op \"%s\": ", label, op->name);
            if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble) || e->valuedouble < 0)
                return mxp_fail(err, MXP_ERR_FORMAT, "%s: op \"%s\": s[%s] must be a finite number >= 0", label, op->name,
                                e->string);
            size_t bytes;
            if (mxp_format_matrix_bytes(f, op->out, op->in, &bytes, NULL)) continue;  // width not allowed
            op->s[f] = e->valuedouble;
            op->has[f] = 1;
        }
        op->s[MXP_FMT_F32] = 0;  // the reference: s(ref) = 0 by definition
        op->has[MXP_FMT_F32] = 1;
    }
    return MXP_OK;
}

// "GLOB=FMT" -> pattern (owned copy in buf) and format.
static mxp_status parse_rule(const char *rule, const char *opt, char *buf, size_t cap, mxp_format_id *f, mxp_err *err) {
    const char *eq = strrchr(rule, '=');
    if (!eq || eq == rule || (size_t)(eq - rule) >= cap)
        return mxp_fail(err, MXP_ERR_ARG, "%s '%s': expected MODULE_GLOB=FORMAT, e.g. 'lm_head=f32'", opt, rule);
    memcpy(buf, rule, (size_t)(eq - rule));
    buf[eq - rule] = 0;
    if (mxp_format_parse(eq + 1, f, err)) return mxp_fail_prefix(err, "%s '%s': ", opt, rule);
    return MXP_OK;
}

typedef struct rules {
    int n;
    char (*pat)[256];
    mxp_format_id *fmt;
    int *force;  // 1 force, 0 forbid
} rules;

static mxp_status parse_rules(rules *r, const mxp_solve_filter *f, const mxp_solve_problem *p, mxp_err *err) {
    int n = (f ? f->n_force + f->n_forbid : 0);
    r->n = n;
    r->pat = mxp_calloc((size_t)n + 1, sizeof *r->pat);
    r->fmt = mxp_calloc((size_t)n + 1, sizeof *r->fmt);
    r->force = mxp_calloc((size_t)n + 1, sizeof *r->force);
    if (!r->pat || !r->fmt || !r->force) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        int is_force = i < f->n_force;
        const char *rule = is_force ? f->force[i] : f->forbid[i - f->n_force];
        const char *opt = is_force ? "--force" : "--forbid";
        mxp_status st = parse_rule(rule, opt, r->pat[i], sizeof r->pat[i], &r->fmt[i], err);
        if (st) return st;
        r->force[i] = is_force;
        int hits = 0;
        for (int k = 0; k < p->n_ops; k++) {
            if (fnmatch(r->pat[i], p->ops[k].name, 0)) continue;
            hits++;
            if (is_force && !p->ops[k].has[r->fmt[i]])
                return mxp_fail(err, MXP_ERR_ARG, "--force '%s': op %s cannot take %s (its width or the sensitivity table rules it out)",
                                rule, p->ops[k].name, mxp_format_get(r->fmt[i])->name);
        }
        if (!hits) return mxp_fail(err, MXP_ERR_ARG, "%s '%s': the pattern matches no op of the sensitivity table", opt, rule);
    }
    return MXP_OK;
}

static void free_rules(rules *r) {
    free(r->pat);
    free(r->fmt);
    free(r->force);
}

static int rules_allow(const rules *r, const char *op, mxp_format_id f) {
    for (int i = 0; i < r->n; i++) {
        if (fnmatch(r->pat[i], op, 0)) continue;
        if (r->force[i] ? f != r->fmt[i] : f == r->fmt[i]) return 0;
    }
    return 1;
}

// Length of the prefix of `op` before the tie member `m` ("model.layers.0.self_attn." for
// "q_proj"), or -1 when op does not end in "." + m (or equal m).
static int tie_prefix(const char *op, const char *m) {
    size_t lo = strlen(op), lm = strlen(m);
    if (lm == 0 || lo < lm || strcmp(op + lo - lm, m)) return -1;
    if (lo > lm && op[lo - lm - 1] != '.') return -1;
    return (int)(lo - lm);
}

// Do the formats f (aligned with ops idx[0..n)) respect every tie set?
static int ties_allow(const cJSON *ties, const mxp_solve_problem *p, const int *idx, const unsigned char *f, int n) {
    for (const cJSON *set = ties ? ties->child : NULL; set; set = set->next) {
        for (int a = 0; a < n; a++) {
            const char *na = p->ops[idx[a]].name;
            int pa = -1;
            for (const cJSON *m = set->child; m && pa < 0; m = m->next) pa = tie_prefix(na, m->valuestring);
            if (pa < 0) continue;
            for (int b = a + 1; b < n; b++) {
                const char *nb = p->ops[idx[b]].name;
                int pb = -1;
                for (const cJSON *m = set->child; m && pb < 0; m = m->next) pb = tie_prefix(nb, m->valuestring);
                if (pb == pa && !strncmp(na, nb, (size_t)pa) && f[a] != f[b]) return 0;
            }
        }
    }
    return 1;
}

static mxp_status check_ties(const cJSON *ties, const char *label, mxp_err *err) {
    if (!ties || cJSON_IsNull(ties)) return MXP_OK;
    if (!cJSON_IsArray(ties)) return mxp_fail(err, MXP_ERR_FORMAT, "%s: \"ties\" must be an array of arrays of names", label);
    for (const cJSON *set = ties->child; set; set = set->next) {
        if (!cJSON_IsArray(set)) return mxp_fail(err, MXP_ERR_FORMAT, "%s: \"ties\" must be an array of arrays of names", label);
        for (const cJSON *m = set->child; m; m = m->next)
            if (!cJSON_IsString(m) || !m->valuestring[0])
                return mxp_fail(err, MXP_ERR_FORMAT, "%s: \"ties\" entries must be non-empty strings", label);
    }
    return MXP_OK;
}

// Account one configuration (formats f of the group's ops) into the problem arrays.
static void add_config(mxp_solve_problem *p, int g, const unsigned char *f, double gain_s, double mac, size_t *fmt_used) {
    int c = p->n_cfg++;
    int a = p->gops_start[g], n = p->gops_start[g + 1] - a;
    p->cfg_fmt_off[c] = (int)*fmt_used;
    double loss = 0, bytes = 0, ref = 0;
    for (int k = 0; k < n; k++) {
        const mxp_solve_op *op = &p->ops[p->gops[a + k]];
        size_t b = 0, b32 = 0;
        MXP_ASSERT(mxp_format_matrix_bytes((mxp_format_id)f[k], op->out, op->in, &b, NULL) == MXP_OK);
        MXP_ASSERT(mxp_format_matrix_bytes(MXP_FMT_F32, op->out, op->in, &b32, NULL) == MXP_OK);
        loss += op->s[f[k]];
        bytes += (double)b;
        ref += (double)b32;
        p->cfg_fmt[(*fmt_used)++] = f[k];
    }
    p->gain[MXP_OBJ_TIME][c] = gain_s;
    p->gain[MXP_OBJ_MAC][c] = mac;
    p->gain[MXP_OBJ_MEMORY][c] = ref - bytes;
    p->loss[c] = loss;
    p->bytes[c] = bytes;
}

static mxp_status alloc_tables(mxp_solve_problem *p, int max_groups, int max_cfg, size_t max_fmt, mxp_err *err) {
    p->group_id = mxp_calloc((size_t)max_groups + 1, sizeof *p->group_id);
    p->profiled = mxp_calloc((size_t)max_groups + 1, 1);
    p->gstart = mxp_calloc((size_t)max_groups + 2, sizeof *p->gstart);
    p->gops_start = mxp_calloc((size_t)max_groups + 2, sizeof *p->gops_start);
    p->gops = mxp_calloc((size_t)p->n_ops + 1, sizeof *p->gops);
    p->cfg_fmt = mxp_calloc(max_fmt + 1, 1);
    p->cfg_fmt_off = mxp_calloc((size_t)max_cfg + 1, sizeof *p->cfg_fmt_off);
    p->loss = mxp_calloc((size_t)max_cfg + 1, sizeof(double));
    p->bytes = mxp_calloc((size_t)max_cfg + 1, sizeof(double));
    int ok = p->group_id && p->profiled && p->gstart && p->gops_start && p->gops && p->cfg_fmt && p->cfg_fmt_off &&
             p->loss && p->bytes;
    for (int k = 0; k < MXP_OBJ_COUNT; k++) {
        p->gain[k] = mxp_calloc((size_t)max_cfg + 1, sizeof(double));
        ok = ok && p->gain[k];
    }
    return ok ? MXP_OK : mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
}

static mxp_status build(mxp_solve_problem *p, const cJSON *sens, const char *sl, const cJSON *lat, const char *ll,
                        const mxp_solve_filter *f, rules *r, int **owner, unsigned char **fbuf, mxp_err *err) {
    mxp_status st = read_sens(p, sens, sl, err);
    if (st) return st;
    if ((st = check_header(lat, "mixprec-latency", ll, err))) return st;
    const cJSON *ties = cJSON_GetObjectItemCaseSensitive(lat, "ties");
    if ((st = check_ties(ties, ll, err))) return st;
    const cJSON *sgs = cJSON_GetObjectItemCaseSensitive(lat, "subgraphs");
    if (!cJSON_IsArray(sgs)) return mxp_fail(err, MXP_ERR_FORMAT, "%s: \"subgraphs\" must be an array", ll);
    if ((st = parse_rules(r, f, p, err))) return st;
    // sizes: first pass validates structure and counts
    *owner = mxp_calloc((size_t)p->n_ops + 1, sizeof **owner);  // 1 + index of the sub-graph holding op
    if (!*owner) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    int n_sg = 0, max_cfg = 0;
    size_t max_fmt = 0;
    for (const cJSON *sg = sgs->child; sg; sg = sg->next, n_sg++) {
        const cJSON *ops = cJSON_GetObjectItemCaseSensitive(sg, "ops");
        const cJSON *cfgs = cJSON_GetObjectItemCaseSensitive(sg, "configs");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(sg, "id");
        if (!cJSON_IsNumber(id) || id->valuedouble != floor(id->valuedouble) || fabs(id->valuedouble) > 1e9)
            return mxp_fail(err, MXP_ERR_FORMAT, "%s: subgraphs[%d] has no integer \"id\"", ll, n_sg);
        if (!cJSON_IsArray(ops) || !cJSON_IsArray(cfgs))
            return mxp_fail(err, MXP_ERR_FORMAT, "%s: sub-graph %d: \"ops\" and \"configs\" must be arrays", ll,
                            (int)id->valuedouble);
        int nops = cJSON_GetArraySize(ops), ncfg = cJSON_GetArraySize(cfgs);
        if (nops > 4096 || ncfg > (1 << 22) || max_cfg > (1 << 26) - ncfg)
            return mxp_fail(err, MXP_ERR_FORMAT, "%s: sub-graph %d is too large", ll, (int)id->valuedouble);
        for (const cJSON *o = ops->child; o; o = o->next) {
            if (!cJSON_IsString(o)) return mxp_fail(err, MXP_ERR_FORMAT, "%s: sub-graph %d: op names must be strings", ll, (int)id->valuedouble);
            int k = find_op(p, o->valuestring);
            if (k < 0)
                return mxp_fail(err, MXP_ERR_FORMAT, "%s: sub-graph %d: op %s is not in the sensitivity table %s", ll,
                                (int)id->valuedouble, o->valuestring, sl);
            if ((*owner)[k]) return mxp_fail(err, MXP_ERR_FORMAT, "%s: op %s is in two sub-graphs", ll, o->valuestring);
            (*owner)[k] = n_sg + 1;
        }
        max_cfg += ncfg;
        max_fmt += (size_t)ncfg * (size_t)nops;
    }
    int unprof = 0;
    for (int k = 0; k < p->n_ops; k++) unprof += !(*owner)[k];
    max_cfg += unprof * MXP_FMT_COUNT;
    max_fmt += (size_t)unprof * MXP_FMT_COUNT;
    if ((st = alloc_tables(p, n_sg + unprof, max_cfg, max_fmt, err))) return st;
    *fbuf = mxp_calloc(4096 + 1, 1);
    int *idx = mxp_calloc(4096 + 1, sizeof *idx);
    if (!*fbuf || !idx) {
        free(idx);
        return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    }
    unsigned char *fm = *fbuf;
    size_t fmt_used = 0;
    int nop_used = 0, s_i = 0;
    for (const cJSON *sg = sgs->child; sg && !st; sg = sg->next, s_i++) {
        const cJSON *ops = cJSON_GetObjectItemCaseSensitive(sg, "ops");
        const cJSON *cfgs = cJSON_GetObjectItemCaseSensitive(sg, "configs");
        int id = (int)cJSON_GetObjectItemCaseSensitive(sg, "id")->valuedouble;
        int nops = 0;
        for (const cJSON *o = ops->child; o; o = o->next) idx[nops++] = find_op(p, o->valuestring);
        if (nops == 0) continue;
        int g = p->n_groups++;
        p->group_id[g] = id;
        p->profiled[g] = 1;
        p->gstart[g] = p->n_cfg;
        p->gops_start[g] = nop_used;
        for (int k = 0; k < nops; k++) p->gops[nop_used++] = idx[k];
        p->gops_start[g + 1] = nop_used;
        int ci = 0;
        for (const cJSON *c = cfgs->child; c; c = c->next, ci++) {
            const cJSON *fs = cJSON_GetObjectItemCaseSensitive(c, "formats");
            const cJSON *gs = cJSON_GetObjectItemCaseSensitive(c, "gain_s");
            const cJSON *mg = cJSON_GetObjectItemCaseSensitive(c, "mac_gain");
            if (!cJSON_IsArray(fs) || cJSON_GetArraySize(fs) != nops) {
                st = mxp_fail(err, MXP_ERR_FORMAT, "%s: sub-graph %d config %d: \"formats\" must list one format per op (%d)", ll, id, ci, nops);
                break;
            }
            if (!cJSON_IsNumber(gs) || !isfinite(gs->valuedouble) || (mg && (!cJSON_IsNumber(mg) || !isfinite(mg->valuedouble)))) {
                st = mxp_fail(err, MXP_ERR_FORMAT, "%s: sub-graph %d config %d: \"gain_s\" (and \"mac_gain\") must be finite numbers", ll, id, ci);
                break;
            }
            int k = 0, usable = 1, allowed = 1;
            for (const cJSON *e = fs->child; e; e = e->next, k++) {
                mxp_format_id fid;
                if (!cJSON_IsString(e) || mxp_format_parse(e->valuestring, &fid, err)) {
                    st = mxp_fail(err, MXP_ERR_FORMAT, "%s: sub-graph %d config %d: unknown format at position %d", ll, id, ci, k);
                    break;
                }
                fm[k] = (unsigned char)fid;
                if (!p->ops[idx[k]].has[fid]) usable = 0;
                else if (!rules_allow(r, p->ops[idx[k]].name, fid)) allowed = 0;
            }
            if (st) break;
            if (!usable) {
                p->n_dropped_input++;
                continue;
            }
            if (!allowed || !ties_allow(ties, p, idx, fm, nops)) {
                p->n_dropped_user++;
                continue;
            }
            add_config(p, g, fm, gs->valuedouble, mg ? mg->valuedouble : 0, &fmt_used);
        }
        p->gstart[g + 1] = p->n_cfg;
    }
    // ops the latency table does not profile: one group each, every allowed format
    for (int k = 0; k < p->n_ops && !st; k++) {
        if ((*owner)[k]) continue;
        int g = p->n_groups++;
        p->group_id[g] = 0;
        p->profiled[g] = 0;
        p->gstart[g] = p->n_cfg;
        p->gops_start[g] = nop_used;
        p->gops[nop_used++] = k;
        p->gops_start[g + 1] = nop_used;
        for (int fi = 0; fi < MXP_FMT_COUNT; fi++) {
            if (!p->ops[k].has[fi]) continue;
            if (!rules_allow(r, p->ops[k].name, (mxp_format_id)fi)) {
                p->n_dropped_user++;
                continue;
            }
            fm[0] = (unsigned char)fi;
            add_config(p, g, fm, 0, 0, &fmt_used);
        }
        p->gstart[g + 1] = p->n_cfg;
    }
    free(idx);
    if (st) return st;
    // a group left without configurations: name it
    for (int g = 0; g < p->n_groups; g++) {
        if (p->gstart[g + 1] > p->gstart[g]) continue;
        const char *first = p->ops[p->gops[p->gops_start[g]]].name;
        if (p->profiled[g])
            return mxp_fail(err, MXP_ERR_ARG, "%s: sub-graph %d (ops %s...) has no configuration left after the sensitivity "
                            "table's formats, the ties and --force/--forbid", ll, p->group_id[g], first);
        return mxp_fail(err, MXP_ERR_ARG, "op %s has no format left after --force/--forbid", first);
    }
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(sens, "provenance");
    const cJSON *lp = cJSON_GetObjectItemCaseSensitive(lat, "provenance");
    if (cJSON_IsObject(sp)) p->sens_prov = cJSON_Duplicate(sp, 1);
    if (cJSON_IsObject(lp)) p->lat_prov = cJSON_Duplicate(lp, 1);
    return MXP_OK;
}

mxp_status mxp_solve_problem_build(mxp_solve_problem *p, const cJSON *sens, const char *sens_label, const cJSON *lat,
                                   const char *lat_label, const mxp_solve_filter *f, mxp_err *err) {
    memset(p, 0, sizeof *p);
    rules r = {0};
    int *owner = NULL;
    unsigned char *fbuf = NULL;
    mxp_status st = build(p, sens, sens_label, lat, lat_label, f, &r, &owner, &fbuf, err);
    free_rules(&r);
    free(owner);
    free(fbuf);
    if (st) mxp_solve_problem_free(p);
    return st;
}

mxp_status mxp_solve_problem_load(mxp_solve_problem *p, const char *sens_path, const char *lat_path,
                                  const mxp_solve_filter *f, mxp_err *err) {
    memset(p, 0, sizeof *p);
    cJSON *s = NULL, *l = NULL;
    mxp_status st = mxp_read_json(sens_path, &s, err);
    if (!st) st = mxp_read_json(lat_path, &l, err);
    if (!st) st = mxp_solve_problem_build(p, s, sens_path, l, lat_path, f, err);
    cJSON_Delete(s);
    cJSON_Delete(l);
    if (!st) st = mxp_hash_path(sens_path, p->sens_hash, err);
    if (!st) st = mxp_hash_path(lat_path, p->lat_hash, err);
    if (st) mxp_solve_problem_free(p);
    return st;
}

mxp_mckp mxp_solve_problem_mckp(const mxp_solve_problem *p, mxp_objective obj) {
    mxp_mckp m = {.n_groups = p->n_groups, .start = p->gstart, .gain = p->gain[obj], .loss = p->loss, .bytes = p->bytes};
    return m;
}

void mxp_solve_choice_formats(const mxp_solve_problem *p, const int *choice, unsigned char *fmt_out) {
    for (int i = 0; i < p->n_ops; i++) fmt_out[i] = MXP_FMT_F32;
    for (int g = 0; g < p->n_groups; g++) {
        int c = choice[g], a = p->gops_start[g], n = p->gops_start[g + 1] - a;
        MXP_ASSERT(c >= p->gstart[g] && c < p->gstart[g + 1]);
        for (int k = 0; k < n; k++) fmt_out[p->gops[a + k]] = p->cfg_fmt[p->cfg_fmt_off[c] + k];
    }
}

cJSON *mxp_solve_plan_body(const mxp_solve_problem *p, mxp_objective obj, const mxp_mckp_opts *o,
                           const mxp_mckp_result *r) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON *budget = cJSON_AddObjectToObject(j, "budget");
    cJSON *solver = cJSON_AddObjectToObject(j, "solver");
    cJSON *pred = cJSON_AddObjectToObject(j, "predicted");
    int ok = budget && solver && pred && cJSON_AddStringToObject(j, "objective", mxp_objective_name(obj)) &&
             cJSON_AddStringToObject(j, "sense", o->sense == MXP_SOLVE_MAX_GAIN ? "max_gain" : "min_loss");
    if (ok && o->has_max_loss) ok = cJSON_AddNumberToObject(budget, "max_loss_mse", o->max_loss) != NULL;
    if (ok && o->has_min_gain) ok = cJSON_AddNumberToObject(budget, "min_gain", o->min_gain) != NULL;
    if (ok && o->has_max_bytes) ok = cJSON_AddNumberToObject(budget, "max_weight_bytes", o->max_bytes) != NULL;
    ok = ok && cJSON_AddStringToObject(solver, "status", mxp_solve_status_name(r->status)) &&
         cJSON_AddNumberToObject(solver, "gap", r->gap) && cJSON_AddNumberToObject(solver, "bound", r->bound) &&
         cJSON_AddNumberToObject(solver, "seconds", r->seconds) &&
         cJSON_AddNumberToObject(solver, "configurations", r->n_cfg) &&
         cJSON_AddNumberToObject(solver, "kept_after_pruning", r->n_kept) &&
         cJSON_AddStringToObject(solver, "engine", "GLPK branch-and-cut (glp_intopt, presolve)");
    if (!ok || !r->choice) {
        if (ok) return j;
        cJSON_Delete(j);
        return NULL;
    }
    double gains[MXP_OBJ_COUNT] = {0}, loss = 0, bytes = 0;
    for (int g = 0; g < p->n_groups; g++) {
        int c = r->choice[g];
        for (int k = 0; k < MXP_OBJ_COUNT; k++) gains[k] += p->gain[k][c];
        loss += p->loss[c];
        bytes += p->bytes[c];
    }
    ok = cJSON_AddNumberToObject(pred, "loss_mse", loss) && cJSON_AddNumberToObject(pred, "time_gain_s", gains[MXP_OBJ_TIME]) &&
         cJSON_AddNumberToObject(pred, "mac_gain", gains[MXP_OBJ_MAC]) &&
         cJSON_AddNumberToObject(pred, "mem_gain_bytes", gains[MXP_OBJ_MEMORY]) &&
         cJSON_AddNumberToObject(pred, "weight_bytes", bytes);
    unsigned char *fmt = malloc((size_t)p->n_ops + 1);
    cJSON *ops = ok && fmt ? cJSON_AddObjectToObject(j, "ops") : NULL;
    if (ops) {
        mxp_solve_choice_formats(p, r->choice, fmt);
        for (int i = 0; i < p->n_ops && ok; i++)
            ok = cJSON_AddStringToObject(ops, p->ops[i].name, mxp_format_get((mxp_format_id)fmt[i])->name) != NULL;
    }
    free(fmt);
    if (!ops || !ok) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

mxp_status mxp_solve_write_tensor_types(const char *path, const mxp_solve_problem *p, const unsigned char *fmt,
                                        mxp_err *err) {
    size_t cap = (size_t)p->n_ops * 96 + 1, len = 0;
    char *buf = malloc(cap);
    if (!buf) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    mxp_status st = MXP_OK;
    for (int i = 0; i < p->n_ops && !st; i++) {
        char hf[512], gg[300];
        const mxp_format *f = mxp_format_get((mxp_format_id)fmt[i]);
        // a head tied to the token embedding (the table has no embedding op) is one tensor,
        // token_embd (docs/DESIGN.md 1.1)
        int tied_head = !strcmp(p->ops[i].name, "lm_head") && find_op(p, "model.embed_tokens") < 0 &&
                        find_op(p, "transformer.wte") < 0;
        snprintf(hf, sizeof hf, "%s.weight", tied_head ? "model.embed_tokens" : p->ops[i].name);
        if (!f->has_ggml_type)
            st = mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: op %s is %s, which has no GGML type (llama.cpp cannot hold it)",
                          path, p->ops[i].name, f->name);
        else if (!mxp_gguf_name_from_hf(hf, gg, sizeof gg, NULL))
            st = mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: op %s has no llama.cpp tensor name (Llama family only)", path,
                          p->ops[i].name);
        else {
            int w = snprintf(buf + len, cap - len, "%s=%s\n", gg, f->name);
            if (w < 0 || (size_t)w >= cap - len) st = mxp_fail(err, MXP_ERR_NOMEM, "%s: name too long", path);
            else len += (size_t)w;
        }
    }
    if (!st) st = mxp_write_file_atomic(path, buf, len, err);
    free(buf);
    return st;
}

// ---- mixprec solve ----

static cJSON *plan_provenance(const mxp_solve_problem *p, const mxp_solve_opts *o) {
    mxp_run_stamp rs;
    mxp_run_stamp_now(&rs);
    cJSON *j = cJSON_CreateObject();
    cJSON *in = j ? cJSON_AddObjectToObject(j, "inputs") : NULL;
    cJSON *s = in ? cJSON_AddObjectToObject(in, "sensitivity") : NULL;
    cJSON *l = in ? cJSON_AddObjectToObject(in, "latency") : NULL;
    int ok = s && l && cJSON_AddStringToObject(j, "tool", rs.tool) &&
             cJSON_AddStringToObject(j, "ggml", rs.ggml);
    // the model and data the tables were made from, as the sensitivity table records them
    static const char *const keys[] = {"model", "model_hash", "data", "data_hash"};
    for (size_t k = 0; ok && p->sens_prov && k < sizeof keys / sizeof *keys; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(p->sens_prov, keys[k]);
        if (cJSON_IsString(v)) ok = cJSON_AddStringToObject(j, keys[k], v->valuestring) != NULL;
    }
    ok = ok && cJSON_AddStringToObject(j, "machine", rs.machine) &&
         cJSON_AddStringToObject(j, "kernels", mxp_kernel_impl_name()) && cJSON_AddStringToObject(j, "created", rs.created) &&
         cJSON_AddStringToObject(s, "path", o->sens_path) && cJSON_AddStringToObject(s, "hash", p->sens_hash) &&
         cJSON_AddStringToObject(l, "path", o->latency_path) && cJSON_AddStringToObject(l, "hash", p->lat_hash);
    if (ok && p->sens_prov) {
        cJSON *d = cJSON_Duplicate(p->sens_prov, 1);
        ok = d && cJSON_AddItemToObject(s, "provenance", d);
    }
    if (ok && p->lat_prov) {
        cJSON *d = cJSON_Duplicate(p->lat_prov, 1);
        ok = d && cJSON_AddItemToObject(l, "provenance", d);
    }
    if (!ok) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

// The nearest feasible plan when the budget cannot be met; a message for the user.
static void explain_infeasible(const mxp_solve_problem *p, mxp_objective obj, const mxp_mckp_opts *mo,
                               mxp_solve_report *rep, mxp_err *err) {
    mxp_mckp m = mxp_solve_problem_mckp(p, obj);
    if (mo->has_max_bytes) {
        double least = 0;
        for (int g = 0; g < p->n_groups; g++) {
            double b = INFINITY;
            for (int c = p->gstart[g]; c < p->gstart[g + 1]; c++) b = fmin(b, p->bytes[c]);
            least += b;
        }
        if (least > mo->max_bytes) {
            mxp_fail(err, MXP_ERR_ARG, "infeasible: no plan fits --max-bytes %.0f: the smallest weight bytes any plan reaches "
                     "(with --force/--forbid and the ties) is %.0f", mo->max_bytes, least);
            return;
        }
    }
    mxp_mckp_opts near = *mo;
    near.has_max_loss = 0;
    near.has_min_gain = 0;
    near.sense = mo->sense == MXP_SOLVE_MAX_GAIN ? MXP_SOLVE_MIN_LOSS : MXP_SOLVE_MAX_GAIN;
    mxp_mckp_result r;
    mxp_err e2 = {0};
    if (mxp_mckp_solve(&m, &near, &r, &e2) || r.status == MXP_SOLVE_INFEASIBLE) {
        mxp_fail(err, MXP_ERR_ARG, "infeasible: no plan meets the budget, and none meets the other constraints either%s%s",
                 e2.msg[0] ? ": " : "", e2.msg);
        mxp_mckp_result_free(&r);
        return;
    }
    rep->has_nearest = 1;
    rep->nearest_loss_mse = r.loss;
    rep->nearest_gain = r.gain;
    rep->nearest_bytes = r.bytes;
    if (mo->sense == MXP_SOLVE_MAX_GAIN)
        mxp_fail(err, MXP_ERR_ARG, "infeasible: no plan has predicted loss MSE <= %.6g%s; the least-loss plan has loss MSE "
                 "%.6g (%s gain %.6g): use a budget of at least that",
                 mo->max_loss, mo->has_max_bytes ? " within --max-bytes" : "", r.loss, mxp_objective_name(obj), r.gain);
    else
        mxp_fail(err, MXP_ERR_ARG, "infeasible: no plan reaches %s gain %.6g%s; the largest gain reachable is %.6g "
                 "(loss MSE %.6g)", mxp_objective_name(obj), mo->min_gain, mo->has_max_bytes ? " within --max-bytes" : "",
                 r.gain, r.loss);
    mxp_mckp_result_free(&r);
}

static void fill_report(const mxp_solve_problem *p, const mxp_mckp_result *r, mxp_solve_report *rep) {
    rep->status = mxp_solve_status_name(r->status);
    rep->gap = r->gap;
    rep->seconds = r->seconds;
    rep->n_configs = r->n_cfg;
    rep->n_kept = r->n_kept;
    if (!r->choice) return;
    rep->solved = 1;
    rep->loss_mse = rep->time_gain_s = rep->mac_gain = rep->mem_gain_bytes = rep->weight_bytes = 0;
    for (int g = 0; g < p->n_groups; g++) {
        int c = r->choice[g];
        rep->loss_mse += p->loss[c];
        rep->time_gain_s += p->gain[MXP_OBJ_TIME][c];
        rep->mac_gain += p->gain[MXP_OBJ_MAC][c];
        rep->mem_gain_bytes += p->gain[MXP_OBJ_MEMORY][c];
        rep->weight_bytes += p->bytes[c];
    }
}

// Budgets of the Pareto sweep: n values log-spaced from the smallest non-zero plan loss to
// the largest (the least-loss plan's loss when it is > 0).
static int pareto_budgets(const mxp_solve_problem *p, int n, double *tau) {
    double lmin = 0, lmax = 0, step = INFINITY;
    for (int g = 0; g < p->n_groups; g++) {
        double lo = INFINITY, hi = 0;
        for (int c = p->gstart[g]; c < p->gstart[g + 1]; c++) {
            lo = fmin(lo, p->loss[c]);
            hi = fmax(hi, p->loss[c]);
        }
        lmin += lo;
        lmax += hi;
        for (int c = p->gstart[g]; c < p->gstart[g + 1]; c++)
            if (p->loss[c] > lo) step = fmin(step, p->loss[c] - lo);
    }
    double a = lmin > 0 ? lmin : step;
    if (!isfinite(a) || !(lmax > a) || n == 1) {
        tau[0] = lmax;
        return 1;
    }
    for (int k = 0; k < n; k++) tau[k] = a * pow(lmax / a, (double)k / (n - 1));
    tau[n - 1] = lmax;  // exactly the largest loss
    return n;
}

static mxp_status write_csv(const char *path, const cJSON *points, mxp_err *err) {
    size_t cap = 256 + (size_t)cJSON_GetArraySize(points) * 256, len = 0;
    char *buf = malloc(cap);
    if (!buf) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    len += (size_t)snprintf(buf, cap, "max_loss_mse,status,gap,loss_mse,time_gain_s,mac_gain,mem_gain_bytes,weight_bytes\n");
    for (const cJSON *pt = points->child; pt; pt = pt->next) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(pt, "budget");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(pt, "solver");
        const cJSON *pr = cJSON_GetObjectItemCaseSensitive(pt, "predicted");
        double v[6] = {0};
        static const char *const k[6] = {"loss_mse", "time_gain_s", "mac_gain", "mem_gain_bytes", "weight_bytes", "gap"};
        for (int i = 0; i < 5; i++) {
            const cJSON *x = cJSON_GetObjectItemCaseSensitive(pr, k[i]);
            v[i] = cJSON_IsNumber(x) ? x->valuedouble : NAN;
        }
        const cJSON *gap = cJSON_GetObjectItemCaseSensitive(s, k[5]);
        const cJSON *tau = cJSON_GetObjectItemCaseSensitive(b, "max_loss_mse");
        const cJSON *stt = cJSON_GetObjectItemCaseSensitive(s, "status");
        len += (size_t)snprintf(buf + len, cap - len, "%.9g,%s,%.3g,%.9g,%.9g,%.9g,%.9g,%.9g\n",
                                cJSON_IsNumber(tau) ? tau->valuedouble : NAN, cJSON_IsString(stt) ? stt->valuestring : "",
                                cJSON_IsNumber(gap) ? gap->valuedouble : NAN, v[0], v[1], v[2], v[3], v[4]);
        MXP_ASSERT(len < cap);
    }
    mxp_status st = mxp_write_file_atomic(path, buf, len, err);
    free(buf);
    return st;
}

mxp_status mxp_solve(const mxp_solve_opts *o, mxp_solve_report *rep, mxp_err *err) {
    memset(rep, 0, sizeof *rep);
    rep->status = "";
    mxp_objective obj = MXP_OBJ_TIME;
    if (!o->sens_path || !o->latency_path) return mxp_fail(err, MXP_ERR_ARG, "solve needs a sensitivity and a latency table");
    if (o->objective && mxp_objective_parse(o->objective, &obj, err)) return MXP_ERR_ARG;
    if (!o->has_max_loss && !o->has_min_gain && !o->has_max_bytes && o->pareto <= 0)
        return mxp_fail(err, MXP_ERR_ARG, "solve needs a budget: --max-loss-mse, --max-ppl-increase, --min-gain, "
                        "--max-bytes or --pareto N");
    if (o->has_max_loss && o->has_min_gain)
        return mxp_fail(err, MXP_ERR_ARG, "give either a loss budget (maximise the gain) or --min-gain (minimise the loss), not both");
    if (o->pareto > 10000) return mxp_fail(err, MXP_ERR_ARG, "--pareto %d: at most 10000 points", o->pareto);
    if (o->out_csv && o->pareto <= 0) return mxp_fail(err, MXP_ERR_ARG, "--csv writes the --pareto curve: give --pareto N");
    mxp_solve_filter f = {o->force, o->n_force, o->forbid, o->n_forbid};
    mxp_solve_problem p;
    mxp_status st = mxp_solve_problem_load(&p, o->sens_path, o->latency_path, &f, err);
    if (st) return st;
    rep->n_ops = p.n_ops;
    rep->n_groups = p.n_groups;
    rep->n_dropped_input = p.n_dropped_input;
    rep->n_dropped_user = p.n_dropped_user;
    mxp_mckp m = mxp_solve_problem_mckp(&p, obj);
    mxp_mckp_opts mo = {
        .sense = o->has_max_loss || o->pareto > 0 ? MXP_SOLVE_MAX_GAIN : MXP_SOLVE_MIN_LOSS,
        .has_max_loss = o->has_max_loss, .max_loss = o->max_loss_mse,
        .has_min_gain = o->has_min_gain, .min_gain = o->min_gain,
        .has_max_bytes = o->has_max_bytes, .max_bytes = o->max_bytes,
        .no_prune = o->no_prune, .time_limit_s = o->time_limit_s, .mip_gap = o->mip_gap,
    };
    if (!o->has_max_loss && o->has_min_gain) mo.sense = MXP_SOLVE_MIN_LOSS;
    cJSON *root = cJSON_CreateObject();
    cJSON *prov = plan_provenance(&p, o);
    int ok = root && prov && cJSON_AddStringToObject(root, "format", "mixprec-plan") &&
             cJSON_AddNumberToObject(root, "version", 1) && cJSON_AddItemToObject(root, "provenance", prov);
    if (!ok) {
        if (!root || !cJSON_GetObjectItemCaseSensitive(root, "provenance")) cJSON_Delete(prov);
        st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    }
    unsigned char *fmt = NULL;
    int have_main = o->has_max_loss || o->has_min_gain || o->has_max_bytes;
    if (!st && have_main && o->pareto > 0 && !o->has_max_loss) mo.sense = MXP_SOLVE_MIN_LOSS;
    if (!st && have_main) {
        mxp_mckp_opts main_o = mo;
        if (!o->has_max_loss) main_o.sense = MXP_SOLVE_MIN_LOSS;
        mxp_mckp_result r;
        st = mxp_mckp_solve(&m, &main_o, &r, err);
        if (!st) {
            fill_report(&p, &r, rep);
            if (r.status == MXP_SOLVE_INFEASIBLE) {
                explain_infeasible(&p, obj, &main_o, rep, err);
                st = MXP_ERR_ARG;
            } else {
                cJSON *body = mxp_solve_plan_body(&p, obj, &main_o, &r);
                if (!body) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
                // move the body's fields to the top level
                while (!st && body->child) {
                    cJSON *it = cJSON_DetachItemViaPointer(body, body->child);
                    cJSON_AddItemToObject(root, it->string, it);
                }
                cJSON_Delete(body);
                fmt = malloc((size_t)p.n_ops + 1);
                if (!st && !fmt) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
                if (!st) mxp_solve_choice_formats(&p, r.choice, fmt);
            }
        }
        mxp_mckp_result_free(&r);
    }
    if (!st && o->pareto > 0) {
        double *tau = malloc((size_t)o->pareto * sizeof *tau);
        cJSON *arr = cJSON_AddArrayToObject(root, "pareto");
        if (!tau || !arr) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        int n = st ? 0 : pareto_budgets(&p, o->pareto, tau);
        double t0 = mxp_now();
        for (int k = 0; k < n && !st; k++) {
            mxp_mckp_opts po = mo;
            po.sense = MXP_SOLVE_MAX_GAIN;
            po.has_max_loss = 1;
            po.max_loss = tau[k];
            po.has_min_gain = 0;
            mxp_mckp_result r;
            st = mxp_mckp_solve(&m, &po, &r, err);
            if (st) break;
            cJSON *body = mxp_solve_plan_body(&p, obj, &po, &r);
            if (!body) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
            else cJSON_AddItemToArray(arr, body);
            mxp_mckp_result_free(&r);
        }
        rep->pareto_points = n;
        rep->pareto_seconds = mxp_now() - t0;
        if (!st && o->out_csv) st = write_csv(o->out_csv, arr, err);
        free(tau);
    }
    if (!st && o->out_tensor_types) {
        if (!fmt) st = mxp_fail(err, MXP_ERR_ARG, "--tensor-types needs a single plan (a budget, not --pareto alone)");
        else st = mxp_solve_write_tensor_types(o->out_tensor_types, &p, fmt, err);
    }
    if (!st && o->out_plan) st = mxp_write_json_atomic(o->out_plan, root, err);
    free(fmt);
    cJSON_Delete(root);
    mxp_solve_problem_free(&p);
    return st;
}
