// apply.c: `mixprec apply`: a model + a plan -> a GGUF v3 file llama.cpp loads. Loads the
// model, puts the plan's format in every linear slot, and hands the graph to the exporter
// (src/export/), which knows llama.cpp's architectures, tensor layouts and tokenizer
// metadata, refuses what llama.cpp would compute differently, and writes atomically.
#include <string.h>

#include "arch/model.h"
#include "export/export.h"
#include "method/plan.h"

mxp_status mxp_apply(const char *model_path, const char *plan, const char *out_path, mxp_apply_report *rep,
                     mxp_err *err) {
    memset(rep, 0, sizeof *rep);
    mxp_model *m = NULL;
    mxp_status st = mxp_model_load(model_path, &m, err);
    if (st) return st;
    st = mxp_formats_apply_spec(&m->graph, plan, err);
    if (!st) st = mxp_export_gguf(m, out_path, rep, err);
    mxp_model_free(m);
    return st;
}
