/* statemachine.c — `peerless statemachine`: write the AWS Step Functions
 * definition that computes one step's batch gradients with functions
 * (docs/statemachines.md describes its input and output). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "peerless/asl.h"

static int write_out(const char *path, const char *json, pl_err *err)
{
    FILE *f = path ? fopen(path, "w") : stdout;
    if (!f)
        return pl_err_set(err, PL_ERR_IO, "cannot open --out '%s' for writing", path);
    int ok = fputs(json, f) >= 0 && fputc('\n', f) != EOF;
    if (path)
        ok = (fclose(f) == 0) && ok;
    else
        ok = (fflush(f) == 0) && ok;
    return ok ? PL_OK : pl_err_set(err, PL_ERR_IO, "writing '%s' failed", path ? path : "stdout");
}

static int validate_arn(const char *flag, const char *arn, pl_err *err)
{
    if (arn && (!arn[0] || strchr(arn, ' ') || strchr(arn, '"')))
        return pl_err_set(err, PL_ERR_ARG, "--%s '%s': expected a function ARN (e.g. arn:aws:lambda:REGION:ACCOUNT:function:NAME)",
                          flag, arn);
    return PL_OK;
}

int pl_cmd_statemachine(int argc, char **argv)
{
    pl_asl_gen_config c = {0, NULL, 0, NULL, NULL, 300};
    const char *out = NULL;
    pl_flag flags[] = {
        {"batches", PL_FLAG_INT, &c.batches, 1, 100000, "N", "batches per peer and step (required)", 0},
        {"function-arn", PL_FLAG_STR, &c.function_arn, 0, -1, "ARN", "compute_gradient function (required)", 0},
        {"max-concurrency", PL_FLAG_INT, &c.max_concurrency, 0, 100000, "C",
         "at most C batches at once (default 0 = unlimited)", 0},
        {"process-input-arn", PL_FLAG_STR, &c.process_input_arn, 0, -1, "ARN",
         "ProcessInput function (default: --function-arn with action process_input)", 0},
        {"aggregate-arn", PL_FLAG_STR, &c.aggregate_arn, 0, -1, "ARN",
         "Aggregate function (default: a Pass state that lists the results)", 0},
        {"task-timeout", PL_FLAG_INT, &c.task_timeout, 0, 900, "S",
         "TimeoutSeconds of each Task (default 300, 0 = none, Lambda max 900)", 0},
        {"out", PL_FLAG_STR, &out, 0, -1, "FILE", "write the definition here (default: stdout)", 0},
    };
    int nflags = (int)(sizeof flags / sizeof flags[0]);
    int help = 0;
    pl_err err = {0, ""};
    int st = pl_args_parse("statemachine", flags, nflags, argc, argv, &help, &err);
    if (!st && help) {
        pl_args_usage("statemachine", "Write an Amazon States Language definition (AWS Step Functions) that computes "
                      "a step's batch gradients with functions.", flags, nflags);
        return 0;
    }
    if (!st && !flags[0].seen)
        st = pl_err_set(&err, PL_ERR_ARG, "--batches is required (see peerless statemachine --help)");
    if (!st && !c.function_arn)
        st = pl_err_set(&err, PL_ERR_ARG, "--function-arn is required (see peerless statemachine --help)");
    if (!st)
        st = validate_arn("function-arn", c.function_arn, &err);
    if (!st)
        st = validate_arn("process-input-arn", c.process_input_arn, &err);
    if (!st)
        st = validate_arn("aggregate-arn", c.aggregate_arn, &err);
    char *json = NULL;
    if (!st)
        st = pl_asl_generate(&c, &json, &err);
    if (!st)
        st = write_out(out, json, &err);
    free(json);
    if (st) {
        fprintf(stderr, "peerless statemachine: %s\n", err.msg[0] ? err.msg : pl_status_str(st));
        return 1;
    }
    return 0;
}
