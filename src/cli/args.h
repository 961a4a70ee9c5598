/* args.h — table-driven command-line flags for the peerless subcommands.
 *
 * Flags are "--name value" or "--name=value"; underscores and dashes are
 * interchangeable ("--batch_size" == "--batch-size", as the original study
 * spelled them). Every value is validated (full-string numbers within the
 * flag's range); errors name the flag, the value and what was expected. */
#ifndef PEERLESS_CLI_ARGS_H
#define PEERLESS_CLI_ARGS_H

#include <stdint.h>

#include "peerless/status.h"

typedef enum pl_flag_type { PL_FLAG_INT, PL_FLAG_U64, PL_FLAG_DOUBLE, PL_FLAG_STR, PL_FLAG_BOOL } pl_flag_type;

typedef struct pl_flag {
    const char *name;   /* without leading dashes, dash-separated */
    pl_flag_type type;
    void *dst;          /* int*, uint64_t*, double*, const char**, int* (bool) */
    double min, max;    /* inclusive range for numbers (ignored when min > max) */
    const char *metavar;
    const char *help;
    int seen;           /* set by the parser */
} pl_flag;

/* Parse argv[0..argc) against flags[0..n). "--help"/"-h" sets *help.
 * Bool flags take no value, or an explicit true/false/1/0 with '='
 * (or as the next word when it is one of those). */
int pl_args_parse(const char *cmd, pl_flag *flags, int n, int argc, char **argv, int *help, pl_err *err);
/* Print "usage: peerless CMD [flags]" and the flag table to stdout. */
void pl_args_usage(const char *cmd, const char *summary, const pl_flag *flags, int n);

#endif
