// model.h: a loaded model: its configuration, the parameters, and the graph built from them.
// mxp_model_load reads a Hugging Face folder or a GGUF file and calls the architecture
// builder. bf16 and f16 weights of the linear ops and the token embedding stay in their stored
// type, used in place from the read-only mapping (core/graph.h: read through mxp_param_widen;
// GGUF q/k rows keep llama.cpp's permutation, which the accessor undoes); every other weight
// is converted to f32 (f32 tensors borrowed straight from the mapping when they are aligned,
// llama.cpp's q/k row permutation undone in the copy).
// Every tensor of the file must be used by the graph (a few known buffers excepted), so a
// feature the graph lacks is an error rather than a silently wrong model.
#ifndef MXP_MODEL_H
#define MXP_MODEL_H

#include "arch/config.h"
#include "core/graph.h"
#include "io/data.h"
#include "io/tensors.h"
#include "io/tokenizer.h"

typedef struct mxp_model {
    char *path;               // owned copy of the path it was loaded from
    int is_gguf;
    mxp_model_config config;
    mxp_graph graph;          // params[i].raw points into `weights` or into the mapping
    mxp_tensor_set files;     // HF: mappings of the safetensors files
    mxp_gguf gguf;            // GGUF: the mapping and metadata
    void **weights;           // owned copies (n_weights): f32, or 16-bit (transposed / realigned)
    int n_weights, cap_weights;
    char *tokenizer_dir;      // folder holding tokenizer.json, or NULL (GGUF: metadata)
    mxp_tokenizer *tokenizer; // built on first use by mxp_model_tokenizer (owned), or NULL
    int owned_only;           // copy every weight (mxp_model_load_owned)
    int synthetic;            // weights are random (mxp_model_synthetic); no files
    uint64_t seed;            // synthetic weights: the seed of the next parameter
} mxp_model;

// Load like mxp_model_load, but with every parameter in an owned f32 copy (never a pointer
// into the mapping, never a 16-bit stored type), so a trainer may update params[i].data in
// place through a cast.
mxp_status mxp_model_load_owned(const char *path, mxp_model **out, mxp_err *err);

// A model with random weights and no file, for benchmarks and tests: 2-D weights normal with
// std 0.02 (the usual init), norm weights 1, biases 0; deterministic for a seed.
mxp_status mxp_model_synthetic(const mxp_model_config *c, uint64_t seed, mxp_model **out, mxp_err *err);

// The model's tokenizer (tokenizer.json of a Hugging Face folder, or a GGUF's tokenizer.ggml.*
// metadata), built on first use; owned by the model. MXP_ERR_UNSUPPORTED if it has none.
mxp_status mxp_model_tokenizer(mxp_model *m, const mxp_tokenizer **out, mxp_err *err);
// The tokenizer a GGUF's tokenizer.ggml.* metadata describes ("gpt2" or "llama"); errors name
// `label` and the key. On success *out owns a new tokenizer (mxp_tokenizer_free).
mxp_status mxp_tokenizer_from_gguf(const mxp_gguf *g, const char *label, mxp_tokenizer **out, mxp_err *err);
// Load data for this model: a token-id file as is, text through the model's tokenizer (built
// only when the file is text). See io/data.h.
mxp_status mxp_model_load_data(mxp_model *m, mxp_tokens *t, const char *path, mxp_err *err);

// Done with parameter p for now: when its stored bytes are read in place from the model's
// read-only file mapping, the whole pages inside them leave the process's resident set
// (mxp_map_release: a later read faults them in from the file again). Owned copies (f32
// conversions, realigned or transposed 16-bit copies, synthetic weights) are left as they are.
// Changes no value.
void mxp_model_release_param(mxp_model *m, int p);
// mxp_model_release_param on the weight and bias of every node in [first, last) that has them
// (a streamed pass's segment: runtime/exec.h, mxp_segment_done).
void mxp_model_release_nodes(mxp_model *m, int first, int last);

// Weight lookup used by the builders: fetch tensor `name` (Hugging Face naming) with exactly
// the expected shape (ndim, shape: compute layout), add it to the graph's parameter table
// (2-D bf16/f16 in the stored type, everything else as f32) and return its index.
// transpose_2d: the file stores the transpose (Conv1D).
mxp_status mxp_model_param(mxp_model *m, const char *name, int ndim, const int64_t *shape, int transpose_2d,
                           int *index, mxp_err *err);
// Same, but the tensor may be absent: *found = 0 then.
mxp_status mxp_model_param_opt(mxp_model *m, const char *name, int ndim, const int64_t *shape,
                               int transpose_2d, int *index, int *found, mxp_err *err);

// Builders (src/arch/<family>.c): turn m->config + weights into m->graph.
mxp_status mxp_build_llama(mxp_model *m, mxp_err *err);
mxp_status mxp_build_gpt2(mxp_model *m, mxp_err *err);

#endif
