// plan.c: format specifications -> graph format slots.
// "uniform:FMT": every plan op (linear ops and the token embedding, mxp_graph_is_op) FMT, or llama.cpp's fallback where FMT's block does not divide
// the op's input width (mxp_format_fit; a note on stderr says which).
// "stored": the formats the model file carries (a GGUF's quantized or F16/BF16 linear weights, set at
// load by model.c); every other op f32.
// Plan file (version 1):
//   {"format": "mixprec-plan", "version": 1,
//    "ops": {"model.layers.0.self_attn.q_proj": "q8_0", ...}, ...other keys ignored here}
#include "method/plan.h"

#include <stdio.h>
#include <string.h>
#include <cJSON.h>

#include "io/jsonout.h"
#include "io/tensors.h"
#include "quant/format.h"

void mxp_formats_reset(mxp_graph *g) {
    for (int i = 0; i < g->n_nodes; i++)
        if (mxp_node_quantizable(&g->nodes[i])) g->nodes[i].fmt = MXP_FMT_F32;
}

double mxp_formats_weight_bytes(const mxp_graph *g) {
    double bytes = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const mxp_node *n = &g->nodes[i];
        if (!mxp_graph_is_op(g, i)) continue;  // a shared weight is stored once
        const mxp_param *w = &g->params[n->w];
        size_t b = 0;
        if (mxp_format_matrix_bytes((mxp_format_id)n->fmt, w->shape[0], w->shape[1], &b, NULL) == MXP_OK) bytes += (double)b;
    }
    return bytes;
}

mxp_status mxp_formats_apply_plan_json(mxp_graph *g, const char *json, size_t len, const char *label, mxp_err *err) {
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return mxp_fail(err, MXP_ERR_FORMAT, "%s: not valid JSON", label);
    mxp_status st = MXP_OK;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
    const cJSON *ops = cJSON_GetObjectItemCaseSensitive(root, "ops");
    if (!cJSON_IsObject(root) || !cJSON_IsString(fmt) || strcmp(fmt->valuestring, "mixprec-plan")) {
        st = mxp_fail(err, MXP_ERR_FORMAT, "%s: not a mixprec plan (\"format\": \"mixprec-plan\" missing)", label);
    } else if (!cJSON_IsNumber(ver) || ver->valuedouble != 1) {
        st = mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: plan version is not 1", label);
    } else if (!cJSON_IsObject(ops)) {
        st = mxp_fail(err, MXP_ERR_FORMAT, "%s: \"ops\" must be an object mapping module names to formats", label);
    }
    mxp_formats_reset(g);
    for (const cJSON *it = st ? NULL : ops->child; it && !st; it = it->next) {
        int node;
        mxp_format_id f;
        if (!mxp_graph_find_op(g, it->string, &node)) {
            st = mxp_fail(err, MXP_ERR_ARG, "%s: module \"%s\" is not an op of this model's plans", label, it->string);
        } else if (!cJSON_IsString(it)) {
            st = mxp_fail(err, MXP_ERR_FORMAT, "%s: the format of \"%s\" must be a string", label, it->string);
        } else if (mxp_format_parse(it->valuestring, &f, err)) {
            st = mxp_fail_prefix(err, "%s: module %s: ", label, it->string);
        } else {
            g->nodes[node].fmt = f;
        }
    }
    cJSON_Delete(root);
    if (st) mxp_formats_reset(g);
    return st;
}

mxp_status mxp_formats_apply_spec(mxp_graph *g, const char *spec, mxp_err *err) {
    if (!strcmp(spec, "stored")) return MXP_OK;  // the slots as the model file set them
    if (!strncmp(spec, "uniform:", 8)) {
        mxp_format_id f;
        if (mxp_format_parse(spec + 8, &f, err)) return mxp_fail_prefix(err, "--formats %s: ", spec);
        // An op whose input width the format's block does not divide takes llama.cpp's fallback
        // (mxp_format_fit: q4_K -> q5_0, q6_K -> q8_0, ... else f16), as llama-quantize does.
        int n_fb = 0, first = -1, mixed = 0;
        mxp_format_id fb = f;
        for (int i = 0; i < g->n_nodes; i++) {
            mxp_node *n = &g->nodes[i];
            if (!mxp_graph_is_op(g, i)) continue;
            mxp_format_id got;
            if (!mxp_format_fit(f, g->params[n->w].shape[1], &got)) {
                if (!n_fb++) first = i, fb = got;
                mixed |= got != fb;
            }
            n->fmt = got;
        }
        if (n_fb)
            fprintf(stderr, "note: %s: %d op%s (%s first) with an input width that is not a multiple of %d take%s %s%s, "
                    "llama.cpp's fallback for %s\n", spec, n_fb, n_fb > 1 ? "s" : "", g->nodes[first].name,
                    mxp_format_get(f)->block_size, n_fb > 1 ? "" : "s", mxp_format_get(fb)->name,
                    mixed ? " (or f16 where that does not fit either)" : "", mxp_format_get(f)->name);
        return MXP_OK;
    }
    mxp_mapping map;
    mxp_status st = mxp_map_file(&map, spec, err);
    if (st) return mxp_fail_prefix(err, "--formats expects uniform:FMT or a plan file: ");
    st = mxp_formats_apply_plan_json(g, (const char *)map.base, map.size, spec, err);
    mxp_unmap(&map);
    return st;
}

mxp_status mxp_plan_write(const char *path, const char *const *names, const unsigned char *fmt, int n, mxp_err *err) {
    cJSON *j = cJSON_CreateObject();
    cJSON *ops = j ? cJSON_AddObjectToObject(j, "ops") : NULL;
    int ok = ops && cJSON_AddStringToObject(j, "format", "mixprec-plan") && cJSON_AddNumberToObject(j, "version", 1);
    for (int i = 0; ok && i < n; i++)
        ok = cJSON_AddStringToObject(ops, names[i], mxp_format_get((mxp_format_id)fmt[i])->name) != NULL;
    mxp_status st = ok ? mxp_write_json_atomic(path, j, err) : mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    cJSON_Delete(j);
    return st;
}
