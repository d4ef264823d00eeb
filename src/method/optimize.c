// optimize.c: `mixprec optimize`: the whole pipeline of docs/DESIGN.md 3 in one call, then the
// measured check of every prediction it made.
//
//   calibrate -> sens.json          (sensitivities; the fisher metric accumulated too)
//   profile   -> latency.json       (measured time gain per sub-graph configuration)
//   solve     -> plan.json          (the user's budget), a Pareto sweep of budgets, and the
//                                   baselines: MAC objective, memory objective, fisher metric;
//                                   llama.cpp's Q8_0 and Q4_K_M mixes (llama-quantize) and the
//                                   least-loss plans of their sizes (--max-bytes)
//   apply     -> model.gguf
//   measure   every plan and every uniform format on held-out samples with the real kernels
//             (mxp_eval): loss MSE, perplexity, KL, top-1, tokens/s, time per workload unit
//   report    -> report.html (report.c) and report.json (the same figures for scripts)
//
// Everything is written into a private work folder inside out_dir (mkdtemp) and moved into
// out_dir by rename(2) only when every stage succeeded; on error or Ctrl-C the work folder is
// removed and out_dir keeps what it held. This file calls the public stages and reads their
// JSON files; it does not reimplement any of them.
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>
#include <omp.h>

#include "arch/model.h"
#include "io/jsonout.h"
#include "method/llama_bench.h"
#include "method/optimize.h"
#include "method/plan.h"
#include "method/profile.h"
#include "method/report.h"

#define PATH_CAP 4096
#define MAX_NOTES 16

enum { ST_CALIB, ST_PROFILE, ST_SOLVE, ST_APPLY, ST_MEASURE, ST_REPORT, ST_COUNT };
static const char *const stage_names[ST_COUNT] = {"calibrate", "profile", "solve", "apply", "measure", "report"};

typedef struct opt_ctx {
    const mxp_optimize_opts *o;
    mxp_model *m;
    mxp_workload wl;
    double tau;
    int seq_len, eval_samples, calib_samples;
    int unit_tokens;           // tokens per workload unit (prefill: T; decode: 1)
    int time_rounds;           // rounds of the whole-model timing
    char time_engine[640];     // what ran the whole-model timing (mxp_engine_describe)
    const char *time_backend;  // "ggml" or "native": the profile's backend
    char work[PATH_CAP];
    // sensitivity table (taylor "s"), op order of sens.json
    int n_ops;
    char **op_names;           // (n_ops) owned
    double *sens;              // (n_ops * MXP_FMT_COUNT)
    unsigned char *has;        // (n_ops * MXP_FMT_COUNT)
    int n_formats;
    mxp_format_id formats[MXP_FMT_COUNT];
    cJSON *latency;            // the latency table, parsed
    double profile_ref_s;      // sum of the sub-graph reference times
    // points
    mxp_opt_point *pts;
    int n_pts, cap_pts;
    double ref_loss, ref_ppl;
    int eval_tokens;
    char *notes[MAX_NOTES];
    int n_notes;
    // llama.cpp's speed of the GGUFs (llama-bench)
    int has_llama, llama_threads, llama_prefill, llama_decode, llama_rounds;
    double llama_ref_prefill, llama_ref_decode;
    char llama_build[96];
} opt_ctx;

static int stopped(const opt_ctx *c) { return c->o->stop && *c->o->stop; }

static void say(const opt_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const opt_ctx *c, const char *fmt, ...) {
    if (!c->o->progress) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("optimize: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void note(opt_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(opt_ctx *c, const char *fmt, ...) {
    if (c->n_notes == MAX_NOTES) return;
    char buf[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *s = strdup(buf);
    if (s) c->notes[c->n_notes++] = s;
}

// The formats profiled, i.e. the plan candidates: `list` without those that have no GGUF type
// (f8_e4m3), which are calibrated and measured as uniform baselines only. Names are checked.
static mxp_status gguf_formats(const char *list, char *out, size_t cap, mxp_err *err) {
    size_t n = 0;
    out[0] = 0;
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        char name[32];
        if (len == 0 || len >= sizeof name) return mxp_fail(err, MXP_ERR_ARG, "--formats '%s': empty or long name", list);
        memcpy(name, p, len);
        name[len] = 0;
        mxp_format_id f;
        if (mxp_format_parse(name, &f, err)) return mxp_fail_prefix(err, "--formats: ");
        if (mxp_format_get(f)->has_ggml_type) {
            int w = snprintf(out + n, cap - n, "%s%s", n ? "," : "", name);
            if (w < 0 || (size_t)w >= cap - n) return mxp_fail(err, MXP_ERR_ARG, "--formats '%s': list too long", list);
            n += (size_t)w;
        }
        p += len;
        if (*p == ',') p++;
    }
    if (!n) snprintf(out, cap, "f32");  // the reference is profiled anyway
    return MXP_OK;
}

static mxp_status work_path(const opt_ctx *c, const char *name, char *out, mxp_err *err) {
    if (snprintf(out, PATH_CAP, "%s/%s", c->work, name) >= PATH_CAP)
        return mxp_fail(err, MXP_ERR_ARG, "output folder path too long: %s", c->work);
    return MXP_OK;
}

// Remove the work folder and everything in it (only files this run created live there).
static void remove_work(const opt_ctx *c) {
    if (!c->work[0]) return;
    DIR *d = opendir(c->work);
    if (d) {
        struct dirent *e;
        char p[PATH_CAP + 260];
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            snprintf(p, sizeof p, "%s/%s", c->work, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(c->work);
}

static mxp_status make_dirs(opt_ctx *c, mxp_err *err) {
    const char *dir = c->o->out_dir;
    struct stat sb;
    if (stat(dir, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode)) return mxp_fail(err, MXP_ERR_ARG, "-o %s: exists and is not a folder", dir);
    } else if (mkdir(dir, 0777) != 0) {
        return mxp_fail(err, MXP_ERR_IO, "-o %s: cannot create the folder: %s", dir, strerror(errno));
    }
    if (snprintf(c->work, sizeof c->work, "%s/.mixprec-optimize-XXXXXX", dir) >= (int)sizeof c->work) {
        c->work[0] = 0;
        return mxp_fail(err, MXP_ERR_ARG, "-o %s: path too long", dir);
    }
    if (!mkdtemp(c->work)) {
        int e = errno;
        c->work[0] = 0;
        return mxp_fail(err, MXP_ERR_IO, "-o %s: cannot create a work folder inside it: %s", dir, strerror(e));
    }
    return MXP_OK;
}

// ---- sensitivity table ----

// 1 and *index set when the sensitivity table has op `name`, else 0.
static int find_op(const opt_ctx *c, const char *name, int *index) {
    for (int i = 0; i < c->n_ops; i++)
        if (!strcmp(c->op_names[i], name)) {
            *index = i;
            return 1;
        }
    return 0;
}

static mxp_status read_sens(opt_ctx *c, const char *path, mxp_err *err) {
    cJSON *j;
    mxp_status st = mxp_read_json(path, &j, err);
    if (st) return st;
    const cJSON *ops = cJSON_GetObjectItemCaseSensitive(j, "ops");
    const cJSON *fm = cJSON_GetObjectItemCaseSensitive(j, "formats");
    int n = cJSON_IsArray(ops) ? cJSON_GetArraySize(ops) : 0;
    if (n <= 0 || !cJSON_IsArray(fm)) {
        cJSON_Delete(j);
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: no ops in the sensitivity table", path);
    }
    for (const cJSON *f = fm->child; f && c->n_formats < MXP_FMT_COUNT; f = f->next) {
        mxp_format_id id;
        if (cJSON_IsString(f) && !mxp_format_parse(f->valuestring, &id, NULL)) c->formats[c->n_formats++] = id;
    }
    c->op_names = calloc((size_t)n, sizeof *c->op_names);
    c->sens = calloc((size_t)n * MXP_FMT_COUNT, sizeof *c->sens);
    c->has = calloc((size_t)n * MXP_FMT_COUNT, 1);
    if (!c->op_names || !c->sens || !c->has) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    int i = 0;
    for (const cJSON *op = ops->child; op && !st; op = op->next, i++) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(op, "name");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(op, "s");
        if (!cJSON_IsString(name) || !cJSON_IsObject(s)) {
            st = mxp_fail(err, MXP_ERR_FORMAT, "%s: op %d lacks \"name\" or \"s\"", path, i);
            break;
        }
        c->op_names[i] = strdup(name->valuestring);
        c->n_ops = i + 1;
        if (!c->op_names[i]) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        for (const cJSON *v = s->child; v && !st; v = v->next) {
            mxp_format_id id;
            if (!cJSON_IsNumber(v) || mxp_format_parse(v->string, &id, NULL)) continue;
            c->sens[(size_t)i * MXP_FMT_COUNT + id] = v->valuedouble;
            c->has[(size_t)i * MXP_FMT_COUNT + id] = 1;
        }
    }
    cJSON_Delete(j);
    return st;
}

// sens.json with "s" replaced by the fisher scores (for the fisher-metric baseline).
static mxp_status write_fisher_sens(const char *in, const char *out, mxp_err *err) {
    cJSON *j;
    mxp_status st = mxp_read_json(in, &j, err);
    if (st) return st;
    cJSON *ops = cJSON_GetObjectItemCaseSensitive(j, "ops");
    for (cJSON *op = cJSON_IsArray(ops) ? ops->child : NULL; op && !st; op = op->next) {
        const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(op, "metrics");
        const cJSON *fisher = cJSON_GetObjectItemCaseSensitive(metrics, "fisher");
        cJSON *dup = cJSON_IsObject(fisher) ? cJSON_Duplicate(fisher, 1) : NULL;
        if (!dup) {
            st = mxp_fail(err, MXP_ERR_FORMAT, "%s: an op has no fisher scores (\"metrics\": {\"fisher\": ...})", in);
            break;
        }
        cJSON_ReplaceItemInObjectCaseSensitive(op, "s", dup);
        cJSON_DeleteItemFromObjectCaseSensitive(op, "s_weight");
        cJSON_DeleteItemFromObjectCaseSensitive(op, "s_act");
        cJSON_DeleteItemFromObjectCaseSensitive(op, "se");
    }
    if (!st) {
        cJSON_DeleteItemFromObjectCaseSensitive(j, "metric");
        cJSON_AddStringToObject(j, "metric", "fisher");
        st = mxp_write_json_atomic(out, j, err);
    }
    cJSON_Delete(j);
    return st;
}

// ---- points ----

static mxp_opt_point *add_point(opt_ctx *c, mxp_point_kind kind, const char *label, mxp_err *err) {
    if (c->n_pts == c->cap_pts) {
        int cap = c->cap_pts ? 2 * c->cap_pts : 32;
        mxp_opt_point *p = realloc(c->pts, (size_t)cap * sizeof *p);
        if (!p) {
            mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
            return NULL;
        }
        c->pts = p;
        c->cap_pts = cap;
    }
    mxp_opt_point *p = &c->pts[c->n_pts];
    memset(p, 0, sizeof *p);
    p->fmt = calloc((size_t)c->n_ops, 1);
    if (!p->fmt) {
        mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    p->kind = kind;
    snprintf(p->label, sizeof p->label, "%s", label);
    c->n_pts++;
    return p;
}

// Predicted time gain (seconds per workload unit) of a format assignment: the sum over
// sub-graphs of the gain of the configuration that matches. 0 when some sub-graph was not
// profiled in that configuration (a format outside the profiled candidates).
static int predict_gain(const opt_ctx *c, const unsigned char *fmt, double *gain) {
    *gain = 0;
    const cJSON *sgs = cJSON_GetObjectItemCaseSensitive(c->latency, "subgraphs");
    for (const cJSON *sg = cJSON_IsArray(sgs) ? sgs->child : NULL; sg; sg = sg->next) {
        const cJSON *ops = cJSON_GetObjectItemCaseSensitive(sg, "ops");
        const cJSON *cfgs = cJSON_GetObjectItemCaseSensitive(sg, "configs");
        int n = cJSON_GetArraySize(ops), want[64];
        if (n == 0) continue;
        if (n > 64) return 0;
        int k = 0;
        for (const cJSON *op = ops->child; op; op = op->next, k++) {
            int i;
            want[k] = cJSON_IsString(op) && find_op(c, op->valuestring, &i) ? fmt[i] : MXP_FMT_F32;
        }
        int found = 0;
        for (const cJSON *cf = cJSON_IsArray(cfgs) ? cfgs->child : NULL; cf && !found; cf = cf->next) {
            const cJSON *fs = cJSON_GetObjectItemCaseSensitive(cf, "formats");
            const cJSON *g = cJSON_GetObjectItemCaseSensitive(cf, "gain_s");
            if (cJSON_GetArraySize(fs) != n || !cJSON_IsNumber(g)) continue;
            int match = 1;
            k = 0;
            for (const cJSON *f = fs->child; f && match; f = f->next, k++) {
                mxp_format_id id;
                match = cJSON_IsString(f) && !mxp_format_parse(f->valuestring, &id, NULL) && (int)id == want[k];
            }
            if (match) {
                *gain += g->valuedouble;
                found = 1;
            }
        }
        if (!found) return 0;
    }
    return 1;
}

// Predicted loss MSE (taylor sensitivities) of a format assignment; 0 if a format is not
// in the table for some op.
static int predict_loss(const opt_ctx *c, const unsigned char *fmt, double *loss) {
    *loss = 0;
    for (int i = 0; i < c->n_ops; i++) {
        size_t at = (size_t)i * MXP_FMT_COUNT + fmt[i];
        if (fmt[i] == MXP_FMT_F32) continue;
        if (!c->has[at]) return 0;
        *loss += c->sens[at];
    }
    return 1;
}

static void fill_prediction(const opt_ctx *c, mxp_opt_point *p) {
    double loss, gain;
    p->has_pred_loss = predict_loss(c, p->fmt, &loss);
    p->has_pred_gain = predict_gain(c, p->fmt, &gain) && c->profile_ref_s > 0;
    p->has_pred = p->has_pred_loss && p->has_pred_gain;
    p->pred_loss_mse = p->has_pred_loss ? loss : 0;
    p->pred_gain_s = p->has_pred_gain ? gain : 0;
    p->pred_gain_frac = p->has_pred_gain ? gain / c->profile_ref_s : 0;
}

// A prediction for the progress lines: the number, or what is missing instead of a NaN.
typedef struct pred_str {
    char s[32];
} pred_str;
static pred_str pred_loss_str(const mxp_opt_point *p) {
    pred_str r;
    if (p->has_pred_loss) snprintf(r.s, sizeof r.s, "%.3g", p->pred_loss_mse);
    else snprintf(r.s, sizeof r.s, "not calibrated");
    return r;
}
static pred_str pred_gain_str(const mxp_opt_point *p) {
    pred_str r;
    if (p->has_pred_gain) snprintf(r.s, sizeof r.s, "%+6.1f%%", 100 * p->pred_gain_frac);
    else snprintf(r.s, sizeof r.s, "not profiled");
    return r;
}

// A plan object (solve's plan JSON or one point of its "pareto" array) -> the point's formats.
static mxp_status plan_formats(opt_ctx *c, const cJSON *plan, const char *label, mxp_opt_point *p, mxp_err *err) {
    const cJSON *ops = cJSON_GetObjectItemCaseSensitive(plan, "ops");
    if (!cJSON_IsObject(ops)) return mxp_fail(err, MXP_ERR_FORMAT, "%s: plan without \"ops\"", label);
    for (const cJSON *it = ops->child; it; it = it->next) {
        int i;
        mxp_format_id f;
        if (!find_op(c, it->string, &i) || !cJSON_IsString(it) || mxp_format_parse(it->valuestring, &f, err))
            return mxp_fail(err, MXP_ERR_FORMAT, "%s: op \"%s\" not in the sensitivity table or bad format", label,
                            it->string);
        p->fmt[i] = (unsigned char)f;
    }
    fill_prediction(c, p);
    return MXP_OK;
}

static mxp_status load_plan_point(opt_ctx *c, const char *path, mxp_point_kind kind, const char *label, double budget,
                                  int has_budget, mxp_err *err) {
    cJSON *j;
    mxp_status st = mxp_read_json(path, &j, err);
    if (st) return st;
    mxp_opt_point *p = add_point(c, kind, label, err);
    if (!p) st = MXP_ERR_NOMEM;
    if (!st) st = plan_formats(c, j, path, p, err);
    if (!st) {
        p->has_budget = has_budget;
        p->budget = budget;
    }
    cJSON_Delete(j);
    return st;
}

// ---- stages ----

static mxp_status solve_one(opt_ctx *c, const char *sens, const char *objective, int min_gain, double gain,
                            const char *out, mxp_err *err) {
    char lat[PATH_CAP];
    mxp_status st = work_path(c, "latency.json", lat, err);
    if (st) return st;
    mxp_solve_opts so = {.sens_path = sens, .latency_path = lat, .objective = objective, .out_plan = out};
    if (min_gain) {
        so.has_min_gain = 1;
        so.min_gain = gain > 0 ? gain : 0;
    } else {
        so.has_max_loss = 1;
        so.max_loss_mse = c->tau;
    }
    mxp_solve_report rep;
    st = mxp_solve(&so, &rep, err);
    if (st) return mxp_fail_prefix(err, "solve (%s objective): ", objective);
    return MXP_OK;
}

static mxp_status stage_mixes(opt_ctx *c, mxp_err *err);
static mxp_status measure_accuracy(opt_ctx *c, int idx, mxp_err *err);

static mxp_status stage_solve(opt_ctx *c, mxp_err *err) {
    char sens[PATH_CAP], plan[PATH_CAP], pareto[PATH_CAP], lat[PATH_CAP];
    mxp_status st = work_path(c, "sens.json", sens, err);
    if (!st) st = work_path(c, "plan.json", plan, err);
    if (!st) st = work_path(c, "pareto.json", pareto, err);
    if (!st) st = work_path(c, "latency.json", lat, err);
    if (!st) st = solve_one(c, sens, "time", 0, 0, plan, err);
    if (!st) st = load_plan_point(c, plan, MXP_PT_CHOSEN, "chosen plan", c->tau, 1, err);
    if (st) return st;
    double chosen_gain = c->pts[0].pred_gain_s;
    say(c, "plan: predicted loss MSE %s (budget %.4g), predicted gain %.4g s per %s (%s of f32)",
        pred_loss_str(&c->pts[0]).s, c->tau, chosen_gain, c->wl.decode ? "token" : "pass", pred_gain_str(&c->pts[0]).s);
    // the Pareto sweep
    int n_pareto = c->o->pareto ? c->o->pareto : 7;
    mxp_solve_opts so = {.sens_path = sens, .latency_path = lat, .objective = "time", .pareto = n_pareto, .out_plan = pareto};
    mxp_solve_report rep;
    st = mxp_solve(&so, &rep, err);
    if (st) return mxp_fail_prefix(err, "solve (Pareto sweep): ");
    cJSON *j;
    st = mxp_read_json(pareto, &j, err);
    if (st) return st;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "pareto");
    int k = 0;
    for (const cJSON *pt = cJSON_IsArray(arr) ? arr->child : NULL; pt && !st; pt = pt->next) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pt, "budget"), "max_loss_mse");
        if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(pt, "ops")) || !cJSON_IsNumber(b)) continue;  // infeasible
        char label[64];
        snprintf(label, sizeof label, "sweep %d (tau %.2g)", ++k, b->valuedouble);
        mxp_opt_point *p = add_point(c, MXP_PT_PARETO, label, err);
        if (!p) st = MXP_ERR_NOMEM;
        else st = plan_formats(c, pt, pareto, p, err);
        if (!st) {
            p->has_budget = 1;
            p->budget = b->valuedouble;
        }
    }
    cJSON_Delete(j);
    if (st || c->o->no_baselines) return st;
    // baselines: other objectives at the same budget; the fisher metric at the same gain
    static const char *const objs[2] = {"mac", "memory"};
    static const mxp_point_kind kinds[2] = {MXP_PT_MAC, MXP_PT_MEMORY};
    for (int b = 0; b < 2 && !st; b++) {
        char name[64], path[PATH_CAP], label[64];
        snprintf(name, sizeof name, "plan_%s.json", objs[b]);
        snprintf(label, sizeof label, "%s objective", objs[b]);
        st = work_path(c, name, path, err);
        if (!st) st = solve_one(c, sens, objs[b], 0, 0, path, err);
        if (!st) st = load_plan_point(c, path, kinds[b], label, c->tau, 1, err);
    }
    char fsens[PATH_CAP], fplan[PATH_CAP];
    if (!st) st = work_path(c, "sens_fisher.json", fsens, err);
    if (!st) st = work_path(c, "plan_fisher.json", fplan, err);
    if (!st) st = write_fisher_sens(sens, fsens, err);
    if (!st) st = solve_one(c, fsens, "time", 1, chosen_gain, fplan, err);
    if (!st) st = load_plan_point(c, fplan, MXP_PT_FISHER, "fisher metric", 0, 0, err);
    if (st) return st;
    // every calibrated format, uniform (f32 is the reference every run measures); an op the
    // format does not fit takes llama.cpp's fallback, as `uniform:FMT` does (plan.c)
    for (int fi = 0; fi < c->n_formats && !st; fi++) {
        const mxp_format_id f = c->formats[fi];
        if (f == MXP_FMT_F32) continue;
        char label[64];
        snprintf(label, sizeof label, "uniform %s", mxp_format_get(f)->name);
        mxp_opt_point *p = add_point(c, MXP_PT_UNIFORM, label, err);
        if (!p) return MXP_ERR_NOMEM;
        p->uniform = f;
        for (int i = 0; i < c->n_ops; i++) {
            const mxp_format *ft = mxp_format_get(f);
            const unsigned char *has = c->has + (size_t)i * MXP_FMT_COUNT;
            p->fmt[i] = has[f]                                       ? (unsigned char)f
                        : ft->has_fallback && has[ft->fallback]      ? (unsigned char)ft->fallback
                                                                     : (unsigned char)MXP_FMT_F16;
        }
        fill_prediction(c, p);
    }
    return stage_mixes(c, err);
}

// llama.cpp's own mixes at their file sizes: llama-quantize (beside llama-bench) turns the f32
// GGUF into each mix; the mix's formats (read back from its GGUF) and the least-loss plan whose
// plan-op weights fit the mix's file size minus the bytes no plan op holds (norms, metadata:
// the f32 GGUF's size minus its plan-op weights) become two points, measured like the others.
// The model as an f32 GGUF in the work folder (llama-quantize's input and llama-bench's
// reference), written once: its path into out.
static mxp_status f32_gguf(opt_ctx *c, char *out, mxp_err *err) {
    struct stat sb;
    mxp_status st = work_path(c, "f32.gguf", out, err);
    if (st || !stat(out, &sb)) return st;
    mxp_apply_report ar;
    if ((st = mxp_apply(c->o->model_path, "uniform:f32", out, &ar, err))) {
        remove(out);
        return mxp_fail_prefix(err, "writing the f32 GGUF: ");
    }
    return MXP_OK;
}

// A missing llama-quantize, or a mix that fails, is a note.
static mxp_status stage_mixes(opt_ctx *c, mxp_err *err) {
    static const char *const mixes[] = {"Q8_0", "Q4_K_M"};
    char bench[PATH_CAP], quant[PATH_CAP], f32[PATH_CAP], sens[PATH_CAP], lat[PATH_CAP];
    if (c->o->no_llama_bench) return MXP_OK;
    if (!mxp_llama_bench_find(c->o->llama_bench, bench, sizeof bench) || !mxp_llama_quantize_find(bench, quant, sizeof quant)) {
        note(c, "no comparison with llama.cpp's own mixes: llama-quantize not found beside llama-bench "
                "(scripts/deps.sh builds both into build-deps/bin).");
        return MXP_OK;
    }
    mxp_status st = work_path(c, "sens.json", sens, err);
    if (!st) st = work_path(c, "latency.json", lat, err);
    if (!st) st = f32_gguf(c, f32, err);
    if (st) return mxp_fail_prefix(err, "llama.cpp mixes: ");
    struct stat fsb;
    if (stat(f32, &fsb)) return mxp_fail(err, MXP_ERR_IO, "llama.cpp mixes: %s: %s", f32, strerror(errno));
    double op_f32 = 0;  // plan-op weights in f32, as the f32 GGUF holds them
    const mxp_graph *g = &c->m->graph;
    for (int i = 0; i < g->n_nodes; i++)
        if (mxp_graph_is_op(g, i)) op_f32 += 4.0 * (double)g->params[g->nodes[i].w].nelem;
    double fixed = (double)fsb.st_size - op_f32;
    for (size_t k = 0; k < sizeof mixes / sizeof *mixes && !st; k++) {
        char name[64], gguf[PATH_CAP], logp[PATH_CAP], plan[PATH_CAP], label[64];
        snprintf(name, sizeof name, "llama_%s.gguf", mixes[k]);
        if ((st = work_path(c, name, gguf, err))) break;
        snprintf(name, sizeof name, "llama_%s.log", mixes[k]);
        if ((st = work_path(c, name, logp, err))) break;
        snprintf(name, sizeof name, "plan_%s.json", mixes[k]);
        if ((st = work_path(c, name, plan, err))) break;
        mxp_err e2 = {0};
        struct stat sb;
        mxp_model *mm = NULL;
        if (mxp_llama_quantize_run(quant, f32, gguf, mixes[k], logp, &e2) || stat(gguf, &sb) ||
            mxp_model_load(gguf, &mm, &e2)) {
            note(c, "llama.cpp mix %s not compared: %s", mixes[k], e2.msg[0] ? e2.msg : "no GGUF written");
            continue;
        }
        snprintf(label, sizeof label, "llama.cpp %s", mixes[k]);
        int im = c->n_pts;
        mxp_opt_point *p = add_point(c, MXP_PT_LLAMA_MIX, label, err);
        if (!p) st = MXP_ERR_NOMEM;
        for (int i = 0; !st && i < mm->graph.n_nodes; i++) {
            int op;
            if (mxp_graph_is_op(&mm->graph, i) && find_op(c, mm->graph.nodes[i].name, &op))
                p->fmt[op] = (unsigned char)mm->graph.nodes[i].fmt;
        }
        mxp_model_free(mm);
        if (st) break;
        fill_prediction(c, p);
        mxp_solve_opts so = {.sens_path = sens, .latency_path = lat, .objective = "time", .out_plan = plan,
                             .has_max_bytes = 1, .max_bytes = (double)sb.st_size - fixed};
        mxp_solve_report rep;
        if (mxp_solve(&so, &rep, &e2)) {
            note(c, "no plan at the size of llama.cpp's %s (%.0f bytes): %s", mixes[k], (double)sb.st_size, e2.msg);
            continue;
        }
        snprintf(label, sizeof label, "mixprec at %s's size", mixes[k]);
        st = load_plan_point(c, plan, MXP_PT_SIZED, label, 0, 0, err);
        // the fastest plan within the mix's measured loss MSE: what a user who accepts the mix's
        // accuracy deploys instead (measuring the mix now; stage_measure does not repeat it)
        if (!st) st = measure_accuracy(c, im, err);
        if (st) break;
        c->pts[im].acc_measured = 1;
        double mix_loss = c->pts[im].loss_mse;
        snprintf(name, sizeof name, "plan_%s_loss.json", mixes[k]);
        if ((st = work_path(c, name, plan, err))) break;
        mxp_solve_opts so2 = {.sens_path = sens, .latency_path = lat, .objective = "time", .out_plan = plan,
                              .has_max_loss = 1, .max_loss_mse = mix_loss};
        if (mxp_solve(&so2, &rep, &e2)) {
            note(c, "no plan within the loss of llama.cpp's %s (loss MSE %.3g): %s", mixes[k], mix_loss, e2.msg);
            continue;
        }
        snprintf(label, sizeof label, "mixprec at %s's loss", mixes[k]);
        st = load_plan_point(c, plan, MXP_PT_LOSS_MATCHED, label, mix_loss, 0, err);
    }
    return st;  // f32.gguf stays for llama-bench (the work folder goes at the end)
}

// Accuracy of one configuration on the held-out samples (mxp_eval, real kernels).
static mxp_status measure_accuracy(opt_ctx *c, int idx, mxp_err *err) {
    mxp_opt_point *p = &c->pts[idx];
    char spec[PATH_CAP];
    mxp_status st = MXP_OK;
    if (p->kind == MXP_PT_UNIFORM) {
        snprintf(spec, sizeof spec, "uniform:%s", mxp_format_get((mxp_format_id)p->uniform)->name);
    } else {
        char name[32];
        snprintf(name, sizeof name, "point_%d.json", idx);
        st = work_path(c, name, spec, err);
        if (!st) st = mxp_plan_write(spec, (const char *const *)c->op_names, p->fmt, c->n_ops, err);
        if (st) return st;
    }
    mxp_eval_opts eo = {.data_path = c->o->data_path, .seq_len = c->seq_len, .batch = 1,
                        .max_samples = c->eval_samples, .formats = spec, .decode_tokens = -1};
    mxp_eval_result r;
    st = mxp_eval(c->m, &eo, &r, err);
    if (st) return mxp_fail_prefix(err, "measuring %s: ", p->label);
    p->loss = r.quant.loss;
    p->ppl = r.quant.perplexity;
    p->loss_mse = r.loss_mse;
    p->loss_mse_se = r.loss_mse_se;
    p->kl = r.kl;
    p->top1 = r.top1;
    p->weight_bytes = r.quant.weight_bytes;
    if (!c->eval_tokens) {
        c->ref_loss = r.ref.loss;
        c->ref_ppl = r.ref.perplexity;
        c->eval_tokens = (int)r.tokens;
        c->eval_samples = (int)r.samples;
    }
    return MXP_OK;
}

static void copy_measured(mxp_opt_point *dst, const mxp_opt_point *src) {
    dst->loss = src->loss;
    dst->ppl = src->ppl;
    dst->loss_mse = src->loss_mse;
    dst->loss_mse_se = src->loss_mse_se;
    dst->kl = src->kl;
    dst->top1 = src->top1;
    dst->ref_time_s = src->ref_time_s;
    dst->time_s = src->time_s;
    dst->gain_s = src->gain_s;
    dst->gain_frac = src->gain_frac;
    dst->gain_ci_frac = src->gain_ci_frac;
    dst->tokens_per_s = src->tokens_per_s;
    dst->ref_tokens_per_s = src->ref_tokens_per_s;
    dst->weight_bytes = src->weight_bytes;
}

static void drop_point(opt_ctx *c, int i) {
    free(c->pts[i].fmt);
    memmove(&c->pts[i], &c->pts[i + 1], (size_t)(c->n_pts - i - 1) * sizeof *c->pts);
    c->n_pts--;
}

// Whole-model timing of every distinct configuration against f32 (optimize_time.c).
static mxp_status measure_time(opt_ctx *c, mxp_err *err) {
    const mxp_graph *g = &c->m->graph;
    int nn = g->n_nodes, n = 0;
    int *which = malloc((size_t)c->n_pts * sizeof *which);
    unsigned char *cfg = calloc((size_t)c->n_pts * nn, 1);  // zero: f32
    mxp_e2e_time *tm = calloc((size_t)c->n_pts, sizeof *tm);
    mxp_status st = which && cfg && tm ? MXP_OK : mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    for (int i = 0; i < c->n_pts && !st; i++) {
        if (c->pts[i].is_dup) continue;
        for (int op = 0; op < c->n_ops; op++) {
            int node;
            if (mxp_graph_find_op(g, c->op_names[op], &node)) cfg[(size_t)n * nn + node] = c->pts[i].fmt[op];
        }
        which[n++] = i;
    }
    mxp_e2e_time ref = {0};
    double load[1] = {0};
    int have_load = getloadavg(load, 1) == 1;
    double budget = c->o->profile_budget_s > 0 ? c->o->profile_budget_s / 2 : 45;
    if (!st) {
        // the engine that timed the latency table times the whole model too
        c->time_backend = c->o->profile_backend && !strcmp(c->o->profile_backend, "native") ? "native" : "ggml";
        say(c, "timing %d configurations and f32 end to end on %s (%s, up to %.0f s)", n,
            strcmp(c->time_backend, "ggml") ? "mixprec's executor" : "ggml", c->o->workload, budget);
        st = mxp_e2e_time_configs(c->m, &c->wl, c->time_backend, n, cfg, 41, budget, &ref, tm, c->time_engine,
                                  sizeof c->time_engine, c->o->stop, err);
    }
    for (int k = 0; k < n && !st; k++) {
        mxp_opt_point *p = &c->pts[which[k]];
        if (!tm[k].timed) {
            p->time_s = p->gain_s = p->gain_frac = p->gain_ci_frac = p->tokens_per_s = NAN;
            p->ref_time_s = ref.time_s;
            p->ref_tokens_per_s = c->unit_tokens / ref.time_s;
            note(c, "%s was not timed end to end on ggml: %s (--profile-backend native times it on mixprec's kernels).",
                 p->label, tm[k].why);
            say(c, "%s: not timed on ggml: %s", p->label, tm[k].why);
            continue;
        }
        p->ref_time_s = ref.time_s;
        p->time_s = tm[k].time_s;
        p->gain_s = tm[k].gain_s;
        p->gain_frac = tm[k].gain_s / ref.time_s;
        p->gain_ci_frac = tm[k].ci_s / ref.time_s;
        p->tokens_per_s = c->unit_tokens / tm[k].time_s;
        p->ref_tokens_per_s = c->unit_tokens / ref.time_s;
    }
    if (!st) c->time_rounds = ref.rounds;
    double load2[1] = {0};
    if (!st && have_load && getloadavg(load2, 1) == 1) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        note(c, "Load average (1 min) around the whole-model timing: %.1f before, %.1f after, on %ld CPUs%s.", load[0],
             load2[0], ncpu, load2[0] > 1.5 * (double)ncpu ? ": the machine was busy, time gains are noisy" : "");
    }
    if (!st && !c->o->no_pin && !getenv("OMP_PROC_BIND"))
        note(c, "OpenMP threads were pinned one per CPU while profiling (the whole-model timing runs unpinned); "
                "when other programs compete for the CPUs, --no-pin may time more reliably.");
    free(which);
    free(cfg);
    free(tm);
    return st;
}

static mxp_status stage_measure(opt_ctx *c, mxp_err *err) {
    // configurations with the same formats are measured once
    for (int i = 0; i < c->n_pts; i++)
        for (int j = 0; j < i; j++)
            if (!c->pts[j].is_dup && !memcmp(c->pts[j].fmt, c->pts[i].fmt, (size_t)c->n_ops)) {
                c->pts[i].is_dup = 1;
                c->pts[i].dup_of = j;
                break;
            }
    double t0 = mxp_now();
    int n_eval = 0, done = 0;
    for (int i = 0; i < c->n_pts; i++) n_eval += !c->pts[i].is_dup;
    for (int i = 0; i < c->n_pts; i++) {
        mxp_opt_point *p = &c->pts[i];
        if (p->is_dup) continue;
        if (p->acc_measured) {
            done++;
            continue;
        }
        if (stopped(c)) return mxp_fail(err, MXP_ERR_INTERRUPTED, "interrupted while measuring");
        mxp_err e2 = {0};
        mxp_status st = measure_accuracy(c, i, &e2);
        if (st && p->kind == MXP_PT_UNIFORM && st != MXP_ERR_NOMEM && st != MXP_ERR_INTERRUPTED) {
            // a format this model's kernels cannot run: keep going, say so (uniform points come
            // last, so no duplicate refers to it)
            note(c, "%s was not measured: %s", p->label, e2.msg);
            say(c, "%s: not measured: %s", p->label, e2.msg);
            drop_point(c, i--);
            n_eval--;
            continue;
        }
        if (st) {
            if (err) *err = e2;
            return st;
        }
        done++;
        double el = mxp_now() - t0, eta = el / done * (n_eval - done);
        say(c, "accuracy %d/%d: %-24s loss MSE %.3g (predicted %s), ppl %.4f, KL %.3g  [%.0fs, ETA %.0fs]", done,
            n_eval, p->label, p->loss_mse, pred_loss_str(p).s, p->ppl, p->kl, el, eta);
    }
    mxp_status st = measure_time(c, err);
    if (st) return st;
    for (int i = 0; i < c->n_pts; i++) {
        mxp_opt_point *p = &c->pts[i];
        if (p->is_dup) copy_measured(p, &c->pts[p->dup_of]);
        if (!isfinite(p->gain_frac)) say(c, "%-24s gain not timed (predicted %s)", p->label, pred_gain_str(p).s);
        else
            say(c, "%-24s gain %+6.1f%% +- %.1f%% (predicted %s)%s", p->label, 100 * p->gain_frac, 100 * p->gain_ci_frac,
                pred_gain_str(p).s, p->is_dup ? " (same formats as before)" : "");
    }
    return MXP_OK;
}

// Every format of p has a GGUF type (so llama.cpp can run it).
static int point_has_gguf(const opt_ctx *c, const mxp_opt_point *p) {
    for (int op = 0; op < c->n_ops; op++)
        if (!mxp_format_get((mxp_format_id)p->fmt[op])->has_ggml_type) return 0;
    return 1;
}

// The GGUF of point i for llama-bench, into out: the chosen plan's (model.gguf), a llama.cpp
// mix's (written by llama-quantize), else written now from its formats (uniform spec, or the
// plan file its accuracy measurement wrote). *scratch: out is ours to remove afterwards.
static mxp_status point_gguf(opt_ctx *c, int i, const char *plan_gguf, char *out, int *scratch, mxp_err *err) {
    const mxp_opt_point *p = &c->pts[i];
    char name[64], spec[PATH_CAP];
    *scratch = 0;
    if (p->kind == MXP_PT_CHOSEN) {
        snprintf(out, PATH_CAP, "%s", plan_gguf);
        return MXP_OK;
    }
    if (p->kind == MXP_PT_LLAMA_MIX) {
        snprintf(name, sizeof name, "llama_%s.gguf", p->label + strlen("llama.cpp "));
        return work_path(c, name, out, err);
    }
    snprintf(name, sizeof name, "bench_%d.gguf", i);
    mxp_status st = work_path(c, name, out, err);
    if (st) return st;
    if (p->kind == MXP_PT_UNIFORM) {
        snprintf(spec, sizeof spec, "uniform:%s", mxp_format_get((mxp_format_id)p->uniform)->name);
    } else {
        snprintf(name, sizeof name, "point_%d.json", i);
        if ((st = work_path(c, name, spec, err))) return st;
    }
    mxp_apply_report ar;
    if ((st = mxp_apply(c->o->model_path, spec, out, &ar, err))) return mxp_fail_prefix(err, "writing %s for llama-bench: ", p->label);
    *scratch = 1;
    return MXP_OK;
}

// llama.cpp's own speed (llama-bench) of every distinct configuration that llama.cpp can run
// (the plan, the sweep, the baselines, the uniform formats, llama.cpp's mixes), with uniform
// f32 as the reference: the deployed speeds the target is judged on. Not being able to measure
// it is a note in the report, not an error: the plan and its mixprec measurements stand.
static mxp_status measure_llama(opt_ctx *c, const char *plan_gguf, int have_gguf, mxp_err *err) {
    char bench[PATH_CAP];
    if (c->o->no_llama_bench) return MXP_OK;
    if (!have_gguf) return MXP_OK;
    if (!mxp_llama_bench_find(c->o->llama_bench, bench, sizeof bench)) {
        note(c, "llama.cpp's speed was not measured: llama-bench not found (scripts/deps.sh builds it into build-deps/bin; "
                "or pass --llama-bench PATH).");
        return MXP_OK;
    }
    // files[0]: uniform f32 (the reference); then one per distinct point llama.cpp can run
    int n = 0, *point = malloc((size_t)(c->n_pts + 1) * sizeof *point), *scratch = calloc((size_t)c->n_pts + 1, sizeof *scratch);
    char **files = calloc((size_t)c->n_pts + 1, sizeof *files);
    mxp_llama_speed *sp = calloc((size_t)c->n_pts + 1, sizeof *sp);
    mxp_status st = point && scratch && files && sp ? MXP_OK : mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    if (!st && !(files[0] = malloc(PATH_CAP))) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    if (!st && (st = f32_gguf(c, files[0], err))) st = mxp_fail_prefix(err, "llama-bench: ");
    if (!st) {
        point[0] = -1;  // removed with the work folder
        n = 1;
    }
    for (int i = 0; i < c->n_pts && !st; i++) {
        const mxp_opt_point *p = &c->pts[i];
        if (p->is_dup || (p->kind == MXP_PT_UNIFORM && p->uniform == MXP_FMT_F32)) continue;
        if (!point_has_gguf(c, p)) {
            note(c, "%s has a format without a GGUF type: llama.cpp cannot run it, so it has no llama.cpp speed.", p->label);
            continue;
        }
        if (!(files[n] = malloc(PATH_CAP))) { st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory"); break; }
        if ((st = point_gguf(c, i, plan_gguf, files[n], &scratch[n], err))) break;
        point[n++] = i;
    }
    c->llama_threads = omp_get_max_threads();
    c->llama_prefill = c->wl.decode ? c->seq_len : c->wl.tokens;
    c->llama_decode = c->wl.decode ? c->wl.tokens : 128;
    // more rounds where they are cheap: llama-bench's medians of a small model move by a few
    // percent between rounds on a shared machine, as much as the plans differ
    double total = 0;
    for (int k = 0; k < n; k++) {
        struct stat sb;
        if (!stat(files[k], &sb)) total += (double)sb.st_size;
    }
    c->llama_rounds = total < 512e6 ? 7 : 3;
    if (!st) {
        say(c, "llama.cpp (%s): prefill %d and decode %d tokens of %d GGUF files, %d rounds", bench, c->llama_prefill,
            c->llama_decode, n, c->llama_rounds);
        mxp_err e2 = {0};
        mxp_llama_bench_opts bo = {.prefill = c->llama_prefill, .decode = c->llama_decode, .threads = c->llama_threads,
                                   .rounds = c->llama_rounds};
        mxp_status s2 = mxp_llama_bench_run(bench, (const char *const *)files, n, &bo, c->work, sp, c->llama_build,
                                            sizeof c->llama_build, &e2);
        if (s2 == MXP_ERR_NOMEM) {
            st = s2;
            if (err) *err = e2;
        } else if (s2) {
            note(c, "llama.cpp's speed was not measured: %s", e2.msg);
            say(c, "llama-bench: %s", e2.msg);
        } else {
            c->has_llama = 1;
            c->llama_ref_prefill = sp[0].prefill_tps;
            c->llama_ref_decode = sp[0].decode_tps;
            for (int k = 1; k < n; k++) {
                mxp_opt_point *p = &c->pts[point[k]];
                p->has_llama = 1;
                p->llama_prefill_tps = sp[k].prefill_tps;
                p->llama_decode_tps = sp[k].decode_tps;
            }
            for (int i = 0; i < c->n_pts; i++) {
                mxp_opt_point *p = &c->pts[i];
                if (p->kind == MXP_PT_UNIFORM && p->uniform == MXP_FMT_F32) {  // the reference file itself
                    p->has_llama = 1;
                    p->llama_prefill_tps = sp[0].prefill_tps;
                    p->llama_decode_tps = sp[0].decode_tps;
                } else if (p->is_dup && c->pts[p->dup_of].has_llama) {
                    p->has_llama = 1;
                    p->llama_prefill_tps = c->pts[p->dup_of].llama_prefill_tps;
                    p->llama_decode_tps = c->pts[p->dup_of].llama_decode_tps;
                }
            }
            say(c, "llama.cpp: %-24s %12s %8s %12s %8s", "configuration", "prefill t/s", "vs f32", "decode t/s", "vs f32");
            say(c, "llama.cpp: %-24s %12.1f %7.2fx %12.1f %7.2fx", "f32", c->llama_ref_prefill, 1.0, c->llama_ref_decode, 1.0);
            for (int i = 0; i < c->n_pts; i++) {
                const mxp_opt_point *p = &c->pts[i];
                if (!p->has_llama || (p->kind == MXP_PT_UNIFORM && p->uniform == MXP_FMT_F32)) continue;
                say(c, "llama.cpp: %-24s %12.1f %7.2fx %12.1f %7.2fx%s%s", p->label, p->llama_prefill_tps,
                    p->llama_prefill_tps / c->llama_ref_prefill, p->llama_decode_tps, p->llama_decode_tps / c->llama_ref_decode,
                    p->is_dup ? "  = " : "", p->is_dup ? c->pts[p->dup_of].label : "");
            }
            const mxp_opt_point *q = &c->pts[0];
            say(c, "llama.cpp: chosen plan prefill %.1f tok/s (%.2fx f32), decode %.1f tok/s (%.2fx f32)",
                q->llama_prefill_tps, q->llama_prefill_tps / c->llama_ref_prefill, q->llama_decode_tps,
                q->llama_decode_tps / c->llama_ref_decode);
        }
    }
    for (int k = 0; k < n; k++)
        if (files[k] && scratch[k]) remove(files[k]);
    for (int k = 0; files && k <= c->n_pts; k++) free(files[k]);
    free(files);
    free(point);
    free(scratch);
    free(sp);
    return st;
}

// llama.cpp's measured gain of p for the workload's unit (prefill pass or decoded token):
// 1 - (f32 tokens/s) / (p's tokens/s); NAN when not measured.
static double llama_gain(const opt_ctx *c, const mxp_opt_point *p) {
    if (!c->has_llama || !p->has_llama) return NAN;
    double ref = c->wl.decode ? c->llama_ref_decode : c->llama_ref_prefill;
    double tps = c->wl.decode ? p->llama_decode_tps : p->llama_prefill_tps;
    return ref > 0 && tps > 0 ? 1 - ref / tps : NAN;
}

// The target rows (docs/DESIGN.md 1.4): for the chosen plan and every budget of the sweep.
static int build_target(const opt_ctx *c, mxp_target_row *rows) {
    int n = 0;
    for (int i = 0; i < c->n_pts; i++) {
        const mxp_opt_point *p = &c->pts[i];
        if ((p->kind != MXP_PT_CHOSEN && p->kind != MXP_PT_PARETO) || !p->has_budget || !(p->budget > 0)) continue;
        mxp_target_row *t = &rows[n++];
        memset(t, 0, sizeof *t);
        t->point = i;
        t->budget = p->budget;
        t->loss_ok = p->loss_mse <= 1.5 * p->budget;
        t->best_uniform_gain_frac = 0;  // f32 itself always fits the budget
        for (int u = 0; u < c->n_pts; u++) {
            const mxp_opt_point *q = &c->pts[u];
            if (q->kind != MXP_PT_UNIFORM || !(q->loss_mse <= p->budget) || !(q->gain_frac > t->best_uniform_gain_frac))
                continue;
            t->has_best_uniform = 1;
            t->best_uniform = u;
            t->best_uniform_gain_frac = q->gain_frac;
        }
        t->gain_ok = p->gain_frac >= t->best_uniform_gain_frac;
        t->llama_gain_frac = llama_gain(c, p);
        t->has_llama = isfinite(t->llama_gain_frac);
        if (!t->has_llama) continue;
        t->llama_best_uniform_gain_frac = 0;
        for (int u = 0; u < c->n_pts; u++) {
            const mxp_opt_point *q = &c->pts[u];
            double g = llama_gain(c, q);
            if (q->kind != MXP_PT_UNIFORM || !(q->loss_mse <= p->budget) || !(g > t->llama_best_uniform_gain_frac)) continue;
            t->llama_has_best_uniform = 1;
            t->llama_best_uniform = u;
            t->llama_best_uniform_gain_frac = g;
        }
        t->llama_gain_ok = t->llama_gain_frac >= t->llama_best_uniform_gain_frac;
    }
    return n;
}

static cJSON *point_json(const mxp_opt_point *p) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    static const char *const kinds[MXP_PT_KIND_COUNT] = {"chosen", "pareto", "uniform", "mac", "memory", "fisher",
                                                         "llama_mix", "sized", "loss_matched"};
    cJSON_AddStringToObject(j, "label", p->label);
    cJSON_AddStringToObject(j, "kind", kinds[p->kind]);
    if (p->has_budget) cJSON_AddNumberToObject(j, "budget_max_loss_mse", p->budget);
    if (p->has_pred_loss || p->has_pred_gain) {
        // what is not predicted is left out ("not_profiled": the latency table lacks a format)
        cJSON *pr = cJSON_AddObjectToObject(j, "predicted");
        if (p->has_pred_loss) cJSON_AddNumberToObject(pr, "loss_mse", p->pred_loss_mse);
        else cJSON_AddTrueToObject(pr, "not_calibrated");
        if (p->has_pred_gain) {
            cJSON_AddNumberToObject(pr, "time_gain_s", p->pred_gain_s);
            cJSON_AddNumberToObject(pr, "time_gain_frac", p->pred_gain_frac);
        } else {
            cJSON_AddTrueToObject(pr, "not_profiled");
        }
    }
    cJSON *me = cJSON_AddObjectToObject(j, "measured");
    double v[] = {p->loss, p->ppl, p->loss_mse, p->loss_mse_se, p->kl, p->top1, p->ref_time_s, p->time_s, p->gain_s,
                  p->gain_frac, p->gain_ci_frac, p->tokens_per_s, p->ref_tokens_per_s, p->weight_bytes};
    static const char *const k[] = {"loss", "perplexity", "loss_mse", "loss_mse_se", "kl", "top1", "ref_time_s", "time_s",
                                    "time_gain_s", "time_gain_frac", "time_gain_ci_frac", "tokens_per_s", "ref_tokens_per_s", "weight_bytes"};
    for (size_t i = 0; me && i < sizeof v / sizeof *v; i++)
        if (isfinite(v[i])) cJSON_AddNumberToObject(me, k[i], v[i]);
    if (me && !isfinite(p->time_s)) cJSON_AddTrueToObject(me, "not_timed");
    if (p->is_dup) cJSON_AddNumberToObject(j, "same_formats_as", p->dup_of);
    if (p->has_llama) {
        cJSON *l = cJSON_AddObjectToObject(j, "llama_cpp");
        cJSON_AddNumberToObject(l, "prefill_tokens_per_s", p->llama_prefill_tps);
        cJSON_AddNumberToObject(l, "decode_tokens_per_s", p->llama_decode_tps);
    }
    return j;
}

static mxp_status write_report_json(const opt_ctx *c, const mxp_target_row *rows, int n_rows, const double *stage_s,
                                    const char *path, mxp_err *err) {
    cJSON *prov = mxp_provenance_json(c->o->model_path, c->o->data_path, err);
    if (!prov) return err && err->code ? err->code : mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    cJSON *j = cJSON_CreateObject();
    if (!j) {
        cJSON_Delete(prov);
        return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    }
    cJSON_AddStringToObject(j, "format", "mixprec-optimize-report");
    cJSON_AddNumberToObject(j, "version", 1);
    cJSON_AddItemToObject(j, "provenance", prov);
    cJSON_AddStringToObject(j, "workload", c->o->workload);
    cJSON_AddNumberToObject(j, "max_loss_mse", c->tau);
    if (c->o->max_ppl_increase > 0) cJSON_AddNumberToObject(j, "max_ppl_increase", c->o->max_ppl_increase);
    cJSON_AddNumberToObject(j, "calibration_samples", c->calib_samples);
    cJSON_AddNumberToObject(j, "seq_len", c->seq_len);
    cJSON_AddNumberToObject(j, "eval_samples", c->eval_samples);
    cJSON_AddNumberToObject(j, "reference_loss", c->ref_loss);
    cJSON_AddNumberToObject(j, "reference_perplexity", c->ref_ppl);
    cJSON_AddNumberToObject(j, "profile_ref_time_s", c->profile_ref_s);
    cJSON *tj = cJSON_AddObjectToObject(j, "timing");
    if (tj && c->time_backend) {
        cJSON_AddStringToObject(tj, "backend", c->time_backend);
        cJSON_AddStringToObject(tj, "engine", c->time_engine);
        cJSON_AddNumberToObject(tj, "rounds", c->time_rounds);
    }
    if (c->has_llama) {
        cJSON *l = cJSON_AddObjectToObject(j, "llama_cpp");
        cJSON_AddStringToObject(l, "build", c->llama_build);
        cJSON_AddNumberToObject(l, "threads", c->llama_threads);
        cJSON_AddNumberToObject(l, "prefill_tokens", c->llama_prefill);
        cJSON_AddNumberToObject(l, "decode_tokens", c->llama_decode);
        cJSON_AddNumberToObject(l, "rounds", c->llama_rounds);
        cJSON_AddNumberToObject(l, "f32_prefill_tokens_per_s", c->llama_ref_prefill);
        cJSON_AddNumberToObject(l, "f32_decode_tokens_per_s", c->llama_ref_decode);
    }
    cJSON *st = cJSON_AddObjectToObject(j, "stage_seconds");
    for (int s = 0; st && s < ST_COUNT; s++) cJSON_AddNumberToObject(st, stage_names[s], stage_s[s]);
    cJSON *pts = cJSON_AddArrayToObject(j, "points");
    for (int i = 0; pts && i < c->n_pts; i++) cJSON_AddItemToArray(pts, point_json(&c->pts[i]));
    cJSON *tg = cJSON_AddArrayToObject(j, "target");
    for (int i = 0; tg && i < n_rows; i++) {
        const mxp_target_row *t = &rows[i];
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "plan", c->pts[t->point].label);
        cJSON_AddNumberToObject(r, "budget", t->budget);
        cJSON_AddNumberToObject(r, "measured_loss_mse", c->pts[t->point].loss_mse);
        cJSON_AddBoolToObject(r, "loss_ok", t->loss_ok);
        cJSON_AddNumberToObject(r, "measured_gain_frac", c->pts[t->point].gain_frac);
        cJSON_AddStringToObject(r, "best_uniform", t->has_best_uniform ? c->pts[t->best_uniform].label : "f32");
        cJSON_AddNumberToObject(r, "best_uniform_gain_frac", t->best_uniform_gain_frac);
        cJSON_AddBoolToObject(r, "gain_ok", t->gain_ok);
        const mxp_opt_point *q = &c->pts[t->point];
        double ci_u = t->has_best_uniform ? c->pts[t->best_uniform].gain_ci_frac : 0;
        cJSON_AddNumberToObject(r, "gain_diff_frac", q->gain_frac - t->best_uniform_gain_frac);
        cJSON_AddNumberToObject(r, "gain_diff_ci_frac", sqrt(q->gain_ci_frac * q->gain_ci_frac + ci_u * ci_u));
        if (t->has_llama) {
            cJSON *l = cJSON_AddObjectToObject(r, "llama_cpp");
            cJSON_AddNumberToObject(l, "gain_frac", t->llama_gain_frac);
            cJSON_AddStringToObject(l, "best_uniform", t->llama_has_best_uniform ? c->pts[t->llama_best_uniform].label : "f32");
            cJSON_AddNumberToObject(l, "best_uniform_gain_frac", t->llama_best_uniform_gain_frac);
            cJSON_AddBoolToObject(l, "gain_ok", t->llama_gain_ok);
        }
        cJSON_AddItemToArray(tg, r);
    }
    cJSON *notes = cJSON_AddArrayToObject(j, "notes");
    for (int i = 0; notes && i < c->n_notes; i++) cJSON_AddItemToArray(notes, cJSON_CreateString(c->notes[i]));
    mxp_status s = mxp_write_json_atomic(path, j, err);
    cJSON_Delete(j);
    return s;
}

static mxp_status publish(const opt_ctx *c, int have_gguf, mxp_err *err) {
    static const char *const files[] = {"sens.json", "latency.json", "plan.json", "report.json", "model.gguf", "report.html"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        if (!strcmp(files[i], "model.gguf") && !have_gguf) continue;
        char from[PATH_CAP], to[PATH_CAP];
        mxp_status st = work_path(c, files[i], from, err);
        if (st) return st;
        if (snprintf(to, sizeof to, "%s/%s", c->o->out_dir, files[i]) >= (int)sizeof to)
            return mxp_fail(err, MXP_ERR_ARG, "-o %s: path too long", c->o->out_dir);
        if (rename(from, to) != 0) return mxp_fail(err, MXP_ERR_IO, "%s: cannot move into place: %s", to, strerror(errno));
    }
    return MXP_OK;
}

static void ctx_free(opt_ctx *c) {
    for (int i = 0; i < c->n_ops && c->op_names; i++) free(c->op_names[i]);
    free(c->op_names);
    free(c->sens);
    free(c->has);
    for (int i = 0; i < c->n_pts; i++) free(c->pts[i].fmt);
    free(c->pts);
    for (int i = 0; i < c->n_notes; i++) free(c->notes[i]);
    cJSON_Delete(c->latency);
    if (c->m) mxp_model_free(c->m);
}

static mxp_status check_opts(const mxp_optimize_opts *o, mxp_err *err) {
    if (!o->model_path) return mxp_fail(err, MXP_ERR_ARG, "optimize needs a MODEL");
    if (!o->data_path) return mxp_fail(err, MXP_ERR_ARG, "optimize needs --data FILE");
    if (!o->workload) return mxp_fail(err, MXP_ERR_ARG, "optimize needs --workload prefill:T or decode:L");
    if (!o->out_dir || !o->out_dir[0]) return mxp_fail(err, MXP_ERR_ARG, "optimize needs -o DIR");
    int has_loss = o->max_loss_mse != 0, has_ppl = o->max_ppl_increase != 0;
    if (has_loss == has_ppl)
        return mxp_fail(err, MXP_ERR_ARG, "optimize needs one budget: --max-ppl-increase P or --max-loss-mse X");
    if (has_loss && !(o->max_loss_mse > 0 && isfinite(o->max_loss_mse)))
        return mxp_fail(err, MXP_ERR_ARG, "--max-loss-mse must be a positive number, got %g", o->max_loss_mse);
    if (has_ppl && !(o->max_ppl_increase > 0 && o->max_ppl_increase < 1e4))
        return mxp_fail(err, MXP_ERR_ARG, "--max-ppl-increase must be positive (e.g. 1%%), got %g", o->max_ppl_increase);
    if (o->calib_samples < 0 || o->seq_len < 0 || o->eval_samples < 0 || o->pareto < 0 || o->profile_budget_s < 0)
        return mxp_fail(err, MXP_ERR_ARG, "optimize: sample counts, lengths and budgets must not be negative");
    if (o->pareto > 64) return mxp_fail(err, MXP_ERR_ARG, "--pareto %d: at most 64 budgets are measured", o->pareto);
    char bench[PATH_CAP];
    if (o->llama_bench && !o->no_llama_bench && !mxp_llama_bench_find(o->llama_bench, bench, sizeof bench))
        return mxp_fail(err, MXP_ERR_ARG, "--llama-bench %s: not an executable file", o->llama_bench);
    return MXP_OK;
}

// The calibration and held-out sample counts: the user's, or the defaults cut to what each
// half of the data holds (with a warning and a report note), checked before any folder is
// made so that data too short for the defaults leaves nothing behind.
static mxp_status sample_counts(opt_ctx *c, mxp_err *err) {
    const mxp_optimize_opts *o = c->o;
    mxp_tokens toks;
    mxp_status st = mxp_model_load_data(c->m, &toks, o->data_path, err);
    if (st) return st;
    size_t nc = 0, ne = 0;
    int rc = 0, re = 0;
    st = mxp_data_sample_count(&toks, MXP_SPLIT_CALIB, c->seq_len, (size_t)o->calib_samples, MXP_CALIB_DEFAULT_SAMPLES,
                               "--samples", o->data_path, &nc, &rc, err);
    if (!st)
        st = mxp_data_sample_count(&toks, MXP_SPLIT_EVAL, c->seq_len, (size_t)o->eval_samples,
                                   MXP_CHECK_DEFAULT_SAMPLES, "--eval-samples", o->data_path, &ne, &re, err);
    mxp_tokens_free(&toks);
    if (st) return st;
    c->calib_samples = (int)nc;
    c->eval_samples = (int)ne;
    const char *half[2] = {"calibration", "evaluation"};
    const int n[2] = {c->calib_samples, c->eval_samples}, def[2] = {MXP_CALIB_DEFAULT_SAMPLES, MXP_CHECK_DEFAULT_SAMPLES};
    const int reduced[2] = {rc, re};
    const char *opt[2] = {"--samples", "--eval-samples"};
    for (int k = 0; k < 2; k++) {
        if (!reduced[k]) continue;
        fprintf(stderr, "warning: %s: the %s half holds only %d windows of %d+1 tokens: using %d samples, not the "
                "default %d (%s N chooses)\n", o->data_path, half[k], n[k], c->seq_len, n[k], def[k], opt[k]);
        note(c, "The %s half of the data holds only %d windows of %d+1 tokens, so %d samples were used instead of "
                "the default %d.", half[k], n[k], c->seq_len, n[k], def[k]);
    }
    return MXP_OK;
}

static const char *const default_ties[2] = {"q_proj,k_proj,v_proj", "gate_proj,up_proj"};

static mxp_status run(opt_ctx *c, mxp_optimize_result *res, double *stage_s, mxp_err *err) {
    const mxp_optimize_opts *o = c->o;
    char sens[PATH_CAP], lat[PATH_CAP], plan[PATH_CAP], gguf[PATH_CAP], html[PATH_CAP], rjson[PATH_CAP];
    mxp_status st = MXP_OK;
    say(c, "loading %s", o->model_path);
    if ((st = mxp_model_load(o->model_path, &c->m, err))) return st;
    const mxp_graph *g = &c->m->graph;
    if ((st = mxp_workload_parse(o->workload, 1, g->max_pos, &c->wl, err))) return mxp_fail_prefix(err, "--workload: ");
    c->seq_len = o->seq_len ? o->seq_len : !c->wl.decode ? c->wl.tokens : g->max_pos > 0 && g->max_pos < 256 ? g->max_pos : 256;
    if (g->max_pos > 0 && c->seq_len > g->max_pos)
        return mxp_fail(err, MXP_ERR_ARG, "--seq %d exceeds the model's %d positions", c->seq_len, g->max_pos);
    if ((st = sample_counts(c, err))) return st;
    c->unit_tokens = c->wl.decode ? 1 : c->wl.tokens;
    // arguments are checked: now the output folder and the private work folder inside it
    if ((st = make_dirs(c, err))) return st;
    const char *names[6] = {"sens.json", "latency.json", "plan.json", "model.gguf", "report.html", "report.json"};
    char *paths[6] = {sens, lat, plan, gguf, html, rjson};
    for (int i = 0; i < 6 && !st; i++) st = work_path(c, names[i], paths[i], err);
    if (st) return st;
    if (!c->wl.decode && c->seq_len != c->wl.tokens)
        note(c, "Loss is measured on windows of %d tokens; prefill time per pass is %d tokens at the measured prefill rate.",
             c->seq_len, c->wl.tokens);

    // 1. calibrate
    double t = mxp_now();
    say(c, "[1/6] calibrate: %d samples x %d tokens", c->calib_samples, c->seq_len);
    mxp_calib_opts co = {.data_path = o->data_path, .samples = c->calib_samples, .seq_len = c->seq_len, .batch = 1,
                         .seed = o->seed, .formats = o->formats, .fisher = !o->no_baselines, .out_path = sens, .progress = o->progress,
                         .stop = o->stop};
    mxp_calib_result cr;
    if ((st = mxp_calibrate(c->m, &co, &cr, err))) return mxp_fail_prefix(err, "calibrate: ");
    if ((st = read_sens(c, sens, err))) return st;
    stage_s[ST_CALIB] = mxp_now() - t;
    if (stopped(c)) return mxp_fail(err, MXP_ERR_INTERRUPTED, "interrupted after calibration");

    // 2. profile
    t = mxp_now();
    double budget = o->profile_budget_s > 0 ? o->profile_budget_s : 90;
    say(c, "[2/6] profile: %s, time budget %.0f s", o->workload, budget);
    int llama = c->m->config.arch == MXP_ARCH_LLAMA;
    char prof_formats[512];
    if ((st = gguf_formats(o->formats ? o->formats : MXP_DEFAULT_FORMATS, prof_formats, sizeof prof_formats, err)))
        return st;
    mxp_profile_opts po = {.workload = o->workload, .batch = 1, .formats = prof_formats, .ties = llama ? default_ties : NULL,
                           .n_ties = llama ? 2 : 0, .data_path = o->data_path, .seed = o->seed, .budget_s = budget,
                           .no_cache = o->no_cache, .no_pin = o->no_pin, .progress = o->progress,
                           .backend = o->profile_backend};
    mxp_profile_result pr;
    st = mxp_profile(c->m, &po, lat, &pr, err);
    if (st) return mxp_fail_prefix(err, "profile: ");
    c->profile_ref_s = pr.ref_time_s;
    if (pr.from_cache) note(c, "The latency table came from the cache (%s); --no-cache measures it again.", pr.cache_path);
    if (pr.n_capped)
        note(c, "Profile: %d configurations stopped at the time budget before their gain CI reached its target "
                "(worst CI %.1f%% of its sub-graph time).", pr.n_capped, 100 * pr.max_rel_ci);
    if (llama) note(c, "Tied formats while profiling and solving: q_proj,k_proj,v_proj share one, gate_proj,up_proj share one.");
    mxp_profile_result_free(&pr);
    if ((st = mxp_read_json(lat, &c->latency, err))) return st;
    stage_s[ST_PROFILE] = mxp_now() - t;
    if (stopped(c)) return mxp_fail(err, MXP_ERR_INTERRUPTED, "interrupted after profiling");

    // 3. solve
    t = mxp_now();
    say(c, "[3/6] solve: budget %.4g, Pareto sweep, baselines", c->tau);
    if ((st = stage_solve(c, err))) return st;
    stage_s[ST_SOLVE] = mxp_now() - t;
    if (stopped(c)) return mxp_fail(err, MXP_ERR_INTERRUPTED, "interrupted after solving");

    // 4. apply
    t = mxp_now();
    say(c, "[4/6] apply: model.gguf");
    mxp_apply_report ar;
    mxp_err aerr = {0};
    st = mxp_apply(o->model_path, plan, gguf, &ar, &aerr);
    int have_gguf = st == MXP_OK;
    if (st == MXP_ERR_UNSUPPORTED) {
        note(c, "model.gguf not written: %s", aerr.msg);
        say(c, "apply: model.gguf not written: %s", aerr.msg);
        st = MXP_OK;
    } else if (st) {
        if (err) *err = aerr;
        return mxp_fail_prefix(err, "apply: ");
    }
    stage_s[ST_APPLY] = mxp_now() - t;
    if (stopped(c)) return mxp_fail(err, MXP_ERR_INTERRUPTED, "interrupted after apply");

    // 5. measure
    t = mxp_now();
    say(c, "[5/6] measure: %d configurations on %d held-out samples x %d tokens, then timed end to end", c->n_pts,
        c->eval_samples, c->seq_len);
    if ((st = stage_measure(c, err))) return st;
    if ((st = measure_llama(c, gguf, have_gguf, err))) return st;
    stage_s[ST_MEASURE] = mxp_now() - t;

    // 6. report
    t = mxp_now();
    say(c, "[6/6] report");
    mxp_target_row *rows = calloc((size_t)c->n_pts + 1, sizeof *rows);
    if (!rows) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    int n_rows = build_target(c, rows);
    // a configuration cannot save more than the whole f32 time: a prediction that does means
    // sub-graphs were timed while the machine was busy
    double worst = 0;
    for (int i = 0; i < c->n_pts; i++)
        if (c->pts[i].has_pred_gain && c->pts[i].pred_gain_frac > worst) worst = c->pts[i].pred_gain_frac;
    if (worst >= 1)
        note(c, "The latency table is not consistent: a configuration is predicted to save %.0f%% of the f32 time, "
                "more than all of it. Its sub-graphs were timed while other work ran (a descheduled thread "
                "stalls ggml's pool for milliseconds); the predicted gains, and the plan chosen from them, mean "
                "little. Profile again on a quiet machine (optimize --no-cache).", 100 * worst);
    if (c->pts[0].has_pred && c->pts[0].pred_gain_s > 0 && c->pts[0].gain_s < 0)
        note(c, "The chosen plan was predicted faster than f32 but measured slower: the latency table (sub-graphs timed "
                "alone) and the whole-model run disagree on this machine at this load.");
    mxp_run_stamp rs;
    mxp_run_stamp_now(&rs);
    stage_s[ST_REPORT] = mxp_now() - t;
    const cJSON *eng = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c->latency, "machine"), "engine");
    mxp_report rep = {.profile_engine = cJSON_IsString(eng) ? eng->valuestring : NULL,
                      .time_engine = c->time_backend ? c->time_engine : NULL, .tool = rs.tool, .ggml = rs.ggml, .model = o->model_path, .data = o->data_path, .workload = o->workload,
                      .machine = rs.machine, .kernels = mxp_kernel_impl_name(), .created = rs.created, .decode = c->wl.decode,
                      .unit_tokens = c->wl.decode ? 1 : c->wl.tokens, .tau = c->tau, .ppl_increase = o->max_ppl_increase,
                      .calib_samples = c->calib_samples, .seq_len = c->seq_len, .eval_samples = c->eval_samples,
                      .eval_tokens = c->eval_tokens, .time_rounds = c->time_rounds, .ref_loss = c->ref_loss, .ref_ppl = c->ref_ppl,
                      .profile_ref_time_s = c->profile_ref_s, .n_ops = c->n_ops,
                      .op_names = (const char *const *)c->op_names, .sens = c->sens, .sens_has = c->has,
                      .n_formats = c->n_formats, .formats = c->formats, .n_points = c->n_pts, .points = c->pts,
                      .n_target = n_rows, .target = rows, .n_stages = ST_COUNT, .stage_names = stage_names,
                      .stage_s = stage_s, .n_notes = c->n_notes, .notes = (const char *const *)c->notes,
                      .has_llama = c->has_llama, .llama_build = c->llama_build, .llama_threads = c->llama_threads,
                      .llama_prefill_tokens = c->llama_prefill, .llama_decode_tokens = c->llama_decode,
                      .llama_rounds = c->llama_rounds, .llama_ref_prefill_tps = c->llama_ref_prefill,
                      .llama_ref_decode_tps = c->llama_ref_decode};
    st = mxp_report_write_html(&rep, html, err);
    if (!st) st = write_report_json(c, rows, n_rows, stage_s, rjson, err);
    if (!st) st = publish(c, have_gguf, err);
    if (!st) {
        const mxp_opt_point *p = &c->pts[0];
        res->predicted_loss_mse = p->pred_loss_mse;
        res->measured_loss_mse = p->loss_mse;
        res->measured_loss_mse_se = p->loss_mse_se;
        res->predicted_gain = p->pred_gain_frac;
        res->measured_gain = p->gain_frac;
        res->predicted_gain_s = p->pred_gain_s;
        res->measured_gain_s = p->gain_s;
        res->ppl_ref = c->ref_ppl;
        res->ppl = p->ppl;
        res->kl = p->kl;
        res->top1 = p->top1;
        res->tokens_per_s = p->tokens_per_s;
        res->ref_tokens_per_s = p->ref_tokens_per_s;
        res->target_budgets = n_rows;
        for (int i = 0; i < n_rows; i++) {
            res->target_loss_ok += rows[i].loss_ok;
            res->target_gain_ok += rows[i].gain_ok;
            res->target_llama_budgets += rows[i].has_llama;
            res->target_llama_gain_ok += rows[i].has_llama && rows[i].llama_gain_ok;
        }
        res->gguf_written = have_gguf;
        res->llama_measured = p->has_llama;
        res->llama_prefill_tps = p->llama_prefill_tps;
        res->llama_decode_tps = p->llama_decode_tps;
        res->llama_ref_prefill_tps = c->llama_ref_prefill;
        res->llama_ref_decode_tps = c->llama_ref_decode;
    }
    free(rows);
    return st;
}

mxp_status mxp_optimize(const mxp_optimize_opts *o, mxp_optimize_result *res, mxp_err *err) {
    memset(res, 0, sizeof *res);
    mxp_status st = check_opts(o, err);
    if (st) return st;
    double t0 = mxp_now();
    opt_ctx c = {.o = o};
    if (o->max_ppl_increase > 0) {
        // |E[dL]| <= sqrt(E[dL^2]): a loss MSE of ln(1+P)^2 bounds the perplexity increase by P
        double l = log1p(o->max_ppl_increase);
        c.tau = l * l;
    } else {
        c.tau = o->max_loss_mse;
    }
    res->tau = c.tau;
    double stage_s[ST_COUNT] = {0};
    st = run(&c, res, stage_s, err);
    if (st == MXP_ERR_INTERRUPTED) {
        // the stage's own message may point at files in the work folder, which goes away now
        mxp_fail(err, MXP_ERR_INTERRUPTED, "interrupted; nothing was written to %s", o->out_dir);
    }
    remove_work(&c);  // after publish only the intermediate files are left in it
    ctx_free(&c);
    memcpy(res->stage_s, stage_s, sizeof stage_s);
    res->seconds = mxp_now() - t0;
    return st;
}
