// gguf_export.c: the export driver. Order: every plan op's format must have a GGML type; the
// architecture writer (arch_llama.c, arch_gpt2.c) checks the model and lists the tensors; the
// tokenizer writer (tok_export.c) adds tokenizer.ggml.*; the writer lays the file out in one
// image; tensors are filled (quantized straight into place, rotary rows permuted on the way);
// the image is written to a temporary name and renamed. Any refusal comes before the write:
// no partial or unloadable file is ever left at the output path.
#include <string.h>

#include "export/export.h"
#include "mixprec.h"
#include "runtime/qcache.h"

void mxp_export_plan_free(mxp_export_plan *p) {
    free(p->t);
    free(p->values);
    memset(p, 0, sizeof *p);
}

mxp_export_tensor *mxp_export_plan_add(mxp_export_plan *p, const char *name, int ndim, int64_t d0, int64_t d1) {
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 64;
        mxp_export_tensor *t = realloc(p->t, (size_t)cap * sizeof *t);
        if (!t) return NULL;
        p->t = t;
        p->cap = cap;
    }
    mxp_export_tensor *t = &p->t[p->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = ndim == 2 ? d1 : 0;
    t->fmt = MXP_FMT_F32;
    return t;
}

mxp_status mxp_export_plan_param(mxp_export_plan *p, const mxp_model *m, int param, const char *name,
                                 mxp_format_id fmt, mxp_err *err) {
    const mxp_param *q = &m->graph.params[param];
    mxp_export_tensor *t = mxp_export_plan_add(p, name, q->ndim, q->shape[0], q->shape[1]);
    if (!t) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    t->src = MXP_EXPORT_PARAM;
    t->param = param;
    t->fmt = q->ndim == 2 ? fmt : MXP_FMT_F32;
    for (int i = 0; i < m->graph.n_nodes && !t->linear; i++)
        t->linear = mxp_graph_is_op(&m->graph, i) && m->graph.nodes[i].w == param;
    return MXP_OK;
}

mxp_format_id mxp_export_param_format(const mxp_model *m, int param) {
    for (int i = 0; i < m->graph.n_nodes; i++)
        if (mxp_graph_is_op(&m->graph, i) && m->graph.nodes[i].w == param) return (mxp_format_id)m->graph.nodes[i].fmt;
    return MXP_FMT_F32;
}

static void base_name(const char *path, char *out, size_t cap) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t s = n;
    while (s > 0 && path[s - 1] != '/') s--;
    snprintf(out, cap, "%.*s", (int)(n - s), path + s);
}

// Row r of llama.cpp's rotary layout holds row src_row(r) of mixprec's (heads of hd rows;
// within a head llama.cpp interleaves the two rotary halves: its row 2i + j is row j*hd/2 + i).
static int64_t src_row(int64_t r, int64_t hd) {
    int64_t h = r / hd, w = r % hd, i = w / 2, j = w % 2;
    return h * hd + j * (hd / 2) + i;
}

// A 2-D parameter is quantized from the accessor's rows a chunk at a time (mxp_quantize_param:
// a weight stored in bf16/f16 is never widened whole), in llama.cpp's rotary row order for
// PARAM_ROPE; vectors are f32 (parameters: model.c converts them; rope_freqs: generated).
static mxp_status fill(mxp_gguf_writer *w, const mxp_model *m, const mxp_export_tensor *t, mxp_err *err) {
    uint8_t *dst = mxp_gguf_writer_data(w, t->slot);
    int64_t rows = t->shape[0], hd = t->src == MXP_EXPORT_PARAM_ROPE ? rows / t->heads : 0;
    MXP_ASSERT(!hd || (rows % t->heads == 0 && hd % 2 == 0));
    if (t->ndim == 1) {
        const float *src = t->src == MXP_EXPORT_VALUES ? t->values : m->graph.params[t->param].data;
        MXP_ASSERT(src);
        for (int64_t r = 0; r < rows; r++) memcpy(dst + r * 4, &src[hd ? src_row(r, hd) : r], 4);
        return MXP_OK;
    }
    MXP_ASSERT(t->src != MXP_EXPORT_VALUES);
    int64_t *row_of = NULL;
    if (hd) {
        if (!(row_of = malloc((size_t)rows * sizeof *row_of))) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        for (int64_t r = 0; r < rows; r++) row_of[r] = src_row(r, hd);
    }
    mxp_status st = mxp_quantize_param(t->fmt, &m->graph.params[t->param], row_of, dst, w->t[t->slot].nbytes, t->name, err);
    free(row_of);
    return st;
}

static mxp_status build(mxp_model *m, mxp_gguf_writer *w, mxp_export_plan *p, mxp_apply_report *rep, mxp_err *err) {
    const mxp_graph *g = &m->graph;
    for (int i = 0; i < g->n_nodes; i++) {
        const mxp_node *n = &g->nodes[i];
        const mxp_format *f = mxp_format_get((mxp_format_id)n->fmt);
        if (mxp_graph_is_op(g, i) && !f->has_ggml_type)
            return mxp_fail(err, MXP_ERR_UNSUPPORTED, "module %s: format %s has no GGML type, so a GGUF cannot hold it "
                            "(solve with --forbid '*=%s')", n->name, f->name, f->name);
    }
    char name[128];
    base_name(m->path, name, sizeof name);
    mxp_status st = m->config.arch == MXP_ARCH_GPT2 ? mxp_export_arch_gpt2(m, w, p, err) : mxp_export_arch_llama(m, w, p, err);
    if (st) return st;
    mxp_gguf_writer_kv_str(w, "general.name", name, strlen(name));
    mxp_gguf_writer_kv_u32(w, "general.quantization_version", 2);
    if ((st = mxp_export_tokenizer(m, w, rep->tokenizer_desc, sizeof rep->tokenizer_desc, err))) return st;
    rep->tokenizer = 1;
    for (int i = 0; i < p->n; i++) {
        mxp_export_tensor *t = &p->t[i];
        size_t bytes;
        if (t->ndim == 1) {
            if (!mxp_mul_ok((size_t)t->shape[0], sizeof(float), &bytes)) return mxp_fail(err, MXP_ERR_NOMEM, "%s: too large", t->name);
        } else if (mxp_format_matrix_bytes(t->fmt, t->shape[0], t->shape[1], &bytes, err)) {
            return mxp_fail_prefix(err, "%s: ", t->name);
        }
        mxp_gguf_writer_tensor(w, t->name, mxp_format_get(t->fmt)->ggml_type, t->ndim, t->shape, bytes, &t->slot);
        if (t->linear) rep->n_by_format[t->fmt]++;
    }
    return mxp_gguf_writer_finish(w, err);
}

mxp_status mxp_export_gguf(mxp_model *m, const char *out_path, mxp_apply_report *rep, mxp_err *err) {
    memset(rep, 0, sizeof *rep);
    mxp_export_plan p = {0};
    mxp_gguf_writer w;
    mxp_gguf_writer_init(&w);
    mxp_status st = build(m, &w, &p, rep, err);
    for (int i = 0; i < p.n && !st; i++) st = fill(&w, m, &p.t[i], err);
    if (!st) st = mxp_write_file_atomic(out_path, w.image, w.size, err);
    if (!st) {
        rep->n_tensors = p.n;
        rep->file_bytes = (double)w.size;
    }
    mxp_gguf_writer_free(&w);
    mxp_export_plan_free(&p);
    return st;
}
