// mixprec.h: the public API of libmixprec.
//
// mixprec picks a numeric format per layer of a neural network so that inference is as
// fast as possible on this machine while the loss stays within a budget. The CLI (cli/) is a
// thin client of this header.
//
// Conventions:
//  - Every fallible call returns an mxp_status and fills a caller-provided mxp_err (may be
//    NULL) with a message that names the file, tensor or argument at fault.
//  - Objects are opaque, caller-owned, created by mxp_x_load/init and released by mxp_x_free.
//  - Nothing in the library calls exit(); nothing writes to stdout.
#ifndef MIXPREC_H
#define MIXPREC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mxp_status {
    MXP_OK = 0,
    MXP_ERR_IO,          // could not open/read/write a file
    MXP_ERR_FORMAT,      // a file is malformed (bad magic, offsets, JSON, dims...)
    MXP_ERR_UNSUPPORTED, // well-formed but not supported (architecture, dtype, config key)
    MXP_ERR_ARG,         // bad argument from the caller or the command line
    MXP_ERR_NOMEM,       // allocation failed or a size overflowed
    MXP_ERR_INTERRUPTED, // stopped by the user (Ctrl-C)
} mxp_status;

typedef struct mxp_err {
    mxp_status code;
    char msg[1024];
} mxp_err;

// Short name of a status code ("format error", ...). Static string.
const char *mxp_status_name(mxp_status s);

// Library version string, e.g. "0.1.0". Static string.
const char *mxp_version(void);
// Version and commit of the ggml library mixprec's formats come from (ggml_version(),
// ggml_commit()), e.g. "0.23.0" and "5b4ebc5". Static strings.
const char *mxp_ggml_version(void);
const char *mxp_ggml_commit(void);

// ---- models ----
typedef struct mxp_model mxp_model;

// Load a Hugging Face folder (config.json + model.safetensors or sharded) or a GGUF file.
// On success *out is a new model owned by the caller (free with mxp_model_free). The model
// keeps the files mapped read-only while it lives.
mxp_status mxp_model_load(const char *path, mxp_model **out, mxp_err *err);
void mxp_model_free(mxp_model *m);

// Write a description of the model to f: architecture, dimensions, parameter count, and every
// tensor with its shape and dtype as stored in the file.
void mxp_model_print_info(const mxp_model *m, FILE *f);

// Token ids of a data file as every command reads it: a token-id file as is, text through the
// model's tokenizer with its BOS/EOS defaults. On success *ids (free()) holds *n ids.
mxp_status mxp_tokenize_file(mxp_model *m, const char *path, int32_t **ids, size_t *n, mxp_err *err);
// Write ids as a token-id file (first line "mixprec-tokens 1", then the ids), atomically.
mxp_status mxp_write_tokens(const char *path, const int32_t *ids, size_t n, mxp_err *err);

// ---- evaluation ----
typedef struct mxp_eval_opts {
    const char *data_path;  // token-id file (see src/io/data.h) or text (model's tokenizer)
    int seq_len;            // tokens per sample (T); 0: min(256, model maximum)
    int batch;              // sequences per forward pass; 0: 1
    int max_samples;        // 0: every full window of the evaluation split
    int progress;           // 1: progress with ETA on stderr
    const char *formats;    // NULL: the reference (f32) only, or the stored formats of a model
                            // file that has quantized weights. "uniform:FMT", a plan file or
                            // "stored": also run the model with these formats (real kernels)
                            // and compare with the f32 reference
    int decode_tokens;      // tokens timed in the decode-speed run (0: 64; -1: skip it)
    const char *backend;    // what the speeds are timed on: "ggml" (NULL too: the whole model as a
                            // ggml graph, the engine llama.cpp runs) or "native" (mixprec's
                            // executor). Losses, KL and top-1 always come from the executor.
} mxp_eval_opts;

typedef struct mxp_eval_side {
    double loss;            // mean next-token cross-entropy, nats
    double perplexity;      // exp(loss)
    double prefill_tokens_per_s;  // native: scoring the samples (B x T tokens per forward pass);
                                  // ggml: one pass of T tokens (logits of the last only, as
                                  // llama.cpp); NaN when the engine cannot run the formats
    double decode_tokens_per_s;   // one token at a time with a KV cache (0 if skipped; NaN as above)
    double weight_bytes;    // bytes of the plan ops' weights (linear, token embedding) in their formats
} mxp_eval_side;

typedef struct mxp_eval_result {
    size_t samples, tokens; // windows and predicted tokens evaluated
    int seq_len, batch;
    mxp_eval_side ref;      // the reference model (f32)
    int quantized;          // 1 when opts->formats was given: the fields below are set
    mxp_eval_side quant;    // the model in the given formats
    double loss_mse;        // measured loss MSE: mean over samples of (L_n(quant) - L_n(ref))^2
    double loss_mse_se;     // its standard error over samples
    double kl;              // mean over positions of KL(p_ref || p_quant), nats
    double top1;            // fraction of positions whose most likely next token agrees
    char speed_engine[640]; // what timed the speeds, in words
    char speed_note[200];   // why the formats' speeds are missing (NaN), or empty
} mxp_eval_result;

mxp_status mxp_eval(mxp_model *m, const mxp_eval_opts *opts, mxp_eval_result *res, mxp_err *err);

// ---- processes: calibration shared over an MPI job ----
// The processes (ranks) of one job that mpirun or srun started: {0, 1} for a process on its own.
typedef struct mxp_dist {
    int rank;  // 0 .. size-1; rank 0 writes every file and prints the progress
    int size;
} mxp_dist;

// How many processes an MPI launcher says this job has, from the environment only (Open MPI,
// PMI, PMIx under Slurm); 1 when no launcher started this process. Touches no MPI state.
int mxp_dist_env_size(void);
// Join the job: MPI_Init when a launcher started this process (and the build has MPI),
// otherwise {0, 1} without MPI. Fails when a launcher asks for several processes and this
// build has no MPI (MXP_MPI=OFF). Call once, from the main thread, before any other thread.
mxp_status mxp_dist_init(mxp_dist *d, mxp_err *err);
// Leave the job (MPI_Finalize: waits for the other ranks); nothing for a process on its own.
void mxp_dist_finalize(mxp_dist *d);
// End every process of the job now with exit status `code` (MPI_Abort), after the caller has
// printed why. Returns (and does nothing) for a process on its own. For main() only: a rank that
// fails while the others wait in a collective call would otherwise leave them waiting forever.
void mxp_dist_abort(const mxp_dist *d, int code);

// ---- sensitivity calibration (docs/DESIGN.md 1.1) ----
#define MXP_CALIB_DEFAULT_SAMPLES 32  // calibration windows when none are asked for
// The candidate formats of calibrate, profile and optimize when --formats is not given: GGUF
// formats that mixprec's executor runs with kernels of its own (format.h), so that its
// timings and optimize's measured gains mean what llama.cpp would do. The other ggml formats
// (the k-quants q2_K ... q6_K, q4_1, q5_0, q5_1, iq4_nl) are there on request: their values are
// llama.cpp's, but the executor runs them by dequantizing, far slower than llama.cpp (with
// q4_K, q5_K, q6_K in this list optimize's memory-objective and size-matched plans measured
// 35-100% slower than f32 in the executor on models/default, and its run took 248 s instead
// of 144 s; see BENCHMARKS.md). f8_e4m3 (no GGUF type) is never a default.
#define MXP_DEFAULT_FORMATS "f32,bf16,f16,q8_0,q4_0"
#define MXP_CALIB_MAX_CACHE_MB 1024  // quantized weight copies calibration may keep: at most
#define MXP_CALIB_MIN_CACHE_MB 64        // this, at least this, else a quarter of the weights
#define MXP_CALIB_DEFAULT_BATCH 8        // samples per pass: each batch forms the weight errors once
#define MXP_CHECK_DEFAULT_SAMPLES 16  // held-out windows for checks when none are asked for
// How calibration holds a batch's activations (docs/DESIGN.md 1.1, "Streaming"): the whole
// graph's at once, or streaming, block by block between the graph's cut nodes (the segment
// inputs kept, every block's forward run twice, the weights' mapped pages released block by
// block). The table is the same bit for bit. AUTO streams when the whole-graph pass's
// activations and buffers would exceed max_memory.
typedef enum mxp_stream_mode { MXP_STREAM_AUTO, MXP_STREAM_ON, MXP_STREAM_OFF } mxp_stream_mode;
typedef struct mxp_calib_opts {
    const char *data_path;  // calibration text or token-id file (its calibration split is used)
    int samples;            // N (0: MXP_CALIB_DEFAULT_SAMPLES, or every window of the calibration
                            // split when it holds fewer, at least 4; a warning says so)
    int seq_len;            // T (0: min(256, model maximum))
    int batch;              // samples per forward/backward pass (0: MXP_CALIB_DEFAULT_BATCH,
                            // or all the samples when there are fewer)
    long long cache_mb;     // MiB of quantized weight copies kept so that the slow quantizers
                            // run once, not once per batch (0: a quarter of the weights' stored
                            // bytes, within MXP_CALIB_MIN_CACHE_MB .. MXP_CALIB_MAX_CACHE_MB;
                            // < 0: none); the sensitivity table does not depend on it
    uint64_t seed;          // which windows are drawn
    mxp_stream_mode stream; // AUTO (the default), ON or OFF
    uint64_t max_memory;    // AUTO: bytes the whole-graph pass's activations and buffers may take
                            // (0: half of MemAvailable in /proc/meminfo; unreadable: no limit)
    const char *formats;    // comma-separated (NULL: MXP_DEFAULT_FORMATS)
    const char *metric;     // primary metric written as "s": "taylor" (NULL), "fisher", "noise"
    int fisher;             // also accumulate the fisher metric (implied by metric fisher or check)
    const char *out_path;   // sens.json (written atomically; a partial table while running)
    int resume;             // continue from out_path's partial table
    int progress;           // progress with ETA on stderr (rank 0 only)
    volatile int *stop;     // set to non-zero (e.g. by a SIGINT handler) to stop cleanly; may be NULL
    int stop_after;         // stop cleanly (as *stop does) once this many samples are in the
                            // table, counting resumed ones: a partial table for --resume (0: never)
    // The job this process belongs to (NULL: a process on its own). Every rank calls
    // mxp_calibrate with the same options; the samples are shared out in whole batches, rank 0
    // adds every sample's terms in sample order (the table is the one-process table, bit for
    // bit), and rank 0 alone reads the partial table, writes files and runs the check. When a
    // call fails on one rank, the others may be left waiting: end the job (mxp_dist_abort).
    const mxp_dist *dist;
    // prediction check on held-out samples (the evaluation split)
    int check;              // K random whole-model configurations (0: no check)
    int check_samples;      // held-out samples (0: MXP_CHECK_DEFAULT_SAMPLES, fewer as for samples)
    const char *check_csv;  // write every (predicted, measured) pair here (NULL: none)
    FILE *report;           // where the check's table goes (NULL: stdout)
} mxp_calib_opts;

typedef struct mxp_calib_result {
    size_t samples;
    double seconds;         // calibration pass wall time
    double reference_loss;
    // prediction check, per metric (taylor, fisher, noise): Spearman rank correlation and the
    // median of measured/predicted, for single ops and for whole configurations
    int checked;
    double single_spearman[3], single_median_ratio[3];
    double config_spearman[3], config_median_ratio[3];
} mxp_calib_result;

mxp_status mxp_calibrate(mxp_model *m, const mxp_calib_opts *opts, mxp_calib_result *res, mxp_err *err);

// ---- text generation ----
typedef struct mxp_generate_opts {
    const char *prompt;   // UTF-8 text, encoded with the model's tokenizer and its BOS default;
                          // "" starts from the BOS token alone (an error if there is none)
    int n_tokens;         // new tokens to generate (> 0); generation never stops early
    double temperature;   // 0: greedy (highest logit, lowest id on ties); > 0: sample from
                          // softmax(logits / temperature)
    int top_k;            // with temperature > 0: sample among the k highest logits; 0: all
    uint64_t seed;        // sampling seed: the same model, options and seed give the same text
    // Optional streaming: called after each new token with the bytes it adds to the text
    // (possibly 0 bytes, or part of a UTF-8 character). ctx is passed through.
    void (*on_text)(void *ctx, const char *bytes, size_t len);
    void *ctx;
    const char *backend;  // "ggml" (NULL too): the model as one ggml graph on llama.cpp's CPU
                          // backend, decoding token by token with a KV cache; "native":
                          // mixprec's executor, the full forward pass over the context per token
} mxp_generate_opts;

typedef struct mxp_generate_result {
    char *text;           // the generated continuation (not the prompt), NUL-terminated,
                          // malloc'd: free with mxp_generate_result_free
    size_t text_len;
    int32_t *ids;         // (n_ids) the generated token ids, malloc'd
    size_t n_ids;
    size_t prompt_tokens; // tokens the prompt encoded to (BOS included)
    double seconds;       // wall time of the forward passes that produced the new tokens
                          // (ggml: the prompt is fed token by token before the clock starts)
    const char *backend;  // "ggml" or "native" (static string): what ran
    const char *note;     // why the default ggml did not run (static string), or NULL
} mxp_generate_result;

// Continue `prompt` by n_tokens tokens. ggml (default): the prompt and then each new token go
// through the model's ggml graph one at a time with a KV cache (f16, as llama.cpp); prompt +
// n_tokens must fit the model's maximum positions (explicit "ggml": MXP_ERR_ARG otherwise;
// NULL: such a run goes to the executor, res->note says so). native: each new
// token runs the executor's full forward pass over the context; once the context reaches the
// model's maximum positions, the oldest tokens slide out of the window. Both run the weights
// in the formats of the model's slots. Needs the model's tokenizer (a Hugging Face folder with
// tokenizer.json): otherwise MXP_ERR_UNSUPPORTED. On success *res owns its arrays.
mxp_status mxp_generate(mxp_model *m, const mxp_generate_opts *opts, mxp_generate_result *res, mxp_err *err);
void mxp_generate_result_free(mxp_generate_result *res);

// ---- solve and apply (docs/DESIGN.md 1.3; docs/FILES.md "Plan") ----
typedef struct mxp_solve_opts {
    const char *sens_path;       // sensitivity table (mixprec calibrate)
    const char *latency_path;    // latency table (mixprec profile)
    const char *objective;       // "time" (NULL means time), "memory" or "mac": what the plan gains
    int has_max_loss;  double max_loss_mse;  // tau: predicted loss MSE <= tau (maximise the gain)
    int has_min_gain;  double min_gain;      // the dual: least loss with gain >= this (objective units)
    int has_max_bytes; double max_bytes;     // weight bytes of the plan ops (linear, embedding) <= this
    const char *const *force;  int n_force;  // "GLOB=FMT" (fnmatch on module names): ops take FMT
    const char *const *forbid; int n_forbid; // "GLOB=FMT": ops never take FMT
    int pareto;                  // > 0: also solve N budgets log-spaced over the loss range
    double time_limit_s;         // per solve (0: 60 s)
    double mip_gap;              // relative gap GLPK may stop at (0: exact)
    int no_prune;                // 1: skip dominance pruning
    const char *out_plan;        // plan JSON, or NULL
    const char *out_tensor_types;// llama.cpp llama-quantize --tensor-type-file, or NULL
    const char *out_csv;         // the Pareto curve as CSV, or NULL
} mxp_solve_opts;

typedef struct mxp_solve_report {
    int solved;                  // 1: a plan for the budget (fields below)
    const char *status;          // "optimal", "feasible" (time limit) or "infeasible"; static
    double gap, seconds;         // relative optimality gap, wall time of the solve
    double loss_mse, time_gain_s, mac_gain, mem_gain_bytes, weight_bytes;  // predicted
    int n_ops, n_groups, n_configs, n_kept;  // sizes; n_kept after dominance pruning
    int n_dropped_input, n_dropped_user;     // configurations removed by the tables / the user
    int has_nearest;             // infeasible: the nearest feasible plan's figures
    double nearest_loss_mse, nearest_gain, nearest_bytes;
    int pareto_points;           // points solved for --pareto
    double pareto_seconds;
} mxp_solve_report;

// Solve the integer program and write the requested files. Needs a budget: max_loss_mse,
// min_gain or max_bytes (or pareto). An infeasible budget returns MXP_ERR_ARG with a message
// giving the nearest feasible plan and its loss (figures in rep->nearest_*); nothing is written.
mxp_status mxp_solve(const mxp_solve_opts *o, mxp_solve_report *rep, mxp_err *err);

// Formats by id: the name of format `id` ("f32", "q8_0", "q4_K", ...; ggml's type names), or
// NULL when id is not a format (ids run from 0 to the first NULL, below MXP_MAX_FORMATS).
#define MXP_MAX_FORMATS 32
const char *mxp_format_name(int id);

typedef struct mxp_apply_report {
    int n_tensors;               // tensors written
    int n_by_format[MXP_MAX_FORMATS];  // plan-op weights per format id (see mxp_format_name)
    double file_bytes;           // size of the GGUF written
    int tokenizer;               // 1: tokenizer metadata written
    char tokenizer_desc[128];    // which tokenizer, from where ("byte-level BPE from tokenizer.json ...")
} mxp_apply_report;

// Write MODEL with the formats of `plan` (a plan file or "uniform:FMT") as a GGUF v3 file
// llama.cpp loads and computes as mixprec does: architecture llama (Llama 2/3 with llama3 rope
// scaling, Mistral), qwen2 or gpt2 with llama.cpp's tensor names and layouts; linear weights
// and the token embedding in their formats (a tied head and embedding: one token_embd), norms,
// biases and position embeddings f32; the tokenizer from tokenizer.json
// (byte-level or SentencePiece-style BPE) or carried over from a GGUF input. Written
// atomically. Whatever llama.cpp would load or compute differently (f8_e4m3, which has no
// GGML type; a model without a tokenizer; a split regex llama.cpp does not know) is refused
// with MXP_ERR_UNSUPPORTED naming it, and nothing is written.
mxp_status mxp_apply(const char *model_path, const char *plan, const char *out_path, mxp_apply_report *rep,
                     mxp_err *err);
// ---- end of block: solve ----

// ---- profiling: measured time gain per sequential sub-graph (docs/DESIGN.md 1.2) ----
typedef struct mxp_profile_opts {
    const char *workload;       // "prefill:T" (one pass of T tokens) or "decode:L" (one token
                                // after L cached ones)
    int batch;                  // sequences per pass (0: 1)
    const char *formats;        // comma-separated candidates (NULL: MXP_DEFAULT_FORMATS);
                                // f32, the reference, is always measured
    const char *const *ties;    // (n_ties) comma lists of module-name endings ("q_proj,k_proj")
    int n_ties;                 // ops of one sub-graph matching one list share a format
    const char *data_path;      // text or token-id file whose activations feed the sub-graphs
                                // (NULL: seeded random token ids through the model)
    uint64_t seed;              // token windows / random ids / check configurations
    double rel_ci;              // stop repeating once the 95% CI of a gain is within this
                                // fraction of the sub-graph's reference time (0: 0.01)
    double budget_s;            // time budget for the table's measurements (0: 480)
    int check;                  // K > 0: also time K random whole-model configurations end to
                                // end against the three predictions
    double check_budget_s;      // time budget for the check (0: 240)
    int check_llama;            // 1: also time the check's configurations and every uniform
                                // candidate in llama.cpp (llama-bench on their GGUFs) and
                                // compare the predictions with that (needs check > 0)
    const char *llama_bench;    // llama-bench for check_llama (NULL: found as mxp_optimize_opts
                                // says)
    const char *cache_dir;      // NULL: $MIXPREC_CACHE_DIR, else $XDG_CACHE_HOME/mixprec,
                                // else $HOME/.cache/mixprec
    int no_cache;               // 1: measure even when a cached table matches (then refresh it)
    int no_pin;                 // 1: leave thread placement alone (otherwise, unless
                                // OMP_PROC_BIND is set, OpenMP threads are pinned one per CPU
                                // while profiling; their affinity is restored on return)
    int progress;               // 1: progress with ETA on stderr
    const char *backend;        // what runs the timed graphs: "ggml" (NULL: the default),
                                // ggml's CPU backend as llama.cpp runs the model (its best CPU
                                // variant, llama.cpp's default thread count, f16 KV cache,
                                // flash attention, repacked weights); or "native", mixprec's
                                // own executor and kernels (OpenMP threads)
    int threads;                // ggml: the thread pool's size (0: llama.cpp's default, the
                                // physical cores; match llama.cpp's -t when you deploy with one)
} mxp_profile_opts;

typedef struct mxp_profile_check_row {
    double measured_s, ci_s;    // measured end-to-end gain vs the reference, 95% CI half-width
    double ref_s;               // end-to-end reference time
    double pred_subgraph_s;     // sum of the sub-graph gains of the table
    double pred_op_s;           // sum of per-op gains (each op timed alone)
    double pred_mac_s;          // MAC counts / each format's best measured MAC rate
} mxp_profile_check_row;

typedef struct mxp_profile_llama_row {
    char label[32];             // "random K" (a check configuration) or "uniform FMT"
    double pred_subgraph, pred_op, pred_mac;  // predicted gains / the end-to-end f32 time
    double mixprec_measured;    // measured gain with mixprec's kernels, same units (NaN: not run)
    double llama_measured;      // llama.cpp's: 1 - (f32 tokens/s) / (this tokens/s)
    double llama_tps, llama_ref_tps;  // llama-bench tokens/s of this configuration and of f32
} mxp_profile_llama_row;

typedef struct mxp_profile_result {
    int n_subgraphs, n_classes; // sub-graphs, and distinct measurements (shared signatures)
    int n_configs;              // configurations measured (over the classes)
    int from_cache;             // 1: the table came from the cache (cache_path)
    char cache_path[1024];      // the cache file used or written ("" without a cache)
    char engine[640];           // what ran the timed graphs (backend, ggml version and CPU
                                // variant, threads; or mixprec's kernels)
    int threads;                // threads of that engine
    double seconds;             // wall time of the call
    double ref_time_s;          // sum over sub-graphs of their reference times
    double max_rel_ci;          // largest CI half-width of a gain / its sub-graph's reference
    int n_capped;               // configurations stopped by the time cap above rel_ci
    int n_check;
    mxp_profile_check_row *check;  // (n_check) owned: free with mxp_profile_result_free
    double e2e_ref_s;           // end-to-end reference time (median over the check)
    double mae_subgraph, mae_op, mae_mac;  // median |predicted - measured| / e2e_ref_s
    int n_llama;                // rows of the llama.cpp check (check_llama)
    mxp_profile_llama_row *llama;  // (n_llama) owned
    double llama_mae_subgraph, llama_mae_op, llama_mae_mac;  // median |predicted - llama.cpp| gain,
                                // as fractions of the f32 time
    char llama_build[96];       // the llama.cpp build llama-bench reported
    int n_llama_skipped;        // candidate formats without a uniform GGUF (no GGUF type, or an
    char llama_skipped[16][16]; // op that cannot take it): their names
    int llama_random_skipped;   // check configurations holding a format without a GGUF type
} mxp_profile_result;

// Partition the model, time every configuration of every sub-graph signature with the real
// kernels (docs/DESIGN.md 1.2) and write the latency table (docs/FILES.md) to out_path (atomically).
// A table cached for the same machine, shapes, workload, formats and settings is reused
// unless opts->no_cache. The model's format slots are back at f32 on return.
mxp_status mxp_profile(mxp_model *m, const mxp_profile_opts *opts, const char *out_path, mxp_profile_result *res,
                       mxp_err *err);
void mxp_profile_result_free(mxp_profile_result *res);
// ---- end of profiling ----

// ---- optimize: the whole pipeline and its measured report ----
typedef struct mxp_optimize_opts {
    const char *model_path;     // Hugging Face folder or GGUF file
    const char *data_path;      // text or token ids: its calibration split feeds the
                                // sensitivities, its evaluation split every measured check
    const char *workload;       // "prefill:T" or "decode:L" (what the time gain is for)
    double max_loss_mse;        // the budget tau on the predicted loss MSE, or
    double max_ppl_increase;    // P (0.01 = 1%): tau = ln(1 + P)^2. Exactly one is > 0.
    const char *out_dir;        // created if missing. Gets plan.json, model.gguf, report.html,
                                // report.json, sens.json, latency.json, each moved into place
                                // only once everything succeeded (an error or Ctrl-C leaves
                                // no new file there)
    const char *formats;        // calibrated formats, each also measured as a uniform baseline
                                // (NULL: MXP_DEFAULT_FORMATS); those with a GGUF type are the
                                // plan candidates (profiled); f8_e4m3 has none: baseline only
    int calib_samples;          // calibration windows (0: MXP_CALIB_DEFAULT_SAMPLES, or every
                                // window of the calibration half when it holds fewer, at least 4)
    int seq_len;                // window length for calibration and the check (0: T of a
                                // prefill workload, else min(256, model maximum))
    int eval_samples;           // held-out windows per measured configuration
                                // (0: MXP_CHECK_DEFAULT_SAMPLES, fewer as for calib_samples)
    double profile_budget_s;    // time budget of the latency measurements (0: 90)
    const char *profile_backend;// what the profile times on (mxp_profile_opts.backend; NULL: ggml,
                                // then formats without a ggml type are not profiled)
    int pareto;                 // budgets of the measured sweep (0: 7)
    int no_baselines;           // 1: skip the uniform / MAC / memory / fisher baselines and
                                //    the comparison with llama.cpp's mixes
    int no_cache;               // 1: profile even when a cached latency table matches
    int no_pin;                 // 1: leave thread placement alone (see mxp_profile_opts.no_pin;
                                //    the whole-model timing runs unpinned either way)
    uint64_t seed;              // calibration windows, profile inputs
    int progress;               // 1: stages and progress on stderr
    volatile int *stop;         // set non-zero (SIGINT) to stop after the current step; may be NULL
    const char *llama_bench;    // llama.cpp's llama-bench, which measures the deployed speed of
                                // the plan's GGUF and of every uniform format (NULL: found as
                                // $MIXPREC_LLAMA_BENCH, build-deps/bin in a folder above the
                                // executable's, or PATH; a note in the report when it is not found)
    int no_llama_bench;         // 1: do not run llama-bench, nor llama-quantize (llama.cpp's own
                                //    Q8_0 and Q4_K_M mixes beside the plans of their sizes; found
                                //    in llama-bench's folder)
} mxp_optimize_opts;

typedef struct mxp_optimize_result {
    double tau;                 // the loss-MSE budget used
    double predicted_loss_mse, measured_loss_mse, measured_loss_mse_se;
    double predicted_gain, measured_gain;  // time gain as a fraction of the f32 time
    double predicted_gain_s, measured_gain_s;  // seconds per workload unit (pass or token)
    double ppl_ref, ppl, kl, top1;
    double tokens_per_s, ref_tokens_per_s; // the workload's (prefill or decode) tokens/s, measured
    int target_budgets;         // budgets of the sweep checked against the target (+ the plan)
    int target_loss_ok, target_gain_ok;    // how many meet each half of it
    int target_llama_budgets;   // of those, how many have llama.cpp speeds (llama-bench)
    int target_llama_gain_ok;   // how many meet the gain half on llama.cpp's speeds
    int gguf_written;           // 0: the model has no GGUF export (see report notes)
    int llama_measured;         // 1: llama.cpp's speeds below were measured (llama-bench)
    double llama_prefill_tps, llama_decode_tps;          // the chosen plan's GGUF in llama.cpp
    double llama_ref_prefill_tps, llama_ref_decode_tps;  // uniform f32 in llama.cpp
    double stage_s[6];          // calibrate, profile, solve, apply, measure, report
    double seconds;             // wall time of the call
} mxp_optimize_result;

// Run calibrate, profile, solve (the plan, the sweep and the baselines), apply, and measure
// every configuration on held-out samples with the real kernels; write the files listed at
// out_dir. Errors name the stage; MXP_ERR_INTERRUPTED when *stop was set.
mxp_status mxp_optimize(const mxp_optimize_opts *opts, mxp_optimize_result *res, mxp_err *err);
// ---- end of block: optimize ----

#ifdef __cplusplus
}
#endif
#endif
