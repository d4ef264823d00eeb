// tool_parity.c: compares mixprec's forward and backward with PyTorch references.
// usage: tool_parity MODEL REFS.safetensors
// REFS (written by tools/torch_ref.py) holds tokens (B, T+1), logits (B*T, V), loss (1),
// grad.<tensor> for every parameter (file layout), and per linear module M: input.M,
// output_grad.M, input_grad.M (through M alone). For a GGUF model only logits and loss are
// compared (its gradient references use llama.cpp's names and layouts). Every array is compared with |got - want| <= atol + rtol*|want|
// where atol is scaled to the array's largest reference magnitude; the worst element is
// printed on failure and the exit status is non-zero.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "arch/model.h"
#include "check.h"
#include "io/tensors.h"
#include "runtime/exec.h"

static const double RTOL = 2e-3;   // relative part
static const double ATOL = 2e-4;   // times the array's max |reference|

typedef struct {
    mxp_exec *ex;
    float **dy;  // per node: copy of the output gradient seen by the hook
} hook_ctx;

static void hook(void *vctx, const mxp_linear_event *e) {
    hook_ctx *h = vctx;
    if (e->phase != MXP_HOOK_PRE) return;
    int node = e->node;
    const float *dy = e->dy;
    size_t cells = (size_t)h->ex->N * (size_t)h->ex->g->nodes[node].cols;
    h->dy[node] = malloc(cells * sizeof(float));
    memcpy(h->dy[node], dy, cells * sizeof(float));
}

static float *ref_f32(const mxp_tensor_set *refs, const char *name, size_t want_elems) {
    const mxp_tensor_info *t = mxp_tensor_find(refs, name);
    const char *dot = strchr(name, '.');
    if (!t && dot && !strncmp(dot + 1, "transformer.", 12)) {
        // GPT-2 checkpoints from the Hub name modules without the "transformer." prefix
        char alt[512];
        snprintf(alt, sizeof alt, "%.*s%s", (int)(dot - name + 1), name, dot + 13);
        t = mxp_tensor_find(refs, alt);
    }
    if (!t) {
        CHECK(0, "reference %s missing", name);
        return NULL;
    }
    if (t->nelem != want_elems) {
        CHECK(0, "reference %s has %zu elements, expected %zu", name, t->nelem, want_elems);
        return NULL;
    }
    float *v = malloc(t->nelem * sizeof(float));
    mxp_err err = {0};
    if (mxp_tensor_to_f32(t, v, &err)) {
        CHECK(0, "%s", err.msg);
        free(v);
        return NULL;
    }
    return v;
}

static void compare(const char *what, const float *got, const float *want, size_t n) {
    double maxref = 0;
    for (size_t i = 0; i < n; i++) maxref = fmax(maxref, fabs(want[i]));
    CHECK_CLOSE(what, got, want, n, ATOL * (maxref > 0 ? maxref : 1), RTOL);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL REFS.safetensors\n", argv[0]);
        return 2;
    }
    mxp_err err = {0};
    mxp_model *m = NULL;
    if (mxp_model_load(argv[1], &m, &err)) {
        fprintf(stderr, "FAIL load: %s\n", err.msg);
        return 1;
    }
    mxp_tensor_set refs = {0};
    if (mxp_safetensors_open(&refs, argv[2], &err)) {
        fprintf(stderr, "FAIL refs: %s\n", err.msg);
        return 1;
    }
    const mxp_tensor_info *tok = mxp_tensor_find(&refs, "tokens");
    CHECK(tok && tok->dtype == MXP_DT_I32 && tok->ndim == 2, "tokens must be I32 (B, T+1)");
    if (check_failures) CHECK_DONE();
    int B = (int)tok->shape[0], T = (int)tok->shape[1] - 1;
    const mxp_graph *g = &m->graph;
    mxp_exec ex;
    if (mxp_exec_init(&ex, g, B, T, MXP_EXEC_PARAM_GRADS, &err) ||
        mxp_exec_set_batch(&ex, (const int32_t *)tok->data, &err)) {
        fprintf(stderr, "FAIL exec: %s\n", err.msg);
        return 1;
    }
    mxp_exec_forward(&ex, 0, g->n_nodes);
    double loss = mxp_exec_loss(&ex, NULL);
    hook_ctx h = {.ex = &ex, .dy = calloc((size_t)g->n_nodes, sizeof(float *))};
    mxp_exec_zero_grads(&ex);
    if (mxp_exec_backward(&ex, 0, g->n_nodes, 1.0f / (float)ex.N, hook, &h, &err)) {
        fprintf(stderr, "FAIL exec backward: %s\n", err.msg);
        return 1;
    }

    size_t V = (size_t)g->vocab, N = (size_t)ex.N;
    float *want = ref_f32(&refs, "logits", N * V);
    if (want) compare("logits", ex.val[g->n_nodes - 1], want, N * V);
    free(want);
    want = ref_f32(&refs, "loss", 1);
    if (want) {
        CHECK(fabs(loss - want[0]) <= 1e-5 + 1e-5 * fabs(want[0]), "loss got %.9g want %.9g", loss, (double)want[0]);
        fprintf(stderr, "loss: mixprec %.7f  torch %.7f\n", loss, (double)want[0]);
    }
    free(want);

    char name[512];
    int compared = 0;
    if (m->is_gguf) goto done;  // GGUF refs use llama.cpp's names and layouts: logits and loss only
    for (int p = 0; p < g->n_params; p++) {
        const mxp_param *pr = &g->params[p];
        snprintf(name, sizeof name, "grad.%s", pr->name);
        want = ref_f32(&refs, name, pr->nelem);
        if (!want) continue;
        const float *got = ex.pgrad[p];
        float *tr = NULL;
        if (pr->file_transposed) {  // ours (O, I), file (I, O)
            int64_t O = pr->shape[0], I = pr->shape[1];
            tr = malloc(pr->nelem * sizeof(float));
            for (int64_t o = 0; o < O; o++)
                for (int64_t i = 0; i < I; i++) tr[i * O + o] = got[o * I + i];
            got = tr;
        }
        compare(name, got, want, pr->nelem);
        compared++;
        free(tr);
        free(want);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const mxp_node *n = &g->nodes[i];
        if (n->op != MXP_OP_LINEAR) continue;
        size_t in_cells = N * (size_t)g->nodes[n->in[0]].cols, out_cells = N * (size_t)n->cols;
        snprintf(name, sizeof name, "input.%s", n->name);
        if ((want = ref_f32(&refs, name, in_cells))) compare(name, ex.val[n->in[0]], want, in_cells);
        free(want);
        snprintf(name, sizeof name, "output_grad.%s", n->name);
        if ((want = ref_f32(&refs, name, out_cells))) compare(name, h.dy[i], want, out_cells);
        free(want);
        // through M alone: dy (N, O) @ W (O, I)
        int I = g->nodes[n->in[0]].cols, O = n->cols;
        const mxp_param *pw = &g->params[n->w];
        float *W = malloc(pw->nelem * sizeof(float));  // the weight as f32 (stored in f32, bf16 or f16)
        mxp_param_widen(pw, 0, pw->shape[0], 0, pw->shape[1], W, pw->shape[1]);
        float *dx = calloc(in_cells, sizeof(float));
        for (size_t r = 0; r < N; r++)
            for (int o = 0; o < O; o++) {
                float d = h.dy[i][r * (size_t)O + o];
                for (int k = 0; k < I; k++) dx[r * (size_t)I + k] += d * W[(size_t)o * I + k];
            }
        snprintf(name, sizeof name, "input_grad.%s", n->name);
        if ((want = ref_f32(&refs, name, in_cells))) compare(name, dx, want, in_cells);
        free(want);
        free(dx);
        free(W);
        compared += 3;
    }
done:
    fprintf(stderr, "%s: %d parameter and activation arrays compared (atol %.1e x max|ref|, rtol %.1e)\n", argv[1],
            compared, ATOL, RTOL);
    for (int i = 0; i < g->n_nodes; i++) free(h.dy[i]);
    free(h.dy);
    mxp_exec_free(&ex);
    mxp_tensor_set_free(&refs);
    mxp_model_free(m);
    CHECK_DONE();
}
