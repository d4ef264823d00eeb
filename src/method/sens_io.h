// sens_io.h: sensitivity tables to and from JSON (docs/FILES.md).
#ifndef MXP_SENS_IO_H
#define MXP_SENS_IO_H

#include <cJSON.h>

#include "method/sensitivity.h"

// The table as JSON; takes ownership of provenance (may be NULL). complete = 0 marks a
// partial table (an interrupted calibration) that --resume continues. NULL on OOM.
cJSON *mxp_sens_to_json(const mxp_sens *s, mxp_metric primary, cJSON *provenance, int complete);
// Load the accumulators of a table written by mxp_sens_to_json into s, which must have been
// initialised for the same model, formats and sequence length (checked; errors name label).
mxp_status mxp_sens_restore(mxp_sens *s, const cJSON *j, const char *label, mxp_err *err);

#endif
