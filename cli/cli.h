// cli.h: what the mixprec subcommands share: argument parsing that rejects junk, error
// reporting, and the command entry points (one file per command: cli/cmd_<name>.c).
// Exit status of every command: 0 ok, 1 the library reported an error, 2 bad usage.
#ifndef MXP_CLI_H
#define MXP_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "mixprec.h"

// Print "mixprec: <msg><arg>" and a hint to stderr; returns 2.
int cli_usage_error(const char *msg, const char *arg);
// Print the library's error message; returns 1.
int cli_fail(const mxp_err *err);
// Option value parsers: print a message naming the option and return 0 on junk.
int cli_parse_pos_int(const char *opt, const char *s, int *out);        // 1 .. 2^30
int cli_parse_nonneg_double(const char *opt, const char *s, double *out);
int cli_parse_pos_double(const char *opt, const char *s, double *out);  // > 0, finite
int cli_parse_u64(const char *opt, const char *s, uint64_t *out);
int cli_parse_size(const char *opt, const char *s, uint64_t *out);     // bytes: 512M, 8G, 8GB, 1048576
int cli_parse_ppl_increase(const char *s, double *out);  // "1%" or "0.01" -> 0.01

int cmd_info(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_profile(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_solve(int argc, char **argv);
int cmd_apply(int argc, char **argv);
int cmd_optimize(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);

#endif
