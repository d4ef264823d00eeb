// check.h: is the sensitivity table right? Measures, on held-out samples, the real loss MSE
// of (a) every op quantized alone in every format and (b) K random whole-model
// configurations, and compares it with each metric's prediction (Spearman rank correlation,
// median and spread of measured/predicted). Forward passes run in fake-quant mode, whose
// values are those of the real kernels (tests/test_runtime.c).
#ifndef MXP_CHECK_H
#define MXP_CHECK_H

#include <stdio.h>

#include "mixprec.h"
#include "method/sensitivity.h"
#include "runtime/qcache.h"

// held: (n_held, s->seq_len + 1) windows. Prints a report to `out`; writes every pair to csv
// when not NULL; fills the check fields of r.
mxp_status mxp_check_predictions(const mxp_sens *s, mxp_model *m, mxp_qcache *qc, const int32_t *held, size_t n_held,
                                 int K, uint64_t seed, const char *csv, FILE *out, int progress, volatile int *stop,
                                 mxp_calib_result *r, mxp_err *err);

#endif
