// cli_util.c: argument parsing and error printing shared by the subcommands.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

int cli_usage_error(const char *msg, const char *arg) {
    fprintf(stderr, "mixprec: %s%s\n(run 'mixprec --help' for usage)\n", msg, arg);
    return 2;
}

int cli_fail(const mxp_err *err) {
    fprintf(stderr, "mixprec: error: %s\n", err->msg);
    return 1;
}

int cli_parse_pos_int(const char *opt, const char *s, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > 1 << 30) {
        fprintf(stderr, "mixprec: %s expects a positive integer, got '%s'\n", opt, s);
        return 0;
    }
    *out = (int)v;
    return 1;
}

int cli_parse_pos_double(const char *opt, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v <= 0) {
        fprintf(stderr, "mixprec: %s expects a positive number, got '%s'\n", opt, s);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_parse_nonneg_double(const char *opt, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0) || v > 1e6) {
        fprintf(stderr, "mixprec: %s expects a number >= 0, got '%s'\n", opt, s);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_parse_u64(const char *opt, const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') {
        fprintf(stderr, "mixprec: %s expects a non-negative integer, got '%s'\n", opt, s);
        return 0;
    }
    *out = v;
    return 1;
}

// "1%" -> 0.01; "0.01" -> 0.01. Plain numbers >= 1 are refused as ambiguous.
int cli_parse_ppl_increase(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    int pct = *end == '%' && end[1] == 0;
    if (errno || end == s || (*end && !pct) || !isfinite(v) || v <= 0 || (!pct && v >= 1) || (pct && v >= 1e6)) {
        fprintf(stderr, "mixprec: --max-ppl-increase expects a percentage such as 1%% or a fraction such as 0.01, got '%s'\n", s);
        return 0;
    }
    *out = pct ? v / 100 : v;
    return 1;
}
