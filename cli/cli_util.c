// cli_util.c: argument parsing and error printing shared by the subcommands.
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

// A byte count: digits, optionally a binary unit K, M, G or T (any case; 2^10 .. 2^40), which
// may be followed by B or iB: "512M", "8G", "8GB", "8GiB", "1048576". Not 0.
int cli_parse_size(const char *opt, const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    int ok = !errno && end != s && s[0] >= '0' && s[0] <= '9' && v > 0;
    unsigned shift = 0;
    if (ok && *end) {
        const char *units = "KMGT", *u = strchr(units, toupper((unsigned char)*end));
        if (u) {
            shift = 10 * (unsigned)(u - units + 1);
            end++;
            if ((end[0] == 'i' || end[0] == 'I') && (end[1] == 'B' || end[1] == 'b') && !end[2]) end += 2;
        }
        if ((end[0] == 'B' || end[0] == 'b') && !end[1]) end++;
        ok = !*end;
    }
    if (ok && v > (UINT64_MAX >> shift)) ok = 0;
    if (!ok) {
        fprintf(stderr, "mixprec: %s expects a size in bytes above 0, optionally with a unit (512M, 8G, 8GB), got '%s'\n",
                opt, s);
        return 0;
    }
    *out = (uint64_t)v << shift;
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
