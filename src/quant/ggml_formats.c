// ggml_formats.c: the formats whose numerics are ggml's own (llama.cpp's tensor library,
// linked as libggml-base.so): quantize with ggml_quantize_chunk, dequantize with the type
// traits' to_float, so the bytes and values are exactly those llama.cpp stores and runs.
// Also the version of the ggml library for provenance.
// Must not: hold state (ggml's quantizers without an importance matrix are pure functions;
// the tables they use are built once by ggml_quantize_init, called under a pthread_once).
#include "quant/quant_internal.h"

#include <ggml.h>

#include "mixprec.h"

const char *mxp_ggml_version(void) { return ggml_version(); }
const char *mxp_ggml_commit(void) { return ggml_commit(); }
