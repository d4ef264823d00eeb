// plan.h: putting formats into a graph's format slots from a user's specification:
// "uniform:FMT" (every linear op in FMT), "stored" (the slots as loading the model set them:
// a GGUF's quantized linear weights run in their formats, see model.c), or a plan file (JSON, see plan.c) whose "ops"
// object maps Hugging Face module names to format names. Unknown module or format names are
// errors naming them; ops a plan does not list stay at the reference format (f32).
#ifndef MXP_PLAN_H
#define MXP_PLAN_H

#include "core/graph.h"

// Set the linear ops' format slots from a specification: "uniform:FMT" (llama.cpp's fallback
// where FMT's block does not divide an op's input width, with a note on stderr), "stored"
// or a plan file. Errors name the spec, the module or the format.
mxp_status mxp_formats_apply_spec(mxp_graph *g, const char *spec, mxp_err *err);
// Parse a plan JSON text into the slots (label names the file in errors).
mxp_status mxp_formats_apply_plan_json(mxp_graph *g, const char *json, size_t len, const char *label, mxp_err *err);
// Write a plan file (atomically): module names[i] in format fmt[i], i < n.
mxp_status mxp_plan_write(const char *path, const char *const *names, const unsigned char *fmt, int n, mxp_err *err);
// Reset every slot to f32.
void mxp_formats_reset(mxp_graph *g);
// Bytes of all linear weights in their slots' formats (f32 for the reference).
double mxp_formats_weight_bytes(const mxp_graph *g);

#endif
