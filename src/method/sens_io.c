// sens_io.c: the sensitivity table as JSON (docs/FILES.md "Sensitivity table"), written
// atomically, and read back (to resume an interrupted calibration). The raw accumulators are
// stored with every op ("acc") so that a partial table can be continued exactly: they are
// printed with 17 significant digits, which read back to the same double (cJSON's own number
// printing keeps 15 digits whenever they come within an epsilon, and loses the last bits).
#include <math.h>
#include <string.h>
#include <cJSON.h>

#include "io/jsonout.h"
#include "method/sens_io.h"

// v as JSON text that strtod reads back to v, bit for bit; null (as cJSON writes it, and as
// mxp_sens_restore rejects it) when v is not finite. At most 24 characters.
static int print_exact(char *buf, size_t cap, double v) {
    return isfinite(v) ? snprintf(buf, cap, "%.17g", v) : snprintf(buf, cap, "null");
}

static cJSON *exact_number(double v) {
    char buf[32];
    print_exact(buf, sizeof buf, v);
    return cJSON_CreateRaw(buf);
}

static cJSON *exact_array(const double *v, int n) {
    char buf[MXP_FMT_COUNT * 26 + 8];
    MXP_ASSERT(n <= MXP_FMT_COUNT);
    size_t len = 0;
    buf[len++] = '[';
    for (int i = 0; i < n; i++) {
        if (i) len += (size_t)snprintf(buf + len, sizeof buf - len, ", ");
        len += (size_t)print_exact(buf + len, sizeof buf - len, v[i]);
    }
    MXP_ASSERT(len + 2 <= sizeof buf);
    buf[len++] = ']';
    buf[len] = '\0';
    return cJSON_CreateRaw(buf);
}

static cJSON *format_map(const mxp_sens *s, const mxp_sens_op *o, const double *vals, int skip_f32_zero) {
    cJSON *m = cJSON_CreateObject();
    for (int k = 0; m && k < s->n_formats; k++) {
        mxp_format_id f = s->formats[k];
        if (f != MXP_FMT_F32 && !o->ok[f]) continue;
        cJSON_AddNumberToObject(m, mxp_format_get(f)->name, f == MXP_FMT_F32 && skip_f32_zero ? 0.0 : vals[f]);
    }
    return m;
}

cJSON *mxp_sens_to_json(const mxp_sens *s, mxp_metric primary, cJSON *provenance, int complete) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddStringToObject(j, "format", "mixprec-sensitivity");
    cJSON_AddNumberToObject(j, "version", 1);
    if (provenance) cJSON_AddItemToObject(j, "provenance", provenance);
    cJSON_AddBoolToObject(j, "complete", complete);
    cJSON_AddStringToObject(j, "metric", mxp_metric_name(primary));
    cJSON_AddNumberToObject(j, "samples", (double)s->samples);
    cJSON_AddNumberToObject(j, "seq_len", s->seq_len);
    cJSON_AddNumberToObject(j, "reference_loss", s->samples ? s->loss_sum / (double)s->samples : 0);
    cJSON_AddBoolToObject(j, "has_fisher", s->has_fisher);
    cJSON *fm = cJSON_AddArrayToObject(j, "formats");
    for (int k = 0; fm && k < s->n_formats; k++)
        cJSON_AddItemToArray(fm, cJSON_CreateString(mxp_format_get(s->formats[k])->name));
    cJSON *ops = cJSON_AddArrayToObject(j, "ops");
    double n = s->samples ? (double)s->samples : 1;
    for (int i = 0; ops && i < s->n_ops; i++) {
        const mxp_sens_op *o = &s->ops[i];
        double mean[MXP_METRIC_COUNT][MXP_FMT_COUNT], w[MXP_FMT_COUNT], a[MXP_FMT_COUNT], se[MXP_FMT_COUNT];
        for (int f = 0; f < MXP_FMT_COUNT; f++) {
            for (int mt = 0; mt < MXP_METRIC_COUNT; mt++) mean[mt][f] = o->sum[mt][f] / n;
            w[f] = o->sum_w[f] / n;
            a[f] = o->sum_a[f] / n;
            se[f] = mxp_sens_se(s, i, (mxp_format_id)f);
        }
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", o->name);
        cJSON_AddNumberToObject(e, "in", o->in);
        cJSON_AddNumberToObject(e, "out", o->out);
        cJSON_AddItemToObject(e, "s", format_map(s, o, mean[primary], 1));
        if (primary == MXP_METRIC_TAYLOR) {
            cJSON_AddItemToObject(e, "s_weight", format_map(s, o, w, 1));
            cJSON_AddItemToObject(e, "s_act", format_map(s, o, a, 1));
            cJSON_AddItemToObject(e, "se", format_map(s, o, se, 1));
        }
        cJSON *alt = cJSON_AddObjectToObject(e, "metrics");
        for (int mt = 0; mt < MXP_METRIC_COUNT; mt++)
            if (mt != MXP_METRIC_FISHER || s->has_fisher)
                cJSON_AddItemToObject(alt, mxp_metric_name((mxp_metric)mt), format_map(s, o, mean[mt], 1));
        // raw accumulators, for --resume
        cJSON *acc = cJSON_AddObjectToObject(e, "acc");
        for (int mt = 0; mt < MXP_METRIC_COUNT; mt++)
            cJSON_AddItemToObject(acc, mxp_metric_name((mxp_metric)mt), exact_array(o->sum[mt], MXP_FMT_COUNT));
        cJSON_AddItemToObject(acc, "d4", exact_array(o->sum_d4, MXP_FMT_COUNT));
        cJSON_AddItemToObject(acc, "w", exact_array(o->sum_w, MXP_FMT_COUNT));
        cJSON_AddItemToObject(acc, "a", exact_array(o->sum_a, MXP_FMT_COUNT));
        cJSON_AddItemToArray(ops, e);
    }
    cJSON *racc = cJSON_AddObjectToObject(j, "acc");
    cJSON_AddItemToObject(racc, "loss_sum", exact_number(s->loss_sum));
    return j;
}

static mxp_status read_array(const cJSON *arr, double *out, const char *label, const char *what, mxp_err *err) {
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != MXP_FMT_COUNT)
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: accumulator \"%s\" must be an array of %d numbers", label, what,
                        MXP_FMT_COUNT);
    int k = 0;
    for (const cJSON *v = arr->child; v; v = v->next, k++) {
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0)
            return mxp_fail(err, MXP_ERR_FORMAT, "%s: accumulator \"%s\" holds a bad number", label, what);
        out[k] = v->valuedouble;
    }
    return MXP_OK;
}

mxp_status mxp_sens_restore(mxp_sens *s, const cJSON *j, const char *label, mxp_err *err) {
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(j, "version");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "mixprec-sensitivity") || !cJSON_IsNumber(ver) ||
        ver->valuedouble != 1)
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: not a version-1 mixprec sensitivity table", label);
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(j, "seq_len");
    const cJSON *samples = cJSON_GetObjectItemCaseSensitive(j, "samples");
    const cJSON *fms = cJSON_GetObjectItemCaseSensitive(j, "formats");
    const cJSON *ops = cJSON_GetObjectItemCaseSensitive(j, "ops");
    const cJSON *racc = cJSON_GetObjectItemCaseSensitive(j, "acc");
    const cJSON *loss = racc ? cJSON_GetObjectItemCaseSensitive(racc, "loss_sum") : NULL;
    if (!cJSON_IsNumber(seq) || seq->valuedouble != s->seq_len)
        return mxp_fail(err, MXP_ERR_ARG, "%s: was made with another --seq", label);
    if (!cJSON_IsArray(fms) || cJSON_GetArraySize(fms) != s->n_formats)
        return mxp_fail(err, MXP_ERR_ARG, "%s: was made with other --formats", label);
    int k = 0;
    for (const cJSON *f = fms->child; f; f = f->next, k++)
        if (!cJSON_IsString(f) || strcmp(f->valuestring, mxp_format_get(s->formats[k])->name))
            return mxp_fail(err, MXP_ERR_ARG, "%s: was made with other --formats", label);
    if (!cJSON_IsArray(ops) || cJSON_GetArraySize(ops) != s->n_ops)
        return mxp_fail(err, MXP_ERR_ARG, "%s: was made for another model (op count differs)", label);
    if (!cJSON_IsNumber(samples) || !cJSON_IsNumber(loss))
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: missing \"samples\" or \"acc\".\"loss_sum\"", label);
    double ns = samples->valuedouble;
    if (!(ns >= 0 && ns <= 9007199254740992.0 && ns == floor(ns)))  // an exact integer below 2^53
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: \"samples\" (%g) is not a count", label, ns);
    if (!isfinite(loss->valuedouble))
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: \"acc\".\"loss_sum\" is not a finite number", label);
    int i = 0;
    for (const cJSON *e = ops->child; e; e = e->next, i++) {
        mxp_sens_op *o = &s->ops[i];
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
        const cJSON *acc = cJSON_GetObjectItemCaseSensitive(e, "acc");
        if (!cJSON_IsString(name) || strcmp(name->valuestring, o->name) || !cJSON_IsObject(acc))
            return mxp_fail(err, MXP_ERR_ARG, "%s: op %d is not %s (another model?)", label, i, o->name);
        mxp_status st;
        for (int mt = 0; mt < MXP_METRIC_COUNT; mt++)
            if ((st = read_array(cJSON_GetObjectItemCaseSensitive(acc, mxp_metric_name((mxp_metric)mt)), o->sum[mt],
                                 label, mxp_metric_name((mxp_metric)mt), err)))
                return st;
        if ((st = read_array(cJSON_GetObjectItemCaseSensitive(acc, "d4"), o->sum_d4, label, "d4", err)) ||
            (st = read_array(cJSON_GetObjectItemCaseSensitive(acc, "w"), o->sum_w, label, "w", err)) ||
            (st = read_array(cJSON_GetObjectItemCaseSensitive(acc, "a"), o->sum_a, label, "a", err)))
            return st;
    }
    s->samples = (size_t)samples->valuedouble;
    s->loss_sum = loss->valuedouble;
    const cJSON *hf = cJSON_GetObjectItemCaseSensitive(j, "has_fisher");
    s->has_fisher = cJSON_IsTrue(hf);
    return MXP_OK;
}
