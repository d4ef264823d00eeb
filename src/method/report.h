// report.h: what `mixprec optimize` measured, and the self-contained HTML page that shows it
// (report.c). optimize.c fills an mxp_report; report.c only formats it: it computes nothing
// but plot coordinates, and embeds no external asset (inline SVG and CSS, no script, no
// network). Every string from the outside (paths, module names, notes) is HTML-escaped.
#ifndef MXP_METHOD_REPORT_H
#define MXP_METHOD_REPORT_H

#include "core/base.h"
#include "quant/format.h"

typedef enum mxp_point_kind {
    MXP_PT_CHOSEN,     // the plan for the user's budget (time objective, taylor metric)
    MXP_PT_PARETO,     // the same solver at another budget of the sweep
    MXP_PT_UNIFORM,    // every op in one format
    MXP_PT_MAC,        // baseline: MAC objective, same budget
    MXP_PT_MEMORY,     // baseline: memory objective, same budget
    MXP_PT_FISHER,     // baseline: fisher metric, least fisher score at the chosen plan's gain
    MXP_PT_LLAMA_MIX,  // llama.cpp's own mix (llama-quantize TYPE of the f32 GGUF): its formats
    MXP_PT_SIZED,      // the least-loss plan no larger than the llama.cpp mix before it
    MXP_PT_LOSS_MATCHED,  // the fastest plan (time objective) whose predicted loss MSE is at
                          // most the llama.cpp mix's measured one (the mix two points before)
    MXP_PT_KIND_COUNT,
} mxp_point_kind;

// One configuration, predicted and measured. Gains are per workload unit (one prefill pass,
// or one decoded token) in seconds; *_frac are the same divided by the reference time.
typedef struct mxp_opt_point {
    mxp_point_kind kind;
    char label[64];
    int has_budget;  double budget;     // predicted-loss budget tau it was solved for
    // Predictions: the loss from the sensitivity table (absent when a format was not
    // calibrated), the gain from the latency table (absent when a format was not profiled,
    // e.g. f8_e4m3, which has no GGUF type). has_pred: both.
    int has_pred_loss, has_pred_gain, has_pred;
    double pred_loss_mse;               // set when has_pred_loss
    double pred_gain_s, pred_gain_frac; // set when has_pred_gain
    // measured on held-out samples (mxp_eval, real kernels)
    double loss, ppl, loss_mse, loss_mse_se, kl, top1;
    double ref_time_s, time_s;          // per workload unit, reference and this configuration
    double gain_s, gain_frac;           // median paired (f32 - this) time, and / ref_time_s
    double gain_ci_frac;                // 95% interval half-width of gain_frac
    double tokens_per_s, ref_tokens_per_s;  // the workload's tokens/s (prefill or decode)
    double weight_bytes;
    int is_dup;  int dup_of;            // is_dup: same formats as point dup_of (measured once)
    int acc_measured;                   // accuracy already measured (a mix, before its matched plan)
    int has_llama;                      // llama.cpp's speed of this configuration's GGUF was measured
    double llama_prefill_tps, llama_decode_tps;  // llama-bench medians
    unsigned char *fmt;                 // (n_ops) format id per op; owned
    int uniform;                        // MXP_PT_UNIFORM: the format asked for (ops it does not
                                        // fit take llama.cpp's fallback in fmt, mxp_format_fit)
} mxp_opt_point;

// The optimizer's target (docs/DESIGN.md 1.4), per budget of the sweep (and the chosen plan).
typedef struct mxp_target_row {
    int point;                          // index into points
    double budget;
    int loss_ok;                        // measured loss MSE <= 1.5 x budget
    int has_best_uniform;  int best_uniform;  // the fastest uniform format (measured) whose
                                              // measured loss MSE is within the budget
    double best_uniform_gain_frac;      // its gain (0: f32 itself when none fits)
    int gain_ok;                        // plan's measured gain >= best_uniform_gain_frac
    // the same judged on llama.cpp's speeds (llama-bench of the GGUFs), when measured
    int has_llama;
    double llama_gain_frac;             // 1 - f32 tokens/s / the plan's, for the workload's unit
    int llama_has_best_uniform;  int llama_best_uniform;
    double llama_best_uniform_gain_frac;
    int llama_gain_ok;
} mxp_target_row;

typedef struct mxp_report {
    // what was run
    const char *tool, *ggml, *model, *data, *workload, *machine, *kernels, *created;
    const char *profile_engine;         // what timed the latency table (its machine.engine), or NULL
    const char *time_engine;            // what ran the whole-model timing (measured gains), or NULL
    int decode;                         // workload is decode (unit: token) or prefill (pass)
    int unit_tokens;                    // tokens per workload unit
    double tau, ppl_increase;           // budget; ppl_increase 0 when given as loss MSE
    int calib_samples, seq_len, eval_samples, eval_tokens;
    int time_rounds;                    // rounds of the whole-model timing
    double ref_loss, ref_ppl;           // reference model on the held-out samples
    double profile_ref_time_s;          // sum of the sub-graph reference times (the table)
    // sensitivity table
    int n_ops;
    const char *const *op_names;        // (n_ops) borrowed
    const double *sens;                 // (n_ops * MXP_FMT_COUNT) s_l(p), taylor
    const unsigned char *sens_has;      // (n_ops * MXP_FMT_COUNT) format allowed
    int n_formats;                      // calibrated formats, columns of the heat map
    const mxp_format_id *formats;
    // points and target rows
    int n_points;
    const mxp_opt_point *points;
    int n_target;
    const mxp_target_row *target;
    // stage timings
    int n_stages;
    const char *const *stage_names;
    const double *stage_s;
    // llama.cpp's speed (llama-bench) of the GGUFs: points with has_llama, and f32
    int has_llama;
    const char *llama_build;            // llama.cpp build llama-bench reports
    int llama_threads, llama_prefill_tokens, llama_decode_tokens, llama_rounds;
    double llama_ref_prefill_tps, llama_ref_decode_tps;  // uniform f32
    // free-form remarks (plain text, escaped when written)
    int n_notes;
    const char *const *notes;
} mxp_report;

// Write the report as one HTML page to path (atomically). Errors: MXP_ERR_NOMEM, MXP_ERR_IO.
mxp_status mxp_report_write_html(const mxp_report *r, const char *path, mxp_err *err);

// Build the page in memory: *out (NUL-terminated, malloc'd, caller frees), *len its length.
mxp_status mxp_report_html(const mxp_report *r, char **out, size_t *len, mxp_err *err);

#endif
